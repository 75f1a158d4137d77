"""ivus_sim.stage1"""
