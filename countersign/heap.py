"""A long-running process's heap, settled once it has started.

CPython's cyclic collector walks every object it tracks in a full collection. A worker or
API process holds about 300,000 objects from its imports alone (SQLAlchemy, pydantic,
Temporal, the rule set), and a full collection of them took about 155 ms on the 2-core
machine this was written on: a pause landing on whichever request or router round was
running (it was the whole of the router's p99 in `bench/routing.py`). Objects made while
starting live as long as the process, so they are moved out of the collector's reach
(`gc.freeze`); what the process makes afterwards is collected as before.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect what starting left behind, then keep the rest out of later collections.
    Call once, when the process has imported and built what it lives with."""
    gc.collect()
    gc.freeze()
