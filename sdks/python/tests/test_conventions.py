"""The SDK conventions of the examples, under plexspaces.testing (no wasm)."""
import json

import pytest

from plexspaces import (
    HostError,
    actor,
    event_actor,
    fsm_actor,
    handler,
    host,
    query_handler,
    run_handler,
    signal_handler,
    state,
    workflow_actor,
)
from plexspaces._dispatch import BYTES, CACHED, FRESH, Failure, Runtime
from plexspaces.testing import TestHost

import counter_actor
import greeter
import order_service


def node_with(**types):
    node = TestHost()
    for name, cls in types.items():
        node.register(name, cls)
    return node


def test_payload_fields_become_keyword_arguments_and_state_is_per_id():
    node = node_with(counter=counter_actor.CounterActor)
    a, b = node.actor("counter", "a"), node.actor("counter", "b")
    assert a.call("increment", amount=5) == {"count": 5}
    assert a.call("increment", amount=2, ignored="dropped") == {"count": 7}
    assert b.call("get") == {"count": 0}
    assert a.state == {"count": 7}


def test_greeter_defaults_and_missing_required_arguments():
    node = TestHost()
    assert node.register_module("greeter", greeter) == ["greeter"]
    assert node.actor("greeter").call("greet") == {"message": "Hello, World!", "total": 1}

    @actor
    class Needs:
        @handler("go")
        def go(self, where: str) -> str:
            return where

    node.register("needs", Needs)
    with pytest.raises(HostError) as raised:
        node.actor("needs").call("go")
    assert raised.value.code == "invalid_arguments"
    assert "'where'" in raised.value.message


def test_query_values_are_converted_by_annotation():
    @actor
    class Typed:
        @handler("t")
        def t(self, n: int, x: float, on: bool, name: str, data: dict, items: list) -> list:
            return [n, x, on, name, data, items]

    node = node_with(typed=Typed)
    reply = node.actor("typed").call("t", n="3", x="1.5", on="true", name=12, data='{"a": 1}', items="[1]")
    assert reply == [3, 1.5, True, "12", {"a": 1}, [1]]
    with pytest.raises(HostError) as raised:
        node.actor("typed").call("t", n="three", x=1, on=True, name="", data={}, items=[])
    assert raised.value.code == "invalid_arguments"


def test_an_exception_fails_the_message_and_keeps_the_committed_state():
    @actor
    class Fragile:
        count: int = state(default=0)
        items: list = state(default_factory=list)

        @handler("add")
        def add(self, item: str) -> int:
            self.items.append(item)
            if item == "bad":
                raise ValueError("bad item")
            self.count += 1
            return self.count

        @handler("broken_state")
        def broken_state(self) -> None:
            self.items.append(object())

    node = node_with(fragile=Fragile)
    fragile = node.actor("fragile")
    assert fragile.call("add", item="a") == 1
    with pytest.raises(HostError) as raised:
        fragile.call("add", item="bad")
    assert (raised.value.code, raised.value.error_type, raised.value.message) == ("actor_error", "ValueError", "bad item")
    with pytest.raises(HostError) as raised:
        fragile.call("broken_state")
    assert raised.value.code == "state_not_serializable"
    assert fragile.state == {"count": 1, "items": ["a"]}
    with pytest.raises(HostError) as raised:
        fragile.call("nope")
    assert raised.value.code == "unknown_action"


def test_default_factory_runs_once_per_new_id():
    calls = []

    def fresh():
        calls.append(1)
        return []

    @actor
    class Lists:
        items: list = state(default_factory=fresh)

        @handler("add")
        def add(self, x: int) -> list:
            self.items.append(x)
            return self.items

    node = node_with(lists=Lists)
    assert node.actor("lists", "a").call("add", x=1) == [1]
    assert node.actor("lists", "a").call("add", x=2) == [1, 2]
    assert node.actor("lists", "b").call("add", x=3) == [3]
    assert len(calls) == 2


def test_tell_and_ask_reach_other_actors_and_unknown_targets_are_not_found():
    node = TestHost()
    node.register("orders", order_service.OrderService)
    node.register_module("inventory-actor", __import__("inventory"))
    node.register_module("analytics-actor", __import__("analytics"))
    orders = node.actor("orders")
    assert orders.call("place_order", order={"id": "o-1", "sku": "sku-1"}) == {"status": "confirmed", "order_id": "o-1"}
    assert orders.call("place_order", order={"id": "o-2", "sku": "sku-2"}) == {"status": "out_of_stock"}
    assert node.actor("analytics-actor").call("report")["count"] == 2
    assert [told.action for told in node.told] == ["order_placed", "order_placed"]

    @actor
    class Lost:
        @handler("go")
        def go(self) -> str:
            try:
                host.tell("nowhere", "x", {})
            except HostError as error:
                return error.code
            return "delivered"

        @handler("uncaught")
        def uncaught(self) -> None:
            host.ask("nowhere", "x", {})

    node.register("lost", Lost)
    assert node.actor("lost").call("go") == "not_found"
    # Uncaught, it fails the handler like any exception.
    with pytest.raises(HostError) as raised:
        node.actor("lost").call("uncaught")
    assert (raised.value.code, raised.value.error_type) == ("actor_error", "HostError")


def test_an_ask_cycle_is_reported_as_a_timeout():
    @actor
    class Ping:
        @handler("ping")
        def ping(self) -> dict:
            return host.ask("pong", "pong", {})

    @actor
    class Pong:
        @handler("pong")
        def pong(self) -> dict:
            return host.ask("ping", "ping", {})

    node = node_with(ping=Ping, pong=Pong)
    with pytest.raises(HostError) as raised:
        node.actor("ping").call("ping")
    # The inner ask times out (a cycle); ping's handler does not catch it, so it fails.
    assert (raised.value.code, raised.value.error_type) == ("actor_error", "HostError")
    assert "timeout" in raised.value.message


def test_fsm_event_and_workflow_behaviors():
    @fsm_actor(initial="locked")
    class Turnstile:
        coins: int = state(default=0)

        @handler("coin", from_states=["locked", "unlocked"], to="unlocked")
        def coin(self) -> int:
            self.coins += 1
            return self.coins

        @handler("push", from_states="unlocked", to="locked")
        def push(self) -> str:
            return self.fsm_state

    @event_actor
    class Audit:
        seen: list = state(default_factory=list)

        @handler("event")
        def first(self, what: str) -> str:
            self.seen.append("first:" + what)
            return "first"

        @handler("event")
        def second(self, what: str) -> str:
            self.seen.append("second:" + what)
            return "second"

    @workflow_actor
    class Flow:
        status: str = state(default="new")

        @run_handler
        def run(self, data: dict) -> dict:
            self.status = "done:" + data.get("x", "")
            return {"status": self.status}

        @signal_handler("cancel")
        def cancel(self, data: dict) -> None:
            self.status = "cancelled"

        @query_handler("status")
        def get_status(self) -> str:
            return self.status

    node = node_with(turnstile=Turnstile, audit=Audit, flow=Flow)
    turnstile = node.actor("turnstile")
    with pytest.raises(HostError) as raised:
        turnstile.call("push")
    assert raised.value.code == "invalid_state"
    assert turnstile.call("coin") == 1
    assert turnstile.call("push") == "unlocked"
    assert turnstile.state["__fsm_state__"] == "locked"
    assert node.actor("audit").call("event", what="x") == ["first", "second"]
    flow = node.actor("flow")
    assert flow.call("status") == "new"
    assert flow.call("run", x="1") == {"status": "done:1"}
    flow.call("cancel")
    assert flow.call("status") == "cancelled"


def test_the_guest_protocol_caches_and_asks_for_state_when_it_has_none():
    runtime = Runtime([counter_actor.CounterActor.__plexspaces__], "python test")
    description = json.loads(runtime.describe())
    assert description["classes"][0]["handlers"] == [
        {"name": "increment", "kind": "handler"},
        {"name": "get", "kind": "handler"},
    ]
    reply, new_state = runtime.handle(0, "a", FRESH, None, "increment", b'{"amount": 2}', [])
    assert (reply, new_state) == (b'{"count":2}', b'{"count":2}')
    reply, _ = runtime.handle(0, "a", CACHED, None, "increment", b"{}", [])
    assert reply == b'{"count":3}'
    # Evicted: the guest says so, and the host sends the bytes.
    with pytest.raises(Failure) as raised:
        runtime.handle(0, "a", CACHED, None, "get", b"{}", [(0, "a")])
    assert raised.value.code == "need_state"
    reply, _ = runtime.handle(0, "a", BYTES, b'{"count": 9}', "get", b"{}", [])
    assert reply == b'{"count":9}'
    with pytest.raises(Failure) as raised:
        runtime.handle(0, "a", CACHED, None, "get", b"not json", [])
    assert raised.value.code == "invalid_json"
