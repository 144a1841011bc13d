"""Scenario builders shared by every test folder.

Each builder returns a new object on every call, so a test may edit what it
gets without touching another test's scenario. `documents` builds the parts
of the scenario language as plain dicts (the YAML shape); `topologies`
assembles them into the routes the tests run again and again.
"""
