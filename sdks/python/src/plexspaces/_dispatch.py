"""How a message reaches a handler: state in, arguments bound, state out.

The same code runs inside the WebAssembly guest and under `plexspaces.testing`, so a unit test
exercises exactly what the node will run. Nothing here may raise past `Runtime.handle` except
`Failure`: an exception that escaped would trap the instance.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ._model import ClassSpec, HandlerSpec

FSM_KEY = "__fsm_state__"


class Failure(Exception):
    """A handler that did not succeed, with its catalogue code."""

    def __init__(self, code: str, message: str, error_type: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.error_type = error_type


# One encoder, made once: `json.dumps` with any argument builds a new encoder per call, which
# cost more than the encoding itself (3 µs of a 4 µs dumps of a small dict). Strict JSON: NaN
# and infinities are refused, as every other JSON reader refuses them.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_DECODER = json.JSONDecoder()


# The C encoder's record of the containers it is inside, to refuse a cycle (which would
# otherwise overflow the guest's stack). An encode that fails midway leaves entries: cleared.
_MARKERS: dict[int, Any] = {}


def _c_codec() -> tuple[Any, Any] | None:
    """CPython's C encoder and scanner, made once. `JSONEncoder.encode` builds the C encoder
    anew on every call, and `decode` adds a regex pass; called directly they take a third of
    the time for the small objects actors pass. Used only if they encode a probe exactly as the
    reference encoder does; otherwise the reference path serves."""
    try:
        import _json

        encode = _json.make_encoder(
            _MARKERS,
            _ENCODER.default,
            json.encoder.encode_basestring,
            None,
            ":",
            ",",
            False,
            False,
            False,
        )
        scan = _json.make_scanner(_DECODER)
        probe = {"a": [1, -2.5, True, None, "é\n\"x"], "b": {}, "c": 10**20}
        if "".join(encode(probe, 0)) != _ENCODER.encode(probe):
            return None
        if scan('{"a":[1,2]}', 0) != ({"a": [1, 2]}, 11):
            return None
        return encode, scan
    except Exception:  # noqa: BLE001 - any surprise means: use the reference path
        return None


_C_CODEC = _c_codec()


if _C_CODEC is not None:
    _C_ENCODE, _C_SCAN = _C_CODEC

    def dumps_text(value: Any) -> str:
        """Compact JSON text, through the C encoder."""
        try:
            return "".join(_C_ENCODE(value, 0))
        except BaseException:
            _MARKERS.clear()
            raise

    def _dumps(value: Any) -> bytes:
        return dumps_text(value).encode()

    def _loads(data: bytes) -> Any:
        text = data.decode("utf-8")
        try:
            value, end = _C_SCAN(text, 0)
            if end == len(text):
                return value
        except StopIteration:
            pass
        # Whitespace around the value, or not JSON: the full decoder decides, with its message.
        return _DECODER.decode(text)

else:

    def dumps_text(value: Any) -> str:
        """Compact JSON text."""
        return _ENCODER.encode(value)

    def _dumps(value: Any) -> bytes:
        return _ENCODER.encode(value).encode()

    def _loads(data: bytes) -> Any:
        # `json.loads` on bytes first sniffs the encoding; the payload is UTF-8 JSON.
        return _DECODER.decode(data.decode("utf-8"))


def _convert(name: str, value: Any, target: Any) -> Any:
    """Converts a payload value to the parameter's type (GET queries arrive as text)."""
    try:
        if target is bool:
            if isinstance(value, str):
                lowered = value.lower()
                if lowered in ("true", "1", "yes"):
                    return True
                if lowered in ("false", "0", "no"):
                    return False
                raise ValueError(value)
            return value
        if target is int and isinstance(value, str):
            return int(value)
        if target is float and isinstance(value, (str, int)) and not isinstance(value, bool):
            return float(value)
        if target is str and isinstance(value, (int, float, bool)):
            return json.dumps(value)
        if target in (dict, list) and isinstance(value, str):
            parsed = json.loads(value)
            if not isinstance(parsed, target):
                raise ValueError(value)
            return parsed
    except (ValueError, TypeError):
        raise Failure(
            "invalid_arguments", f"argument {name!r} must be {target.__name__}, not {value!r}"
        ) from None
    return value


class ClassRuntime:
    """One actor class, ready to serve messages."""

    def __init__(self, spec: ClassSpec):
        self.spec = spec
        self.fields = spec.fields
        self.handlers: dict[str, list[HandlerSpec]] = {}
        for handler in spec.handlers:
            self.handlers.setdefault(handler.name, []).append(handler)
        self.fsm = spec.behavior == "gen_fsm"
        self.durable = any(name == "durability" for name, _ in spec.facets)

    # State ---------------------------------------------------------------------------------
    def new(self) -> Any:
        obj = object.__new__(self.spec.cls)
        for name, declared in self.fields.items():
            setattr(obj, name, declared.initial())
        if self.fsm:
            obj.fsm_state = self.spec.initial
        return obj

    def restore(self, data: bytes) -> Any:
        try:
            saved = _loads(data)
        except ValueError as error:
            raise Failure("internal", f"the stored state is not JSON: {error}") from None
        if not isinstance(saved, dict):
            raise Failure("internal", "the stored state is not a JSON object")
        obj = object.__new__(self.spec.cls)
        for name, declared in self.fields.items():
            # A field added since the state was stored gets its default.
            setattr(obj, name, saved[name] if name in saved else declared.initial())
        if self.fsm:
            obj.fsm_state = saved.get(FSM_KEY, self.spec.initial)
        return obj

    def snapshot(self, obj: Any) -> bytes:
        values = {name: getattr(obj, name) for name in self.fields}
        if self.fsm:
            values[FSM_KEY] = obj.fsm_state
        try:
            return _dumps(values)
        except (TypeError, ValueError) as error:
            raise Failure(
                "state_not_serializable",
                f"the state of {self.spec.cls.__name__} cannot be stored as JSON: {error}",
            ) from None

    # Messages ------------------------------------------------------------------------------
    def dispatch(self, obj: Any, action: str, payload: dict[str, Any]) -> tuple[Any, bool]:
        """Runs the handler(s) of `action`; returns the reply and whether state may have changed."""
        handlers = self.handlers.get(action)
        if not handlers:
            known = ", ".join(sorted(self.handlers)) or "none"
            raise Failure(
                "unknown_action",
                f"{self.spec.cls.__name__} has no handler for action {action!r} (handlers: {known})",
            )
        first = handlers[0]
        if self.fsm:
            current = obj.fsm_state
            if first.from_states is not None and current not in first.from_states:
                raise Failure(
                    "invalid_state",
                    f"action {action!r} is not valid in state {current!r} "
                    f"(valid in: {', '.join(first.from_states)})",
                )
        if first.kind == "run":
            from . import host

            previous = host._current_run
            host._current_run = host._Run(self, obj)
            try:
                return first.function(obj, payload), True
            finally:
                host._current_run = previous
        if first.kind == "signal":
            return first.function(obj, payload), True
        if first.kind == "query":
            return first.function(obj, **self.arguments(first, payload)), False
        if self.spec.behavior == "gen_event":
            replies = [spec.function(obj, **self.arguments(spec, payload)) for spec in handlers]
            return replies, True
        reply = first.function(obj, **self.arguments(first, payload))
        if self.fsm and first.to is not None:
            obj.fsm_state = first.to
        return reply, True

    @staticmethod
    def arguments(spec: HandlerSpec, payload: dict[str, Any]) -> dict[str, Any]:
        bound: dict[str, Any] = {}
        for parameter in spec.parameters:
            if parameter.name in payload:
                value = payload[parameter.name]
                if parameter.target is not None and value is not None:
                    value = _convert(parameter.name, value, parameter.target)
                bound[parameter.name] = value
            elif parameter.required:
                raise Failure(
                    "invalid_arguments",
                    f"action {spec.name!r} needs the field {parameter.name!r}",
                )
        if spec.takes_kwargs:
            declared = {parameter.name for parameter in spec.parameters}
            for key, value in payload.items():
                if key != "action" and key not in declared:
                    bound[key] = value
        return bound


FRESH, CACHED, BYTES = 0, 1, 2


def _suspended() -> type[BaseException]:
    from .host import Suspended

    return Suspended


def _seed_random() -> None:
    module = sys.modules.get("random")
    if module is None:
        return
    from . import host

    try:
        module.seed(host.backend.random_u64())
    except Exception:  # noqa: BLE001 - no host (a bare import): the generator stays as it is
        pass


class Runtime:
    """Every class of a module, and the actors this instance keeps between messages."""

    def __init__(self, specs: list[ClassSpec], sdk: str):
        self.classes = [ClassRuntime(spec) for spec in specs]
        self.sdk = sdk
        self.cache: dict[tuple[int, str], Any] = {}
        self.seeded = False

    def describe(self) -> str:
        from . import WORLD_VERSION

        return json.dumps(
            {
                "world": WORLD_VERSION,
                "sdk": self.sdk,
                "classes": [runtime.spec.describe() for runtime in self.classes],
            }
        )

    def handle(
        self,
        class_index: int,
        key: str,
        state_kind: int,
        state: bytes | None,
        action: str,
        payload: bytes,
        evict: list[tuple[int, str]],
    ) -> tuple[bytes, bytes | None]:
        for evicted in evict:
            self.cache.pop(tuple(evicted), None)
        if not 0 <= class_index < len(self.classes):
            raise Failure("internal", f"this module has no class number {class_index}")
        runtime = self.classes[class_index]
        # Python's `random` draws from its own generator, not the host: seed it from the host
        # (journaled for a durable actor, so a replay draws the same numbers), once per
        # message for a durable class and once per instance otherwise, since every instance
        # of a module starts from the generator state the build left in it.
        if runtime.durable or not self.seeded:
            _seed_random()
            self.seeded = True
        cache_key = (class_index, key)
        if state_kind == CACHED:
            obj = self.cache.get(cache_key)
            if obj is None:
                raise Failure("need_state", "this instance no longer keeps the actor's state")
        elif state_kind == BYTES:
            obj = runtime.restore(state or b"{}")
        else:
            obj = runtime.new()
        # From here on the object may change: on any failure, forget it, so the next message
        # starts again from the committed state.
        self.cache.pop(cache_key, None)
        try:
            message = _loads(payload) if payload else {}
        except ValueError as error:
            raise Failure("invalid_json", f"the payload is not JSON: {error}") from None
        if not isinstance(message, dict):
            raise Failure("invalid_arguments", "the payload must be a JSON object")
        try:
            reply, changed = runtime.dispatch(obj, action, message)
        except Failure:
            raise
        except _suspended() as waiting:
            # The run waits: it gives up the instance, and the node resumes it by replay.
            raise Failure("suspended", str(waiting)) from None
        except RecursionError as error:
            raise Failure("actor_error", f"maximum recursion depth exceeded: {error}", "RecursionError") from None
        except BaseException as error:  # noqa: BLE001 - user code must never trap the instance
            raise Failure("actor_error", str(error) or repr(error), type(error).__name__) from None
        try:
            reply_bytes = _dumps(reply)
        except (TypeError, ValueError) as error:
            raise Failure(
                "actor_error",
                f"the reply of {action!r} cannot be sent as JSON: {error}",
                "TypeError",
            ) from None
        new_state = runtime.snapshot(obj) if changed else None
        self.cache[cache_key] = obj
        return reply_bytes, new_state
