"""Pure rules of the notify service: no gRPC, SQLAlchemy, Redis or Temporal here."""
