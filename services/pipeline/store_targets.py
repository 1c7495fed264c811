"""Tables of the pipeline service: targets, their cascade and weekly calibrations.

They register on the service's one metadata (`store.Base`), so migrations and
the runtime see them; `store` imports this module at its end.
"""

from __future__ import annotations
