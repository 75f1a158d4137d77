"""ivus_sim.aae"""
