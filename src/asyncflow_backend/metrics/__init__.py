"""Collectors that record a run as it goes, and the analyser that turns them into results."""
