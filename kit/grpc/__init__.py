"""gRPC plumbing: server bootstrap, interceptors, error mapping, health, clients."""
