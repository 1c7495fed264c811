"""Pure rules of the leads service: no gRPC, SQLAlchemy, Redis or Temporal here."""
