"""Every SQL query of the leads service, one module per aggregate, on kit's Repository base."""

# Registers the flush hook that keeps the rep load counters with every change of a lead's owner/status.
from services.leads.repositories import rep_loads as rep_loads
