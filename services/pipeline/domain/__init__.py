"""Pure rules of the pipeline service: no gRPC, SQLAlchemy, Redis or Temporal here."""
