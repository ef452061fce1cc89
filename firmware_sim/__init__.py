"""firmware_sim: a plant, its forklifts and their radios, writing capture bundles with truth.

    simulate(name, seed, duration_s) -> SimRun      one truck, one run
    fleet.write_fleet(name, n_trucks, seed, out)   one bundle per truck
    live.LiveSource                                feed a running agent in real time
"""

from firmware_sim.run import SimRun, simulate
from firmware_sim.scenarios import SCENARIOS

__all__ = ["SCENARIOS", "SimRun", "simulate"]
