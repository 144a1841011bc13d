"""Policies: small objects with named hooks that a sender consults, built only for the
scenarios that ask for them."""
