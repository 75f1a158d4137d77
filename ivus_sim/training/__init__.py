"""ivus_sim.training"""
