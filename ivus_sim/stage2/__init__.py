"""ivus_sim.stage2"""
