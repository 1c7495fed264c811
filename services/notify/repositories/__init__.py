"""Every SQL query of notify's API, one module per aggregate, on kit's Repository base."""
