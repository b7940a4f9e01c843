"""Lever: Python tooling for the Lever perpetuals protocol."""

__version__ = "0.1.0"
