"""Pure rules of the knowledge service: no gRPC, SQLAlchemy, Redis or Temporal here."""
