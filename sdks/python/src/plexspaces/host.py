"""What an actor may ask of the node while it handles a message.

`from plexspaces import host`, then `host.tell(...)`, `host.ask(...)`, `host.get_actor_id()`,
`host.log(...)`, `host.now()`, `host.random()`, the tuple space (`host.ts_write`,
`ts_read`, `ts_take`, `ts_count`, `ts_scan`, `ts_take_later`), locks (`host.lock_acquire`,
`lock_renew`, `lock_release`), KV (`host.kv_get`, `kv_put`, `kv_delete`, `kv_list`, `kv_cas`)
process groups (`host.process_groups.join`, `leave`, `get_members`, `publish`), channels
(`host.channels.create`, `send`, `receive`, `ack`, `nack`, `subscribe`, `consume`, ...), the
service registry (`host.registry.register`, `heartbeat`, `deregister`, `lookup`, `list`) and
blobs (`host.blobs.put`, `get`, `head`, `delete`, `list`, `presign`). Inside a node the calls go
to the host through the WIT world; under `plexspaces.testing` they go to an in-memory host.
"""

from __future__ import annotations

import json
from typing import Any

from ._dispatch import dumps_text

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


# The tuple space ------------------------------------------------------------------------------
# Tuples and patterns are JSON arrays: JSON text, or a list that is encoded here. In a pattern
# None matches any value, {"$type": "string"} (int, number, bool, array, object) any value of
# that kind, and any other value only itself.


def _array(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        try:
            return dumps_text(list(value) if isinstance(value, tuple) else value)
        except (TypeError, ValueError) as error:
            raise HostError("invalid_arguments", f"the {what} is not JSON-serializable: {error}") from None
    raise HostError("invalid_arguments", f"a {what} is a list, or JSON text of an array")


def _milliseconds(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise HostError("invalid_arguments", f"{name} must be a non-negative integer")
    return value


def ts_write(tuple_: Any, lease_ms: int = 0) -> None:
    """Writes a tuple (`out`); with `lease_ms` > 0 it is gone after that long."""
    backend.ts_write(_array(tuple_, "tuple"), _milliseconds(lease_ms, "lease_ms"))


def ts_read(pattern: Any, timeout_ms: int = 0) -> str | None:
    """The oldest matching tuple as JSON text, left in the space (`rd`), or None. With
    `timeout_ms` > 0 it waits up to that long for one to be written."""
    return backend.ts_read(_array(pattern, "pattern"), _milliseconds(timeout_ms, "timeout_ms"))


def ts_take(pattern: Any, timeout_ms: int = 0) -> str | None:
    """As `ts_read`, but removes the tuple (`in`): each tuple is taken once."""
    return backend.ts_take(_array(pattern, "pattern"), _milliseconds(timeout_ms, "timeout_ms"))


def ts_count(pattern: Any) -> int:
    """How many tuples match."""
    return backend.ts_count(_array(pattern, "pattern"))


def ts_scan(pattern: Any, limit: int = 100) -> list[str]:
    """Up to `limit` matching tuples (JSON text), oldest first, left in the space."""
    return backend.ts_scan(_array(pattern, "pattern"), _milliseconds(limit, "limit"))


def ts_take_later(pattern: Any, action: str = "ts_tuple") -> None:
    """An asynchronous take: the matching tuple, now or whenever one is written, comes to this
    actor as the message `{"action": action, "tuple": [...]}`. Nothing waits."""
    if not isinstance(action, str) or not action:
        raise HostError("invalid_arguments", "action names the handler that gets the tuple")
    backend.ts_take_later(_array(pattern, "pattern"), action)


# Locks --------------------------------------------------------------------------------------
# A grant's version is its fencing token, always handed out as a decimal string: larger than
# every earlier grant's, also across restarts of the node.

DEFAULT_LEASE_SECS = 30


def _grant_json(grant: dict[str, Any]) -> str:
    return json.dumps(
        {
            "version": str(grant["version"]),
            "holder_id": grant["holder"],
            "metadata": grant["metadata"],
            "expires_at": grant["expires_at_ms"],
        }
    )


def _lease_ms(lease_secs: Any) -> int:
    if isinstance(lease_secs, bool) or not isinstance(lease_secs, (int, float)) or lease_secs <= 0:
        raise HostError("invalid_arguments", "lease_secs must be a positive number")
    return int(lease_secs * 1000)


def lock_acquire(*args: Any) -> str | None:
    """Takes a lock. Two forms, by argument count:

    `lock_acquire(name, timeout_ms)`: a 30 s lease for this actor; returns the version as a
    decimal string, or None when another holder kept it for `timeout_ms`.

    `lock_acquire(namespace, name, holder_id, metadata, lease_secs, timeout_ms)`: returns JSON
    text `{"version", "holder_id", "metadata", "expires_at"}` (expires_at in ms since the
    Unix epoch), or `"ERROR:<code>:<message>"`; an empty namespace or holder_id means this
    actor's own. Acquiring a lock one holds renews it and keeps its version."""
    if len(args) == 2:
        name, timeout_ms = args
        grant = backend.lock_acquire(
            "", name, "", "", DEFAULT_LEASE_SECS * 1000, _milliseconds(timeout_ms, "timeout_ms")
        )
        return None if grant is None else str(grant["version"])
    if len(args) == 6:
        namespace, name, holder_id, metadata, lease_secs, timeout_ms = args
        try:
            grant = backend.lock_acquire(
                namespace or "",
                name,
                holder_id or "",
                metadata or "",
                _lease_ms(lease_secs),
                _milliseconds(timeout_ms, "timeout_ms"),
            )
        except HostError as error:
            return f"ERROR:{error.code}:{error.message}"
        if grant is None:
            return f"ERROR:timeout:lock {name!r} is held by another holder"
        return _grant_json(grant)
    raise HostError(
        "invalid_arguments",
        "lock_acquire takes (name, timeout_ms) or "
        "(namespace, name, holder_id, metadata, lease_secs, timeout_ms)",
    )


def _version(version: Any) -> int:
    """The version from either form lock_acquire returns (or an int)."""
    if isinstance(version, int) and not isinstance(version, bool):
        return version
    if isinstance(version, str):
        text = version.strip()
        if text.startswith("{"):
            try:
                text = str(json.loads(text)["version"])
            except (ValueError, KeyError, TypeError):
                raise HostError("invalid_arguments", "not a grant lock_acquire returned") from None
        if text.isdigit():
            return int(text)
    raise HostError("invalid_arguments", f"not a lock version: {version!r}")


def lock_renew(name: str, version: Any, lease_secs: Any = DEFAULT_LEASE_SECS, namespace: str = "", holder_id: str = "") -> str:
    """Extends the lease of a grant; returns the grant as JSON text. Raises HostError
    (`invalid_state`) when that grant no longer holds the lock."""
    grant = backend.lock_renew(namespace, name, holder_id, _version(version), _lease_ms(lease_secs))
    return _grant_json(grant)


def lock_release(name: str, version: Any, namespace: str = "") -> bool:
    """Releases a grant (either form lock_acquire returns). Safe to repeat: False, and nothing
    changes, when the grant no longer holds the lock."""
    return backend.lock_release(namespace, name, _version(version))


# KV -----------------------------------------------------------------------------------------
# The key-value store of this actor's namespace. Values are text: a value that is not a str is
# stored as its JSON, and reads return the text.


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise HostError("invalid_arguments", f"the value is not text or JSON-serializable: {error}") from None


def _key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise HostError("invalid_arguments", "a key is a non-empty str")
    return key


def kv_get(key: str) -> str | None:
    """The value under `key`, or None."""
    return backend.kv_get(_key(key))


def kv_put(key: str, value: Any, ttl_ms: int = 0) -> None:
    """Stores `value` under `key`; with `ttl_ms` > 0 it is gone after that long. Durable once
    it returns (on a node whose KV is on disk, the default)."""
    backend.kv_put(_key(key), _value(value), _milliseconds(ttl_ms, "ttl_ms"))


def kv_delete(key: str) -> bool:
    """Removes `key`; False when it was not there."""
    return backend.kv_delete(_key(key))


def kv_list(prefix: str = "", limit: int = 100, after: str = "") -> list[tuple[str, str]]:
    """Up to `limit` (key, value) pairs whose keys start with `prefix`, in key order, with keys
    after `after` (for the next page, pass the last key of this one)."""
    if not isinstance(prefix, str) or not isinstance(after, str):
        raise HostError("invalid_arguments", "prefix and after are str")
    return backend.kv_list(prefix, after, _milliseconds(limit, "limit"))


def kv_cas(key: str, expected: Any, value: Any, ttl_ms: int = 0) -> bool:
    """Compare-and-swap: stores `value` (removes the key when None) only if the value there is
    `expected` (None: no value); True when it did."""
    return backend.kv_cas(
        _key(key),
        None if expected is None else _value(expected),
        None if value is None else _value(value),
        _milliseconds(ttl_ms, "ttl_ms"),
    )


# Process groups ---------------------------------------------------------------------------


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise HostError("invalid_arguments", f"a {what} is a non-empty str")
    return value


class _ProcessGroups:
    """`host.process_groups`: groups of actors in this actor's namespace (Erlang pg style).

    Every member, the publisher included, receives each publish once, in order per publisher,
    as the message `{"action": "pg_message", "group", "topic", "data", "publisher"}`; a member
    without a `pg_message` handler drops it. Membership outlives activations: a deactivated
    member stays in, and a publish activates it."""

    def join(self, group: str, actor_id: str | None = None, topic: str | None = None) -> bool:
        """Adds `actor_id` (`type`, `type/key` or `namespace/type/key`; default: this actor) to
        `group`, or only to its `topic`; False when it was in already."""
        return backend.pg_join(_name(group, "group"), actor_id or "", topic)

    def leave(self, group: str, actor_id: str | None = None, topic: str | None = None) -> bool:
        """Takes `actor_id` (default: this actor) out of `group` (of `topic` only, when given)."""
        return backend.pg_leave(_name(group, "group"), actor_id or "", topic)

    def get_members(self, group: str) -> list[str]:
        """The members of `group` as `namespace/type/key`, in order."""
        return backend.pg_members(_name(group, "group"))

    members = get_members

    def publish(self, group: str, data: Any, topic: str | None = None) -> int:
        """Sends `data` (JSON-serializable) to every member of `group` (with a `topic`: of the
        group and of that topic); returns how many members it was sent to."""
        if topic is not None:
            _name(topic, "topic")
        return backend.pg_publish(_name(group, "group"), topic, _value(data))


process_groups = _ProcessGroups()


# Channels ------------------------------------------------------------------------------------


class _Channels:
    """`host.channels`: queues and topics of this actor's namespace.

    A queue hands each message to one consumer, a topic to every subscription. A received
    message is invisible to other consumers for the channel's visibility timeout: `ack` it when
    done, `nack` it to give it back; one neither acknowledged nor given back in time is
    delivered again (at least once; `attempt` counts the deliveries). A channel holds at most
    its capacity of messages: past it `send` waits up to `timeout_ms` for room, then raises
    HostError `channel_full`, so a slow consumer slows its producers down. `consume` has the
    node hand this actor the messages one at a time as the action it names; a handler that
    returns acknowledges the message, one that raises gives it back."""

    def create(self, name: str, kind: str = "queue", capacity: int = 0, visibility_ms: int = 0) -> bool:
        """Creates the channel `name`, a "queue" or a "topic", holding at most `capacity`
        messages (0: 10000) with a visibility timeout of `visibility_ms` (0: 30000). False
        when it exists with this config (with another: HostError `already_exists`)."""
        if kind not in ("queue", "topic"):
            raise HostError("invalid_arguments", f'a channel\'s kind is "queue" or "topic", not {kind!r}')
        return backend.ch_create(
            _name(name, "channel name"), kind, _milliseconds(capacity, "capacity"), _milliseconds(visibility_ms, "visibility_ms")
        )

    def send(self, name: str, data: Any, timeout_ms: int = 0) -> int:
        """Sends `data` (JSON-serializable); returns how many queues got it (a topic: its
        subscriptions). A full channel: waits up to `timeout_ms` for room, then HostError
        `channel_full`."""
        return backend.ch_send(_name(name, "channel name"), _json(data), _milliseconds(timeout_ms, "timeout_ms"))

    def receive(self, name: str, max: int = 1, timeout_ms: int = 0, subscription: str | None = None) -> list[dict[str, Any]]:
        """Up to `max` messages of a queue (of a topic: of `subscription`), oldest first, each
        `{"receipt", "data", "attempt"}`; with none ready it waits up to `timeout_ms`."""
        got = backend.ch_receive(
            _name(name, "channel name"), subscription or "", _milliseconds(max, "max"), _milliseconds(timeout_ms, "timeout_ms")
        )
        return [{"receipt": receipt, "data": json.loads(data), "attempt": attempt} for receipt, data, attempt in got]

    def ack(self, name: str, receipt: str) -> bool:
        """Acknowledges a delivery: the message is gone. False when that delivery no longer
        holds it (acknowledged already, or delivered again after its visibility timeout)."""
        return backend.ch_ack(_name(name, "channel name"), _name(receipt, "receipt"))

    def nack(self, name: str, receipt: str, delay_ms: int = 0) -> bool:
        """Gives a delivery back: deliverable again after `delay_ms`."""
        return backend.ch_nack(_name(name, "channel name"), _name(receipt, "receipt"), _milliseconds(delay_ms, "delay_ms"))

    def subscribe(self, topic: str, subscription: str) -> bool:
        """Adds `subscription` to a topic: it gets every message sent from now on."""
        return backend.ch_subscribe(_name(topic, "topic"), _name(subscription, "subscription"))

    def unsubscribe(self, topic: str, subscription: str) -> bool:
        """Removes a subscription with its messages."""
        return backend.ch_unsubscribe(_name(topic, "topic"), _name(subscription, "subscription"))

    def consume(self, name: str, action: str = "channel_message", subscription: str | None = None) -> bool:
        """Has the node hand this actor the channel's messages (a topic's: those of
        `subscription`, created when missing) one at a time, as the message `{"action": action,
        "channel", "subscription", "data", "receipt", "attempt"}`. The registration outlives
        activations. False when this actor consumed the channel already."""
        return backend.ch_consume(_name(name, "channel name"), subscription or "", _name(action, "action"))

    def stop_consuming(self, name: str) -> bool:
        """Ends this actor's `consume` of a channel."""
        return backend.ch_stop_consuming(_name(name, "channel name"))

    def close(self, name: str) -> bool:
        """Stops the channel's intake; what it holds is still delivered."""
        return backend.ch_close(_name(name, "channel name"))


def _json(data: Any) -> str:
    try:
        return json.dumps(data, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise HostError("invalid_arguments", f"the data is not JSON-serializable: {error}") from None


channels = _Channels()


# The service registry ------------------------------------------------------------------------


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise HostError("invalid_arguments", f"{name} is a str")
    return value


def _limit(value: Any) -> int:
    return _milliseconds(value, "limit")


def _metadata(metadata: Any) -> str:
    if metadata is None:
        return ""
    if isinstance(metadata, str):
        return metadata
    if not isinstance(metadata, dict):
        raise HostError("invalid_arguments", "metadata is a dict (or JSON text of an object)")
    try:
        return json.dumps(metadata, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise HostError("invalid_arguments", f"the metadata is not JSON-serializable: {error}") from None


def _registration(found: dict[str, Any]) -> dict[str, Any]:
    text = found["metadata"]
    return {
        "service": found["service"],
        "instance": found["instance"],
        "metadata": json.loads(text) if text.strip() else {},
        "ttl_ms": found["ttl_ms"],
        "registered_at_ms": found["registered_at_ms"],
        "expires_at_ms": found["expires_at_ms"],
    }


class _Registry:
    """`host.registry`: the service registry of this actor's namespace.

    Instances of a named service register with metadata (a JSON object) and a time to live,
    and stay listed only while they heartbeat: an instance whose time to live has passed is
    gone for every call at once. A service name is 1 to 64 letters, digits, `.`, `_`, `-` or
    `:`, starting with a letter or digit; an instance name is 1 to 190 characters with no
    control characters (None: this actor, as `namespace/type/key`). Each registration comes as
    `{"service", "instance", "metadata", "ttl_ms", "registered_at_ms", "expires_at_ms"}` (times
    in ms since the Unix epoch)."""

    def register(self, service: str, instance: str | None = None, metadata: dict | None = None, ttl_ms: int = 0) -> dict[str, Any]:
        """Registers `instance` (None: this actor) of `service` with `metadata` (a dict, or
        JSON text of an object; at most 64 KiB as JSON; None: `{}`) for `ttl_ms` (0: 30000; at
        most a day). Registering a live instance again replaces its metadata and time to live
        and keeps its `registered_at_ms`. HostError `invalid_arguments` for a bad name,
        metadata that is not an object or too large, or a longer time to live; `invalid_json`
        for metadata text that is not JSON."""
        found = backend.reg_register(
            _name(service, "service name"),
            _text(instance or "", "instance"),
            _metadata(metadata),
            _milliseconds(ttl_ms, "ttl_ms"),
        )
        return _registration(found)

    def heartbeat(self, service: str, instance: str | None = None, ttl_ms: int = 0) -> dict[str, Any]:
        """Renews a live instance (None: this actor) for `ttl_ms` (0: its own time to live).
        HostError `not_found` when it expired or was never registered: register it again."""
        found = backend.reg_heartbeat(
            _name(service, "service name"), _text(instance or "", "instance"), _milliseconds(ttl_ms, "ttl_ms")
        )
        return _registration(found)

    def deregister(self, service: str, instance: str | None = None) -> bool:
        """Removes an instance (None: this actor); False when it was not registered (or had
        expired)."""
        return backend.reg_deregister(_name(service, "service name"), _text(instance or "", "instance"))

    def lookup(self, service: str) -> list[dict[str, Any]]:
        """The live instances of `service`, in instance order (at most 10000); an unknown
        service has none."""
        return [_registration(found) for found in backend.reg_lookup(_name(service, "service name"))]

    def list(self, prefix: str = "", after: str = "", limit: int = 100) -> list[dict[str, Any]]:
        """Up to `limit` (0: 100, at most 1000) services with live instances whose names start
        with `prefix`, in name order, after the service `after` (for the next page, pass the
        last service of this one); each `{"service", "instances"}` (how many are live)."""
        found = backend.reg_list(_text(prefix, "prefix"), _text(after, "after"), _limit(limit))
        return [{"service": service, "instances": instances} for service, instances in found]


registry = _Registry()


# Blobs ---------------------------------------------------------------------------------------

# The most bytes one guest call moves; larger blobs travel through presigned URLs.
MAX_BLOB_CALL = 8 * 1024 * 1024

TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"


def _blob_info(found: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": found["key"],
        "size": found["size"],
        "content_type": found["content_type"],
        "modified_at_ms": found["modified_at_ms"],
        "etag": found["etag"],
    }


class _Blobs:
    """`host.blobs`: the blob store of this actor's namespace, objects of bytes by key, each
    with a content type.

    A key is 1 to 1024 bytes of UTF-8: segments separated by `/`, none empty, `.` or `..`, with
    no control characters, each at most 240 bytes once stored (letters, digits and most
    punctuation take 1, other characters 3 per byte of UTF-8). One call moves at most 8 MiB (HostError `payload_too_large` past
    it); larger blobs travel through presigned URLs, which the node streams. A blob's info is
    `{"key", "size", "content_type", "modified_at_ms", "etag"}`; the etag changes whenever the
    blob is written."""

    def put(self, key: str, data: bytes | bytearray | memoryview | str, content_type: str = "") -> dict[str, Any]:
        """Stores `data` under `key`, replacing what was there; returns the blob's info. A
        `str` is stored as UTF-8 with the content type "text/plain; charset=utf-8" unless one
        is given; bytes without one are application/octet-stream. Durable once it returns."""
        content_type = _text(content_type, "content_type")
        if isinstance(data, str):
            body = data.encode("utf-8")
            content_type = content_type or TEXT_CONTENT_TYPE
        elif isinstance(data, (bytes, bytearray, memoryview)):
            body = bytes(data)
        else:
            raise HostError("invalid_arguments", "blob data is bytes, bytearray, memoryview or str")
        if len(body) > MAX_BLOB_CALL:
            raise HostError(
                "payload_too_large",
                f"a call moves at most {MAX_BLOB_CALL} bytes, not {len(body)}: use a presigned URL (host.blobs.presign)",
            )
        return _blob_info(backend.bl_put(_name(key, "blob key"), body, content_type))

    def get(self, key: str) -> bytes | None:
        """The blob's bytes, or None. HostError `payload_too_large` for a blob over 8 MiB: use
        a presigned URL."""
        return backend.bl_get(_name(key, "blob key"))

    def head(self, key: str) -> dict[str, Any] | None:
        """The blob's info, or None."""
        found = backend.bl_head(_name(key, "blob key"))
        return None if found is None else _blob_info(found)

    def delete(self, key: str) -> bool:
        """Removes the blob; False when there was none."""
        return backend.bl_delete(_name(key, "blob key"))

    def list(self, prefix: str = "", after: str = "", limit: int = 100) -> list[dict[str, Any]]:
        """The info of up to `limit` (0: 100, at most 1000) blobs whose keys start with `prefix`
        (a plain string prefix: "a/b" matches "a/bc"), in key order, with keys after `after`
        (for the next page, pass the last key of this one)."""
        found = backend.bl_list(_text(prefix, "prefix"), _text(after, "after"), _limit(limit))
        return [_blob_info(info) for info in found]

    def presign(self, key: str, method: str = "GET", ttl_ms: int = 0) -> str:
        """A URL on the node's invoke port that lets whoever holds it `method` ("GET" or
        "PUT") the blob `key` with no other credential, for `ttl_ms` (0: 15 minutes; at most 7
        days). The node refuses it after that (`url_expired`, HTTP 403) and when any part of it
        was changed (`signature_invalid`, HTTP 403). A GET URL serves HEAD too; a PUT URL
        stores the request's body with its Content-Type."""
        return backend.bl_presign(_name(key, "blob key"), _name(method, "method"), _milliseconds(ttl_ms, "ttl_ms"))


blobs = _Blobs()


# Durable workflows -----------------------------------------------------------------------------
# In the run handler of a @workflow_actor with the durability facet. A run that waits gives up
# its instance: the node calls run again later, from the start, and every host call made
# before the wait returns what it returned the first time (a step's recorded result, the
# same clock readings, the same signals), so the run arrives where it waited and goes on.


class Suspended(BaseException):
    """Unwinds a run that waits (host.sleep, host.wait_signal) so that it gives up its
    instance; the node resumes it by replay. A BaseException, so `except Exception` in user
    code lets it through: do not catch it."""


class _Run:
    """The run in progress in this instance: its object, for signal handlers and commits."""

    def __init__(self, runtime: Any, obj: Any):
        self.runtime = runtime
        self.obj = obj
        self.delivered: list[dict[str, Any]] = []

    def commit(self) -> None:
        backend.wf_commit(self.runtime.snapshot(self.obj))

    def deliver(self) -> None:
        """Hands the signals sent since the last host call to their handlers, and keeps them
        for wait_signal."""
        for text in backend.wf_take_signals():
            signal = json.loads(text)
            handlers = self.runtime.handlers.get(signal.get("action"), [])
            for spec in handlers:
                if spec.kind == "signal":
                    spec.function(self.obj, signal)
            self.delivered.append(signal)

    def pop(self, name: str) -> dict[str, Any] | None:
        for position, signal in enumerate(self.delivered):
            if signal.get("action") == name:
                return self.delivered.pop(position)
        return None


# Set by the dispatch while a run handler runs.
_current_run: _Run | None = None


def _run(what: str) -> _Run:
    if _current_run is None:
        raise HostError("invalid_state", f"host.{what} works in the run handler of a @workflow_actor")
    return _current_run


def _waiting(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except HostError as error:
        if error.code == "suspended":
            raise Suspended(error.message) from None
        raise


def step(name: str, fn: Any) -> Any:
    """Runs `fn()` once: its result (JSON-serializable) is journaled, and when the run is
    replayed the recorded result is returned instead of running `fn` again. Host calls inside
    `fn` belong to the step. A step interrupted by a crash runs again; inside it,
    `host.idempotency_key()` names it the same way each time."""
    run = _run("step")
    if not isinstance(name, str) or not name:
        raise HostError("invalid_arguments", "a step needs a name")
    run.deliver()
    recorded = backend.wf_step_begin(name)
    if recorded is not None:
        result = json.loads(recorded)
    else:
        result = fn()
        try:
            text = dumps_text(result)
        except (TypeError, ValueError) as error:
            raise HostError("invalid_arguments", f"step {name!r} returned a value that is not JSON: {error}") from None
        backend.wf_step_end(name, text)
    # Replayed or run, the step is followed by the same calls: the journal's order holds.
    run.commit()
    return result


def sleep(ms: int) -> None:
    """A durable sleep: the run gives up its instance and resumes when `ms` have passed, also
    across restarts of the node."""
    run = _run("sleep")
    ms = _milliseconds(ms, "ms")
    run.deliver()
    run.commit()
    _waiting(backend.wf_sleep, ms)
    run.deliver()


def wait_signal(name: str, timeout_ms: int = DEFAULT_ASK_TIMEOUT_MS) -> dict[str, Any] | None:
    """The first signal with action `name` sent to this workflow (its whole payload, the action
    included), also one that arrived before the call; None when none came within
    `timeout_ms`. The run gives up its instance while it waits."""
    run = _run("wait_signal")
    timeout_ms = _milliseconds(timeout_ms, "timeout_ms")
    while True:
        run.deliver()
        found = run.pop(name)
        if found is not None:
            run.commit()
            return found
        run.commit()
        if not _waiting(backend.wf_wait_signal, name, timeout_ms):
            return None


def idempotency_key() -> str:
    """A key for an effect outside the node (a payment, an e-mail): the same when the step (or
    the message) that makes it runs again after a crash, different for every other one."""
    return backend.wf_idempotency_key()


# Timers ----------------------------------------------------------------------------------------


def schedule(action: str, payload: Any = None, delay_ms: int = 0, durable: bool = False) -> str:
    """Sends `{"action": action, **payload}` to this actor after `delay_ms`. A durable timer (a
    reminder) survives restarts of the node and fires once; a transient one does not survive
    them. Returns the timer's id, for `cancel_timer`."""
    if not isinstance(action, str) or not action:
        raise HostError("invalid_arguments", "a timer needs the action its message carries")
    return backend.timer_schedule(action, _payload(payload), _milliseconds(delay_ms, "delay_ms"), bool(durable))


def cancel_timer(timer_id: str) -> bool:
    """Cancels a timer; False when it had fired or never existed."""
    return backend.timer_cancel(timer_id)
