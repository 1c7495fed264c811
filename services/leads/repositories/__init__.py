"""Every SQL query of the leads service, one module per aggregate, on kit's Repository base."""
