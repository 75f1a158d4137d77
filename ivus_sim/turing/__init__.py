"""ivus_sim.turing"""
