"""Stage 0: the pseudo B-mode physics engine (label map -> IVUS display image).

>>> from ivus_sim.physics import PhysicsSimulator, SimulationResult
"""

from ivus_sim.physics.simulator import STAGES, PhysicsSimulator, SimulationResult

__all__ = ["STAGES", "PhysicsSimulator", "SimulationResult"]
