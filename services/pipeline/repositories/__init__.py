"""Every SQL query of the pipeline service, one module per aggregate (tables in store.py)."""
