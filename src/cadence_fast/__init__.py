"""cadence-fast: a Cadence-compatible workflow server (gRPC API v1) in Python."""

__version__ = "0.1.0"
