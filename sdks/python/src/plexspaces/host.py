"""What an actor may ask of the node while it handles a message.

`from plexspaces import host`, then `host.tell(...)`, `host.ask(...)`, `host.get_actor_id()`,
`host.log(...)`, `host.now()` and `host.random()`. Inside a node the calls go to the host
through the WIT world; under `plexspaces.testing` they go to an in-memory host.
"""

from __future__ import annotations

import json
from typing import Any

DEFAULT_ASK_TIMEOUT_MS = 30_000

LEVELS = ("trace", "debug", "info", "warn", "error")


class HostError(Exception):
    """A host call that failed: `.code` (stable: `not_found`, `timeout`, `actor_error`, ...),
    `.message`, and `.error_type`, the exception the remote actor raised when it raised one."""

    def __init__(self, code: str, message: str, error_type: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.error_type = error_type


class _NoHost:
    def __getattr__(self, name: str) -> Any:
        raise HostError(
            "unavailable",
            "no host here: actors run inside a node, or under plexspaces.testing",
        )


# Set by the WebAssembly entry point or by plexspaces.testing.
backend: Any = _NoHost()


def _payload(payload: Any) -> str:
    if payload is None:
        return "{}"
    if isinstance(payload, str):
        return payload
    if not isinstance(payload, dict):
        raise HostError("invalid_arguments", "a payload is a dict (or JSON text of an object)")
    try:
        return json.dumps(payload, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise HostError("invalid_arguments", f"the payload is not JSON-serializable: {error}") from None


def tell(target: str, action: str, payload: Any = None) -> None:
    """Delivers `{"action": action, **payload}` to `target` (`type`, `type/key` or
    `namespace/type/key`) without waiting. Raises HostError (`not_found` for a type that is
    not deployed)."""
    backend.tell(target, action, _payload(payload))


def ask(target: str, action: str, payload: Any = None, timeout_ms: int = DEFAULT_ASK_TIMEOUT_MS) -> Any:
    """Sends like `tell` and returns the reply's JSON value (or None). Raises HostError on a
    timeout, an error of the target or an unknown target."""
    if not isinstance(timeout_ms, int) or timeout_ms < 0:
        raise HostError("invalid_arguments", "timeout_ms must be a non-negative integer")
    reply = backend.ask(target, action, _payload(payload), timeout_ms)
    if reply is None or reply == "":
        return None
    return json.loads(reply)


def get_actor_id() -> str:
    """The calling actor, as `namespace/type/key`."""
    return backend.actor_id()


def log(message: Any, level: str = "info") -> None:
    """A line in the node log and the type's log buffer, tagged with this actor."""
    if level not in LEVELS:
        raise HostError("invalid_arguments", f"level must be one of {', '.join(LEVELS)}")
    backend.log(level, str(message))


def now() -> float:
    """Wall-clock time in seconds since the Unix epoch (as `time.time()`)."""
    return backend.now_ms() / 1000.0


def random() -> float:
    """A random float in [0, 1)."""
    return (backend.random_u64() >> 11) * (1.0 / (1 << 53))
