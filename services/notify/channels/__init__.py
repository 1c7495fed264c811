"""Channel adapters: one interface, one real protocol client per external provider."""
