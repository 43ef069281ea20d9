"""The WebAssembly entry point: the `guest` interface of wit/plexspaces.wit over the Runtime.

Only imported inside a component, where componentize-py provides `wit_world`.
"""

from __future__ import annotations

from typing import Any

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import guest as wit_guest
from wit_world.imports import blobs as wit_blobs
from wit_world.imports import channels as wit_channels
from wit_world.imports import host as wit_host
from wit_world.imports import kv as wit_kv
from wit_world.imports import locks as wit_locks
from wit_world.imports import process_groups as wit_groups
from wit_world.imports import registry as wit_registry
from wit_world.imports import timers as wit_timers
from wit_world.imports import tuplespace as wit_tuplespace
from wit_world.imports import types as wit_types
from wit_world.imports import workflow as wit_workflow

from . import __version__, host
from ._dispatch import BYTES, CACHED, FRESH, Failure, Runtime
from ._model import classes_of


_LEVELS = {
    "trace": wit_types.LogLevel.TRACE,
    "debug": wit_types.LogLevel.DEBUG,
    "info": wit_types.LogLevel.INFO,
    "warn": wit_types.LogLevel.WARN,
    "error": wit_types.LogLevel.ERROR,
}


def _host_error(error: Err) -> host.HostError:
    value = error.value
    return host.HostError(value.code, value.message, value.error_type)


class _WasmHost:
    """host.* inside a node: each call crosses into the node through the WIT imports."""

    def actor_id(self) -> str:
        return wit_host.actor_id()

    def tell(self, target: str, action: str, payload: str) -> None:
        try:
            wit_host.tell(target, action, payload)
        except Err as error:
            raise _host_error(error) from None

    def ask(self, target: str, action: str, payload: str, timeout_ms: int) -> str:
        try:
            return wit_host.ask(target, action, payload, min(timeout_ms, 0xFFFFFFFF))
        except Err as error:
            raise _host_error(error) from None

    def log(self, level: str, message: str) -> None:
        wit_host.log(_LEVELS[level], message)

    def now_ms(self) -> int:
        return wit_host.now_ms()

    def random_u64(self) -> int:
        return wit_host.random_u64()

    def ts_write(self, tuple_: str, lease_ms: int) -> None:
        try:
            wit_tuplespace.write(tuple_, min(lease_ms, 0xFFFFFFFFFFFFFFFF))
        except Err as error:
            raise _host_error(error) from None

    def ts_read(self, pattern: str, timeout_ms: int) -> str | None:
        try:
            return wit_tuplespace.read(pattern, min(timeout_ms, 0xFFFFFFFF))
        except Err as error:
            raise _host_error(error) from None

    def ts_take(self, pattern: str, timeout_ms: int) -> str | None:
        try:
            return wit_tuplespace.take(pattern, min(timeout_ms, 0xFFFFFFFF))
        except Err as error:
            raise _host_error(error) from None

    def ts_count(self, pattern: str) -> int:
        try:
            return wit_tuplespace.count(pattern)
        except Err as error:
            raise _host_error(error) from None

    def ts_scan(self, pattern: str, limit: int) -> list[str]:
        try:
            return wit_tuplespace.scan(pattern, min(limit, 0xFFFFFFFF))
        except Err as error:
            raise _host_error(error) from None

    def ts_take_later(self, pattern: str, action: str) -> None:
        try:
            wit_tuplespace.take_later(pattern, action)
        except Err as error:
            raise _host_error(error) from None

    def lock_acquire(
        self, namespace: str, name: str, holder: str, metadata: str, lease_ms: int, timeout_ms: int
    ) -> dict[str, Any] | None:
        try:
            grant = wit_locks.acquire(
                namespace, name, holder, metadata, min(lease_ms, 0xFFFFFFFFFFFFFFFF), min(timeout_ms, 0xFFFFFFFF)
            )
        except Err as error:
            raise _host_error(error) from None
        return None if grant is None else _grant(grant)

    def lock_renew(self, namespace: str, name: str, holder: str, version: int, lease_ms: int) -> dict[str, Any]:
        try:
            return _grant(wit_locks.renew(namespace, name, holder, version, min(lease_ms, 0xFFFFFFFFFFFFFFFF)))
        except Err as error:
            raise _host_error(error) from None

    def lock_release(self, namespace: str, name: str, version: int) -> bool:
        try:
            return wit_locks.release(namespace, name, version)
        except Err as error:
            raise _host_error(error) from None

    def kv_get(self, key: str) -> str | None:
        try:
            return wit_kv.get(key)
        except Err as error:
            raise _host_error(error) from None

    def kv_put(self, key: str, value: str, ttl_ms: int) -> None:
        try:
            wit_kv.put(key, value, min(ttl_ms, 0xFFFFFFFFFFFFFFFF))
        except Err as error:
            raise _host_error(error) from None

    def kv_delete(self, key: str) -> bool:
        try:
            return wit_kv.delete(key)
        except Err as error:
            raise _host_error(error) from None

    def kv_list(self, prefix: str, after: str, limit: int) -> list[tuple[str, str]]:
        try:
            entries = wit_kv.list_prefix(prefix, after, min(limit, 0xFFFFFFFF))
        except Err as error:
            raise _host_error(error) from None
        return [(entry.key, entry.value) for entry in entries]

    def kv_cas(self, key: str, expected: str | None, value: str | None, ttl_ms: int) -> bool:
        try:
            return wit_kv.compare_and_swap(key, expected, value, min(ttl_ms, 0xFFFFFFFFFFFFFFFF))
        except Err as error:
            raise _host_error(error) from None

    def pg_join(self, group: str, member: str, topic: str | None) -> bool:
        try:
            return wit_groups.join(group, member, topic)
        except Err as error:
            raise _host_error(error) from None

    def pg_leave(self, group: str, member: str, topic: str | None) -> bool:
        try:
            return wit_groups.leave(group, member, topic)
        except Err as error:
            raise _host_error(error) from None

    def pg_members(self, group: str) -> list[str]:
        try:
            return wit_groups.members(group)
        except Err as error:
            raise _host_error(error) from None

    def pg_publish(self, group: str, topic: str | None, data: str) -> int:
        try:
            return wit_groups.publish(group, topic, data)
        except Err as error:
            raise _host_error(error) from None

    def ch_create(self, name: str, kind: str, capacity: int, visibility_ms: int) -> bool:
        try:
            return wit_channels.create(name, kind, min(capacity, 0xFFFFFFFF), min(visibility_ms, 0xFFFFFFFFFFFFFFFF))
        except Err as error:
            raise _host_error(error) from None

    def ch_send(self, name: str, data: str, timeout_ms: int) -> int:
        try:
            return wit_channels.send(name, data, min(timeout_ms, 0xFFFFFFFF))
        except Err as error:
            raise _host_error(error) from None

    def ch_receive(self, name: str, subscription: str, max: int, timeout_ms: int) -> list[tuple[str, str, int]]:
        try:
            got = wit_channels.receive(name, subscription, min(max, 0xFFFFFFFF), min(timeout_ms, 0xFFFFFFFF))
        except Err as error:
            raise _host_error(error) from None
        return [(delivery.receipt, delivery.data, delivery.attempt) for delivery in got]

    def ch_ack(self, name: str, receipt: str) -> bool:
        try:
            return wit_channels.ack(name, receipt)
        except Err as error:
            raise _host_error(error) from None

    def ch_nack(self, name: str, receipt: str, delay_ms: int) -> bool:
        try:
            return wit_channels.nack(name, receipt, min(delay_ms, 0xFFFFFFFFFFFFFFFF))
        except Err as error:
            raise _host_error(error) from None

    def ch_subscribe(self, topic: str, subscription: str) -> bool:
        try:
            return wit_channels.subscribe(topic, subscription)
        except Err as error:
            raise _host_error(error) from None

    def ch_unsubscribe(self, topic: str, subscription: str) -> bool:
        try:
            return wit_channels.unsubscribe(topic, subscription)
        except Err as error:
            raise _host_error(error) from None

    def ch_consume(self, name: str, subscription: str, action: str) -> bool:
        try:
            return wit_channels.consume(name, subscription, action)
        except Err as error:
            raise _host_error(error) from None

    def ch_stop_consuming(self, name: str) -> bool:
        try:
            return wit_channels.stop_consuming(name)
        except Err as error:
            raise _host_error(error) from None

    def ch_close(self, name: str) -> bool:
        try:
            return wit_channels.close(name)
        except Err as error:
            raise _host_error(error) from None

    def reg_register(self, service: str, instance: str, metadata: str, ttl_ms: int) -> dict[str, Any]:
        try:
            return _registration(wit_registry.register(service, instance, metadata, min(ttl_ms, 0xFFFFFFFFFFFFFFFF)))
        except Err as error:
            raise _host_error(error) from None

    def reg_heartbeat(self, service: str, instance: str, ttl_ms: int) -> dict[str, Any]:
        try:
            return _registration(wit_registry.heartbeat(service, instance, min(ttl_ms, 0xFFFFFFFFFFFFFFFF)))
        except Err as error:
            raise _host_error(error) from None

    def reg_deregister(self, service: str, instance: str) -> bool:
        try:
            return wit_registry.deregister(service, instance)
        except Err as error:
            raise _host_error(error) from None

    def reg_lookup(self, service: str) -> list[dict[str, Any]]:
        try:
            found = wit_registry.lookup(service)
        except Err as error:
            raise _host_error(error) from None
        return [_registration(registration) for registration in found]

    def reg_list(self, prefix: str, after: str, limit: int) -> list[tuple[str, int]]:
        try:
            found = wit_registry.list_services(prefix, after, min(limit, 0xFFFFFFFF))
        except Err as error:
            raise _host_error(error) from None
        return [(summary.service, summary.instances) for summary in found]

    def bl_put(self, key: str, data: bytes, content_type: str) -> dict[str, Any]:
        try:
            return _blob_info(wit_blobs.put(key, data, content_type))
        except Err as error:
            raise _host_error(error) from None

    def bl_get(self, key: str) -> bytes | None:
        try:
            found = wit_blobs.get(key)
        except Err as error:
            raise _host_error(error) from None
        return None if found is None else bytes(found)

    def bl_head(self, key: str) -> dict[str, Any] | None:
        try:
            found = wit_blobs.head(key)
        except Err as error:
            raise _host_error(error) from None
        return None if found is None else _blob_info(found)

    def bl_delete(self, key: str) -> bool:
        try:
            return wit_blobs.delete(key)
        except Err as error:
            raise _host_error(error) from None

    def bl_list(self, prefix: str, after: str, limit: int) -> list[dict[str, Any]]:
        try:
            found = wit_blobs.list_prefix(prefix, after, min(limit, 0xFFFFFFFF))
        except Err as error:
            raise _host_error(error) from None
        return [_blob_info(info) for info in found]

    def bl_presign(self, key: str, method: str, ttl_ms: int) -> str:
        try:
            return wit_blobs.presign(key, method, min(ttl_ms, 0xFFFFFFFFFFFFFFFF))
        except Err as error:
            raise _host_error(error) from None

    def wf_step_begin(self, name: str) -> str | None:
        try:
            return wit_workflow.step_begin(name)
        except Err as error:
            raise _host_error(error) from None

    def wf_step_end(self, name: str, result: str) -> None:
        try:
            wit_workflow.step_end(name, result)
        except Err as error:
            raise _host_error(error) from None

    def wf_sleep(self, ms: int) -> None:
        try:
            wit_workflow.sleep(min(ms, 0xFFFFFFFFFFFFFFFF))
        except Err as error:
            raise _host_error(error) from None

    def wf_wait_signal(self, name: str, timeout_ms: int) -> bool:
        try:
            return wit_workflow.wait_signal(name, min(timeout_ms, 0xFFFFFFFFFFFFFFFF))
        except Err as error:
            raise _host_error(error) from None

    def wf_take_signals(self) -> list[str]:
        try:
            return wit_workflow.take_signals()
        except Err as error:
            raise _host_error(error) from None

    def wf_commit(self, state: bytes) -> None:
        try:
            wit_workflow.commit(state)
        except Err as error:
            raise _host_error(error) from None

    def wf_idempotency_key(self) -> str:
        return wit_workflow.idempotency_key()

    def timer_schedule(self, action: str, payload: str, delay_ms: int, durable: bool) -> str:
        try:
            return wit_timers.schedule(action, payload, min(delay_ms, 0xFFFFFFFFFFFFFFFF), durable)
        except Err as error:
            raise _host_error(error) from None

    def timer_cancel(self, timer_id: str) -> bool:
        try:
            return wit_timers.cancel(timer_id)
        except Err as error:
            raise _host_error(error) from None


def _grant(grant: Any) -> dict[str, Any]:
    return {
        "version": grant.version,
        "holder": grant.holder,
        "metadata": grant.metadata,
        "expires_at_ms": grant.expires_at_ms,
    }


def _registration(registration: Any) -> dict[str, Any]:
    return {
        "service": registration.service,
        "instance": registration.instance,
        "metadata": registration.metadata,
        "ttl_ms": registration.ttl_ms,
        "registered_at_ms": registration.registered_at_ms,
        "expires_at_ms": registration.expires_at_ms,
    }


def _blob_info(info: Any) -> dict[str, Any]:
    return {
        "key": info.key,
        "size": info.size,
        "content_type": info.content_type,
        "modified_at_ms": info.modified_at_ms,
        "etag": info.etag,
    }


_runtime: Runtime | None = None


def serve(module_name: str) -> None:
    """Serves the actor classes of the user's module (called by the generated app module)."""
    global _runtime
    specs = [cls.__plexspaces__ for cls in classes_of(module_name)]
    _runtime = Runtime(specs, f"python {__version__}")
    host.backend = _WasmHost()


def _failure(code: str, message: str, error_type: str | None = None) -> Err:
    return Err(wit_guest.Failure(code=code, message=message, error_type=error_type))


class Guest(exports.Guest):
    def describe(self) -> str:
        assert _runtime is not None
        return _runtime.describe()

    def handle(
        self,
        class_: int,
        key: str,
        state: Any,
        action: str,
        payload: bytes,
        evict: list[tuple[int, str]],
    ) -> wit_guest.Reply:
        if _runtime is None:
            raise _failure("internal", "the module serves no actor classes")
        if isinstance(state, wit_guest.StateIn_Cached):
            kind, data = CACHED, None
        elif isinstance(state, wit_guest.StateIn_Bytes):
            kind, data = BYTES, state.value
        else:
            kind, data = FRESH, None
        try:
            reply, new_state = _runtime.handle(class_, key, kind, data, action, payload, evict)
        except Failure as failure:
            raise _failure(failure.code, failure.message, failure.error_type) from None
        except BaseException as error:  # noqa: BLE001 - never trap
            raise _failure("actor_error", str(error) or repr(error), type(error).__name__) from None
        return wit_guest.Reply(payload=reply, state=new_state)
