"""Visibility: list / count / scan with Cadence's query language."""
