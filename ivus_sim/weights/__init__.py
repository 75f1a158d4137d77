"""ivus_sim.weights"""
