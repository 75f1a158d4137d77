"""The ``ivus-sim`` command line: a thin typer shell over the library (installed as ``ivus_sim.cli``)."""
