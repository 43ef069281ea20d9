// The service registry and the blob store under @plexspaces/sdk/testing: every host call through
// actors, with the node's rules (names, keys, defaults, limits, expiry, presigned URLs).
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";

import { blobs, host, HostError, PlexSpacesActor, registry } from "@plexspaces/sdk";
import { TestHost } from "@plexspaces/sdk/testing";

import { refused } from "./support.ts";

const T0 = 1_700_000_000_000; // a TestHost's clock at the start
const MiB = 1024 * 1024;

export class Registrar extends PlexSpacesActor<Record<string, never>> {
  getDefaultState() {
    return {};
  }
  onRegister(p: { service: string; instance?: string; metadata?: Record<string, unknown> | string; ttlMs?: number }) {
    return host.registry.register(p.service, p.instance, p.metadata, p.ttlMs);
  }
  onHeartbeat(p: { service: string; instance?: string; ttlMs?: number }) {
    return host.registry.heartbeat(p.service, p.instance, p.ttlMs);
  }
  onDeregister(p: { service: string; instance?: string }) {
    return host.registry.deregister(p.service, p.instance);
  }
  onLookup(p: { service: string }) {
    return host.registry.lookup(p.service);
  }
  onList(p: { prefix?: string; after?: string; limit?: number }) {
    return host.registry.list(p.prefix, p.after, p.limit);
  }
}

/** What a handler can return of bytes: JSON has no Uint8Array. */
function described(bytes: Uint8Array | null) {
  if (bytes === null) return null;
  return { isBytes: bytes instanceof Uint8Array, size: bytes.length, head: Array.from(bytes.subarray(0, 16)) };
}

export class Store extends PlexSpacesActor<Record<string, never>> {
  getDefaultState() {
    return {};
  }
  onPut(p: { key: string; text?: string; bytes?: number[]; size?: number; fill?: number; contentType?: string }) {
    let data: Uint8Array | string;
    if (p.text !== undefined) data = p.text;
    else if (p.size !== undefined) data = new Uint8Array(p.size).fill(p.fill ?? 7);
    else data = Uint8Array.from(p.bytes ?? []);
    return host.blobs.put(p.key, data, p.contentType);
  }
  onGet(p: { key: string }) {
    return described(host.blobs.get(p.key));
  }
  onGetText(p: { key: string }) {
    return host.blobs.getText(p.key);
  }
  onHead(p: { key: string }) {
    return host.blobs.head(p.key);
  }
  onDelete(p: { key: string }) {
    return host.blobs.delete(p.key);
  }
  onList(p: { prefix?: string; after?: string; limit?: number }) {
    return host.blobs.list(p.prefix, p.after, p.limit);
  }
  onPresign(p: { key: string; method?: string; ttlMs?: number }) {
    return host.blobs.presign(p.key, p.method, p.ttlMs);
  }
}

/** The code and message of a HostError thrown to the test itself (openPresigned, the backend). */
function thrown(call: () => unknown): [string, string] {
  try {
    call();
  } catch (error) {
    assert.ok(error instanceof HostError, `a HostError, not ${error}`);
    return [error.code, error.detail];
  }
  assert.fail("expected a HostError");
}

function nodeWith(options: ConstructorParameters<typeof TestHost>[0] = {}): TestHost {
  const node = new TestHost(options);
  node.register("registrar", Registrar);
  node.register("store", Store);
  return node;
}

// The registry ------------------------------------------------------------------------------------

test("host.registry and host.blobs are the exported ones", () => {
  assert.equal(host.registry, registry);
  assert.equal(host.blobs, blobs);
});

test("register, register again, heartbeat, lookup and list", () => {
  const node = nodeWith();
  const r1 = node.actor("registrar", "r1");
  const me = r1.call("register", { service: "payments", metadata: { zone: "a", port: 9 } });
  assert.deepEqual(me, {
    service: "payments",
    instance: "default/registrar/r1",
    metadata: { zone: "a", port: 9 },
    ttlMs: 30_000,
    registeredAtMs: T0,
    expiresAtMs: T0 + 30_000,
  });
  const other = r1.call("register", { service: "payments", instance: "p-2", ttlMs: 5_000 });
  assert.deepEqual(other, { service: "payments", instance: "p-2", metadata: {}, ttlMs: 5_000, registeredAtMs: T0, expiresAtMs: T0 + 5_000 });

  // Registering a live instance again replaces metadata and ttl, and keeps registeredAtMs.
  node.nowMs += 1_000;
  const again = r1.call("register", { service: "payments", metadata: { zone: "b" }, ttlMs: 10_000 });
  assert.deepEqual(again, {
    service: "payments",
    instance: "default/registrar/r1",
    metadata: { zone: "b" },
    ttlMs: 10_000,
    registeredAtMs: T0,
    expiresAtMs: T0 + 11_000,
  });

  // A heartbeat renews for the registration's own ttl, or stores the one it gives.
  assert.deepEqual(r1.call("heartbeat", { service: "payments", instance: "p-2" }), {
    service: "payments",
    instance: "p-2",
    metadata: {},
    ttlMs: 5_000,
    registeredAtMs: T0,
    expiresAtMs: T0 + 6_000,
  });
  node.nowMs += 4_000;
  const renewed = r1.call("heartbeat", { service: "payments", instance: "p-2", ttlMs: 20_000 });
  assert.deepEqual([renewed.ttlMs, renewed.expiresAtMs, renewed.registeredAtMs], [20_000, T0 + 25_000, T0]);
  node.nowMs += 3_000; // T0 + 8000: r1 renews for its own 10 s
  assert.deepEqual(r1.call("heartbeat", { service: "payments" }).expiresAtMs, T0 + 18_000);

  // Another actor sees the same registrations, in instance order.
  const found = node.actor("registrar", "r2").call("lookup", { service: "payments" });
  assert.deepEqual(
    found.map((reg: { instance: string; expiresAtMs: number }) => [reg.instance, reg.expiresAtMs]),
    [["default/registrar/r1", T0 + 18_000], ["p-2", T0 + 25_000]],
  );
  assert.deepEqual(node.registrations(), { payments: found });
  assert.deepEqual(r1.call("list", {}), [{ service: "payments", instances: 2 }]);
  assert.deepEqual(r1.call("lookup", { service: "unknown" }), []);
});

test("an expired instance is gone for every call at once", () => {
  const node = nodeWith();
  const r = node.actor("registrar");
  r.call("register", { service: "cache", instance: "short", ttlMs: 1_000 });
  r.call("register", { service: "cache", instance: "long", ttlMs: 5_000 });
  r.call("register", { service: "queue", instance: "q1", ttlMs: 1_000 });
  node.nowMs += 999;
  assert.deepEqual(r.call("lookup", { service: "cache" }).map((reg: { instance: string }) => reg.instance), ["long", "short"]);
  node.nowMs += 1; // T0 + 1000: short's and q1's expiresAtMs
  assert.deepEqual(r.call("lookup", { service: "cache" }).map((reg: { instance: string }) => reg.instance), ["long"]);
  assert.deepEqual(r.call("list", {}), [{ service: "cache", instances: 1 }]);
  assert.deepEqual(Object.keys(node.registrations()), ["cache"]);
  assert.deepEqual(node.registrations().cache!.map((reg) => reg.instance), ["long"]);
  assert.equal(refused(() => r.call("heartbeat", { service: "cache", instance: "short" })), "not_found");
  try {
    r.call("heartbeat", { service: "queue", instance: "q1" });
    assert.fail("expected not_found");
  } catch (error) {
    assert.equal((error as HostError).detail, 'not_found: service "queue" has no instance "q1": it expired or was never registered; register it again');
  }
  assert.equal(r.call("deregister", { service: "cache", instance: "short" }), false);
  assert.equal(refused(() => r.call("heartbeat", { service: "cache", instance: "never" })), "not_found");
  // Registered again after expiring: a new registration, registered now.
  const back = r.call("register", { service: "cache", instance: "short", ttlMs: 1_000 });
  assert.deepEqual([back.registeredAtMs, back.expiresAtMs], [T0 + 1_000, T0 + 2_000]);
  node.nowMs = T0 + 5_000;
  assert.deepEqual(r.call("lookup", { service: "cache" }), []);
  assert.deepEqual(r.call("list", {}), []);
  assert.deepEqual(node.registrations(), {});
});

test("deregister removes an instance once", () => {
  const node = nodeWith();
  const r = node.actor("registrar", "me");
  r.call("register", { service: "api" });
  r.call("register", { service: "api", instance: "other" });
  assert.equal(r.call("deregister", { service: "api" }), true);
  assert.equal(r.call("deregister", { service: "api" }), false);
  assert.deepEqual(r.call("lookup", { service: "api" }).map((reg: { instance: string }) => reg.instance), ["other"]);
  assert.equal(r.call("deregister", { service: "api", instance: "other" }), true);
  assert.deepEqual(r.call("list", {}), []);
  assert.equal(r.call("deregister", { service: "nothing" }), false);
  // A heartbeat after deregistering: register again.
  assert.equal(refused(() => r.call("heartbeat", { service: "api", instance: "other" })), "not_found");
});

test("list pages through services by prefix and after, in its namespace", () => {
  const node = nodeWith();
  const r = node.actor("registrar");
  for (const service of ["web", "api.b", "db.main", "api.a", "api.c"]) r.call("register", { service, instance: "i1" });
  r.call("register", { service: "api.b", instance: "i2" });
  const all = r.call("list", {});
  assert.deepEqual(all, [
    { service: "api.a", instances: 1 },
    { service: "api.b", instances: 2 },
    { service: "api.c", instances: 1 },
    { service: "db.main", instances: 1 },
    { service: "web", instances: 1 },
  ]);
  assert.deepEqual(r.call("list", { prefix: "api." }).map((s: { service: string }) => s.service), ["api.a", "api.b", "api.c"]);
  assert.deepEqual(r.call("list", { prefix: "api.", after: "api.a" }).map((s: { service: string }) => s.service), ["api.b", "api.c"]);
  // `after` need not be a registered name, and is strict.
  assert.deepEqual(r.call("list", { after: "b" }).map((s: { service: string }) => s.service), ["db.main", "web"]);
  assert.deepEqual(r.call("list", { after: "web" }), []);
  // Pages of two, each after the last name of the one before.
  const pages: string[][] = [];
  let after = "";
  for (;;) {
    const page = r.call("list", { after, limit: 2 }).map((s: { service: string }) => s.service);
    if (page.length === 0) break;
    pages.push(page);
    after = page[page.length - 1];
  }
  assert.deepEqual(pages, [["api.a", "api.b"], ["api.c", "db.main"], ["web"]]);
  assert.equal(r.call("list", { limit: 0 }).length, 5); // 0: the default page of 100
  assert.equal(r.call("list", { limit: 1000 }).length, 5);
  assert.equal(refused(() => r.call("list", { limit: 1001 })), "invalid_arguments");
  // A prefix is made of the characters of service names.
  for (const prefix of ["a/b", "a b", "x".repeat(65)]) assert.equal(refused(() => r.call("list", { prefix })), "invalid_arguments", prefix);
  assert.deepEqual(r.call("list", { prefix: "x".repeat(64) }), []);
  // Name order, also where one name starts another; `after` is strictly after that name.
  for (const service of ["api", "api-x"]) r.call("register", { service, instance: "i1" });
  assert.deepEqual(r.call("list", { prefix: "api" }).map((s: { service: string }) => s.service), ["api", "api-x", "api.a", "api.b", "api.c"]);
  assert.deepEqual(r.call("list", { after: "api", limit: 2 }).map((s: { service: string }) => s.service), ["api-x", "api.a"]);
  // Another namespace has a registry of its own.
  node.register("registrar", Registrar, "other");
  const elsewhere = node.actor("registrar", "x", "other");
  assert.deepEqual(elsewhere.call("list", {}), []);
  assert.deepEqual(elsewhere.call("lookup", { service: "web" }), []);
  elsewhere.call("register", { service: "web" });
  assert.deepEqual(node.registrations("other").web!.map((reg) => reg.instance), ["other/registrar/x"]);
  assert.equal(r.call("lookup", { service: "web" }).length, 1);
  assert.equal(r.call("list", {}).length, 7);
});

test("bad service names, instances, metadata and ttls are refused", () => {
  const node = nodeWith();
  const r = node.actor("registrar");
  for (const service of ["", "-lead", ".dot", "a b", "a/b", "ü", "x".repeat(65)]) {
    assert.equal(refused(() => r.call("register", { service })), "invalid_arguments", service);
    assert.equal(refused(() => r.call("lookup", { service })), "invalid_arguments", service);
  }
  for (const service of ["x".repeat(64), "a:b.c_d-e", "9lives"]) {
    assert.equal(r.call("register", { service, instance: "i" }).service, service);
  }
  for (const instance of ["a\nb", "tab\there", "\u0085", "i".repeat(191)]) {
    assert.equal(refused(() => r.call("register", { service: "s", instance })), "invalid_arguments", JSON.stringify(instance));
  }
  // 190 characters, not bytes.
  assert.equal(r.call("register", { service: "s", instance: "é".repeat(190) }).instance, "é".repeat(190));
  assert.equal(refused(() => r.call("heartbeat", { service: "s", instance: "a\u0000" })), "invalid_arguments");

  // Metadata: a JSON object of at most 64 KiB; empty text is {}.
  assert.equal(refused(() => r.call("register", { service: "m", metadata: "{nope" })), "invalid_json");
  for (const metadata of ["[1]", "42", "null", '"text"']) {
    assert.equal(refused(() => r.call("register", { service: "m", metadata })), "invalid_arguments", metadata);
  }
  assert.equal(refused(() => r.call("register", { service: "m", metadata: [1, 2] as unknown as Record<string, unknown> })), "invalid_arguments");
  assert.deepEqual(r.call("register", { service: "m", instance: "empty", metadata: "" }).metadata, {});
  assert.deepEqual(r.call("register", { service: "m", instance: "blank", metadata: " \n" }).metadata, {});
  assert.deepEqual(r.call("register", { service: "m", instance: "text", metadata: '{"a":[1]}' }).metadata, { a: [1] });
  const fits = { pad: "x".repeat(64 * 1024 - '{"pad":""}'.length) };
  assert.equal(r.call("register", { service: "m", instance: "big", metadata: fits }).metadata.pad.length, 65_526);
  const over = { pad: `${fits.pad}x` };
  assert.equal(refused(() => r.call("register", { service: "m", metadata: over })), "invalid_arguments");

  // ttl: 0 is 30 s, at most a day.
  assert.equal(r.call("register", { service: "t", instance: "day", ttlMs: 86_400_000 }).expiresAtMs, T0 + 86_400_000);
  assert.equal(refused(() => r.call("register", { service: "t", ttlMs: 86_400_001 })), "invalid_arguments");
  assert.equal(refused(() => r.call("register", { service: "t", ttlMs: -1 })), "invalid_arguments");
  assert.equal(refused(() => r.call("register", { service: "t", ttlMs: 1.5 })), "invalid_arguments");
  assert.equal(refused(() => r.call("heartbeat", { service: "t", instance: "day", ttlMs: 86_400_001 })), "invalid_arguments");
  assert.equal(refused(() => r.call("list", { prefix: 5 as unknown as string })), "invalid_arguments");
  // Nothing refused was stored.
  assert.deepEqual(Object.keys(node.registrations()), ["9lives", "a:b.c_d-e", "m", "s", "t", "x".repeat(64)]);
  assert.deepEqual(node.registrations().t!.map((reg) => reg.instance), ["day"]);
  assert.deepEqual(node.registrations().m!.map((reg) => reg.instance), ["big", "blank", "empty", "text"]);
});

// Blobs ---------------------------------------------------------------------------------------------

test("put, get, getText, head and delete", () => {
  const node = nodeWith();
  const store = node.actor("store");
  const text = store.call("put", { key: "docs/readme.txt", text: "héllo" });
  assert.equal(typeof text.etag, "string");
  assert.ok(text.etag.length > 0);
  assert.deepEqual(text, { key: "docs/readme.txt", size: 6, contentType: "text/plain; charset=utf-8", modifiedAtMs: T0, etag: text.etag });
  const bin = store.call("put", { key: "bin/x", bytes: [0, 1, 255] });
  assert.deepEqual({ ...bin, etag: "" }, { key: "bin/x", size: 3, contentType: "application/octet-stream", modifiedAtMs: T0, etag: "" });
  assert.equal(store.call("put", { key: "img/a.png", bytes: [137, 80], contentType: "image/png" }).contentType, "image/png");
  assert.equal(store.call("put", { key: "notes.md", text: "# hi", contentType: "text/markdown" }).contentType, "text/markdown");

  assert.deepEqual(store.call("get", { key: "bin/x" }), { isBytes: true, size: 3, head: [0, 1, 255] });
  assert.deepEqual(store.call("get", { key: "docs/readme.txt" }), { isBytes: true, size: 6, head: [104, 195, 169, 108, 108, 111] });
  assert.equal(store.call("get_text", { key: "docs/readme.txt" }), "héllo");
  assert.deepEqual(store.call("head", { key: "docs/readme.txt" }), text);
  assert.equal(refused(() => store.call("get_text", { key: "bin/x" })), "unsupported_media_type");

  // Every write changes the etag, the same bytes included.
  node.nowMs += 5;
  const rewritten = store.call("put", { key: "docs/readme.txt", text: "héllo" });
  assert.notEqual(rewritten.etag, text.etag);
  assert.deepEqual([rewritten.size, rewritten.modifiedAtMs], [6, T0 + 5]);
  const changed = store.call("put", { key: "docs/readme.txt", text: "bye" });
  assert.equal(new Set([text.etag, rewritten.etag, changed.etag]).size, 3);
  assert.deepEqual(store.call("head", { key: "docs/readme.txt" }), changed);
  assert.equal(store.call("get_text", { key: "docs/readme.txt" }), "bye");

  assert.deepEqual(Object.keys(node.blobs()), ["bin/x", "docs/readme.txt", "img/a.png", "notes.md"]);
  assert.deepEqual(node.blobs()["docs/readme.txt"], changed);
  assert.deepEqual(node.blobBytes("bin/x"), new Uint8Array([0, 1, 255]));

  assert.equal(store.call("delete", { key: "docs/readme.txt" }), true);
  assert.equal(store.call("delete", { key: "docs/readme.txt" }), false);
  assert.equal(store.call("get", { key: "docs/readme.txt" }), null);
  assert.equal(store.call("get_text", { key: "docs/readme.txt" }), null);
  assert.equal(store.call("head", { key: "docs/readme.txt" }), null);
  assert.equal(node.blobBytes("docs/readme.txt"), null);
  assert.equal(store.call("head", { key: "never/there" }), null);

  // Data is bytes or a string; the store keeps its own copy.
  node.with(() => {
    assert.throws(() => blobs.put("k", 5 as unknown as string), (e: HostError) => e.code === "invalid_arguments");
    const bytes = new Uint8Array([1, 2, 3]);
    blobs.put("copy", bytes);
    bytes[0] = 9;
    assert.deepEqual(blobs.get("copy"), new Uint8Array([1, 2, 3]));
  });
  // Blobs belong to their namespace.
  node.register("store", Store, "other");
  assert.equal(node.actor("store", "s", "other").call("get", { key: "bin/x" }), null);
  assert.deepEqual(node.blobs("other"), {});
});

test("list by prefix, after and limit, in UTF-8 byte order", () => {
  const node = nodeWith();
  const store = node.actor("store");
  for (const key of ["b", "a/2", "ab", "a/b/c", "a/1", "a/bc", "a/10", "x/\ue000", "x/😀"]) store.call("put", { key, text: key });
  const keys = (p: Record<string, unknown>) => store.call("list", p).map((info: { key: string }) => info.key);
  assert.deepEqual(keys({}), ["a/1", "a/10", "a/2", "a/b/c", "a/bc", "ab", "b", "x/\ue000", "x/😀"]);
  assert.deepEqual(keys({ prefix: "a/" }), ["a/1", "a/10", "a/2", "a/b/c", "a/bc"]);
  // A plain string prefix, not a segment: "a/b" matches "a/bc", "a" matches "ab".
  assert.deepEqual(keys({ prefix: "a/b" }), ["a/b/c", "a/bc"]);
  assert.deepEqual(keys({ prefix: "a" }), ["a/1", "a/10", "a/2", "a/b/c", "a/bc", "ab"]);
  assert.deepEqual(keys({ after: "a/2" }), ["a/b/c", "a/bc", "ab", "b", "x/\ue000", "x/😀"]);
  assert.deepEqual(keys({ prefix: "a/", after: "a/10", limit: 2 }), ["a/2", "a/b/c"]);
  assert.deepEqual(keys({ after: "x/\ue000" }), ["x/😀"]);
  assert.deepEqual(keys({ prefix: "zzz" }), []);
  const pages: string[][] = [];
  let after = "";
  for (;;) {
    const page = keys({ after, limit: 4 });
    if (page.length === 0) break;
    pages.push(page);
    after = page[page.length - 1];
  }
  assert.deepEqual(pages, [["a/1", "a/10", "a/2", "a/b/c"], ["a/bc", "ab", "b", "x/\ue000"], ["x/😀"]]);
  const infos = store.call("list", { prefix: "a/1" });
  assert.deepEqual(infos.map((info: { size: number; contentType: string }) => [info.size, info.contentType]), [[3, "text/plain; charset=utf-8"], [4, "text/plain; charset=utf-8"]]);
  assert.deepEqual(infos[1], node.blobs()["a/10"]);
  assert.equal(keys({ limit: 0 }).length, 9); // 0: the default page of 100
  assert.equal(refused(() => store.call("list", { limit: 1001 })), "invalid_arguments");
  assert.equal(keys({ limit: 1000 }).length, 9);
  assert.equal(refused(() => store.call("list", { prefix: "a\n" })), "invalid_arguments");
  assert.equal(refused(() => store.call("list", { prefix: "p".repeat(1025) })), "invalid_arguments");
  assert.deepEqual(keys({ prefix: "a//" }), []); // no key has an empty segment
});

test("blob keys and content types follow the node's rules", () => {
  const node = nodeWith();
  const store = node.actor("store");
  const bad = ["", "/a", "a/", "a//b", "a/../b", "..", ".", "a/./b", "a\u0000b", "a\nb", "a\u007fb", "a\u009fb", Array(5).fill("x".repeat(205)).join("/"), "x".repeat(241), "é".repeat(41), "#".repeat(81)];
  for (const key of bad) {
    const name = JSON.stringify(key.slice(0, 20));
    assert.equal(refused(() => store.call("put", { key, text: "v" })), "invalid_arguments", name);
    assert.equal(refused(() => store.call("get", { key })), "invalid_arguments", name);
    assert.equal(refused(() => store.call("head", { key })), "invalid_arguments", name);
    assert.equal(refused(() => store.call("delete", { key })), "invalid_arguments", name);
    assert.equal(refused(() => store.call("presign", { key })), "invalid_arguments", name);
  }
  // The host refuses them too, not only the SDK.
  node.with(() => {
    assert.deepEqual(thrown(() => node.backend().blobPut("", new Uint8Array(0), ""))[0], "invalid_arguments");
    assert.match(thrown(() => node.backend().blobPut("a//b", new Uint8Array(0), ""))[1], /segment ""/);
  });
  // 1024 bytes of UTF-8 is the most, each segment at most 240 once stored (3 for a non-ASCII
  // byte or a character such as '#'); dots inside a segment are fine.
  for (const key of [Array(5).fill("x".repeat(204)).join("/"), "x".repeat(240), "é".repeat(40), "#".repeat(80), "a/.hidden/b..c", "日本/データ.bin", "with space/and+plus"]) {
    assert.equal(store.call("put", { key, text: "v" }).key, key);
  }
  assert.deepEqual(Object.keys(node.blobs()).length, 7);
  assert.equal(store.call("put", { key: "ct", text: "v", contentType: "t".repeat(256) }).contentType, "t".repeat(256));
  assert.equal(refused(() => store.call("put", { key: "ct", text: "v", contentType: "t".repeat(257) })), "invalid_arguments");
  assert.equal(refused(() => store.call("put", { key: "ct", text: "v", contentType: "text/plain\r\nx: y" })), "invalid_arguments");
  assert.equal(node.blobs().ct!.contentType, "t".repeat(256));
  // Surrounding blanks go; a blank content type is the default.
  assert.equal(store.call("put", { key: "ct", bytes: [1], contentType: " text/csv \n" }).contentType, "text/csv");
  assert.equal(store.call("put", { key: "ct", bytes: [1], contentType: "  " }).contentType, "application/octet-stream");
});

test("a guest call moves at most 8 MiB, either way; presigned URLs move more", () => {
  const node = nodeWith();
  const store = node.actor("store");
  assert.equal(store.call("put", { key: "big/exact", size: 8 * MiB }).size, 8 * MiB);
  assert.deepEqual(store.call("get", { key: "big/exact" }), { isBytes: true, size: 8 * MiB, head: Array(16).fill(7) });
  try {
    store.call("put", { key: "big/over", size: 8 * MiB + 1 });
    assert.fail("expected payload_too_large");
  } catch (error) {
    assert.match((error as HostError).detail, /^payload_too_large: a guest stores at most 8388608 bytes in one call, not 8388609: use a presigned URL/);
  }
  assert.equal(store.call("head", { key: "big/over" }), null);
  // Larger blobs come in through a presigned PUT ...
  const url = store.call("presign", { key: "big/over", method: "PUT" });
  const data = new Uint8Array(8 * MiB + 1).fill(3);
  data[8 * MiB] = 42;
  const info = node.openPresigned(url, "PUT", data, "application/x-big");
  assert.deepEqual([info.key, info.size, info.contentType], ["big/over", 8 * MiB + 1, "application/x-big"]);
  assert.deepEqual(store.call("head", { key: "big/over" }), info);
  // ... and a guest cannot get them, but a presigned GET can.
  assert.equal(refused(() => store.call("get", { key: "big/over" })), "payload_too_large");
  assert.equal(refused(() => store.call("get_text", { key: "big/over" })), "payload_too_large");
  const back = node.openPresigned(store.call("presign", { key: "big/over" }));
  assert.equal(back.length, 8 * MiB + 1);
  assert.deepEqual([back[0], back[8 * MiB]], [3, 42]);
});

test("presigned URLs are signed, encoded and served as the node does", () => {
  const node = nodeWith({ tenant: "acme", baseUrl: "https://blobs.example.com/", presignSecret: "s3cret" });
  const store = node.actor("store");
  const key = "reports/2024 Q1/naïve+it's(1)*~.txt";
  store.call("put", { key, text: "quarterly" });
  const url = store.call("presign", { key, method: "get", ttlMs: 60_000 });
  const expires = T0 + 60_000;
  const signature = createHmac("sha256", "s3cret").update(`GET\nacme\ndefault\n${key}\n${expires}`).digest("hex");
  assert.equal(
    url,
    `https://blobs.example.com/api/v1/presigned/acme/default/reports/2024%20Q1/na%C3%AFve%2Bit%27s%281%29%2A~.txt?expires=${expires}&signature=${signature}`,
  );
  assert.deepEqual(node.openPresigned(url), new TextEncoder().encode("quarterly"));
  // HEAD goes with a GET URL.
  assert.deepEqual(node.openPresigned(url, "HEAD"), node.blobs()[key]);
  assert.equal(thrown(() => node.openPresigned(url, "PUT", "x"))[0], "signature_invalid");
  assert.equal(thrown(() => node.openPresigned(url, "DELETE"))[0], "method_not_allowed");

  // A PUT URL (15 minutes by default) stores the body with the request's content type.
  const put = store.call("presign", { key: "uploads/new.bin", method: "PUT" });
  assert.match(put, new RegExp(`^https://blobs\\.example\\.com/api/v1/presigned/acme/default/uploads/new\\.bin\\?expires=${T0 + 900_000}&signature=[0-9a-f]{64}$`));
  node.nowMs += 1_000;
  const stored = node.openPresigned(put, "PUT", new Uint8Array([5, 6, 7]), "application/x-test");
  assert.deepEqual({ ...stored, etag: "" }, { key: "uploads/new.bin", size: 3, contentType: "application/x-test", modifiedAtMs: T0 + 1_000, etag: "" });
  assert.deepEqual(store.call("get", { key: "uploads/new.bin" }), { isBytes: true, size: 3, head: [5, 6, 7] });
  // Used again, it replaces the blob (a new etag); a string body is text.
  const replaced = node.openPresigned(put, "PUT", "text body");
  assert.notEqual(replaced.etag, stored.etag);
  assert.equal(replaced.contentType, "text/plain; charset=utf-8");
  assert.equal(store.call("get_text", { key: "uploads/new.bin" }), "text body");
  for (const method of ["GET", "HEAD"] as const) assert.equal(thrown(() => node.openPresigned(put, method))[0], "signature_invalid");

  // A GET URL of a missing blob is valid: not_found.
  const missing = store.call("presign", { key: "not/yet" });
  assert.deepEqual(thrown(() => node.openPresigned(missing)), ["not_found", 'no blob "not/yet" in default']);
  store.call("put", { key: "not/yet", bytes: [1] });
  assert.deepEqual(node.openPresigned(missing), new Uint8Array([1]));

  // method and ttl are checked.
  assert.equal(refused(() => store.call("presign", { key, method: "DELETE" })), "invalid_arguments");
  assert.equal(refused(() => store.call("presign", { key, ttlMs: 604_800_001 })), "invalid_arguments");
  assert.match(store.call("presign", { key, ttlMs: 604_800_000 }), new RegExp(`\\?expires=${node.nowMs + 604_800_000}&`));
});

test("the default base URL and a secret of each TestHost", () => {
  const [one, two] = [nodeWith(), nodeWith()];
  const url = one.actor("store").call("presign", { key: "a/b" });
  assert.match(url, new RegExp(`^http://127\\.0\\.0\\.1:8080/api/v1/presigned/default/default/a/b\\?expires=${T0 + 900_000}&signature=[0-9a-f]{64}$`));
  one.actor("store").call("put", { key: "a/b", text: "one" });
  two.actor("store").call("put", { key: "a/b", text: "two" });
  assert.deepEqual(one.openPresigned(url), new TextEncoder().encode("one"));
  // Another TestHost has another random secret: the URL is not its own.
  assert.equal(thrown(() => two.openPresigned(url))[0], "signature_invalid");
  const again = two.actor("store").call("presign", { key: "a/b" });
  assert.notEqual(new URL(again).searchParams.get("signature"), new URL(url).searchParams.get("signature"));
  // The base URL is configurable on a node too.
  one.baseUrl = "http://node-1:9000/prefix";
  const prefixed = one.actor("store").call("presign", { key: "a/b" });
  assert.ok(prefixed.startsWith("http://node-1:9000/prefix/api/v1/presigned/default/default/a/b?"), prefixed);
  assert.deepEqual(one.openPresigned(prefixed), new TextEncoder().encode("one"));
  assert.equal(thrown(() => one.openPresigned(url))[0], "not_found"); // not under the base path any more
});

test("a changed URL is signature_invalid, an old one url_expired, in that order", () => {
  const node = nodeWith({ tenant: "acme" });
  const store = node.actor("store");
  store.call("put", { key: "docs/a.txt", text: "A" });
  store.call("put", { key: "docs/b.txt", text: "B" });
  node.register("store", Store, "other");
  node.actor("store", "s", "other").call("put", { key: "docs/a.txt", text: "other A" });
  const url = store.call("presign", { key: "docs/a.txt", ttlMs: 1_000 });
  const parsed = new URL(url);
  const expires = Number(parsed.searchParams.get("expires"));
  const signature = parsed.searchParams.get("signature")!;
  assert.equal(expires, T0 + 1_000);
  const flipped = `${signature[0] === "a" ? "b" : "a"}${signature.slice(1)}`;
  const changed = {
    key: url.replace("/docs/a.txt?", "/docs/b.txt?"),
    expires: url.replace(`expires=${expires}`, `expires=${expires + 1}`),
    signature: url.replace(signature, flipped),
    tenant: url.replace("/presigned/acme/", "/presigned/other/"),
    namespace: url.replace("/acme/default/", "/acme/other/"),
    noSignature: url.replace(`&signature=${signature}`, ""),
    noExpiry: url.replace(`expires=${expires}&`, ""),
    leadingZero: url.replace(`expires=${expires}`, `expires=0${expires}`),
  };
  for (const [what, bad] of Object.entries(changed)) {
    assert.notEqual(bad, url, what);
    assert.equal(thrown(() => node.openPresigned(bad))[0], "signature_invalid", what);
  }
  // The node reads the signature's hex in either case.
  assert.deepEqual(node.openPresigned(url.replace(signature, signature.toUpperCase())), new TextEncoder().encode("A"));
  // Another method: a GET URL used to PUT.
  assert.equal(thrown(() => node.openPresigned(url, "PUT", "overwrite"))[0], "signature_invalid");
  assert.equal(node.blobBytes("docs/a.txt")!.length, 1);

  // Valid up to and at its expiry, refused after it.
  node.nowMs = expires;
  assert.deepEqual(node.openPresigned(url), new TextEncoder().encode("A"));
  node.nowMs = expires + 1;
  const [code, message] = thrown(() => node.openPresigned(url));
  assert.equal(code, "url_expired");
  assert.equal(message, `the URL expired 0 s ago (at ${expires} ms since the Unix epoch); ask for a new presigned URL`);
  // The signature is checked first, then the expiry, then the blob.
  assert.equal(thrown(() => node.openPresigned(changed.signature))[0], "signature_invalid");
  store.call("delete", { key: "docs/a.txt" });
  assert.equal(thrown(() => node.openPresigned(url))[0], "url_expired");
  node.nowMs = expires;
  assert.equal(thrown(() => node.openPresigned(url))[0], "not_found");
  // A PUT URL expires as well.
  const put = store.call("presign", { key: "docs/c.txt", method: "PUT", ttlMs: 10 });
  node.nowMs += 11;
  assert.equal(thrown(() => node.openPresigned(put, "PUT", "late"))[0], "url_expired");
  assert.equal(node.blobBytes("docs/c.txt"), null);
});
