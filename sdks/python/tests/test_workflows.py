"""Durable workflows and timers under plexspaces.testing, through the project's examples."""

import pytest

import order_workflow_steps
from plexspaces import actor, handler, host, state, workflow_actor, run_handler
from plexspaces.testing import HostError, TestHost


def fulfillment(node):
    node.register("fulfillment", order_workflow_steps.OrderFulfillment)
    charges = []
    node.on_ask("payments", "charge", lambda payload: charges.append(payload) or {"charge_id": "c1"})
    node.on_ask("payments", "refund", lambda payload: {"refunded": payload["charge"]["charge_id"]})
    shipped = []
    node.on_tell("shipping", "ship", lambda payload: shipped.append(payload["order_id"]))
    return node.actor("fulfillment", "o-1"), charges, shipped


def test_a_signal_sent_before_the_wait_is_taken_and_the_run_completes():
    node = TestHost()
    workflow, charges, shipped = fulfillment(node)
    workflow.tell("approve", by="ops")  # kept until the run takes it
    started = node.now_ms
    assert workflow.call("run", order_id="o-1", amount=30) == {"status": "completed", "order_id": "o-1"}
    node.run_until_idle()
    assert charges == [{"order_id": "o-1", "amount": 30}]
    assert shipped == ["o-1"]
    assert [name for _, name, _ in node.steps] == ["charge", "ship"]
    # The durable sleep moved the test's clock on by 2 s.
    assert node.now_ms - started >= 2000
    assert workflow.call("status") == {"order_id": "o-1", "status": "completed", "steps": ["payment", "shipment"]}


def test_no_approval_times_out_and_refunds():
    node = TestHost()
    workflow, _, shipped = fulfillment(node)
    assert workflow.call("run", order_id="o-1", amount=5) == {"status": "cancelled", "order_id": "o-1"}
    assert [name for _, name, _ in node.steps] == ["charge", "refund"]
    assert shipped == []
    # A signal taken at the run's first host call reaches its handler (the example then sets
    # its status on, as written).
    node2 = TestHost()
    workflow2, _, _ = fulfillment(node2)
    workflow2.tell("cancel")
    workflow2.tell("approve")
    assert workflow2.call("run", order_id="o-1", amount=5)["status"] == "completed"
    # The last commit was at the ship step, before the run set its final status.
    assert node2.committed["default/fulfillment/o-1"]["status"] == "charged"


def test_step_and_sleep_outside_a_run_are_refused():
    @actor
    class Plain:
        @handler("go")
        def go(self) -> None:
            host.step("x", lambda: 1)

    node = TestHost()
    node.register("plain", Plain)
    with pytest.raises(HostError) as error:
        node.actor("plain").call("go")
    assert error.value.code == "actor_error"
    assert "invalid_state" in error.value.message


def test_timers_fire_in_due_order_and_cancelled_ones_do_not():
    @actor
    class Reminded:
        fired: list = state(default_factory=list)

        @handler("arm")
        def arm(self) -> dict:
            late = host.schedule("ring", {"n": 2}, delay_ms=500, durable=True)
            early = host.schedule("ring", {"n": 1}, delay_ms=100)
            never = host.schedule("ring", {"n": 3}, delay_ms=50)
            assert host.cancel_timer(never) is True
            return {"ids": [late, early]}

        @handler("ring")
        def ring(self, n: int) -> None:
            self.fired.append(n)

    node = TestHost()
    node.register("reminded", Reminded)
    reminded = node.actor("reminded")
    assert len(reminded.call("arm")["ids"]) == 2
    assert node.fire_timers() == 2
    assert reminded.state == {"fired": [1, 2]}


def test_a_step_result_must_be_json():
    @workflow_actor(facets=["durability"])
    class Bad:
        @run_handler
        def run(self, data: dict) -> dict:
            host.step("s", lambda: object())
            return {}

    node = TestHost()
    node.register("bad", Bad)
    with pytest.raises(HostError) as error:
        node.actor("bad").call("run")
    assert "not JSON" in error.value.message
