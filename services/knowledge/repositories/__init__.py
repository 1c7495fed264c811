"""Every SQL query of the knowledge service, one module per aggregate."""
