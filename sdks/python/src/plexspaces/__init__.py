"""PlexSpaces actors in Python.

```python
from plexspaces import actor, state, handler

@actor
class CounterActor:
    count: int = state(default=0)

    @handler("increment")
    def increment(self, amount: int = 1) -> dict:
        self.count += amount
        return {"count": self.count}
```

Build with `plexspaces-py build counter.py -o counter.wasm`, deploy to a node, invoke over
HTTP or gRPC. `plexspaces.testing` runs the same class under plain CPython.
"""

from . import host
from ._model import (
    BuildError,
    actor,
    event_actor,
    fsm_actor,
    handler,
    query_handler,
    run_handler,
    signal_handler,
    state,
    workflow_actor,
)
from .host import HostError

__version__ = "0.1.0"

# The version of wit/plexspaces.wit this SDK builds against.
WORLD_VERSION = "0.1.0"

__all__ = [
    "BuildError",
    "HostError",
    "WORLD_VERSION",
    "actor",
    "event_actor",
    "fsm_actor",
    "handler",
    "host",
    "query_handler",
    "run_handler",
    "signal_handler",
    "state",
    "workflow_actor",
]
