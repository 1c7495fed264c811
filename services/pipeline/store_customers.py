"""Tables of the pipeline service: customers, contacts, finance facts and reconciliation issues.

They register on the service's one metadata (`store.Base`), so migrations and
the runtime see them; `store` imports this module at its end.
"""

from __future__ import annotations
