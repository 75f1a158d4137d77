"""ivus_sim.physics"""
