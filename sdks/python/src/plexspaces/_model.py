"""The decorators users write, and what they record about each actor class.

Mistakes are found here, when the user's module is imported, and raised as `BuildError` with
the file and line they were made on: `plexspaces-py build` imports the module under plain
CPython before any WebAssembly work starts, so a mistake costs a second, not a compile.
"""

from __future__ import annotations

import inspect
import sys
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

_MISSING: Any = object()

# Each decorated class, in the order the decorators ran.
CLASSES: list[type] = []

BEHAVIORS = ("gen_server", "gen_event", "gen_fsm", "workflow")


class BuildError(Exception):
    """A mistake in an actor module, found before it is built."""

    def __init__(self, message: str, filename: str | None = None, lineno: int | None = None):
        super().__init__(message)
        self.message = message
        self.filename = filename
        self.lineno = lineno

    def __str__(self) -> str:
        where = f"{self.filename}:{self.lineno}: " if self.filename else ""
        return f"{where}{self.message}"


def _caller(depth: int = 2) -> tuple[str | None, int | None]:
    """The file and line of the user's code that called the decorator."""
    try:
        frame = sys._getframe(depth)
    except ValueError:
        return None, None
    return frame.f_code.co_filename, frame.f_lineno


def _where(function: Callable[..., Any]) -> tuple[str | None, int | None]:
    code = getattr(function, "__code__", None)
    if code is None:
        return None, None
    return code.co_filename, code.co_firstlineno


class StateField:
    """A `state()` declaration: one value per actor id."""

    def __init__(self, default: Any, default_factory: Callable[[], Any] | None):
        self.default = default
        self.default_factory = default_factory

    def initial(self) -> Any:
        if self.default_factory is not None:
            return self.default_factory()
        return self.default


def state(default: Any = _MISSING, *, default_factory: Callable[[], Any] | None = None) -> Any:
    """A field of the actor's state: `count: int = state(default=0)` or
    `items: list = state(default_factory=list)`. `default_factory` runs once for each new id."""
    filename, lineno = _caller()
    if default is not _MISSING and default_factory is not None:
        raise BuildError("state() takes default= or default_factory=, not both", filename, lineno)
    if isinstance(default, (list, dict, set, bytearray)):
        kind = type(default).__name__
        raise BuildError(
            f"state(default=...) is a mutable {kind}, which every actor would share: "
            f"use state(default_factory={kind}) instead",
            filename,
            lineno,
        )
    if default_factory is not None and not callable(default_factory):
        raise BuildError("state(default_factory=...) must be callable", filename, lineno)
    if default is _MISSING and default_factory is None:
        default = None
    return StateField(default, default_factory)


@dataclass
class Parameter:
    name: str
    annotation: Any
    required: bool
    # The annotation's plain type (`dict` for `dict[str, int]`), None when any value will do.
    target: Any = None


@dataclass
class HandlerSpec:
    """One decorated method."""

    kind: str  # handler, run, signal or query
    name: str
    function: Callable[..., Any]
    from_states: tuple[str, ...] | None = None
    to: str | None = None
    parameters: list[Parameter] = field(default_factory=list)
    takes_kwargs: bool = False

    def bind(self) -> None:
        """Reads the method's signature: which payload fields it takes, and their types."""
        signature = inspect.signature(self.function)
        try:
            hints = typing.get_type_hints(self.function)
        except Exception:
            hints = {}
        for position, parameter in enumerate(signature.parameters.values()):
            if position == 0:
                continue  # self
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                self.takes_kwargs = True
                continue
            if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                continue
            annotation = hints.get(parameter.name, parameter.annotation)
            target = None
            if annotation is not inspect.Parameter.empty and annotation is not Any:
                target = typing.get_origin(annotation) or annotation
            self.parameters.append(
                Parameter(
                    parameter.name,
                    annotation,
                    parameter.default is inspect.Parameter.empty,
                    target if target in (bool, int, float, str, dict, list) else None,
                )
            )


_HANDLER_OPTIONS = {"from_states", "to"}


def _handler_decorator(kind: str, args: tuple[Any, ...], options: dict[str, Any], allowed: set[str]):
    filename, lineno = _caller(3)
    unknown = sorted(set(options) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise BuildError(
            f"@{_DECORATOR_NAMES[kind]} got unknown argument(s) {', '.join(unknown)} (known: {known})",
            filename,
            lineno,
        )
    if len(args) > 1:
        raise BuildError(f"@{_DECORATOR_NAMES[kind]} takes at most one name", filename, lineno)

    def mark(function: Callable[..., Any], name: str | None) -> Callable[..., Any]:
        if not callable(function):
            raise BuildError(f"@{_DECORATOR_NAMES[kind]} decorates a method", filename, lineno)
        if name is None:
            name = "run" if kind == "run" else function.__name__
        if not isinstance(name, str) or not name:
            raise BuildError(f"@{_DECORATOR_NAMES[kind]} needs a non-empty name", filename, lineno)
        from_states = options.get("from_states")
        if isinstance(from_states, str):
            from_states = (from_states,)
        elif from_states is not None:
            from_states = tuple(from_states)
        spec = HandlerSpec(kind, name, function, from_states, options.get("to"))
        specs = getattr(function, "__plexspaces_handlers__", [])
        function.__plexspaces_handlers__ = [*specs, spec]  # type: ignore[attr-defined]
        return function

    # Bare: @handler decorates the method directly.
    if len(args) == 1 and callable(args[0]) and not options:
        return mark(args[0], None)
    name = args[0] if args else None
    if name is not None and not isinstance(name, str):
        raise BuildError(f"@{_DECORATOR_NAMES[kind]}'s name must be a string", filename, lineno)
    return lambda function: mark(function, name)


_DECORATOR_NAMES = {
    "handler": "handler",
    "run": "run_handler",
    "signal": "signal_handler",
    "query": "query_handler",
}


def handler(*args: Any, **options: Any):
    """A message handler: `@handler("increment")` (or bare `@handler`: the method's name).
    The payload's other fields become keyword arguments. On an `@fsm_actor`, `from_states=`
    lists where the action is valid and `to=` where it leads."""
    return _handler_decorator("handler", args, options, _HANDLER_OPTIONS)


def run_handler(*args: Any, **options: Any):
    """A workflow's run: action `run`, one at a time; receives the payload as a dict."""
    return _handler_decorator("run", args, options, set())


def signal_handler(*args: Any, **options: Any):
    """A workflow signal: `@signal_handler("cancel")`; receives the payload as a dict."""
    return _handler_decorator("signal", args, options, set())


def query_handler(*args: Any, **options: Any):
    """A read-only workflow query: `@query_handler("status")`; keyword arguments."""
    return _handler_decorator("query", args, options, set())


@dataclass
class ClassSpec:
    """What a decorated class declares."""

    cls: type
    behavior: str
    facets: list[tuple[str, dict[str, Any]]]
    fields: dict[str, StateField]
    handlers: list[HandlerSpec]
    initial: str | None = None
    filename: str | None = None
    lineno: int | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.cls.__name__,
            "behavior": self.behavior,
            "facets": [{"name": name, "config": config} for name, config in self.facets],
            "handlers": [{"name": spec.name, "kind": spec.kind} for spec in self.handlers],
        }


def _facets(value: Any, filename: str | None, lineno: int | None) -> list[tuple[str, dict[str, Any]]]:
    if value is None:
        return []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = []
        for item in value:
            if isinstance(item, str):
                items.append((item, {}))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                items.append((item[0], item[1]))
            else:
                raise BuildError(
                    f"facets= takes names or (name, config) pairs, not {item!r}", filename, lineno
                )
    else:
        raise BuildError("facets= takes a list of facet names", filename, lineno)
    facets = []
    for name, config in items:
        if not isinstance(name, str) or not name:
            raise BuildError(f"a facet name must be a non-empty string, not {name!r}", filename, lineno)
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise BuildError(f"facet {name!r}'s config must be a dict", filename, lineno)
        facets.append((name, config))
    return facets


def _class_decorator(behavior: str, args: tuple[Any, ...], options: dict[str, Any]):
    filename, lineno = _caller(3)
    allowed = {"facets"} | ({"initial"} if behavior == "gen_fsm" else set())
    decorator = {
        "gen_server": "actor",
        "gen_event": "event_actor",
        "gen_fsm": "fsm_actor",
        "workflow": "workflow_actor",
    }[behavior]
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise BuildError(
            f"@{decorator} got unknown argument(s) {', '.join(unknown)} (known: {', '.join(sorted(allowed))})",
            filename,
            lineno,
        )

    def register(cls: type) -> type:
        if not isinstance(cls, type):
            raise BuildError(f"@{decorator} decorates a class", filename, lineno)
        spec = _inspect_class(cls, behavior, decorator, options)
        cls.__plexspaces__ = spec  # type: ignore[attr-defined]
        CLASSES.append(cls)
        return cls

    if len(args) == 1 and isinstance(args[0], type) and not options:
        return register(args[0])
    if args:
        raise BuildError(f"@{decorator} takes keyword arguments only", filename, lineno)
    return register


def _inspect_class(cls: type, behavior: str, decorator: str, options: dict[str, Any]) -> ClassSpec:
    try:
        filename = inspect.getsourcefile(cls)
        lineno = inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        filename, lineno = _caller(4)
    fields: dict[str, StateField] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, StateField):
                fields[name] = value
    handlers: list[HandlerSpec] = []
    seen: dict[tuple[str, str], HandlerSpec] = {}
    for klass in reversed(cls.__mro__):
        for value in vars(klass).values():
            for spec in getattr(value, "__plexspaces_handlers__", []):
                spec_file, spec_line = _where(spec.function)
                if behavior != "workflow" and spec.kind != "handler":
                    raise BuildError(
                        f"@{_DECORATOR_NAMES[spec.kind]} belongs on a @workflow_actor, not an @{decorator}",
                        spec_file,
                        spec_line,
                    )
                if behavior == "workflow" and spec.kind == "handler":
                    raise BuildError(
                        "a @workflow_actor takes @run_handler, @signal_handler and @query_handler, not @handler",
                        spec_file,
                        spec_line,
                    )
                if behavior != "gen_fsm" and (spec.from_states is not None or spec.to is not None):
                    raise BuildError(
                        "from_states= and to= belong on the handlers of an @fsm_actor",
                        spec_file,
                        spec_line,
                    )
                # Workflow handlers of every kind share one name space: the action.
                key = ("action", spec.name)
                if key in seen and behavior != "gen_event":
                    first = seen[key]
                    _, first_line = _where(first.function)
                    raise BuildError(
                        f"two handlers are named {spec.name!r} (the first at line {first_line})",
                        spec_file,
                        spec_line,
                    )
                seen.setdefault(key, spec)
                spec.bind()
                handlers.append(spec)
    if behavior == "workflow" and not any(spec.kind == "run" for spec in handlers):
        raise BuildError(f"{cls.__name__} is a @workflow_actor without a @run_handler", filename, lineno)
    initial = options.get("initial")
    if behavior == "gen_fsm":
        if not isinstance(initial, str) or not initial:
            raise BuildError("@fsm_actor needs initial=\"<state>\"", filename, lineno)
    return ClassSpec(
        cls=cls,
        behavior=behavior,
        facets=_facets(options.get("facets"), filename, lineno),
        fields=fields,
        handlers=handlers,
        initial=initial,
        filename=filename,
        lineno=lineno,
    )


def actor(*args: Any, **options: Any):
    """A GenServer actor class: `@actor` or `@actor(facets=["metrics"])`."""
    return _class_decorator("gen_server", args, options)


def event_actor(*args: Any, **options: Any):
    """A GenEvent actor: several handlers may take one action; each runs, in order."""
    return _class_decorator("gen_event", args, options)


def fsm_actor(*args: Any, **options: Any):
    """A GenFSM actor: `@fsm_actor(initial="locked")`; handlers say `from_states=` and `to=`."""
    return _class_decorator("gen_fsm", args, options)


def workflow_actor(*args: Any, **options: Any):
    """A workflow: `@run_handler`, `@signal_handler`, `@query_handler`."""
    return _class_decorator("workflow", args, options)


def classes_of(module_name: str) -> list[type]:
    """The actor classes a module defines, in the order they appear in its file."""
    found = [cls for cls in CLASSES if cls.__module__ == module_name]
    return sorted(found, key=lambda cls: cls.__plexspaces__.lineno or 0)
