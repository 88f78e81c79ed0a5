"""Benchmarks that print figures (never timed unit tests). Run them with `python -m bench`."""
