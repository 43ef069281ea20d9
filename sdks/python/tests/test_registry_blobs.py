"""The service registry and the blob store under plexspaces.testing: every host call through an
actor, with the node's rules (names, keys, metadata, times to live, limits, expiry by the test
clock, etags, the 8 MiB guest limit) and presigned URLs served as the node serves them."""

import base64
import hashlib
import hmac
import json
import urllib.parse

import pytest

from plexspaces import actor, handler, host
from plexspaces.testing import HostError, TestHost
from support import refusal, refused

T0 = 1_700_000_000_000
MIB = 1024 * 1024


@actor
class Service:
    """Calls host.registry; `instance` None means this actor."""

    @handler("register")
    def register(self, service, instance=None, metadata=None, ttl_ms=0):
        return host.registry.register(service, instance, metadata, ttl_ms)

    @handler("heartbeat")
    def heartbeat(self, service, instance=None, ttl_ms=0):
        return host.registry.heartbeat(service, instance, ttl_ms)

    @handler("deregister")
    def deregister(self, service, instance=None):
        return host.registry.deregister(service, instance)

    @handler("lookup")
    def lookup(self, service):
        return host.registry.lookup(service)

    @handler("list")
    def list_services(self, prefix="", after="", limit=100):
        return host.registry.list(prefix, after, limit)


@actor
class Store:
    """Calls host.blobs; bytes travel as base64 (`b64`), text as `text`, `size` makes that
    many bytes of b"x"."""

    @handler("put")
    def put(self, key, text=None, b64=None, size=None, content_type=""):
        if text is not None:
            data = text
        elif b64 is not None:
            data = base64.b64decode(b64)
        else:
            data = b"x" * size
        return host.blobs.put(key, data, content_type)

    @handler("put_raw")
    def put_raw(self, key, data):
        return host.blobs.put(key, data)

    @handler("get")
    def get(self, key):
        data = host.blobs.get(key)
        return None if data is None else base64.b64encode(data).decode()

    @handler("get_digest")
    def get_digest(self, key):
        data = host.blobs.get(key)
        return None if data is None else [len(data), hashlib.sha256(data).hexdigest()]

    @handler("head")
    def head(self, key):
        return host.blobs.head(key)

    @handler("delete")
    def delete(self, key):
        return host.blobs.delete(key)

    @handler("list")
    def list_blobs(self, prefix="", after="", limit=100):
        return host.blobs.list(prefix, after, limit)

    @handler("keys")
    def keys(self, prefix="", after="", limit=100):
        return [info["key"] for info in host.blobs.list(prefix, after, limit)]

    @handler("presign")
    def presign(self, key, method="GET", ttl_ms=0):
        return host.blobs.presign(key, method, ttl_ms)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def served(node, *args, **kwargs) -> str:
    """The code of the HostError open_presigned raises."""
    with pytest.raises(HostError) as raised:
        node.open_presigned(*args, **kwargs)
    return raised.value.code


def new_node(**options):
    node = TestHost(**options)
    node.register("svc", Service)
    node.register("store", Store)
    node.register("svc", Service, namespace="other")
    node.register("store", Store, namespace="other")
    return node


# The registry --------------------------------------------------------------------------------


def test_register_defaults_the_caller_and_a_live_reregistration_keeps_registered_at():
    node = new_node()
    svc = node.actor("svc", "a")
    me = svc.call("register", service="orders", metadata={"port": 8080})
    assert me == {
        "service": "orders",
        "instance": "default/svc/a",
        "metadata": {"port": 8080},
        "ttl_ms": 30_000,
        "registered_at_ms": T0,
        "expires_at_ms": T0 + 30_000,
    }
    other = svc.call("register", service="orders", instance="i-2", metadata='{"zone": "b"}', ttl_ms=5_000)
    assert (other["instance"], other["metadata"], other["ttl_ms"], other["expires_at_ms"]) == (
        "i-2",
        {"zone": "b"},
        5_000,
        T0 + 5_000,
    )
    node.now_ms += 1_000
    again = svc.call("register", service="orders", metadata={"port": 9090}, ttl_ms=10_000)
    assert again == {
        "service": "orders",
        "instance": "default/svc/a",
        "metadata": {"port": 9090},
        "ttl_ms": 10_000,
        "registered_at_ms": T0,
        "expires_at_ms": T0 + 1_000 + 10_000,
    }
    # Empty metadata (None, "" or whitespace) is {}.
    blank = svc.call("register", service="orders", instance="i-3", metadata="  ")
    assert blank["metadata"] == {} and blank["registered_at_ms"] == T0 + 1_000
    found = svc.call("lookup", service="orders")
    assert [r["instance"] for r in found] == ["default/svc/a", "i-2", "i-3"]
    assert found[0] == again
    assert node.registry() == {"orders": found}
    assert svc.call("lookup", service="unknown") == []
    # Scoped by namespace: another namespace sees none of it.
    assert node.actor("svc", "a", namespace="other").call("lookup", service="orders") == []
    assert node.registry("other") == {}


def test_heartbeat_extends_and_expiry_removes_an_instance_from_every_call():
    node = new_node()
    svc = node.actor("svc")
    svc.call("register", service="cache", instance="c1", ttl_ms=1_000)
    node.now_ms += 999
    beat = svc.call("heartbeat", service="cache", instance="c1")
    assert (beat["ttl_ms"], beat["registered_at_ms"], beat["expires_at_ms"]) == (1_000, T0, T0 + 999 + 1_000)
    # A heartbeat with a time to live stores it for the next ones.
    beat = svc.call("heartbeat", service="cache", instance="c1", ttl_ms=5_000)
    assert (beat["ttl_ms"], beat["expires_at_ms"]) == (5_000, T0 + 999 + 5_000)
    node.now_ms += 100
    beat = svc.call("heartbeat", service="cache", instance="c1")
    assert (beat["ttl_ms"], beat["expires_at_ms"]) == (5_000, T0 + 1_099 + 5_000)
    svc.call("register", service="cache", instance="c2", ttl_ms=60_000)
    node.now_ms = beat["expires_at_ms"] - 1
    assert [r["instance"] for r in svc.call("lookup", service="cache")] == ["c1", "c2"]
    assert svc.call("list") == [{"service": "cache", "instances": 2}]
    # At expires_at_ms the instance is gone, for every call at once.
    node.now_ms = beat["expires_at_ms"]
    assert [r["instance"] for r in svc.call("lookup", service="cache")] == ["c2"]
    assert svc.call("list") == [{"service": "cache", "instances": 1}]
    code, message = refusal(svc.call, action="heartbeat", service="cache", instance="c1")
    assert code == "not_found"
    assert "expired or was never registered" in message and "register it again" in message
    assert svc.call("deregister", service="cache", instance="c1") is False
    assert [r["instance"] for r in node.registry()["cache"]] == ["c2"]
    # Registered again after expiry it is new: registered now.
    fresh = svc.call("register", service="cache", instance="c1")
    assert fresh["registered_at_ms"] == node.now_ms
    assert refused(svc.call, action="heartbeat", service="cache", instance="never") == "not_found"
    # The last instance gone: the service is gone from the listing.
    node.now_ms += 60_000
    assert svc.call("lookup", service="cache") == []
    assert svc.call("list") == []
    assert node.registry() == {}


def test_deregister_removes_a_live_instance_once():
    node = new_node()
    a, b = node.actor("svc", "a"), node.actor("svc", "b")
    a.call("register", service="api")
    b.call("register", service="api")
    a.call("register", service="api", instance="external-1")
    assert a.call("deregister", service="api", instance="external-1") is True
    assert a.call("deregister", service="api", instance="external-1") is False
    # None: the caller itself, not the other actor.
    assert b.call("deregister", service="api") is True
    assert b.call("deregister", service="api") is False
    assert [r["instance"] for r in a.call("lookup", service="api")] == ["default/svc/a"]
    assert a.call("deregister", service="nothing-here") is False


def test_list_pages_services_by_prefix_after_and_limit():
    node = new_node()
    svc = node.actor("svc")
    for service, count in (("b", 1), ("a.two", 2), ("a", 1), ("a:x", 3), ("a.one", 1), ("c-1", 1)):
        for n in range(count):
            svc.call("register", service=service, instance=f"i{n}")
    everything = svc.call("list")
    assert everything == [
        {"service": "a", "instances": 1},
        {"service": "a.one", "instances": 1},
        {"service": "a.two", "instances": 2},
        {"service": "a:x", "instances": 3},
        {"service": "b", "instances": 1},
        {"service": "c-1", "instances": 1},
    ]
    assert [s["service"] for s in svc.call("list", prefix="a.")] == ["a.one", "a.two"]
    # `after` is strict, by name: "a.one" sorts after "a".
    assert [s["service"] for s in svc.call("list", after="a")] == ["a.one", "a.two", "a:x", "b", "c-1"]
    assert [s["service"] for s in svc.call("list", prefix="a", after="a.two")] == ["a:x"]
    pages, after = [], ""
    while True:
        page = svc.call("list", after=after, limit=2)
        if not page:
            break
        pages.append([s["service"] for s in page])
        after = page[-1]["service"]
    assert pages == [["a", "a.one"], ["a.two", "a:x"], ["b", "c-1"]]
    assert svc.call("list", prefix="zzz") == []
    # limit 0 is 100; at most 1000.
    for n in range(101):
        svc.call("register", service=f"many-{n:03d}", instance="x")
    assert len(svc.call("list", prefix="many-", limit=0)) == 100
    assert len(svc.call("list", prefix="many-", limit=1000)) == 101
    assert refused(svc.call, action="list", limit=1001) == "invalid_arguments"
    assert refused(svc.call, action="list", prefix="a/b") == "invalid_arguments"
    assert refused(svc.call, action="list", limit=-1) == "invalid_arguments"


@pytest.mark.parametrize(
    "service,ok",
    [
        ("orders", True),
        ("orders.v2:grpc", True),
        ("9-lives_x", True),
        ("s" * 64, True),
        ("", False),
        ("-orders", False),
        (".x", False),
        ("a/b", False),
        ("with space", False),
        ("caf\u00e9", False),
        ("s" * 65, False),
    ],
)
def test_service_names(service, ok):
    node = new_node()
    svc = node.actor("svc")
    if ok:
        assert svc.call("register", service=service)["service"] == service
        assert len(svc.call("lookup", service=service)) == 1
    else:
        for action in ("register", "heartbeat", "deregister", "lookup"):
            assert refused(svc.call, action=action, service=service) == "invalid_arguments", action


def test_bad_instances_metadata_and_times_to_live():
    node = new_node()
    svc = node.actor("svc")
    assert svc.call("register", service="s", instance="x" * 190)["instance"] == "x" * 190
    assert svc.call("register", service="s", instance="\u00fcber/ok")["instance"] == "\u00fcber/ok"
    for instance in ("x" * 191, "bad\nname", "tab\there", "nul\x00", "del\x7f", "c1\u0085"):
        for action in ("register", "heartbeat", "deregister"):
            assert refused(svc.call, action=action, service="s", instance=instance) == "invalid_arguments"
    # Metadata: a JSON object of at most 64 KiB; not JSON is invalid_json.
    assert refused(svc.call, action="register", service="s", metadata="[1, 2]") == "invalid_arguments"
    assert refused(svc.call, action="register", service="s", metadata='"text"') == "invalid_arguments"
    assert refused(svc.call, action="register", service="s", metadata="{nope") == "invalid_json"
    assert refused(svc.call, action="register", service="s", metadata='{"x": NaN}') == "invalid_json"
    assert refused(svc.call, action="register", service="s", metadata=[1]) == "invalid_arguments"
    filler = "x" * (64 * 1024 - len('{"k":""}'))
    assert svc.call("register", service="s", instance="big", metadata=f'{{"k":"{filler}"}}')["metadata"] == {"k": filler}
    too_big = f'{{"k":"{filler}x"}}'
    assert refused(svc.call, action="register", service="s", metadata=too_big) == "invalid_arguments"
    # Times to live: at most a day.
    day = svc.call("register", service="s", instance="day", ttl_ms=86_400_000)
    assert day["expires_at_ms"] == T0 + 86_400_000
    assert refused(svc.call, action="register", service="s", ttl_ms=86_400_001) == "invalid_arguments"
    assert refused(svc.call, action="heartbeat", service="s", instance="day", ttl_ms=86_400_001) == "invalid_arguments"
    assert refused(svc.call, action="register", service="s", ttl_ms=-1) == "invalid_arguments"
    # Nothing refused was stored.
    assert [r["instance"] for r in node.registry()["s"]] == ["big", "day", "x" * 190, "\u00fcber/ok"]


# Blobs ---------------------------------------------------------------------------------------


def test_put_get_head_delete_with_content_types_and_etags():
    node = new_node()
    store = node.actor("store")
    text = store.call("put", key="docs/readme.txt", text="h\u00e9llo")
    assert text["key"] == "docs/readme.txt"
    assert (text["size"], text["content_type"], text["modified_at_ms"]) == (6, "text/plain; charset=utf-8", T0)
    assert isinstance(text["etag"], str) and text["etag"]
    assert store.call("get", key="docs/readme.txt") == b64("h\u00e9llo".encode())
    assert store.call("head", key="docs/readme.txt") == text
    raw = store.call("put", key="bin/a", b64=b64(b"\x00\x01\xff"))
    assert (raw["size"], raw["content_type"]) == (3, "application/octet-stream")
    png = store.call("put", key="img/a.png", b64=b64(b"\x89PNG"), content_type="image/png")
    assert png["content_type"] == "image/png"
    md = store.call("put", key="docs/a.md", text="# hi", content_type="text/markdown")
    assert md["content_type"] == "text/markdown"
    # A JSON list of byte values is not blob data.
    assert refused(store.call, action="put_raw", key="k", data=[1, 2]) == "invalid_arguments"
    # Every write changes the etag, the same bytes again too, and moves modified_at_ms.
    node.now_ms += 5
    same = store.call("put", key="docs/readme.txt", text="h\u00e9llo")
    assert same["etag"] != text["etag"] and same["modified_at_ms"] == T0 + 5
    changed = store.call("put", key="docs/readme.txt", text="bye")
    assert changed["etag"] not in (text["etag"], same["etag"]) and changed["size"] == 3
    assert store.call("get", key="docs/readme.txt") == b64(b"bye")
    assert node.blobs() == {
        "bin/a": b"\x00\x01\xff",
        "docs/a.md": b"# hi",
        "docs/readme.txt": b"bye",
        "img/a.png": b"\x89PNG",
    }
    assert node.blob_info("docs/readme.txt") == changed
    assert store.call("delete", key="docs/readme.txt") is True
    assert store.call("delete", key="docs/readme.txt") is False
    assert store.call("get", key="docs/readme.txt") is None
    assert store.call("head", key="docs/readme.txt") is None
    assert node.blob_info("docs/readme.txt") is None
    # Scoped by namespace.
    elsewhere = node.actor("store", namespace="other")
    assert elsewhere.call("get", key="bin/a") is None
    assert elsewhere.call("list") == []
    elsewhere.call("put", key="bin/a", text="other")
    assert node.blobs("other") == {"bin/a": b"other"}
    assert store.call("get", key="bin/a") == b64(b"\x00\x01\xff")


def test_list_is_a_plain_prefix_in_key_order_with_after_and_limit():
    node = new_node()
    store = node.actor("store")
    for key in ("b", "a/c", "a/bc", "a/b", "a/b/c", "\u00e9/x"):
        store.call("put", key=key, text=key)
    assert store.call("keys") == ["a/b", "a/b/c", "a/bc", "a/c", "b", "\u00e9/x"]
    listed = store.call("list", prefix="a/b")
    assert [info["key"] for info in listed] == ["a/b", "a/b/c", "a/bc"]
    assert listed[0] == store.call("head", key="a/b")
    assert store.call("keys", prefix="a/b", after="a/b") == ["a/b/c", "a/bc"]
    assert store.call("keys", after="a/c") == ["b", "\u00e9/x"]
    assert store.call("keys", prefix="zzz") == []
    pages, after = [], ""
    while page := store.call("keys", after=after, limit=4):
        pages.append(page)
        after = page[-1]
    assert pages == [["a/b", "a/b/c", "a/bc", "a/c"], ["b", "\u00e9/x"]]
    for n in range(101):
        store.call("put", key=f"many/{n:03d}", text="")
    assert len(store.call("keys", prefix="many/", limit=0)) == 100
    assert len(store.call("keys", prefix="many/", limit=1000)) == 101
    assert refused(store.call, action="list", limit=1001) == "invalid_arguments"
    assert refused(store.call, action="list", prefix="a\nb") == "invalid_arguments"
    assert refused(store.call, action="list", prefix="p" * 1025) == "invalid_arguments"
    assert store.call("keys", prefix="p" * 1024) == []
    # A prefix that no key can start with lists nothing.
    assert store.call("keys", prefix="a//") == []


BAD_KEYS = [
    "",
    "/a",
    "a/",
    "a//b",
    "a/../b",
    "..",
    ".",
    "a/./b",
    "a\x00b",
    "a\nb",
    "a\x7fb",
    "a\u0085b",
    "/".join(["k" * 205] * 5),
    "k" * 241,
    "\u00e9" * 41,
    "#" * 81,
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=range(len(BAD_KEYS)))
def test_bad_keys_are_refused_by_every_call(key):
    node = new_node()
    store = node.actor("store")
    for action, extra in (("put", {"text": "x"}), ("get", {}), ("head", {}), ("delete", {}), ("presign", {})):
        assert refused(store.call, action=action, key=key, **extra) == "invalid_arguments", action
    assert node.blobs() == {}


def test_the_longest_keys_and_dotted_names_are_keys():
    node = new_node()
    store = node.actor("store")
    # 1024 bytes in all, each segment at most 240 bytes once stored (3 for a non-ASCII byte or
    # a character such as '#').
    for key in ("/".join(["k" * 204] * 5), "k" * 240, "\u00e9" * 40, "#" * 80, "a/.hidden/b..c/...", "x.y/z"):
        assert store.call("put", key=key, text="v")["key"] == key
        assert store.call("get", key=key) == b64(b"v")
    assert len(node.blobs()) == 6


def test_content_types_are_checked():
    node = new_node()
    store = node.actor("store")
    assert store.call("put", key="a", text="x", content_type="t" * 256)["content_type"] == "t" * 256
    assert refused(store.call, action="put", key="a", text="x", content_type="t" * 257) == "invalid_arguments"
    assert refused(store.call, action="put", key="a", text="x", content_type="text/plain\r\nX: y") == "invalid_arguments"
    assert node.blob_info("a")["content_type"] == "t" * 256
    # Whitespace around a content type is dropped; only whitespace is no content type.
    assert store.call("put", key="b", b64=b64(b"1"), content_type=" image/png ")["content_type"] == "image/png"
    assert store.call("put", key="c", b64=b64(b"1"), content_type="  ")["content_type"] == "application/octet-stream"


def test_a_guest_call_moves_at_most_8_mib_both_ways():
    node = new_node()
    store = node.actor("store")
    full = store.call("put", key="big/exact", size=8 * MIB)
    assert full["size"] == 8 * MIB
    assert store.call("get_digest", key="big/exact") == [8 * MIB, hashlib.sha256(b"x" * (8 * MIB)).hexdigest()]
    code, message = refusal(store.call, action="put", key="big/over", size=8 * MIB + 1)
    assert code == "payload_too_large" and "presigned URL" in message
    assert store.call("head", key="big/over") is None
    # The testing host refuses it on its own too, as the node does (host.blobs checks first).
    with node, pytest.raises(HostError) as raised:
        node.bl_put("big/over", b"x" * (8 * MIB + 1), "")
    assert raised.value.code == "payload_too_large"
    # A blob stored from outside (as a presigned PUT does) may be larger: a guest cannot get
    # it, but can see its info, and a presigned GET serves all of it.
    stored = node.blob_put("big/over", b"y" * (8 * MIB + 1))
    assert stored["size"] == 8 * MIB + 1
    code, message = refusal(store.call, action="get", key="big/over")
    assert code == "payload_too_large" and "presigned URL" in message
    assert store.call("head", key="big/over") == stored
    url = store.call("presign", key="big/over")
    assert node.open_presigned(url) == b"y" * (8 * MIB + 1)


# Presigned URLs ------------------------------------------------------------------------------


def signature(node, method, namespace, key, expires):
    message = f"{method}\n{node.tenant}\n{namespace}\n{key}\n{expires}".encode()
    return hmac.new(node._presign_secret, message, hashlib.sha256).hexdigest()


def test_a_presigned_get_is_the_url_of_the_spec_and_serves_the_blob():
    node = new_node()
    store = node.actor("store")
    info = store.call("put", key="photos/a b/\u00fc~.png", b64=b64(b"\x89PNG..."), content_type="image/png")
    url = store.call("presign", key="photos/a b/\u00fc~.png", method="get", ttl_ms=60_000)
    expires = T0 + 60_000
    sig = signature(node, "GET", "default", "photos/a b/\u00fc~.png", expires)
    assert url == (
        "http://127.0.0.1:8080/api/v1/presigned/default/default/photos/a%20b/%C3%BC~.png"
        f"?expires={expires}&signature={sig}"
    )
    assert len(sig) == 64 and sig == sig.lower()
    assert node.open_presigned(url) == b"\x89PNG..."
    assert node.open_presigned(url, method="HEAD") == info
    # Valid through its expiry, then expired.
    node.now_ms = expires
    assert node.open_presigned(url) == b"\x89PNG..."
    node.now_ms = expires + 1
    assert served(node, url) == "url_expired"
    # The default time to live is 15 minutes.
    url = store.call("presign", key="photos/a b/\u00fc~.png")
    assert f"?expires={node.now_ms + 900_000}&" in url


def test_a_presigned_put_stores_the_body_with_its_content_type():
    node = new_node()
    store = node.actor("store")
    url = store.call("presign", key="uploads/report.pdf", method="PUT", ttl_ms=604_800_000)
    expires = T0 + 604_800_000
    assert url.endswith(f"?expires={expires}&signature={signature(node, 'PUT', 'default', 'uploads/report.pdf', expires)}")
    # A PUT URL of a blob that does not exist yet: the GET it is not signed for.
    assert served(node, url) == "signature_invalid"
    node.now_ms += 10
    info = node.open_presigned(url, method="PUT", data=b"%PDF-1.7", content_type="application/pdf")
    assert (info["key"], info["size"], info["content_type"], info["modified_at_ms"]) == (
        "uploads/report.pdf",
        8,
        "application/pdf",
        T0 + 10,
    )
    assert store.call("get", key="uploads/report.pdf") == b64(b"%PDF-1.7")
    assert store.call("head", key="uploads/report.pdf") == info
    # The same URL again replaces it (new etag); no Content-Type: application/octet-stream.
    again = node.open_presigned(url, method="put", data=b"v2")
    assert (again["size"], again["content_type"]) == (2, "application/octet-stream")
    assert again["etag"] != info["etag"]
    assert node.blobs() == {"uploads/report.pdf": b"v2"}
    # A PUT is not more than 8 MiB-limited: the node streams it.
    node.open_presigned(url, method="PUT", data=b"z" * (8 * MIB + 5))
    assert node.blob_info("uploads/report.pdf")["size"] == 8 * MIB + 5


def test_a_presigned_get_of_a_missing_blob_is_not_found_after_the_other_checks():
    node = new_node()
    store = node.actor("store")
    url = store.call("presign", key="nothing/here", ttl_ms=1_000)
    assert served(node, url) == "not_found"
    assert served(node, url, method="HEAD") == "not_found"
    node.now_ms += 1_001
    assert served(node, url) == "url_expired"


def tamper(url: str, **changes) -> str:
    """The URL with its path segment `segment` (index after /presigned/) set to `value`, or
    `expires`/`signature` replaced."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    path = parts.path.split("/")
    if "segment" in changes:
        at = path.index("presigned") + 1 + changes.pop("segment")
        path[at] = changes.pop("value")
    query.update(changes)
    return urllib.parse.urlunsplit(parts._replace(path="/".join(path), query=urllib.parse.urlencode(query)))


def test_any_change_to_a_presigned_url_breaks_its_signature_and_is_checked_before_expiry():
    node = new_node()
    store = node.actor("store")
    store.call("put", key="a/secret", text="s")
    store.call("put", key="a/other", text="o")
    node.actor("store", namespace="other").call("put", key="a/secret", text="theirs")
    url = store.call("presign", key="a/secret", ttl_ms=60_000)
    assert tamper(url) == url  # the helper changes nothing unless asked
    expires = T0 + 60_000
    sig = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["signature"][0]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    changed = {
        "key": tamper(url, segment=3, value="other"),
        "namespace": tamper(url, segment=1, value="other"),
        "tenant": tamper(url, segment=0, value="acme"),
        "expires later": tamper(url, expires=str(expires + 1)),
        "expires earlier": tamper(url, expires=str(expires - 1)),
        "signature": tamper(url, signature=flipped),
        "no signature": url.split("&signature=")[0],
    }
    for what, bad in changed.items():
        assert served(node, bad) == "signature_invalid", what
    # Another method than the one it was signed for.
    assert served(node, url, method="PUT", data=b"overwrite") == "signature_invalid"
    assert served(node, url, method="DELETE") == "signature_invalid"
    assert node.blobs() == {"a/other": b"o", "a/secret": b"s"}
    # Another TestHost has another secret.
    stranger = new_node()
    assert served(stranger, url) == "signature_invalid"
    # The signature is checked before the expiry: an expired, tampered URL is signature_invalid.
    node.now_ms = expires + 1
    assert served(node, changed["key"]) == "signature_invalid"
    assert served(node, changed["expires later"]) == "signature_invalid"
    assert served(node, url) == "url_expired"
    assert served(node, "http://127.0.0.1:8080/api/v1/channels/default/default/x") == "signature_invalid"


def test_presign_arguments_and_the_base_url_and_tenant():
    node = new_node()
    store = node.actor("store")
    assert refused(store.call, action="presign", key="a", method="DELETE") == "invalid_arguments"
    assert refused(store.call, action="presign", key="a", method="") == "invalid_arguments"
    assert refused(store.call, action="presign", key="a", ttl_ms=604_800_001) == "invalid_arguments"
    assert refused(store.call, action="presign", key="a", ttl_ms=-5) == "invalid_arguments"
    put_url = store.call("presign", key="a", method="pUt")
    assert node.open_presigned(put_url, "PUT", data="text body", content_type="text/plain")["size"] == 9
    custom = new_node(base_url="https://blobs.example.com/", tenant="acme")
    other = custom.actor("store", namespace="other")
    other.call("put", key="k/v.json", text="{}", content_type="application/json")
    url = other.call("presign", key="k/v.json")
    assert url.startswith("https://blobs.example.com/api/v1/presigned/acme/other/k/v.json?expires=")
    assert custom.open_presigned(url) == b"{}"
    assert json.loads(custom.open_presigned(url)) == {}


# The WIT wiring ------------------------------------------------------------------------------


@pytest.fixture
def wasm_host(tmp_path, monkeypatch):
    """`plexspaces._guest` over componentize-py's generated bindings of the SDK's WIT, whose
    registry and blobs imports are served by a TestHost: host.registry and host.blobs go
    through `_WasmHost` and the binding records exactly as inside a component."""
    import subprocess
    import sys

    from plexspaces import build, testing

    subprocess.run(
        [*build._componentize(), "-d", str(build.WIT_DIR), "-w", build.WORLD, "bindings", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    generated = ("wit_world", "componentize_py_types", "plexspaces._guest")
    saved = {name: module for name, module in sys.modules.items() if name.startswith(generated)}
    for name in saved:
        del sys.modules[name]
    monkeypatch.syspath_prepend(str(tmp_path))
    from componentize_py_types import Err
    from plexspaces import _guest
    from wit_world.imports import blobs, registry, types

    node = new_node()

    def served_by_node(function, convert):
        def call(*args):
            try:
                return convert(function(*args))
            except HostError as error:
                raise Err(types.HostError(code=error.code, message=error.message, error_type=error.error_type)) from None

        return call

    def optional(make):
        return lambda value: None if value is None else make(value)

    def each(make):
        return lambda values: [make(value) for value in values]

    same = lambda value: value  # noqa: E731
    registration = lambda found: registry.Registration(**found)  # noqa: E731
    info = lambda found: blobs.BlobInfo(**found)  # noqa: E731
    summary = lambda pair: registry.ServiceSummary(service=pair[0], instances=pair[1])  # noqa: E731
    for module, name, function, convert in (
        (registry, "register", node.reg_register, registration),
        (registry, "heartbeat", node.reg_heartbeat, registration),
        (registry, "deregister", node.reg_deregister, same),
        (registry, "lookup", node.reg_lookup, each(registration)),
        (registry, "list_services", node.reg_list, each(summary)),
        (blobs, "put", node.bl_put, info),
        (blobs, "get", node.bl_get, same),
        (blobs, "head", node.bl_head, optional(info)),
        (blobs, "delete", node.bl_delete, same),
        (blobs, "list_prefix", node.bl_list, each(info)),
        (blobs, "presign", node.bl_presign, same),
    ):
        assert callable(getattr(module, name)), name  # the binding exists under this name
        monkeypatch.setattr(module, name, served_by_node(function, convert))
    monkeypatch.setattr(testing, "_Backend", lambda _node: _guest._WasmHost())
    try:
        yield node
    finally:
        for name in [name for name in sys.modules if name.startswith(generated)]:
            del sys.modules[name]
        sys.modules.update(saved)


def test_the_wasm_bindings_carry_every_registry_and_blob_call(wasm_host):
    node = wasm_host
    svc, store = node.actor("svc", "a"), node.actor("store")
    me = svc.call("register", service="orders", metadata={"port": 1}, ttl_ms=1_000)
    assert me == {
        "service": "orders",
        "instance": "default/svc/a",
        "metadata": {"port": 1},
        "ttl_ms": 1_000,
        "registered_at_ms": T0,
        "expires_at_ms": T0 + 1_000,
    }
    assert svc.call("heartbeat", service="orders", ttl_ms=2_000)["expires_at_ms"] == T0 + 2_000
    assert svc.call("lookup", service="orders") == [{**me, "ttl_ms": 2_000, "expires_at_ms": T0 + 2_000}]
    assert svc.call("list") == [{"service": "orders", "instances": 1}]
    assert svc.call("deregister", service="orders") is True
    assert refusal(svc.call, action="heartbeat", service="orders")[0] == "not_found"
    assert refusal(svc.call, action="register", service="-bad")[0] == "invalid_arguments"
    put = store.call("put", key="a/b", text="hi")
    assert (put["key"], put["size"], put["content_type"]) == ("a/b", 2, "text/plain; charset=utf-8")
    assert store.call("get", key="a/b") == b64(b"hi")
    assert store.call("get", key="a/none") is None
    assert store.call("head", key="a/b") == put
    assert store.call("head", key="a/none") is None
    assert store.call("list", prefix="a/") == [put]
    url = store.call("presign", key="a/b", method="GET")
    assert node.open_presigned(url) == b"hi"
    assert store.call("delete", key="a/b") is True
    assert refusal(store.call, action="get", key="a//b")[0] == "invalid_arguments"
