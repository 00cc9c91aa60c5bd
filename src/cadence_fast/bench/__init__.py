"""`cadence-fast bench`: a load generator for any Cadence gRPC API v1 frontend."""
