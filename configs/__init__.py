"""Presets as data (YAML), installed as ``ivus_sim.configs``; load with :func:`ivus_sim.config.load_preset`."""
