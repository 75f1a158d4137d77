"""ivus_sim.metrics"""
