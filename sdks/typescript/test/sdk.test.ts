import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { HostError, snakeCase } from "@plexspaces/sdk";
import { TestHost } from "@plexspaces/sdk/testing";

import { CounterActor } from "../../../examples/typescript/counter.ts";
import * as actors from "./fixtures/actors.ts";
import { binaryToBytes, bytesToBinary, decodeUtf8, encodeUtf8, ownDecodeUtf8, ownEncodeUtf8 } from "../src/utf8.ts";
import { Runtime, FRESH, BYTES, CACHED, Failure } from "../src/dispatch.ts";

const here = path.dirname(fileURLToPath(import.meta.url));

function failsWith(fn: () => unknown, code: string, errorType?: string): HostError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof HostError, `a HostError, not ${error}`);
    assert.equal(error.code, code, error.message);
    if (errorType !== undefined) assert.equal(error.errorType, errorType);
    return error;
  }
  assert.fail(`expected a HostError ${code}`);
}

test("the counter example works as written", () => {
  const node = new TestHost();
  node.register("counter", CounterActor);
  const counter = node.actor("counter", "c1");
  assert.deepEqual(counter.call("increment", { amount: 5 }), { count: 5 });
  assert.deepEqual(counter.call("increment"), { count: 6 });
  assert.deepEqual(counter.call("get"), { count: 6 });
  assert.deepEqual(counter.state, { count: 6 });
  // Another id starts from the default state.
  assert.deepEqual(node.actor("counter", "c2").call("get"), { count: 0 });
});

test("actions map to on<Action> methods in snake_case", () => {
  assert.equal(snakeCase("PlaceOrder"), "place_order");
  assert.equal(snakeCase("HTTPServer"), "http_server");
  assert.equal(snakeCase("Increment"), "increment");
  const node = new TestHost();
  node.register("order_desk", actors.OrderDesk);
  node.register("audit", actors.Audit);
  const desk = node.actor("order_desk");
  assert.deepEqual(desk.call("place_order", { id: "o1", amount: 7 }), { placed: "o1", count: 1 });
  assert.deepEqual(node.kv(), { "order:o1": '{"amount":7}' });
  // The tell was queued and delivered after the handler returned.
  assert.deepEqual(node.actor("audit").state, { seen: ["o1"] });
  assert.deepEqual(desk.call("ask_audit"), { count: 1 });
  const unknown = failsWith(() => desk.call("helper"), "unknown_action");
  assert.match(unknown.message, /handlers: ask_audit, bigint, fail, place_order, whoami/);
});

test("failures carry stable codes and the actor keeps its last state", () => {
  const node = new TestHost();
  node.register("order_desk", actors.OrderDesk);
  node.register("audit", actors.Audit);
  const desk = node.actor("order_desk");
  desk.call("place_order", { id: "o1", amount: 1 });
  const failed = failsWith(() => desk.call("fail"), "actor_error", "RangeError");
  assert.match(failed.message, /no such order/);
  failsWith(() => desk.call("bigint"), "state_not_serializable");
  assert.deepEqual(desk.state, { orders: ["o1"], total: 1 });
  // An ask cycle is a timeout, as a node reports it.
  failsWith(() => node.actor("audit").call("ask_desk"), "actor_error");
  failsWith(() => node.actor("nobody"), "not_found");
});

test("an FsmActor follows its transitions", () => {
  const node = new TestHost();
  node.register("door", actors.Door);
  const door = node.actor("door");
  assert.equal(door.call("peek"), "locked");
  failsWith(() => door.call("open"), "invalid_state");
  assert.equal(door.call("unlock"), "locked");
  assert.equal(door.call("open"), 1);
  assert.equal(door.fsmState, "open");
  assert.deepEqual(door.state, { opened: 1 });
  failsWith(() => door.call("unlock"), "invalid_state");
});

test("an EventActor runs every handler of an action", () => {
  const node = new TestHost();
  node.register("journal", actors.Journal);
  const journal = node.actor("journal");
  assert.deepEqual(journal.call("entry", { text: "a" }), ["kept", 1]);
  assert.deepEqual(journal.call("entry", { text: "b" }), ["kept", 2]);
});

test("a WorkflowActor runs with durable steps, sleeps and signals", () => {
  const node = new TestHost();
  node.register("approval", actors.Approval);
  const flow = node.actor("approval", "a1");
  // A signal sent before the run is kept for it.
  assert.equal(flow.call("approve", { by: "ann" }), null);
  const start = node.nowMs;
  const reply = flow.call("run", { amount: 21 });
  assert.equal(reply.stage, "approved");
  assert.equal(node.nowMs - start, 1000);
  assert.deepEqual(node.steps, [["default/approval/a1", "charge", 42]]);
  assert.deepEqual(flow.state, { stage: "approved", charged: 42, approvedBy: "ann" });
  assert.deepEqual(flow.call("status"), { stage: "approved" });
  // Without a signal the wait times out.
  const late = node.actor("approval", "a2").call("run", { amount: 1 });
  assert.equal(late.stage, "timed_out");
});

test("the host services: tuple space, locks, KV, groups, timers", () => {
  const node = new TestHost();
  node.register("services", actors.Services);
  node.register("audit", actors.Audit);
  const services = node.actor("services", "s1");
  const tuples = services.call("tuples");
  assert.equal(tuples.read, '["order",1,"new"]');
  assert.equal(tuples.count, 2);
  assert.equal(tuples.taken, '["order",1,"new"]');
  assert.deepEqual(tuples.scan, ['["order",2,"new"]']);
  assert.equal(tuples.missing, null);
  node.nowMs += 1000;
  assert.deepEqual(node.tuples(), []);

  const locks = services.call("locks");
  assert.equal(locks.short, "1");
  assert.equal(locks.long.version, "1");
  assert.equal(locks.long.holder_id, "default/services/s1");
  assert.match(locks.other, /^ERROR:timeout:/);
  assert.equal(locks.renewed, "1");
  assert.equal(locks.released, true);
  assert.equal(locks.again, false);

  const kv = services.call("kv");
  assert.deepEqual(kv.list, [["a:1", "one"], ["a:2", '{"two":2}']]);
  assert.equal(kv.get, '{"two":2}');
  assert.equal(kv.swapped, true);
  assert.equal(kv.refused, false);
  assert.equal(kv.deleted, true);
  assert.equal(kv.gone, null);
  node.nowMs += 1000;
  assert.deepEqual(node.kv(), { "b:1": "4" });

  const groups = services.call("groups");
  assert.deepEqual(groups.members, ["default/audit/a1", "default/services/s1"]);
  assert.equal(groups.sent, 2);
  // The publisher got its own message; Audit has no onPgMessage and dropped it.
  assert.deepEqual(services.state.n, 1);
  assert.equal(node.droppedPgMessages, 1);

  services.call("timer");
  assert.equal(node.timers.length, 1);
  assert.equal(node.fireTimers(), 1);
  assert.equal(services.state.n, 101);

  assert.deepEqual(services.call("bad_args"), { code: "invalid_arguments", isHostError: true });
});

test("the host is unavailable outside a node or a TestHost", async () => {
  const { host } = await import("@plexspaces/sdk");
  failsWith(() => host.getActorId(), "unavailable");
});

test("the dispatch answers the guest protocol", () => {
  const runtime = new Runtime([CounterActor], "typescript test");
  const described = JSON.parse(runtime.describe());
  assert.equal(described.world, "0.1.0");
  assert.deepEqual(described.classes[0].handlers, [
    { name: "increment", kind: "handler" },
    { name: "get", kind: "handler" },
  ]);
  const message = (text: string) => encodeUtf8(text);
  const [reply, state] = runtime.handle(0, "k", FRESH, null, "increment", message('{"action":"increment","amount":2}'), []);
  assert.equal(decodeUtf8(reply), '{"count":2}');
  assert.equal(decodeUtf8(state!), '{"count":2}');
  const [cached] = runtime.handle(0, "k", CACHED, null, "get", message("{}"), []);
  assert.equal(decodeUtf8(cached), '{"count":2}');
  // Evicted: the instance asks for the bytes.
  assert.throws(() => runtime.handle(0, "k", CACHED, null, "get", message("{}"), [[0, "k"]]), (e: Failure) => e.code === "need_state");
  const [restored] = runtime.handle(0, "k", BYTES, message('{"count":9}'), "get", message("{}"), []);
  assert.equal(decodeUtf8(restored), '{"count":9}');
  assert.throws(() => runtime.handle(0, "k", FRESH, null, "get", message("{nope"), []), (e: Failure) => e.code === "invalid_json");
  assert.throws(() => runtime.handle(0, "k", FRESH, null, "get", message("[1]"), []), (e: Failure) => e.code === "invalid_arguments");
  assert.throws(() => runtime.handle(3, "k", FRESH, null, "get", message("{}"), []), (e: Failure) => e.code === "internal");
});

test("the UTF-8 codec agrees with TextEncoder and refuses bad bytes", () => {
  const samples = ["", "plain", "é ü ß", "日本語", "emoji 🎉 and 𝄞", "\u0000\u007f\u0080\u07ff\u0800\uffff"];
  // The SDK's own codec is the one QuickJS runs (it has no TextEncoder).
  const own = { encodeUtf8: ownEncodeUtf8, decodeUtf8: ownDecodeUtf8 };
  for (const text of samples) {
    const bytes = new TextEncoder().encode(text);
    assert.deepEqual(own.encodeUtf8(text), bytes, text);
    assert.equal(own.decodeUtf8(bytes), text);
  }
  assert.deepEqual(own.encodeUtf8("\ud800x"), new TextEncoder().encode("\ud800x"));
  for (const bad of [[0xff], [0xc3], [0xe2, 0x28, 0xa1], [0xc0, 0x80], [0xed, 0xa0, 0x80]]) {
    assert.throws(() => own.decodeUtf8(new Uint8Array(bad)), TypeError, String(bad));
  }
  const long = "x".repeat(10_000) + "é";
  assert.equal(own.decodeUtf8(own.encodeUtf8(long)), long);
  // QuickJS's base64 builtins (Uint8Array.fromBase64, toBase64), as Node 20 lacks them.
  const array = Uint8Array as unknown as { fromBase64?: unknown };
  const proto = Uint8Array.prototype as unknown as { toBase64?: unknown };
  array.fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"));
  proto.toBase64 = function (this: Uint8Array) {
    return Buffer.from(this).toString("base64");
  };
  try {
    for (const text of [...samples, long]) {
      const bytes = new TextEncoder().encode(text);
      assert.deepEqual(own.encodeUtf8(text), bytes, text);
      assert.equal(own.decodeUtf8(bytes), text);
    }
    assert.equal(bytesToBinary(new Uint8Array([0, 200, 255])), "\u0000\u00c8\u00ff");
    assert.deepEqual(binaryToBytes("\u0000\u00c8\u00ff"), new Uint8Array([0, 200, 255]));
  } finally {
    delete array.fromBase64;
    delete proto.toBase64;
  }
});

test("the SDK's WIT is the repository's", () => {
  const ours = readFileSync(path.join(here, "../wit/plexspaces.wit"), "utf8");
  const repo = readFileSync(path.join(here, "../../../wit/plexspaces.wit"), "utf8");
  assert.equal(ours, repo);
});
