"""Pure rules of the integration service: no gRPC, SQLAlchemy, Redis or Temporal here."""
