"""Domains: the registry and the in-process cache."""
