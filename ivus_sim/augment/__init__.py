"""ivus_sim.augment"""
