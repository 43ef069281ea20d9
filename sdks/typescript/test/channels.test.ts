// Channels under @plexspaces/sdk/testing: queues, topics, receipts, capacity, consumers, and the
// SEDA pipeline fixture with its backpressure (as sdks/python/tests/test_channels.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import { channels, host, HostError, PlexSpacesActor } from "@plexspaces/sdk";
import { TestHost } from "@plexspaces/sdk/testing";

import * as seda from "./fixtures/seda_pipeline.ts";
import { refused } from "./support.ts";

type Payload = Record<string, any>;

export class Client extends PlexSpacesActor<Record<string, never>> {
  getDefaultState() {
    return {};
  }
  onCreate(p: { name: string; kind?: string; capacity?: number; visibilityMs?: number }) {
    return host.channels.create(p.name, p.kind, p.capacity, p.visibilityMs);
  }
  onSend(p: { name: string; data: unknown }) {
    return host.channels.send(p.name, p.data);
  }
  onReceive(p: { name: string; max?: number; subscription?: string | null }) {
    return host.channels.receive(p.name, p.max, 0, p.subscription);
  }
  onAck(p: { name: string; receipt: string }) {
    return host.channels.ack(p.name, p.receipt);
  }
  onNack(p: { name: string; receipt: string; delayMs?: number }) {
    return host.channels.nack(p.name, p.receipt, p.delayMs);
  }
  onSubscribe(p: { topic: string; subscription: string }) {
    return host.channels.subscribe(p.topic, p.subscription);
  }
  onUnsubscribe(p: { topic: string; subscription: string }) {
    return host.channels.unsubscribe(p.topic, p.subscription);
  }
  onClose(p: { name: string }) {
    return host.channels.close(p.name);
  }
}

export class Recorder extends PlexSpacesActor<{ seen: unknown[]; failFirst: boolean }> {
  getDefaultState() {
    return { seen: [], failFirst: false };
  }
  onListen(p: { name: string; subscription?: string | null; failFirst?: boolean }) {
    this.state.failFirst = Boolean(p.failFirst);
    return host.channels.consume(p.name, "message", p.subscription ?? null);
  }
  onStop(p: { name: string }) {
    return host.channels.stopConsuming(p.name);
  }
  onMessage(p: { data: unknown; channel: string; receipt: string; attempt: number; subscription: string | null }) {
    if (this.state.failFirst && p.attempt === 1) throw new Error("not yet");
    this.state.seen.push([p.data, p.attempt, p.subscription]);
  }
  onSeen() {
    return this.state.seen;
  }
}

function nodeWith(...types: Array<[string, Function]>): TestHost {
  const node = new TestHost();
  for (const [name, cls] of types) node.register(name, cls);
  return node;
}

test("host.channels is the exported channels", () => {
  assert.equal(host.channels, channels);
});

test("a queue delivers once until acknowledged and counts redeliveries", () => {
  const node = nodeWith(["client", Client]);
  const client = node.actor("client");
  assert.equal(client.call("create", { name: "jobs" }), true);
  assert.equal(client.call("create", { name: "jobs" }), false);
  assert.equal(refused(() => client.call("create", { name: "jobs", capacity: 5 })), "already_exists");
  for (const n of [1, 2]) assert.equal(client.call("send", { name: "jobs", data: { n } }), 1);
  const first = client.call("receive", { name: "jobs", max: 5 });
  assert.deepEqual(
    first.map((d: Payload) => [d.data, d.attempt]),
    [[{ n: 1 }, 1], [{ n: 2 }, 1]],
  );
  assert.deepEqual(first.map((d: Payload) => d.receipt), ["1.1", "2.1"]);
  assert.deepEqual(client.call("receive", { name: "jobs" }), []);
  assert.equal(client.call("ack", { name: "jobs", receipt: first[0].receipt }), true);
  assert.equal(client.call("ack", { name: "jobs", receipt: first[0].receipt }), false);
  assert.equal(client.call("nack", { name: "jobs", receipt: first[1].receipt }), true);
  // Given back already: a second nack of the same delivery changes nothing.
  assert.equal(client.call("nack", { name: "jobs", receipt: first[1].receipt }), false);
  const again = client.call("receive", { name: "jobs" });
  assert.equal(again[0].attempt, 2);
  // The first delivery no longer holds the message.
  assert.equal(client.call("ack", { name: "jobs", receipt: first[1].receipt }), false);
  // Past the visibility timeout, an unacknowledged message comes again.
  node.nowMs += 29_999;
  assert.deepEqual(client.call("receive", { name: "jobs" }), []);
  node.nowMs += 1;
  const third = client.call("receive", { name: "jobs" });
  assert.equal(third[0].attempt, 3);
  assert.deepEqual(node.channels().jobs!.queues[""], { ready: 0, inFlight: 1, acked: 1, redelivered: 2 });
  assert.equal(node.channels().jobs!.kind, "queue");
  assert.equal(node.channels().jobs!.closed, false);
});

test("a nack with a delay hides the message until the clock passes it", () => {
  const node = nodeWith(["client", Client]);
  const client = node.actor("client");
  client.call("create", { name: "jobs", visibilityMs: 1_000 });
  client.call("send", { name: "jobs", data: "x" });
  const [delivery] = client.call("receive", { name: "jobs" });
  assert.equal(client.call("nack", { name: "jobs", receipt: delivery.receipt, delayMs: 500 }), true);
  assert.deepEqual(node.channels().jobs!.queues[""], { ready: 0, inFlight: 1, acked: 0, redelivered: 0 });
  node.nowMs += 499;
  assert.deepEqual(client.call("receive", { name: "jobs" }), []);
  node.nowMs += 1;
  const [next] = client.call("receive", { name: "jobs" });
  assert.deepEqual([next.data, next.attempt, next.receipt], ["x", 2, "1.2"]);
  // The channel's own visibility timeout (1 s here) brings it back too.
  node.nowMs += 1_000;
  assert.equal(client.call("receive", { name: "jobs" })[0].attempt, 3);
});

test("a topic fans out to every subscription", () => {
  const node = nodeWith(["client", Client]);
  const client = node.actor("client");
  client.call("create", { name: "events", kind: "topic" });
  assert.equal(client.call("send", { name: "events", data: 0 }), 0);
  for (const sub of ["a", "b"]) assert.equal(client.call("subscribe", { topic: "events", subscription: sub }), true);
  assert.equal(client.call("subscribe", { topic: "events", subscription: "a" }), false);
  assert.equal(client.call("send", { name: "events", data: 1 }), 2);
  for (const sub of ["a", "b"]) {
    const got = client.call("receive", { name: "events", subscription: sub });
    assert.equal(got[0].data, 1);
    assert.ok(got[0].receipt.startsWith(`${sub}/`), got[0].receipt);
    assert.equal(client.call("ack", { name: "events", receipt: got[0].receipt }), true);
  }
  assert.equal(refused(() => client.call("receive", { name: "events" })), "invalid_arguments");
  assert.equal(refused(() => client.call("receive", { name: "events", subscription: "c" })), "not_found");
  assert.equal(client.call("unsubscribe", { topic: "events", subscription: "b" }), true);
  assert.equal(client.call("unsubscribe", { topic: "events", subscription: "b" }), false);
  assert.equal(client.call("send", { name: "events", data: 2 }), 1);
  assert.deepEqual(Object.keys(node.channels().events!.queues), ["a"]);
  client.call("create", { name: "jobs" });
  assert.equal(refused(() => client.call("subscribe", { topic: "jobs", subscription: "a" })), "invalid_arguments");
});

test("capacity, closing and bad input", () => {
  const node = nodeWith(["client", Client]);
  const client = node.actor("client");
  client.call("create", { name: "small", capacity: 1 });
  client.call("send", { name: "small", data: "x" });
  assert.equal(refused(() => client.call("send", { name: "small", data: "y" })), "channel_full");
  // A delivered message still counts against the capacity until it is acknowledged.
  const [held] = client.call("receive", { name: "small" });
  assert.equal(refused(() => client.call("send", { name: "small", data: "y" })), "channel_full");
  assert.equal(client.call("close", { name: "small" }), true);
  assert.equal(client.call("close", { name: "small" }), false);
  assert.equal(node.channels().small!.closed, true);
  // What it holds is still delivered and acknowledged.
  assert.equal(client.call("ack", { name: "small", receipt: held.receipt }), true);
  assert.equal(refused(() => client.call("send", { name: "small", data: "z" })), "invalid_state");
  assert.equal(refused(() => client.call("send", { name: "nope", data: 1 })), "not_found");
  assert.equal(refused(() => client.call("create", { name: "q", kind: "stack" })), "invalid_arguments");
  assert.equal(refused(() => client.call("create", { name: "" })), "invalid_arguments");
  assert.equal(refused(() => client.call("ack", { name: "small", receipt: "garbage" })), "invalid_arguments");
  assert.equal(refused(() => client.call("send", { name: "small" })), "invalid_arguments"); // undefined data
  // The backend refuses text that is not JSON (the host API always serializes).
  node.with(() => {
    host.channels.create("raw");
    assert.throws(() => node.backend().chSend("raw", "{nope", 0), (e: HostError) => e.code === "invalid_json");
  });
  // From outside: the error itself, not an actor_error.
  assert.throws(() => node.channelSend("nope", 1), (e: HostError) => e.code === "not_found" && /create it first/.test(e.message));
});

test("consumers get each message and failures come back", () => {
  const node = nodeWith(["client", Client], ["recorder", Recorder]);
  node.actor("client").call("create", { name: "work" });
  const recorder = node.actor("recorder", "r1");
  assert.equal(recorder.call("listen", { name: "work", failFirst: true }), true);
  assert.equal(recorder.call("listen", { name: "work", failFirst: true }), false);
  for (const n of [0, 1, 2]) assert.equal(node.channelSend("work", n), 1);
  // Each first attempt failed: given back with a backoff, delivered once the clock passes it.
  assert.deepEqual(recorder.call("seen"), []);
  const givenBack = node.logs.filter(([actor, level, line]) => actor === "default/recorder/r1" && level === "warn" && /message given back: actor_error/.test(line));
  assert.equal(givenBack.length, 3, JSON.stringify(node.logs));
  node.nowMs += 99;
  node.runUntilIdle();
  assert.deepEqual(recorder.call("seen"), []);
  node.nowMs += 1_000;
  node.runUntilIdle();
  assert.deepEqual(recorder.call("seen"), [[0, 2, null], [1, 2, null], [2, 2, null]]);
  assert.deepEqual(node.channels().work!.queues[""], { ready: 0, inFlight: 0, acked: 3, redelivered: 3 });
  // Stopped: messages wait in the channel.
  assert.equal(recorder.call("stop", { name: "work" }), true);
  assert.equal(recorder.call("stop", { name: "work" }), false);
  node.channelSend("work", 3);
  assert.equal(node.channels().work!.queues[""]!.ready, 1);
});

test("a topic's consumers each get every message of their subscription", () => {
  const node = nodeWith(["client", Client], ["recorder", Recorder]);
  node.actor("client").call("create", { name: "news", kind: "topic" });
  const [a, b] = [node.actor("recorder", "a"), node.actor("recorder", "b")];
  // consume creates the subscription.
  assert.equal(a.call("listen", { name: "news", subscription: "sa" }), true);
  assert.equal(b.call("listen", { name: "news", subscription: "sb" }), true);
  assert.equal(node.channelSend("news", "hello"), 2);
  assert.deepEqual(a.call("seen"), [["hello", 1, "sa"]]);
  assert.deepEqual(b.call("seen"), [["hello", 1, "sb"]]);
  // Unsubscribing ends the consumers of that subscription.
  node.actor("client").call("unsubscribe", { topic: "news", subscription: "sb" });
  assert.equal(node.channelSend("news", "again"), 1);
  assert.equal(b.call("seen").length, 1);
  assert.equal(a.call("seen").length, 2);
  // A queue has no subscriptions to consume.
  node.actor("client").call("create", { name: "jobs" });
  assert.equal(refused(() => a.call("listen", { name: "jobs", subscription: "s" })), "invalid_arguments");
});

test("the SEDA pipeline backs up to its first stage and loses nothing", () => {
  const node = new TestHost();
  assert.deepEqual(node.registerModule("seda", seda).sort(), ["seda.enrich", "seda.store", "seda.validate"]);
  for (const stage of ["validate", "enrich", "store"]) node.actor(`seda.${stage}`).call("start");
  let accepted = 0;
  let full: unknown = null;
  try {
    for (let n = 0; n < 100; n++) {
      node.channelSend("orders", { id: `o${n}`, sku: "apple", qty: 2 });
      accepted++;
    }
  } catch (error) {
    full = error;
  }
  assert.ok(full instanceof HostError && full.code === "channel_full", `${full} ${JSON.stringify(node.logs)}`);
  // Every channel is full: the backpressure went from the last stage to the first.
  assert.equal(accepted, 3 * seda.CAPACITY, JSON.stringify([node.channels(), node.logs]));
  for (const name of ["orders", "validated", "enriched"]) {
    const queue = node.channels()[name]!.queues[""]!;
    assert.equal(queue.ready + queue.inFlight, seda.CAPACITY, name);
  }
  const store = node.actor("seda.store");
  let stored = 0;
  for (let round = 0; round < 50; round++) {
    node.nowMs += 60_000; // past every backoff: the waiting stages try again
    node.runUntilIdle();
    stored = store.call("drain").orders;
    if (stored === accepted) break;
  }
  assert.equal(stored, accepted);
  assert.equal(store.call("stats").revenue, accepted * 2 * seda.PRICES.apple!);
  assert.deepEqual(node.actor("seda.validate").call("stats"), { passed: accepted, rejected: 0 });
  // A bad order is acknowledged and counted, not passed on.
  node.channelSend("orders", { id: "bad", qty: -1 });
  assert.equal(node.actor("seda.validate").call("stats").rejected, 1);
  assert.equal(node.channels().orders!.queues[""]!.ready, 0);
});
