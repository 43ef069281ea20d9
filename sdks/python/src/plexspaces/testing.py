"""Run actors under plain CPython, with an in-memory host: unit tests without building wasm.

```python
from plexspaces.testing import TestHost
from counter_actor import CounterActor

node = TestHost()
node.register("counter", CounterActor)
counter = node.actor("counter", "c1")
assert counter.call("increment", amount=5) == {"count": 5}
assert counter.state == {"count": 5}
```

Messages go through the same dispatch the node runs (`plexspaces._dispatch`), and state is
stored as JSON bytes between messages exactly as the node stores it, so a state that is not
JSON-serializable fails here as it would there. Tells are queued and delivered after the
handler that sent them returns; asks run the target at once (an ask back to an actor that is
waiting is an ask cycle, `timeout`, as a node reports it after the timeout). `on_ask` and
`on_tell` stand in for actors the test does not run.

The tuple space matches as the node's does, one space per namespace. Nothing else runs while a
handler waits, so a `ts_read` or `ts_take` with a timeout answers at once; leases end when the
test moves `now_ms` past them; `ts_take_later` delivers its tuple as a queued tell. Locks
grant increasing versions and end their leases as `now_ms` moves; an acquire that would wait
answers at once. KV entries expire as `now_ms` moves (`node.kv()` shows a namespace's). A
group publish queues one `pg_message` per member; a member without a `pg_message` handler
drops it and `node.dropped_pg_messages` counts it. Channels keep the node's rules (capacity,
receipts, visibility timeouts as `now_ms` moves); a send to a full channel fails at once with
`channel_full`, since nothing could make room while it waits. Consumers get their messages, one
at a time, once the queued tells are delivered: a handler that raises gives its message back
(delivered again once `now_ms` passes the backoff). `node.channel_send` sends from outside and
`node.channels()` shows each channel's queues.

The service registry and the blob store keep the node's rules too: the same name, key,
metadata, time-to-live and limit checks with the same error codes. A registration is gone
once `now_ms` reaches its `expires_at_ms` (`node.registry()` shows a namespace's live ones).
Blobs (`node.blobs()` shows a namespace's, `node.blob_put` stores one from outside) get an etag
per write, and a guest call moves at most 8 MiB. `host.blobs.presign` signs URLs with
HMAC-SHA256 under a secret of this TestHost, on `base_url` (default "http://127.0.0.1:8080")
for the tenant `tenant` (default "default"); `node.open_presigned(url, method, data,
content_type)` serves one as the node does: the signature first (`signature_invalid`), then
the expiry by `now_ms` (`url_expired`), then the blob (`not_found`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random as _random
import re
import secrets
import unicodedata
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from . import host as _host
from ._dispatch import BYTES, FRESH, ClassRuntime, Failure
from ._model import classes_of

HostError = _host.HostError


def _snake_case(name: str) -> str:
    out = []
    for at, char in enumerate(name):
        if char.isupper():
            previous = name[at - 1] if at else ""
            following = name[at + 1] if at + 1 < len(name) else ""
            if previous and (previous.islower() or previous.isdigit() or (previous.isupper() and following.islower())):
                out.append("_")
            out.append(char.lower())
        else:
            out.append(char)
    return "".join(out)


@dataclass
class Told:
    """A tell an actor sent."""

    sender: str
    target: str
    action: str
    payload: dict[str, Any]
    error: HostError | None = None


_KINDS = {
    "string": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _canonical(value: Any) -> str:
    # JSON's own equality: 1 is not 1.0 nor true; object keys in any order.
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _parse_array(text: str, what: str) -> list[Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise HostError("invalid_arguments", f"the {what} is not JSON: {error}") from None
    if not isinstance(value, list):
        raise HostError("invalid_arguments", f"a {what} is a JSON array")
    if not value:
        raise HostError("invalid_arguments", f"a {what} needs at least one field")
    if len(value) > 64:
        raise HostError("invalid_arguments", f"a {what} has at most 64 fields, not {len(value)}")
    return value


def _field_matcher(field: Any) -> Callable[[Any], bool]:
    if field is None:
        return lambda value: True
    if isinstance(field, dict) and len(field) == 1 and "$type" in field:
        kind = _KINDS.get(field["$type"])
        if kind is None:
            raise HostError(
                "invalid_arguments",
                f"unknown $type {field['$type']!r} in the pattern (known: {', '.join(_KINDS)})",
            )
        return kind
    exact = _canonical(field)
    return lambda value: _canonical(value) == exact


class _Space:
    """One namespace's tuples, oldest first."""

    def __init__(self) -> None:
        self.tuples: list[tuple[list[Any], int | None]] = []
        self.later: list[tuple[Callable[[list[Any]], bool], tuple[str, str, str], str]] = []

    @staticmethod
    def matcher(pattern: str) -> Callable[[list[Any]], bool]:
        fields = [_field_matcher(field) for field in _parse_array(pattern, "pattern")]
        return lambda tuple_: len(tuple_) == len(fields) and all(f(v) for f, v in zip(fields, tuple_))

    def live(self, now_ms: int) -> list[tuple[list[Any], int | None]]:
        self.tuples = [(t, expires) for t, expires in self.tuples if expires is None or expires > now_ms]
        return self.tuples


@dataclass
class _Actor:
    runtime: ClassRuntime
    state: bytes | None = None


@dataclass
class TestHost:
    """An in-memory node for one tenant."""

    __test__ = False  # not a pytest test class

    namespace: str = "default"
    now_ms: int = 1_700_000_000_000
    seed: int = 0
    told: list[Told] = field(default_factory=list)
    logs: list[tuple[str, str, str]] = field(default_factory=list)
    tenant: str = "default"
    base_url: str = "http://127.0.0.1:8080"

    def __post_init__(self) -> None:
        self._types: dict[tuple[str, str], ClassRuntime] = {}
        self._actors: dict[tuple[str, str, str], _Actor] = {}
        self._asks: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {}
        self._tells: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {}
        self._queue: deque[tuple[str, tuple[str, str, str], str, dict[str, Any]]] = deque()
        self._serving: list[tuple[str, str, str]] = []
        self._random = _random.Random(self.seed)
        self._spaces: dict[str, _Space] = {}
        self._locks: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock_versions = 0
        self._kv: dict[tuple[str, str], tuple[str, int | None]] = {}
        self._groups: dict[tuple[str, str], dict[str, set[str] | None]] = {}
        self.dropped_pg_messages = 0
        self._channels: dict[tuple[str, str], _Channel] = {}
        # Durable workflows: signals not yet taken by a run, and what runs recorded.
        self._pending: dict[tuple[str, str, str], list[str]] = {}
        self.steps: list[tuple[str, str, Any]] = []
        self.committed: dict[str, Any] = {}
        # Timers set and not yet fired: (id, actor, action, payload, due_ms, durable).
        self.timers: list[tuple[str, str, str, dict[str, Any], int, bool]] = []
        self._timer_ids = 0
        # The registry: (namespace, service) -> instance -> registration (metadata as a dict).
        self._registry: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        # Blobs: (namespace, key) -> _Blob; the presign secret is this TestHost's own.
        self._blobs: dict[tuple[str, str], _Blob] = {}
        self._blob_writes = 0
        self._presign_secret = secrets.token_bytes(32)

    # Setting up ----------------------------------------------------------------------------
    def register(self, actor_type: str, cls: type, namespace: str | None = None) -> None:
        """Serves the actor class `cls` as `actor_type`."""
        spec = getattr(cls, "__plexspaces__", None)
        if spec is None:
            raise TypeError(f"{cls.__name__} is not an actor class (decorate it with @actor)")
        self._types[(namespace or self.namespace, actor_type)] = ClassRuntime(spec)

    def register_module(self, actor_type: str, module: Any, namespace: str | None = None) -> list[str]:
        """Serves every actor class of a module as the node would deploy it: one class as
        `actor_type`, several as `actor_type.<snake_case class name>`. Returns the types."""
        classes = classes_of(module.__name__)
        if not classes:
            raise TypeError(f"module {module.__name__} defines no actor class")
        names = [actor_type] if len(classes) == 1 else [
            f"{actor_type}.{_snake_case(cls.__name__)}" for cls in classes
        ]
        for name, cls in zip(names, classes):
            self.register(name, cls, namespace)
        return names

    def on_ask(self, target: str, action: str, reply: Callable[[dict[str, Any]], Any]) -> None:
        """Answers asks of `action` to `target` (as the actor sends it) with `reply(payload)`."""
        self._asks[(target, action)] = reply

    def on_tell(self, target: str, action: str, receive: Callable[[dict[str, Any]], Any]) -> None:
        """Receives tells of `action` to `target` with `receive(payload)`."""
        self._tells[(target, action)] = receive

    def actor(self, actor_type: str, key: str = "default", namespace: str | None = None) -> "ActorHandle":
        """The actor `key` of `actor_type`."""
        address = (namespace or self.namespace, actor_type, key)
        self._runtime(address)
        return ActorHandle(self, address)

    # Messaging -----------------------------------------------------------------------------
    def _runtime(self, address: tuple[str, str, str]) -> ClassRuntime:
        runtime = self._types.get((address[0], address[1]))
        if runtime is None:
            raise HostError("not_found", f"actor type {address[1]!r} is not deployed in namespace {address[0]!r}")
        return runtime

    def _resolve(self, target: str) -> tuple[str, str, str]:
        parts = target.split("/")
        if len(parts) == 1:
            return (self._current()[0], parts[0], "default")
        if len(parts) == 2:
            return (self._current()[0], parts[0], parts[1])
        if len(parts) == 3:
            return (parts[0], parts[1], parts[2])
        raise HostError("invalid_arguments", f"a target is type, type/key or namespace/type/key, not {target!r}")

    def _current(self) -> tuple[str, str, str]:
        return self._serving[-1] if self._serving else (self.namespace, "", "")

    def deliver(self, address: tuple[str, str, str], action: str, payload: dict[str, Any]) -> Any:
        """Handles one message now and returns the reply; raises HostError on failure."""
        if address in self._serving:
            raise HostError("timeout", f"ask cycle: {'/'.join(address)} is waiting for this reply")
        runtime = self._runtime(address)
        actor = self._actors.setdefault(address, _Actor(runtime))
        body = json.dumps({"action": action, **payload}).encode()
        if runtime.spec.behavior == "workflow" and runtime.durable and action != "run":
            kinds = {spec.kind for spec in runtime.handlers.get(action, [])}
            if "query" not in kinds:
                # A signal: kept until the run takes it, as the node journals and buffers it.
                self._pending.setdefault(address, []).append(body.decode())
                return None
        kind = FRESH if actor.state is None else BYTES
        self._serving.append(address)
        try:
            obj = runtime.new() if kind == FRESH else runtime.restore(actor.state or b"{}")
            message = json.loads(body)
            try:
                reply, changed = runtime.dispatch(obj, action, message)
            except Failure:
                raise
            except _host.Suspended as waiting:
                raise Failure("suspended", str(waiting)) from None
            except BaseException as error:  # noqa: BLE001 - as the guest does
                raise Failure("actor_error", str(error) or repr(error), type(error).__name__) from None
            encoded = json.dumps(reply)
            if changed:
                actor.state = runtime.snapshot(obj)
        except Failure as failure:
            raise HostError(failure.code, failure.message, failure.error_type) from None
        finally:
            self._serving.pop()
        return json.loads(encoded)

    def run_until_idle(self) -> None:
        """Delivers the queued tells, and those they send, and the messages of channels to
        their consumers, until none is left."""
        if self._serving:
            return
        with _Installed(self):
            while self._queue or self._pump_channels():
                if not self._queue:
                    continue
                sender, address, action, payload = self._queue.popleft()
                runtime = self._types.get((address[0], address[1]))
                if action == "pg_message" and runtime is not None and action not in runtime.handlers:
                    self.dropped_pg_messages += 1
                    continue
                try:
                    self.deliver(address, action, payload)
                except HostError as error:
                    self.logs.append(("/".join(address), "warn", f"tell from {sender} failed: {error}"))

    def fire_timers(self) -> int:
        """Delivers every timer set so far, soonest first (the clock moves to each one's due
        time); returns how many fired."""
        fired = 0
        while self.timers:
            self.timers.sort(key=lambda timer: timer[4])
            _, actor, action, payload, due_ms, _ = self.timers.pop(0)
            self.now_ms = max(self.now_ms, due_ms)
            namespace, actor_type, key = actor.split("/")
            self._queue.append(("timer", (namespace, actor_type, key), action, payload))
            self.run_until_idle()
            fired += 1
        return fired

    # The backend of plexspaces.host ---------------------------------------------------------
    def wf_step_begin(self, name: str) -> str | None:
        return None  # nothing is replayed here: every run runs its steps

    def wf_step_end(self, name: str, result: str) -> None:
        self.steps.append(("/".join(self._current()), name, json.loads(result)))

    def wf_sleep(self, ms: int) -> None:
        self.now_ms += ms  # the test's clock moves on; nothing waits

    def wf_wait_signal(self, name: str, timeout_ms: int) -> bool:
        pending = self._pending.get(self._current(), [])
        if any(json.loads(text).get("action") == name for text in pending):
            return True
        self.now_ms += timeout_ms  # nothing can arrive while a test's run runs: it times out
        return False

    def wf_take_signals(self) -> list[str]:
        return self._pending.pop(self._current(), [])

    def wf_commit(self, state: bytes) -> None:
        self.committed["/".join(self._current())] = json.loads(state)

    def wf_idempotency_key(self) -> str:
        return f"{'/'.join(self._current())}:{len(self.steps)}"

    def timer_schedule(self, action: str, payload: str, delay_ms: int, durable: bool) -> str:
        self._timer_ids += 1
        timer_id = f"timer-{self._timer_ids}"
        body = json.loads(payload)
        actor = "/".join(self._current())
        self.timers.append((timer_id, actor, action, body, self.now_ms + delay_ms, durable))
        return timer_id

    def timer_cancel(self, timer_id: str) -> bool:
        before = len(self.timers)
        self.timers = [timer for timer in self.timers if timer[0] != timer_id]
        return len(self.timers) < before

    def actor_id(self) -> str:
        return "/".join(self._current())

    def tell(self, target: str, action: str, payload: str) -> None:
        body = json.loads(payload)
        sender = self.actor_id()
        told = Told(sender, target, action, body)
        self.told.append(told)
        stand_in = self._tells.get((target, action))
        if stand_in is not None:
            stand_in(body)
            return
        address = self._resolve(target)
        try:
            self._runtime(address)
        except HostError as error:
            told.error = error
            raise
        self._queue.append((sender, address, action, body))

    def ask(self, target: str, action: str, payload: str, timeout_ms: int) -> str:
        body = json.loads(payload)
        stand_in = self._asks.get((target, action))
        if stand_in is not None:
            return json.dumps(stand_in(body))
        return json.dumps(self.deliver(self._resolve(target), action, body))

    def log(self, level: str, message: str) -> None:
        self.logs.append((self.actor_id(), level, message))

    def random_u64(self) -> int:
        return self._random.getrandbits(64)

    def _space(self) -> _Space:
        return self._spaces.setdefault(self._current()[0], _Space())

    def tuples(self, namespace: str | None = None) -> list[list[Any]]:
        """The tuples of a namespace's space, oldest first (for assertions)."""
        space = self._spaces.get(namespace or self.namespace)
        return [] if space is None else [list(t) for t, _ in space.live(self.now_ms)]

    def ts_write(self, tuple_: str, lease_ms: int) -> None:
        fields = _parse_array(tuple_, "tuple")
        space = self._space()
        for at, (matches, address, action) in enumerate(space.later):
            if matches(fields):
                del space.later[at]
                self._queue.append((self.actor_id(), address, action, {"tuple": fields}))
                return
        space.tuples.append((fields, self.now_ms + lease_ms if lease_ms > 0 else None))

    def _find(self, pattern: str, take: bool) -> str | None:
        matches = _Space.matcher(pattern)
        space = self._space()
        for at, (tuple_, _) in enumerate(space.live(self.now_ms)):
            if matches(tuple_):
                if take:
                    del space.tuples[at]
                return json.dumps(tuple_, separators=(",", ":"))
        return None

    def ts_read(self, pattern: str, timeout_ms: int) -> str | None:
        return self._find(pattern, take=False)

    def ts_take(self, pattern: str, timeout_ms: int) -> str | None:
        return self._find(pattern, take=True)

    def ts_count(self, pattern: str) -> int:
        matches = _Space.matcher(pattern)
        return sum(1 for tuple_, _ in self._space().live(self.now_ms) if matches(tuple_))

    def ts_scan(self, pattern: str, limit: int) -> list[str]:
        matches = _Space.matcher(pattern)
        found = [t for t, _ in self._space().live(self.now_ms) if matches(t)]
        return [json.dumps(t, separators=(",", ":")) for t in found[: limit or 10_000]]

    def _lock_key(self, namespace: str, name: str) -> tuple[str, str]:
        if not name or len(name) > 256:
            raise HostError("invalid_arguments", "a lock name is 1 to 256 characters")
        return (namespace or self._current()[0], name)

    def _held(self, key: tuple[str, str]) -> dict[str, Any] | None:
        grant = self._locks.get(key)
        if grant is not None and grant["expires_at_ms"] <= self.now_ms:
            del self._locks[key]
            return None
        return grant

    def lock_acquire(
        self, namespace: str, name: str, holder: str, metadata: str, lease_ms: int, timeout_ms: int
    ) -> dict[str, Any] | None:
        key = self._lock_key(namespace, name)
        holder = holder or self.actor_id()
        held = self._held(key)
        if held is not None and held["holder"] != holder:
            return None
        if held is None:
            self._lock_versions += 1
            version = self._lock_versions
        else:
            version = held["version"]
        grant = {"version": version, "holder": holder, "metadata": metadata, "expires_at_ms": self.now_ms + lease_ms}
        self._locks[key] = grant
        return dict(grant)

    def lock_renew(self, namespace: str, name: str, holder: str, version: int, lease_ms: int) -> dict[str, Any]:
        key = self._lock_key(namespace, name)
        held = self._held(key)
        holder = holder or self.actor_id()
        if held is None or held["version"] != version or held["holder"] != holder:
            raise HostError("invalid_state", f"lock {name!r} is not held by {holder} with version {version}: acquire it again")
        held["expires_at_ms"] = self.now_ms + lease_ms
        return dict(held)

    def lock_release(self, namespace: str, name: str, version: int) -> bool:
        key = self._lock_key(namespace, name)
        held = self._held(key)
        if held is None or held["version"] != version:
            return False
        del self._locks[key]
        return True

    def ts_take_later(self, pattern: str, action: str) -> None:
        found = self._find(pattern, take=True)
        me = self._current()
        if found is not None:
            self._queue.append((self.actor_id(), me, action, {"tuple": json.loads(found)}))
        else:
            self._space().later.append((_Space.matcher(pattern), me, action))

    # KV ----------------------------------------------------------------------------------
    def _kv_key(self, key: str) -> tuple[str, str]:
        if not key or len(key) > 256:
            raise HostError("invalid_arguments", "a key is 1 to 256 characters")
        return (self._current()[0], key)

    def _kv_live(self, key: tuple[str, str]) -> str | None:
        found = self._kv.get(key)
        if found is None:
            return None
        if found[1] is not None and found[1] <= self.now_ms:
            del self._kv[key]
            return None
        return found[0]

    def _kv_store(self, key: tuple[str, str], value: str, ttl_ms: int) -> None:
        if len(value.encode()) > 1 << 20:
            raise HostError("invalid_arguments", "a value is at most 1 MiB")
        self._kv[key] = (value, self.now_ms + ttl_ms if ttl_ms > 0 else None)

    def kv(self, namespace: str | None = None) -> dict[str, str]:
        """The live entries of a namespace's KV store (for assertions)."""
        namespace = namespace or self.namespace
        keys = [key for key in self._kv if key[0] == namespace]
        return {key[1]: value for key in sorted(keys) if (value := self._kv_live(key)) is not None}

    def kv_get(self, key: str) -> str | None:
        return self._kv_live(self._kv_key(key))

    def kv_put(self, key: str, value: str, ttl_ms: int) -> None:
        self._kv_store(self._kv_key(key), value, ttl_ms)

    def kv_delete(self, key: str) -> bool:
        full = self._kv_key(key)
        found = self._kv_live(full) is not None
        self._kv.pop(full, None)
        return found

    def kv_list(self, prefix: str, after: str, limit: int) -> list[tuple[str, str]]:
        namespace = self._current()[0]
        keys = sorted(k for ns, k in self._kv if ns == namespace and k.startswith(prefix) and (not after or k > after))
        found = [(k, v) for k in keys if (v := self._kv_live((namespace, k))) is not None]
        return found[: limit or 100]

    def kv_cas(self, key: str, expected: str | None, value: str | None, ttl_ms: int) -> bool:
        full = self._kv_key(key)
        if self._kv_live(full) != expected:
            return False
        if value is None:
            self._kv.pop(full, None)
        else:
            self._kv_store(full, value, ttl_ms)
        return True

    # Process groups ----------------------------------------------------------------------
    def _member(self, member: str) -> str:
        return "/".join(self._resolve(member)) if member else self.actor_id()

    def pg_join(self, group: str, member: str, topic: str | None) -> bool:
        members = self._groups.setdefault((self._current()[0], group), {})
        member = self._member(member)
        topics = members.get(member, set())
        if member in members and topics is None:
            return False
        if topic is None:
            members[member] = None
            return True
        assert topics is not None
        if topic in topics:
            return False
        members[member] = topics | {topic}
        return True

    def pg_leave(self, group: str, member: str, topic: str | None) -> bool:
        members = self._groups.get((self._current()[0], group), {})
        member = self._member(member)
        if member not in members:
            return False
        topics = members[member]
        if topic is None:
            del members[member]
            return True
        if topics is None or topic not in topics:
            return False
        topics.discard(topic)
        if not topics:
            del members[member]
        return True

    def pg_members(self, group: str) -> list[str]:
        return sorted(self._groups.get((self._current()[0], group), {}))

    def pg_publish(self, group: str, topic: str | None, data: str) -> int:
        members = self._groups.get((self._current()[0], group), {})
        body = {"group": group, "topic": topic, "data": json.loads(data), "publisher": self.actor_id()}
        sent = 0
        for member in sorted(members):
            topics = members[member]
            if topics is None or (topic is not None and topic in topics):
                namespace, actor_type, key = member.split("/", 2)
                self._queue.append((self.actor_id(), (namespace, actor_type, key), "pg_message", dict(body)))
                sent += 1
        return sent

    # Channels ----------------------------------------------------------------------------------
    def _channel(self, name: str, namespace: str | None = None) -> "_Channel":
        scope = namespace or self._current()[0]
        channel = self._channels.get((scope, name))
        if channel is None:
            raise HostError("not_found", f"no channel {name!r} in {scope}: create it first")
        return channel

    def channels(self, namespace: str | None = None) -> dict[str, dict[str, Any]]:
        """The channels of a namespace: for each, its kind, whether it is closed, and per queue
        (`""` for a queue's own, else the subscription) how many messages are ready, in flight,
        acknowledged and delivered again."""
        scope = namespace or self.namespace
        return {
            name: channel.stats(self.now_ms)
            for (owner, name), channel in sorted(self._channels.items())
            if owner == scope
        }

    def channel_send(self, name: str, data: Any, namespace: str | None = None) -> int:
        """Sends `data` to a channel from outside any actor (as a client does over HTTP or
        gRPC), then delivers what follows."""
        sent = self._channel(name, namespace or self.namespace).send(name, json.dumps(data), self.now_ms)
        self.run_until_idle()
        return sent

    def ch_create(self, name: str, kind: str, capacity: int, visibility_ms: int) -> bool:
        key = (self._current()[0], name)
        config = (kind, capacity or 10_000, visibility_ms or 30_000)
        existing = self._channels.get(key)
        if existing is not None:
            if existing.config == config:
                return False
            raise HostError("already_exists", f"channel {name!r} exists with another config: {existing.config}")
        self._channels[key] = _Channel(config)
        return True

    def ch_send(self, name: str, data: str, timeout_ms: int) -> int:
        # Nothing else runs while a handler waits: a full channel refuses at once.
        return self._channel(name).send(name, data, self.now_ms)

    def ch_receive(self, name: str, subscription: str, max: int, timeout_ms: int) -> list[tuple[str, str, int]]:
        return self._channel(name).receive(name, subscription, max or 1, self.now_ms)

    def ch_ack(self, name: str, receipt: str) -> bool:
        return self._channel(name).settle(name, receipt, None, self.now_ms)

    def ch_nack(self, name: str, receipt: str, delay_ms: int) -> bool:
        return self._channel(name).settle(name, receipt, delay_ms, self.now_ms)

    def ch_subscribe(self, topic: str, subscription: str) -> bool:
        channel = self._channel(topic)
        if channel.config[0] != "topic":
            raise HostError("invalid_arguments", f"{topic!r} is a queue: only topics have subscriptions")
        if subscription in channel.queues:
            return False
        channel.queues[subscription] = _ChannelQueue()
        return True

    def ch_unsubscribe(self, topic: str, subscription: str) -> bool:
        channel = self._channel(topic)
        if channel.config[0] != "topic":
            raise HostError("invalid_arguments", f"{topic!r} is a queue: only topics have subscriptions")
        channel.consumers = {actor: c for actor, c in channel.consumers.items() if c[0] != subscription}
        return channel.queues.pop(subscription, None) is not None

    def ch_consume(self, name: str, subscription: str, action: str) -> bool:
        channel = self._channel(name)
        if subscription:
            self.ch_subscribe(name, subscription)
        channel.queue(name, subscription)
        actor = self.actor_id()
        added = actor not in channel.consumers
        channel.consumers[actor] = (subscription, action)
        return added

    def ch_stop_consuming(self, name: str) -> bool:
        return self._channel(name).consumers.pop(self.actor_id(), None) is not None

    def ch_close(self, name: str) -> bool:
        channel = self._channel(name)
        was = channel.closed
        channel.closed = True
        return not was

    def _pump_channels(self) -> bool:
        """Hands each consumer one ready message; True when any was handed."""
        moved = False
        for (namespace, name), channel in list(self._channels.items()):
            for actor, (subscription, action) in list(channel.consumers.items()):
                got = channel.receive(name, subscription, 1, self.now_ms)
                for receipt, data, attempt in got:
                    moved = True
                    payload = {
                        "channel": name,
                        "subscription": subscription or None,
                        "data": json.loads(data),
                        "receipt": receipt,
                        "attempt": attempt,
                    }
                    address = tuple(actor.split("/", 2))
                    try:
                        self.deliver(address, action, payload)  # type: ignore[arg-type]
                    except HostError as error:
                        self.logs.append((actor, "warn", f"channel {name!r} message given back: {error}"))
                        channel.settle(name, receipt, 100 * 2 ** min(attempt - 1, 8), self.now_ms)
                    else:
                        channel.settle(name, receipt, None, self.now_ms)
        return moved

    # The service registry ------------------------------------------------------------------
    def _live_instances(self, namespace: str, service: str) -> dict[str, dict[str, Any]]:
        """The live instances of a service; drops the expired ones."""
        instances = self._registry.get((namespace, service))
        if instances is None:
            return {}
        for instance in [i for i, r in instances.items() if r["expires_at_ms"] <= self.now_ms]:
            del instances[instance]
        if not instances:
            del self._registry[(namespace, service)]
            return {}
        return instances

    def _instance(self, instance: str) -> str:
        return _check_instance(instance or self.actor_id())

    def registry(self, namespace: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """The live registrations of a namespace (for assertions): per service in name order,
        its instances in instance order, each as `host.registry.lookup` returns them."""
        scope = namespace or self.namespace
        services = sorted(service for owner, service in list(self._registry) if owner == scope)
        found = {}
        for service in services:
            instances = self._live_instances(scope, service)
            if instances:
                found[service] = [_registration_out(instances[i]) for i in sorted(instances)]
        return found

    def reg_register(self, service: str, instance: str, metadata: str, ttl_ms: int) -> dict[str, Any]:
        _check_service(service)
        instance = self._instance(instance)
        ttl_ms = _registry_ttl(ttl_ms)
        parsed = _registry_metadata(metadata)
        namespace = self._current()[0]
        live = self._live_instances(namespace, service).get(instance)
        registration = {
            "service": service,
            "instance": instance,
            "metadata": parsed,
            "ttl_ms": ttl_ms,
            "registered_at_ms": self.now_ms if live is None else live["registered_at_ms"],
            "expires_at_ms": self.now_ms + ttl_ms,
        }
        self._registry.setdefault((namespace, service), {})[instance] = registration
        return _registration_text(registration)

    def reg_heartbeat(self, service: str, instance: str, ttl_ms: int) -> dict[str, Any]:
        _check_service(service)
        instance = self._instance(instance)
        if ttl_ms > 0:
            _registry_ttl(ttl_ms)
        live = self._live_instances(self._current()[0], service).get(instance)
        if live is None:
            raise HostError(
                "not_found",
                f"service {service!r} has no instance {instance!r}: it expired or was never registered; register it again",
            )
        if ttl_ms > 0:
            live["ttl_ms"] = ttl_ms
        live["expires_at_ms"] = self.now_ms + live["ttl_ms"]
        return _registration_text(live)

    def reg_deregister(self, service: str, instance: str) -> bool:
        _check_service(service)
        instance = self._instance(instance)
        namespace = self._current()[0]
        instances = self._live_instances(namespace, service)
        if instance not in instances:
            return False
        del instances[instance]
        if not instances:
            del self._registry[(namespace, service)]
        return True

    def reg_lookup(self, service: str) -> list[dict[str, Any]]:
        _check_service(service)
        instances = self._live_instances(self._current()[0], service)
        return [_registration_text(instances[i]) for i in sorted(instances)[:_MAX_LOOKUP]]

    def reg_list(self, prefix: str, after: str, limit: int) -> list[tuple[str, int]]:
        if len(prefix) > _MAX_SERVICE or not _SERVICE_CHARS.fullmatch(prefix):
            raise HostError(
                "invalid_arguments",
                f"a service prefix is at most {_MAX_SERVICE} of the characters of service names, not {prefix!r}",
            )
        limit = _page_limit(limit, "services")
        namespace = self._current()[0]
        found = []
        for owner, service in sorted(self._registry):
            if owner != namespace or not service.startswith(prefix) or (after and service <= after):
                continue
            instances = self._live_instances(namespace, service)
            if instances:
                found.append((service, len(instances)))
                if len(found) == limit:
                    break
        return found

    # Blobs -----------------------------------------------------------------------------------
    def _write_blob(self, namespace: str, key: str, data: bytes, content_type: str) -> dict[str, Any]:
        self._blob_writes += 1
        etag = f"{hashlib.sha256(data).hexdigest()[:16]}-{self._blob_writes}"
        blob = _Blob(bytes(data), _content_type(content_type), self.now_ms, etag)
        self._blobs[(namespace, key)] = blob
        return blob.info(key)

    def blobs(self, namespace: str | None = None) -> dict[str, bytes]:
        """The blobs of a namespace (for assertions): key -> bytes, in key order. Their info:
        `node.blob_info(key)`."""
        scope = namespace or self.namespace
        return {key: blob.data for (owner, key), blob in sorted(self._blobs.items()) if owner == scope}

    def blob_info(self, key: str, namespace: str | None = None) -> dict[str, Any] | None:
        """A blob's info as `host.blobs.head` returns it, or None (for assertions)."""
        blob = self._blobs.get((namespace or self.namespace, key))
        return None if blob is None else blob.info(key)

    def blob_put(self, key: str, data: bytes | str, content_type: str = "", namespace: str | None = None) -> dict[str, Any]:
        """Stores a blob from outside any actor, with no 8 MiB limit (as a presigned PUT
        does); returns its info."""
        if isinstance(data, str):
            data, content_type = data.encode("utf-8"), content_type or _host.TEXT_CONTENT_TYPE
        elif not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("blob data is bytes, bytearray, memoryview or str")
        return self._write_blob(namespace or self.namespace, _check_blob_key(key), bytes(data), content_type)

    def _blob_key(self, key: str) -> tuple[str, str]:
        return (self._current()[0], _check_blob_key(key))

    def bl_put(self, key: str, data: bytes, content_type: str) -> dict[str, Any]:
        namespace, key = self._blob_key(key)
        _content_type(content_type)
        if len(data) > _MAX_BLOB_CALL:
            raise HostError(
                "payload_too_large",
                f"a call moves at most {_MAX_BLOB_CALL} bytes, not {len(data)}: use a presigned URL",
            )
        return self._write_blob(namespace, key, bytes(data), content_type)

    def bl_get(self, key: str) -> bytes | None:
        blob = self._blobs.get(self._blob_key(key))
        if blob is None:
            return None
        if len(blob.data) > _MAX_BLOB_CALL:
            raise HostError(
                "payload_too_large",
                f"blob {key!r} is {len(blob.data)} bytes, more than a call moves ({_MAX_BLOB_CALL}): use a presigned URL",
            )
        return blob.data

    def bl_head(self, key: str) -> dict[str, Any] | None:
        blob = self._blobs.get(self._blob_key(key))
        return None if blob is None else blob.info(key)

    def bl_delete(self, key: str) -> bool:
        return self._blobs.pop(self._blob_key(key), None) is not None

    def bl_list(self, prefix: str, after: str, limit: int) -> list[dict[str, Any]]:
        limit = _page_limit(limit, "blobs")
        if len(prefix.encode("utf-8", "surrogatepass")) > _MAX_BLOB_KEY or _control(prefix):
            raise HostError("invalid_arguments", f"a prefix is at most {_MAX_BLOB_KEY} bytes with no control characters")
        namespace = self._current()[0]
        keys = sorted(
            key for owner, key in self._blobs if owner == namespace and key.startswith(prefix) and (not after or key > after)
        )
        return [self._blobs[(namespace, key)].info(key) for key in keys[:limit]]

    def bl_presign(self, key: str, method: str, ttl_ms: int) -> str:
        namespace, key = self._blob_key(key)
        method = method.upper()
        if method not in ("GET", "PUT"):
            raise HostError("invalid_arguments", f'a presigned URL is for "GET" or "PUT", not {method!r}')
        if ttl_ms == 0:
            ttl_ms = _PRESIGN_DEFAULT_TTL_MS
        elif ttl_ms > _PRESIGN_MAX_TTL_MS:
            raise HostError(
                "invalid_arguments",
                f"a presigned URL lives at most {_PRESIGN_MAX_TTL_MS} ms (7 days), not {ttl_ms}",
            )
        expires = self.now_ms + ttl_ms
        signature = self._presign_signature(method, self.tenant, namespace, key, expires)
        path = "/".join(_segment(segment) for segment in key.split("/"))
        return (
            f"{self.base_url.rstrip('/')}/api/v1/presigned/{self.tenant}/{namespace}/{path}"
            f"?expires={expires}&signature={signature}"
        )

    def _presign_signature(self, method: str, tenant: str, namespace: str, key: str, expires: int | str) -> str:
        message = f"{method}\n{tenant}\n{namespace}\n{key}\n{expires}".encode("utf-8")
        return hmac.new(self._presign_secret, message, hashlib.sha256).hexdigest()

    def open_presigned(
        self, url: str, method: str = "GET", data: bytes | str | None = None, content_type: str | None = None
    ) -> Any:
        """Uses a presigned URL as the node serves it: GET returns the blob's bytes (no 8 MiB
        limit: the node streams), HEAD its info, PUT stores `data` with `content_type` (none:
        application/octet-stream) and returns the new info. Raises HostError
        `signature_invalid` when any part of the URL was changed or the method is not the one
        it was signed for (HEAD goes with GET), then `url_expired` once `now_ms` is past its
        expiry, then `not_found` for a GET or HEAD of a missing blob."""
        if data is not None and not isinstance(data, (bytes, bytearray, memoryview, str)):
            raise TypeError("a request body is bytes, bytearray, memoryview or str")
        method = method.upper()
        tenant, namespace, key, expires, signature = self._parse_presigned(url)
        signed_for = "GET" if method == "HEAD" else method
        expected = bytes.fromhex(self._presign_signature(signed_for, tenant, namespace, key, expires))
        given = bytes.fromhex(signature) if _HEX.fullmatch(signature) else b""
        if not hmac.compare_digest(expected, given):
            raise HostError("signature_invalid", "the URL's signature does not match it: it was changed, or is for another method")
        if self.now_ms > int(expires):
            raise HostError("url_expired", f"the URL expired at {expires} ms since the Unix epoch: ask for a new one")
        if method == "PUT":
            body = data.encode("utf-8") if isinstance(data, str) else bytes(data or b"")
            return self._write_blob(namespace, key, body, content_type or "")
        blob = self._blobs.get((namespace, key))
        if blob is None:
            raise HostError("not_found", f"no blob {key!r} in {tenant}/{namespace}")
        return blob.info(key) if method == "HEAD" else blob.data

    def _parse_presigned(self, url: str) -> tuple[str, str, str, str, str]:
        """tenant, namespace, key, expires, signature; signature_invalid for a URL that is not
        one of this node's presigned URLs (it cannot have been signed)."""
        refused = HostError("signature_invalid", f"not a presigned URL of this node: {url!r}")
        base = self.base_url.rstrip("/") + "/api/v1/presigned/"
        if not url.startswith(base):
            raise refused
        path, _, query = url[len(base):].partition("?")
        parts = path.split("/")
        if len(parts) < 3:
            raise refused
        try:
            tenant, namespace, *segments = [urllib.parse.unquote(part, errors="strict") for part in parts]
            params = urllib.parse.parse_qs(query, keep_blank_values=True, strict_parsing=True, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise refused from None
        expires, signature = params.get("expires", []), params.get("signature", [])
        if len(expires) != 1 or len(signature) != 1 or not expires[0].isdigit() or not expires[0].isascii():
            raise refused
        return tenant, namespace, "/".join(segments), expires[0], signature[0]

    def __enter__(self) -> "TestHost":
        """Installs this node as the host, for code that calls `plexspaces.host` directly."""
        self._installed = _Installed(self)
        self._installed.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._installed.__exit__(*exc)


# The registry's and the blob store's rules, as the node keeps them.
_MAX_SERVICE = 64
_MAX_INSTANCE = 190
_MAX_METADATA = 64 * 1024
_REGISTRY_DEFAULT_TTL_MS = 30_000
_REGISTRY_MAX_TTL_MS = 86_400_000
_MAX_LOOKUP = 10_000
_PAGE_DEFAULT = 100
_PAGE_MAX = 1_000
_MAX_BLOB_KEY = 1024
_MAX_CONTENT_TYPE = 256
_MAX_BLOB_CALL = _host.MAX_BLOB_CALL
_DEFAULT_CONTENT_TYPE = "application/octet-stream"
_PRESIGN_DEFAULT_TTL_MS = 900_000
_PRESIGN_MAX_TTL_MS = 604_800_000
_SERVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_SERVICE_CHARS = re.compile(r"[A-Za-z0-9._:-]*")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


def _control(text: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in text)


def _check_service(service: str) -> str:
    if not 1 <= len(service) <= _MAX_SERVICE:
        raise HostError("invalid_arguments", f"a service name is 1 to {_MAX_SERVICE} characters, not {len(service)}")
    if not _SERVICE.fullmatch(service):
        raise HostError(
            "invalid_arguments",
            f"a service name is letters, digits, '.', '_', '-' and ':', starting with a letter or digit, not {service!r}",
        )
    return service


def _check_instance(instance: str) -> str:
    if not 1 <= len(instance) <= _MAX_INSTANCE:
        raise HostError("invalid_arguments", f"an instance name is 1 to {_MAX_INSTANCE} characters, not {len(instance)}")
    if _control(instance):
        raise HostError("invalid_arguments", f"an instance name has no control characters: {instance!r}")
    return instance


def _registry_ttl(ttl_ms: int) -> int:
    if ttl_ms == 0:
        return _REGISTRY_DEFAULT_TTL_MS
    if ttl_ms > _REGISTRY_MAX_TTL_MS:
        raise HostError(
            "invalid_arguments",
            f"a registration's time to live is at most {_REGISTRY_MAX_TTL_MS} ms (a day), not {ttl_ms}",
        )
    return ttl_ms


def _not_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _registry_metadata(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    size = len(text.encode("utf-8"))
    if size > _MAX_METADATA:
        raise HostError("invalid_arguments", f"metadata is at most {_MAX_METADATA} bytes of JSON, not {size}")
    try:
        value = json.loads(text, parse_constant=_not_json_constant)
    except ValueError as error:
        raise HostError("invalid_json", f"metadata is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise HostError("invalid_arguments", "metadata is a JSON object")
    return value


def _registration_out(registration: dict[str, Any]) -> dict[str, Any]:
    return {**registration, "metadata": json.loads(json.dumps(registration["metadata"]))}


def _registration_text(registration: dict[str, Any]) -> dict[str, Any]:
    """A registration as the WIT call returns it: metadata as JSON text."""
    return {**registration, "metadata": json.dumps(registration["metadata"], separators=(",", ":"))}


def _page_limit(limit: int, what: str) -> int:
    if limit == 0:
        return _PAGE_DEFAULT
    if limit > _PAGE_MAX:
        raise HostError("invalid_arguments", f"a listing holds 1 to {_PAGE_MAX} {what}, not {limit}")
    return limit


def _check_blob_key(key: str) -> str:
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise HostError("invalid_arguments", f"a blob key is UTF-8 text: {key!r}") from None
    if not 1 <= size <= _MAX_BLOB_KEY:
        raise HostError("invalid_arguments", f"a blob key is 1 to {_MAX_BLOB_KEY} bytes of UTF-8, not {size}")
    if _control(key):
        raise HostError("invalid_arguments", f"a blob key has no control characters: {key!r}")
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        raise HostError(
            "invalid_arguments",
            f"a blob key is segments separated by '/', none empty, '.' or '..' (no leading, trailing or double '/'): {key!r}",
        )
    for segment in key.split("/"):
        stored = _stored_length(segment)
        if stored > _MAX_BLOB_SEGMENT:
            raise HostError(
                "invalid_arguments",
                f"a segment of a blob key is at most {_MAX_BLOB_SEGMENT} bytes once stored (letters, digits and most "
                f"punctuation take 1, other characters 3 per byte of UTF-8), not {stored}: {segment!r}",
            )
    return key


# The most bytes a key segment takes once percent-encoded for storage, as the node's store
# (object_store) encodes it: non-ASCII bytes, controls and these characters take 3 bytes each.
_MAX_BLOB_SEGMENT = 240
_ENCODED_IN_STORAGE = frozenset('/\\{^}%`]">[~<#|*?')


def _stored_length(segment: str) -> int:
    return sum(3 if byte >= 0x80 or byte < 0x20 or byte == 0x7F or chr(byte) in _ENCODED_IN_STORAGE else 1
               for byte in segment.encode("utf-8"))


def _content_type(content_type: str) -> str:
    content_type = content_type.strip()
    if not content_type:
        return _DEFAULT_CONTENT_TYPE
    size = len(content_type.encode("utf-8", "surrogatepass"))
    if size > _MAX_CONTENT_TYPE:
        raise HostError("invalid_arguments", f"a content type is at most {_MAX_CONTENT_TYPE} bytes, not {size}")
    if _control(content_type):
        raise HostError("invalid_arguments", f"a content type has no control characters: {content_type!r}")
    return content_type


def _segment(part: str) -> str:
    """A URL path segment: everything but RFC 3986's unreserved characters percent-encoded."""
    return urllib.parse.quote(part, safe="-._~", encoding="utf-8")


@dataclass
class _Blob:
    data: bytes
    content_type: str
    modified_at_ms: int
    etag: str

    def info(self, key: str) -> dict[str, Any]:
        return {
            "key": key,
            "size": len(self.data),
            "content_type": self.content_type,
            "modified_at_ms": self.modified_at_ms,
            "etag": self.etag,
        }


class _ChannelQueue:
    def __init__(self) -> None:
        self.next_id = 1
        # id -> [data, attempt, visible_at (None: ready), sent_at]
        self.messages: dict[int, list[Any]] = {}
        self.acked = 0
        self.redelivered = 0


class _Channel:
    """A channel of a TestHost, with the node's rules: capacity counts delivered messages
    too, a delivery's receipt holds its message until it is settled or delivered again."""

    def __init__(self, config: tuple[str, int, int]):
        self.config = config
        self.closed = False
        self.queues: dict[str, _ChannelQueue] = {"": _ChannelQueue()} if config[0] == "queue" else {}
        # actor -> (subscription, action)
        self.consumers: dict[str, tuple[str, str]] = {}

    def queue(self, name: str, subscription: str) -> _ChannelQueue:
        if self.config[0] == "queue" and subscription:
            raise HostError("invalid_arguments", f"{name!r} is a queue: receive from it without a subscription")
        if self.config[0] == "topic" and not subscription:
            raise HostError("invalid_arguments", f"{name!r} is a topic: receive from one of its subscriptions")
        queue = self.queues.get(subscription)
        if queue is None:
            raise HostError("not_found", f"topic {name!r} has no subscription {subscription!r}: subscribe first")
        return queue

    def send(self, name: str, data: str, now_ms: int) -> int:
        if self.closed:
            raise HostError("invalid_state", f"channel {name!r} is closed: it takes no new messages")
        try:
            json.loads(data)
        except ValueError as error:
            raise HostError("invalid_json", f"a message is JSON text: {error}") from None
        for sub, queue in self.queues.items():
            if len(queue.messages) >= self.config[1]:
                whose = f" (subscription {sub!r})" if sub else ""
                raise HostError("channel_full", f"channel {name!r}{whose} holds its capacity of {self.config[1]} messages")
        for queue in self.queues.values():
            queue.messages[queue.next_id] = [data, 0, None, now_ms]
            queue.next_id += 1
        return len(self.queues)

    def receive(self, name: str, subscription: str, max: int, now_ms: int) -> list[tuple[str, str, int]]:
        queue = self.queue(name, subscription)
        got = []
        for message_id in sorted(queue.messages):
            if len(got) >= max:
                break
            message = queue.messages[message_id]
            if message[2] is not None and message[2] > now_ms:
                continue
            message[1] += 1
            message[2] = now_ms + self.config[2]
            if message[1] > 1:
                queue.redelivered += 1
            receipt = f"{subscription}/{message_id}.{message[1]}" if subscription else f"{message_id}.{message[1]}"
            got.append((receipt, message[0], message[1]))
        return got

    def settle(self, name: str, receipt: str, delay_ms: int | None, now_ms: int) -> bool:
        """Acks (`delay_ms` None) or nacks a delivery."""
        subscription, _, rest = receipt.rpartition("/")
        message_id, _, attempt = rest.partition(".")
        if not message_id.isdigit() or not attempt.isdigit():
            raise HostError("invalid_arguments", f"{receipt!r} is not a receipt: pass the receipt of a delivery as it came")
        queue = self.queue(name, subscription)
        message = queue.messages.get(int(message_id))
        if message is None or message[1] != int(attempt):
            return False
        if delay_ms is None:
            del queue.messages[int(message_id)]
            queue.acked += 1
        else:
            if message[2] is None:
                return False  # given back already
            message[2] = now_ms + delay_ms if delay_ms else None
        return True

    def stats(self, now_ms: int) -> dict[str, Any]:
        queues = {}
        for sub, queue in self.queues.items():
            ready = sum(1 for m in queue.messages.values() if m[2] is None or m[2] <= now_ms)
            queues[sub] = {
                "ready": ready,
                "in_flight": len(queue.messages) - ready,
                "acked": queue.acked,
                "redelivered": queue.redelivered,
            }
        return {"kind": self.config[0], "closed": self.closed, "queues": queues}


class ActorHandle:
    """One actor of a TestHost."""

    def __init__(self, node: TestHost, address: tuple[str, str, str]):
        self.node = node
        self.address = address

    def call(self, action: str, **payload: Any) -> Any:
        """An ask: the reply's JSON value; raises HostError (`.code`) when the handler fails."""
        with _Installed(self.node):
            try:
                return self.node.deliver(self.address, action, payload)
            finally:
                self.node.run_until_idle()

    def tell(self, action: str, **payload: Any) -> None:
        """A tell: handled at once, with what it sends; failures land in `node.logs`."""
        with _Installed(self.node):
            self.node._queue.append(("test", self.address, action, payload))
            self.node.run_until_idle()

    @property
    def state(self) -> dict[str, Any] | None:
        """The committed state, as the node stores it (None before the first change)."""
        actor = self.node._actors.get(self.address)
        if actor is None or actor.state is None:
            return None
        return json.loads(actor.state)


class _Installed:
    """Makes the node the backend of plexspaces.host for the duration of a call."""

    def __init__(self, node: TestHost):
        self.node = node

    def __enter__(self) -> None:
        self.previous = _host.backend
        _host.backend = _Backend(self.node)

    def __exit__(self, *exc: Any) -> None:
        _host.backend = self.previous


class _Backend:
    def __init__(self, node: TestHost):
        self.node = node

    def __getattr__(self, name: str) -> Any:
        return getattr(self.node, name)

    def now_ms(self) -> int:
        return self.node.now_ms
