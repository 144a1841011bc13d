"""The engine: actors wired on a SimPy environment, and the runner that drives them."""
