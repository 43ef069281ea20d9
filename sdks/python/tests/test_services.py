"""The tuple space and locks of plexspaces.testing, through the project's examples."""

import importlib.util
import pathlib

import pytest

from plexspaces import actor, handler, host
from plexspaces.testing import HostError, TestHost

EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples/python/tuplespace_orders.py"


def load_example():
    spec = importlib.util.spec_from_file_location("tuplespace_orders", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_orders_flow_through_the_space():
    node = TestHost()
    node.register_module("orders", load_example())
    producer = node.actor("orders.order_producer")
    processor = node.actor("orders.order_processor")
    assert processor.call("process_next") == {"status": "no_pending_orders"}
    producer.call("create_order", order_id="o1", items=["a"])
    producer.call("create_order", order_id="o2", items=["b", "c"])
    assert processor.call("process_next") == {"processed": "o1"}
    assert processor.call("process_next") == {"processed": "o2"}
    assert processor.call("process_next") == {"status": "no_pending_orders"}
    assert node.tuples() == [["order", "o1", "completed", ["a"]], ["order", "o2", "completed", ["b", "c"]]]


@actor
class Space:
    @handler("put")
    def put(self, t: list, lease_ms: int = 0) -> None:
        host.ts_write(t, lease_ms)

    @handler("find")
    def find(self, p: list, take: bool = False):
        return host.ts_take(p) if take else host.ts_read(p)

    @handler("count")
    def count(self, p: list) -> int:
        return host.ts_count(p)

    @handler("later")
    def later(self, p: list) -> None:
        host.ts_take_later(p, "got")

    @handler("got")
    def got(self, tuple: list) -> None:
        host.log(f"got {tuple}")


def test_patterns_leases_and_asynchronous_takes():
    node = TestHost()
    node.register("space", Space)
    space = node.actor("space")
    space.call("put", t=["n", 1])
    space.call("put", t=["n", 1.0])
    space.call("put", t=["n", True])
    assert space.call("count", p=["n", {"$type": "int"}]) == 1
    assert space.call("count", p=["n", {"$type": "number"}]) == 2
    assert space.call("find", p=["n", 1.0], take=True) == "[\"n\",1.0]"
    assert space.call("count", p=["n", None]) == 2
    space.call("put", t=["short"], lease_ms=100)
    assert space.call("count", p=["short"]) == 1
    node.now_ms += 101
    assert space.call("count", p=["short"]) == 0
    space.call("later", p=["evt", None])
    assert node.logs == []
    space.call("put", t=["evt", 5])
    assert node.logs[-1][2] == "got ['evt', 5]"
    assert node.tuples() == [["n", 1], ["n", True]]


@pytest.mark.parametrize(
    "pattern, says",
    [([], "at least one field"), ([{"$type": "date"}], "unknown $type"), ([1] * 65, "at most 64")],
)
def test_bad_patterns_are_refused(pattern, says):
    node = TestHost()
    node.register("space", Space)
    with pytest.raises(HostError) as raised:
        node.actor("space").call("count", p=pattern)
    assert says in raised.value.message


def load(name):
    path = EXAMPLE.parent / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_leader_election_grants_one_leader_until_its_lease_ends():
    node = TestHost()
    node.register_module("election", load("leader_election"))
    assert node.actor("election", "a").call("try_lead", candidate_id="alice") == {"leader": True, "candidate_id": "alice"}
    assert node.actor("election", "b").call("try_lead", candidate_id="bob") == {"leader": False}
    # Alice again renews her lease.
    assert node.actor("election", "a").call("try_lead", candidate_id="alice")["leader"] is True
    first = node.actor("election", "a").state["lock_version"]
    node.now_ms += 31_000
    assert node.actor("election", "b").call("try_lead", candidate_id="bob")["leader"] is True
    assert int(node.actor("election", "b").state["lock_version"]) > int(first)


@actor
class Locker:
    @handler("short")
    def short(self, name: str, timeout_ms: int = 0):
        return host.lock_acquire(name, timeout_ms)

    @handler("release")
    def release(self, name: str, version: str) -> bool:
        return host.lock_release(name, version)

    @handler("renew")
    def renew(self, name: str, version: str) -> str:
        return host.lock_renew(name, version, 10)


def test_the_short_form_release_and_renew():
    node = TestHost()
    node.register("locker", Locker)
    one, two = node.actor("locker", "one"), node.actor("locker", "two")
    version = one.call("short", name="refund:1")
    assert version.isdigit()
    assert two.call("short", name="refund:1") is None
    assert '"version": "%s"' % version in one.call("renew", name="refund:1", version=version)
    with pytest.raises(HostError) as raised:
        two.call("renew", name="refund:1", version=version)
    # Uncaught in the handler, the HostError is the call's actor_error, as in a node.
    assert (raised.value.code, raised.value.error_type) == ("actor_error", "HostError")
    assert "invalid_state" in raised.value.message
    assert one.call("release", name="refund:1", version=version) is True
    assert one.call("release", name="refund:1", version=version) is False
    assert two.call("short", name="refund:1") is not None


CHAT_ROOM = pathlib.Path(__file__).resolve().parents[3] / "examples/python/chat_room.py"
CHAT_MEMBER = pathlib.Path(__file__).resolve().parents[3] / "examples/python/chat_member.py"


def load_path(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_group_publishes_reach_each_member_once_and_the_room_drops_its_own():
    node = TestHost()
    node.register_module("room", load_path(CHAT_ROOM, "chat_room"))
    node.register_module("member", load_path(CHAT_MEMBER, "chat_member"))
    room = node.actor("room", "r1")
    a, b = node.actor("member", "a"), node.actor("member", "b")
    assert a.call("join", room_name="lobby") == {"joined": True, "room": "lobby", "topic": None}
    assert b.call("join", room_name="lobby", topic="news")["joined"] is True
    assert room.call("join", room_name="lobby") == {"status": "joined", "room": "lobby"}
    members = room.call("members", room_name="lobby")["members"]
    assert members == ["default/member/a", "default/member/b", "default/room/r1"]
    for seq in range(3):
        a.call("say", room_name="lobby", text="hi", seq=seq)
    assert [m["data"]["seq"] for m in a.call("received")["received"]] == [0, 1, 2]
    assert b.call("received")["count"] == 0
    assert a.call("say", room_name="lobby", text="n", topic="news") == {"sent_to": 3}
    assert b.call("received")["received"][0]["topic"] == "news"
    assert node.dropped_pg_messages == 4, "the room has no pg_message handler"
    assert b.call("leave", room_name="lobby", topic="news") == {"left": True}
    assert room.call("members", room_name="lobby")["members"] == ["default/member/a", "default/room/r1"]


@actor
class Store:
    @handler("put")
    def put(self, key: str, value, ttl_ms: int = 0) -> None:
        host.kv_put(key, value, ttl_ms)

    @handler("get")
    def get(self, key: str):
        return host.kv_get(key)

    @handler("list")
    def list_(self, prefix: str = "", after: str = ""):
        return host.kv_list(prefix, 10, after)

    @handler("cas")
    def cas(self, key: str, expected=None, value=None) -> bool:
        return host.kv_cas(key, expected, value)

    @handler("delete")
    def delete(self, key: str) -> bool:
        return host.kv_delete(key)


def test_kv_calls_with_expiry_and_compare_and_swap():
    node = TestHost()
    node.register("store", Store)
    store = node.actor("store")
    store.call("put", key="a", value={"n": 1})
    store.call("put", key="b", value="text")
    store.call("put", key="tmp", value="x", ttl_ms=1000)
    assert store.call("get", key="a") == '{"n":1}'
    assert store.call("list", prefix="") == [["a", '{"n":1}'], ["b", "text"], ["tmp", "x"]]
    assert store.call("list", after="a") == [["b", "text"], ["tmp", "x"]]
    node.now_ms += 1000
    assert store.call("get", key="tmp") is None
    assert store.call("cas", key="b", expected="nope", value="y") is False
    assert store.call("cas", key="b", expected="text", value="y") is True
    assert store.call("cas", key="c", expected=None, value="1") is True
    assert store.call("delete", key="c") is True
    assert store.call("delete", key="c") is False
    assert node.kv() == {"a": '{"n":1}', "b": "y"}
    with pytest.raises(HostError) as refused:
        store.call("put", key="", value="v")
    assert refused.value.code == "actor_error"
