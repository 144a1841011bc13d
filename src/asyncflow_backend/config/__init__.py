"""Settings (environment variables) and the constants of the scenario language."""
