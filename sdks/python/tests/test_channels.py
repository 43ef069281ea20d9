"""Channels under plexspaces.testing: queues, topics, receipts, capacity, consumers, and the
SEDA pipeline example with its backpressure."""

import importlib.util
import pathlib

import pytest

from plexspaces import actor, handler, host, state
from plexspaces.testing import HostError, TestHost
from support import refused

EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples/python/seda_pipeline.py"


def load_example():
    spec = importlib.util.spec_from_file_location("seda_pipeline", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@actor
class Client:
    @handler("create")
    def create(self, name: str, kind: str = "queue", capacity: int = 0, visibility_ms: int = 0):
        return host.channels.create(name, kind, capacity, visibility_ms)

    @handler("send")
    def send(self, name: str, data):
        return host.channels.send(name, data)

    @handler("receive")
    def receive(self, name: str, max: int = 1, subscription: str | None = None):
        return host.channels.receive(name, max=max, subscription=subscription)

    @handler("ack")
    def ack(self, name: str, receipt: str):
        return host.channels.ack(name, receipt)

    @handler("nack")
    def nack(self, name: str, receipt: str, delay_ms: int = 0):
        return host.channels.nack(name, receipt, delay_ms)

    @handler("subscribe")
    def subscribe(self, topic: str, subscription: str):
        return host.channels.subscribe(topic, subscription)

    @handler("close")
    def close(self, name: str):
        return host.channels.close(name)


@actor
class Recorder:
    seen: list = state(default_factory=list)
    fail_first: bool = state(default=False)

    @handler("listen")
    def listen(self, name: str, subscription: str | None = None, fail_first: bool = False):
        self.fail_first = fail_first
        return host.channels.consume(name, "message", subscription)

    @handler("message")
    def message(self, data, channel: str, receipt: str, attempt: int, subscription: str | None = None):
        if self.fail_first and attempt == 1:
            raise RuntimeError("not yet")
        self.seen.append([data, attempt])

    @handler("seen")
    def get_seen(self):
        return self.seen


def node_with(*types):
    node = TestHost()
    for name, cls in types:
        node.register(name, cls)
    return node


def test_a_queue_delivers_once_until_acknowledged_and_counts_redeliveries():
    node = node_with(("client", Client))
    client = node.actor("client")
    assert client.call("create", name="jobs") is True
    assert client.call("create", name="jobs") is False
    assert refused(client.call, action="create", name="jobs", capacity=5) == "already_exists"
    for value in (1, 2):
        assert client.call("send", name="jobs", data={"n": value}) == 1
    first = client.call("receive", name="jobs", max=5)
    assert [(d["data"], d["attempt"]) for d in first] == [({"n": 1}, 1), ({"n": 2}, 1)]
    assert client.call("receive", name="jobs") == []
    assert client.call("ack", name="jobs", receipt=first[0]["receipt"]) is True
    assert client.call("ack", name="jobs", receipt=first[0]["receipt"]) is False
    assert client.call("nack", name="jobs", receipt=first[1]["receipt"]) is True
    again = client.call("receive", name="jobs")
    assert again[0]["attempt"] == 2
    assert client.call("ack", name="jobs", receipt=first[1]["receipt"]) is False
    # Past the visibility timeout, an unacknowledged message comes again.
    node.now_ms += 30_001
    third = client.call("receive", name="jobs")
    assert third[0]["attempt"] == 3
    stats = node.channels()["jobs"]["queues"][""]
    assert stats == {"ready": 0, "in_flight": 1, "acked": 1, "redelivered": 2}


def test_a_topic_fans_out_to_every_subscription():
    node = node_with(("client", Client))
    client = node.actor("client")
    client.call("create", name="events", kind="topic")
    assert client.call("send", name="events", data=0) == 0
    for sub in ("a", "b"):
        assert client.call("subscribe", topic="events", subscription=sub) is True
    assert client.call("send", name="events", data=1) == 2
    for sub in ("a", "b"):
        got = client.call("receive", name="events", subscription=sub)
        assert got[0]["data"] == 1 and got[0]["receipt"].startswith(f"{sub}/")
    assert refused(client.call, action="receive", name="events") == "invalid_arguments"


def test_capacity_closing_and_bad_input():
    node = node_with(("client", Client))
    client = node.actor("client")
    client.call("create", name="small", capacity=1)
    client.call("send", name="small", data="x")
    assert refused(client.call, action="send", name="small", data="y") == "channel_full"
    assert client.call("close", name="small") is True
    client.call("receive", name="small")
    assert refused(client.call, action="send", name="small", data="z") == "invalid_state"
    assert refused(client.call, action="send", name="nope", data=1) == "not_found"
    assert refused(client.call, action="create", name="q", kind="stack") == "invalid_arguments"
    assert refused(client.call, action="ack", name="small", receipt="garbage") == "invalid_arguments"


def test_consumers_get_each_message_and_failures_come_back():
    node = node_with(("client", Client), ("recorder", Recorder))
    node.actor("client").call("create", name="work")
    recorder = node.actor("recorder", "r1")
    assert recorder.call("listen", name="work", fail_first=True) is True
    for value in range(3):
        node.channel_send("work", value)
    # Each first attempt failed: given back with a backoff, delivered once the clock passes it.
    assert recorder.call("seen") == []
    node.now_ms += 1_000
    node.run_until_idle()
    assert recorder.call("seen") == [[0, 2], [1, 2], [2, 2]]
    assert node.channels()["work"]["queues"][""]["acked"] == 3


def test_the_seda_pipeline_backs_up_to_its_first_stage_and_loses_nothing():
    module = load_example()
    node = TestHost()
    node.register_module("seda", module)
    for stage in ("validate", "enrich", "store"):
        node.actor(f"seda.{stage}").call("start")
    accepted = 0
    with pytest.raises(HostError) as full:
        for n in range(100):
            node.channel_send("orders", {"id": f"o{n}", "sku": "apple", "qty": 2})
            accepted += 1
    assert full.value.code == "channel_full", node.logs
    # Every channel is full: the backpressure went from the last stage to the first.
    assert accepted == 3 * module.CAPACITY, (node.channels(), node.logs)
    for name in ("orders", "validated", "enriched"):
        queue = node.channels()[name]["queues"][""]
        assert queue["ready"] + queue["in_flight"] == module.CAPACITY, name
    store = node.actor("seda.store")
    stored = 0
    for _ in range(50):
        node.now_ms += 60_000  # past every backoff: the waiting stages try again
        node.run_until_idle()
        stored = store.call("drain")["orders"]
        if stored == accepted:
            break
    assert stored == accepted
    assert store.call("stats")["revenue"] == accepted * 2 * module.PRICES["apple"]
    # A bad order is acknowledged and counted, not passed on.
    node.channel_send("orders", {"id": "bad", "qty": -1})
    assert node.actor("seda.validate").call("stats")["rejected"] == 1
