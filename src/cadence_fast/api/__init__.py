"""The frontend: one servicer per gRPC service. Validation, error mapping, routing; no state."""
