/**
 * Run actors under plain Node, with an in-memory host: unit tests without building wasm.
 *
 * ```ts
 * import { TestHost } from "@plexspaces/sdk/testing";
 * import { CounterActor } from "./counter.ts";
 *
 * const node = new TestHost();
 * node.register("counter", CounterActor);
 * const counter = node.actor("counter", "c1");
 * assert.deepEqual(counter.call("increment", { amount: 5 }), { count: 5 });
 * assert.deepEqual(counter.state, { count: 5 });
 * ```
 *
 * Run such tests with `plexspaces-ts test counter.test.ts` (it bundles them for Node's test
 * runner). Messages go through the same dispatch the node runs, and state is stored as JSON bytes
 * between messages exactly as the node stores it, so a state that is not JSON-serializable fails
 * here as it would there. Tells are queued and delivered after the handler that sent them returns;
 * asks run the target at once (an ask back to an actor that is waiting is an ask cycle,
 * `timeout`, as a node reports it after the timeout). `onAsk` and `onTell` stand in for actors the
 * test does not run.
 *
 * The tuple space matches as the node's does, one space per namespace. Nothing else runs while a
 * handler waits, so a `tsRead` or `tsTake` with a timeout answers at once; leases end when the test
 * moves `nowMs` past them; `tsTakeLater` delivers its tuple as a queued tell. Locks grant
 * increasing versions and end their leases as `nowMs` moves; an acquire that would wait answers at
 * once. KV entries expire as `nowMs` moves (`node.kv()` shows a namespace's). A group publish
 * queues one `pg_message` per member; a member without an `onPgMessage` handler drops it and
 * `node.droppedPgMessages` counts it. Channels keep the node's rules (capacity, receipts,
 * visibility timeouts as `nowMs` moves); a send to a full channel fails at once with
 * `channel_full`, since nothing could make room while it waits. Consumers get their messages, one
 * at a time, once the queued tells are delivered: a handler that throws gives its message back
 * (delivered again once `nowMs` passes the backoff). `node.channelSend` sends from outside and
 * `node.channels()` shows each channel's queues. A workflow's durable `sleep` moves the clock;
 * `waitSignal` takes a signal sent before the run, or times out at once.
 */

import { actorClasses, inspectClass, snakeCase } from "./actor.js";
import { ClassRuntime, Failure, FSM_KEY, unwrapFsm } from "./dispatch.js";
import { type Backend, type Grant, HostError, type LogLevel, setBackend } from "./host.js";
import { decodeUtf8, encodeUtf8 } from "./utf8.js";

export { HostError };

type Address = [string, string, string];
type Payload = Record<string, any>;

/** A tell an actor sent. */
export interface Told {
  sender: string;
  target: string;
  action: string;
  payload: Payload;
  error?: HostError;
}

const KINDS: Record<string, (value: unknown) => boolean> = {
  string: (v) => typeof v === "string",
  int: (v) => typeof v === "number" && Number.isInteger(v),
  number: (v) => typeof v === "number",
  bool: (v) => typeof v === "boolean",
  array: (v) => Array.isArray(v),
  object: (v) => v !== null && typeof v === "object" && !Array.isArray(v),
};

/** JSON's own equality: object keys in any order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.keys(value as object)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical((value as Payload)[key])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value);
}

function parseArray(text: string, what: string): unknown[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new HostError("invalid_arguments", `the ${what} is not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(value)) throw new HostError("invalid_arguments", `a ${what} is a JSON array`);
  if (value.length === 0) throw new HostError("invalid_arguments", `a ${what} needs at least one field`);
  if (value.length > 64) throw new HostError("invalid_arguments", `a ${what} has at most 64 fields, not ${value.length}`);
  return value;
}

function fieldMatcher(field: unknown): (value: unknown) => boolean {
  if (field === null) return () => true;
  if (field !== null && typeof field === "object" && !Array.isArray(field)) {
    const keys = Object.keys(field as object);
    if (keys.length === 1 && keys[0] === "$type") {
      const kind = KINDS[String((field as Payload).$type)];
      if (kind === undefined) {
        throw new HostError("invalid_arguments", `unknown $type ${JSON.stringify((field as Payload).$type)} in the pattern (known: ${Object.keys(KINDS).join(", ")})`);
      }
      return kind;
    }
  }
  const exact = canonical(field);
  return (value) => canonical(value) === exact;
}

function matcher(pattern: string): (tuple: unknown[]) => boolean {
  const fields = parseArray(pattern, "pattern").map(fieldMatcher);
  return (tuple) => tuple.length === fields.length && fields.every((matches, at) => matches(tuple[at]));
}

interface Space {
  tuples: Array<[unknown[], number | null]>;
  later: Array<[(tuple: unknown[]) => boolean, Address, string]>;
}

interface Actor {
  runtime: ClassRuntime;
  state: Uint8Array | null;
}

interface LockGrant {
  version: bigint;
  holder: string;
  metadata: string;
  expiresAtMs: number;
}

/** A timer set and not yet fired. */
export interface Timer {
  id: string;
  actor: string;
  action: string;
  payload: Payload;
  dueMs: number;
  durable: boolean;
}

/** What `node.channels()` shows of one queue of a channel ("" for a queue's own, else a
 * topic's subscription). */
export interface ChannelQueueStats {
  ready: number;
  inFlight: number;
  acked: number;
  redelivered: number;
}

/** What `node.channels()` shows of a channel. */
export interface ChannelStats {
  kind: string;
  closed: boolean;
  queues: Record<string, ChannelQueueStats>;
}

interface ChannelConfig {
  kind: string;
  capacity: number;
  visibilityMs: number;
}

interface ChannelMessage {
  data: string;
  attempt: number;
  /** null: ready; else invisible until then (delivered, or given back with a delay). */
  visibleAt: number | null;
  sentAt: number;
}

class ChannelQueue {
  nextId = 1;
  /** By id, in the order sent (ids only grow, so the Map's order is theirs). */
  readonly messages = new Map<number, ChannelMessage>();
  acked = 0;
  redelivered = 0;
}

/** A channel of a TestHost, with the node's rules: capacity counts delivered messages too, a
 * delivery's receipt holds its message until it is settled or delivered again. */
class Channel {
  closed = false;
  readonly queues = new Map<string, ChannelQueue>();
  /** actor -> [subscription, action] */
  readonly consumers = new Map<string, [string, string]>();

  constructor(readonly config: ChannelConfig) {
    if (config.kind === "queue") this.queues.set("", new ChannelQueue());
  }

  queue(name: string, subscription: string): ChannelQueue {
    if (this.config.kind === "queue" && subscription) {
      throw new HostError("invalid_arguments", `${JSON.stringify(name)} is a queue: receive from it without a subscription`);
    }
    if (this.config.kind === "topic" && !subscription) {
      throw new HostError("invalid_arguments", `${JSON.stringify(name)} is a topic: receive from one of its subscriptions`);
    }
    const queue = this.queues.get(subscription);
    if (queue === undefined) {
      throw new HostError("not_found", `topic ${JSON.stringify(name)} has no subscription ${JSON.stringify(subscription)}: subscribe first`);
    }
    return queue;
  }

  send(name: string, data: string, nowMs: number): number {
    if (this.closed) throw new HostError("invalid_state", `channel ${JSON.stringify(name)} is closed: it takes no new messages`);
    try {
      JSON.parse(data);
    } catch (error) {
      throw new HostError("invalid_json", `a message is JSON text: ${(error as Error).message}`);
    }
    for (const [sub, queue] of this.queues) {
      if (queue.messages.size >= this.config.capacity) {
        const whose = sub ? ` (subscription ${JSON.stringify(sub)})` : "";
        throw new HostError("channel_full", `channel ${JSON.stringify(name)}${whose} holds its capacity of ${this.config.capacity} messages`);
      }
    }
    for (const queue of this.queues.values()) {
      queue.messages.set(queue.nextId, { data, attempt: 0, visibleAt: null, sentAt: nowMs });
      queue.nextId++;
    }
    return this.queues.size;
  }

  receive(name: string, subscription: string, max: number, nowMs: number): Array<[string, string, number]> {
    const queue = this.queue(name, subscription);
    const got: Array<[string, string, number]> = [];
    for (const [id, message] of queue.messages) {
      if (got.length >= max) break;
      if (message.visibleAt !== null && message.visibleAt > nowMs) continue;
      message.attempt++;
      message.visibleAt = nowMs + this.config.visibilityMs;
      if (message.attempt > 1) queue.redelivered++;
      const receipt = subscription ? `${subscription}/${id}.${message.attempt}` : `${id}.${message.attempt}`;
      got.push([receipt, message.data, message.attempt]);
    }
    return got;
  }

  /** Acks (`delayMs` null) or nacks a delivery. */
  settle(name: string, receipt: string, delayMs: number | null, nowMs: number): boolean {
    const slash = receipt.lastIndexOf("/");
    const subscription = slash < 0 ? "" : receipt.slice(0, slash);
    const rest = receipt.slice(slash + 1);
    const dot = rest.indexOf(".");
    const id = dot < 0 ? rest : rest.slice(0, dot);
    const attempt = dot < 0 ? "" : rest.slice(dot + 1);
    if (!/^[0-9]+$/.test(id) || !/^[0-9]+$/.test(attempt)) {
      throw new HostError("invalid_arguments", `${JSON.stringify(receipt)} is not a receipt: pass the receipt of a delivery as it came`);
    }
    const queue = this.queue(name, subscription);
    const message = queue.messages.get(Number(id));
    if (message === undefined || message.attempt !== Number(attempt)) return false;
    if (delayMs === null) {
      queue.messages.delete(Number(id));
      queue.acked++;
    } else {
      if (message.visibleAt === null) return false; // given back already
      message.visibleAt = delayMs ? nowMs + delayMs : null;
    }
    return true;
  }

  stats(nowMs: number): ChannelStats {
    const queues: Record<string, ChannelQueueStats> = {};
    for (const [sub, queue] of this.queues) {
      let ready = 0;
      for (const message of queue.messages.values()) {
        if (message.visibleAt === null || message.visibleAt <= nowMs) ready++;
      }
      queues[sub] = { ready, inFlight: queue.messages.size - ready, acked: queue.acked, redelivered: queue.redelivered };
    }
    return { kind: this.config.kind, closed: this.closed, queues };
  }
}

/** `namespace/type/key` as an address (a key may hold slashes). */
function addressOf(actor: string): Address {
  const first = actor.indexOf("/");
  const second = actor.indexOf("/", first + 1);
  return [actor.slice(0, first), actor.slice(first + 1, second), actor.slice(second + 1)];
}

/** An in-memory node for one tenant. */
export class TestHost {
  namespace: string;
  nowMs: number;
  readonly told: Told[] = [];
  readonly logs: Array<[string, LogLevel | string, string]> = [];
  droppedPgMessages = 0;
  /** Steps runs recorded: [actor, step name, result]. */
  readonly steps: Array<[string, string, unknown]> = [];
  /** The state each workflow committed last, by actor id. */
  readonly committed: Record<string, unknown> = {};
  timers: Timer[] = [];

  private readonly types = new Map<string, ClassRuntime>();
  private readonly actors = new Map<string, Actor>();
  private readonly asks = new Map<string, (payload: Payload) => unknown>();
  private readonly tells = new Map<string, (payload: Payload) => unknown>();
  private readonly queue: Array<[string, Address, string, Payload]> = [];
  private readonly serving: Address[] = [];
  private readonly spaces = new Map<string, Space>();
  private readonly locks = new Map<string, LockGrant>();
  private lockVersions = 0n;
  private readonly kvStore = new Map<string, [string, number | null]>();
  private readonly groups = new Map<string, Map<string, Set<string> | null>>();
  private readonly pending = new Map<string, string[]>();
  private readonly channelStore = new Map<string, Channel>();
  private timerIds = 0;
  private rng: bigint;

  constructor(options: { namespace?: string; nowMs?: number; seed?: number } = {}) {
    this.namespace = options.namespace ?? "default";
    this.nowMs = options.nowMs ?? 1_700_000_000_000;
    this.rng = BigInt(options.seed ?? 0);
  }

  // Setting up ---------------------------------------------------------------------------------

  /** Serves the actor class `cls` as `actorType`. */
  register(actorType: string, cls: Function, namespace?: string): void {
    this.types.set(`${namespace ?? this.namespace}/${actorType}`, new ClassRuntime(inspectClass(cls)));
  }

  /** Serves every actor class a module exports as the node would deploy it: one class as
   * `actorType`, several as `actorType.<snake_case class name>`. Returns the types. */
  registerModule(actorType: string, module: Record<string, unknown>, namespace?: string): string[] {
    const classes = actorClasses(module);
    if (classes.length === 0) throw new TypeError("the module exports no actor class");
    const names = classes.length === 1 ? [actorType] : classes.map((cls) => `${actorType}.${snakeCase(cls.name)}`);
    names.forEach((name, at) => this.register(name, classes[at]!, namespace));
    return names;
  }

  /** Answers asks of `action` to `target` (as the actor sends it) with `reply(payload)`. */
  onAsk(target: string, action: string, reply: (payload: Payload) => unknown): void {
    this.asks.set(`${target}\u0000${action}`, reply);
  }

  /** Receives tells of `action` to `target` with `receive(payload)`. */
  onTell(target: string, action: string, receive: (payload: Payload) => unknown): void {
    this.tells.set(`${target}\u0000${action}`, receive);
  }

  /** The actor `key` of `actorType`. */
  actor(actorType: string, key = "default", namespace?: string): ActorHandle {
    const address: Address = [namespace ?? this.namespace, actorType, key];
    this.runtime(address);
    return new ActorHandle(this, address);
  }

  /** Runs `fn` with this node as the host, for code that calls `host` directly. */
  with<T>(fn: () => T): T {
    const previous = setBackend(this.backend());
    try {
      return fn();
    } finally {
      setBackend(previous);
    }
  }

  // Messaging ----------------------------------------------------------------------------------

  private runtime(address: Address): ClassRuntime {
    const runtime = this.types.get(`${address[0]}/${address[1]}`);
    if (runtime === undefined) {
      throw new HostError("not_found", `actor type ${JSON.stringify(address[1])} is not deployed in namespace ${JSON.stringify(address[0])}`);
    }
    return runtime;
  }

  private current(): Address {
    return this.serving.length > 0 ? this.serving[this.serving.length - 1]! : [this.namespace, "", ""];
  }

  private resolve(target: string): Address {
    const parts = target.split("/");
    if (parts.length === 1) return [this.current()[0], parts[0]!, "default"];
    if (parts.length === 2) return [this.current()[0], parts[0]!, parts[1]!];
    if (parts.length === 3) return [parts[0]!, parts[1]!, parts[2]!];
    throw new HostError("invalid_arguments", `a target is type, type/key or namespace/type/key, not ${JSON.stringify(target)}`);
  }

  /** Handles one message now and returns the reply; throws HostError on failure. */
  deliver(address: Address, action: string, payload: Payload): unknown {
    const id = address.join("/");
    if (this.serving.some((serving) => serving.join("/") === id)) {
      throw new HostError("timeout", `ask cycle: ${id} is waiting for this reply`);
    }
    const runtime = this.runtime(address);
    let actor = this.actors.get(id);
    if (actor === undefined) {
      actor = { runtime, state: null };
      this.actors.set(id, actor);
    }
    const body = JSON.stringify({ ...payload, action });
    if (runtime.spec.behavior === "workflow" && runtime.spec.durable && action !== "run") {
      const kinds = (runtime.handlers.get(action) ?? []).map((spec) => spec.kind);
      if (!kinds.includes("query")) {
        // A signal: kept until the run takes it, as the node journals and buffers it.
        const list = this.pending.get(id) ?? [];
        list.push(body);
        this.pending.set(id, list);
        return null;
      }
    }
    this.serving.push(address);
    try {
      const obj = actor.state === null ? runtime.fresh() : runtime.restore(actor.state);
      const [reply, changed] = runtime.serve(obj, action, JSON.parse(body));
      if (changed) actor.state = runtime.snapshot(obj);
      return JSON.parse(reply);
    } catch (error) {
      if (error instanceof Failure) throw new HostError(error.code, error.message, error.errorType);
      throw error;
    } finally {
      this.serving.pop();
    }
  }

  /** Delivers the queued tells, and those they send, and the messages of channels to their
   * consumers, until none is left. */
  runUntilIdle(): void {
    if (this.serving.length > 0) return;
    this.with(() => {
      while (this.queue.length > 0 || this.pumpChannels()) {
        if (this.queue.length === 0) continue;
        const [sender, address, action, payload] = this.queue.shift()!;
        const runtime = this.types.get(`${address[0]}/${address[1]}`);
        if (action === "pg_message" && runtime !== undefined && !runtime.handlers.has(action)) {
          this.droppedPgMessages++;
          continue;
        }
        try {
          this.deliver(address, action, payload);
        } catch (error) {
          if (!(error instanceof HostError)) throw error;
          this.logs.push([address.join("/"), "warn", `tell from ${sender} failed: ${error.message}`]);
        }
      }
    });
  }

  /** Delivers every timer set so far, soonest first (the clock moves to each one's due time);
   * returns how many fired. */
  fireTimers(): number {
    let fired = 0;
    while (this.timers.length > 0) {
      this.timers.sort((a, b) => a.dueMs - b.dueMs);
      const timer = this.timers.shift()!;
      this.nowMs = Math.max(this.nowMs, timer.dueMs);
      const [namespace, actorType, key] = timer.actor.split("/") as [string, string, string];
      this.queue.push(["timer", [namespace, actorType, key], timer.action, timer.payload]);
      this.runUntilIdle();
      fired++;
    }
    return fired;
  }

  /** The tuples of a namespace's space, oldest first (for assertions). */
  tuples(namespace?: string): unknown[][] {
    const space = this.spaces.get(namespace ?? this.namespace);
    return space === undefined ? [] : this.live(space).map(([tuple]) => tuple);
  }

  /** The live entries of a namespace's KV store (for assertions). */
  kv(namespace?: string): Record<string, string> {
    const prefix = `${namespace ?? this.namespace}\u0000`;
    const out: Record<string, string> = {};
    for (const key of [...this.kvStore.keys()].sort()) {
      if (!key.startsWith(prefix)) continue;
      const value = this.kvLive(key);
      if (value !== null) out[key.slice(prefix.length)] = value;
    }
    return out;
  }

  /** The channels of a namespace: for each, its kind, whether it is closed, and per queue (""
   * for a queue's own, else the subscription) how many messages are ready, in flight,
   * acknowledged and delivered again. */
  channels(namespace?: string): Record<string, ChannelStats> {
    const prefix = `${namespace ?? this.namespace}\u0000`;
    const out: Record<string, ChannelStats> = {};
    for (const key of [...this.channelStore.keys()].sort()) {
      if (key.startsWith(prefix)) out[key.slice(prefix.length)] = this.channelStore.get(key)!.stats(this.nowMs);
    }
    return out;
  }

  /** Sends `data` to a channel from outside any actor (as a client does over HTTP or gRPC), then
   * delivers what follows. */
  channelSend(name: string, data: unknown, namespace?: string): number {
    const text = JSON.stringify(data);
    if (text === undefined) throw new HostError("invalid_arguments", "the data is not JSON-serializable");
    const sent = this.channel(name, namespace ?? this.namespace).send(name, text, this.nowMs);
    this.runUntilIdle();
    return sent;
  }

  /** The committed state of an actor (null before its first change). */
  stateOf(address: Address): unknown {
    const actor = this.actors.get(address.join("/"));
    return actor?.state == null ? null : JSON.parse(decodeUtf8(actor.state));
  }

  /** @internal */
  isFsm(address: Address): boolean {
    return this.runtime(address).fsm;
  }

  /** @internal */
  enqueue(sender: string, address: Address, action: string, payload: Payload): void {
    this.queue.push([sender, address, action, payload]);
  }

  private space(): Space {
    const namespace = this.current()[0];
    let space = this.spaces.get(namespace);
    if (space === undefined) {
      space = { tuples: [], later: [] };
      this.spaces.set(namespace, space);
    }
    return space;
  }

  private live(space: Space): Array<[unknown[], number | null]> {
    space.tuples = space.tuples.filter(([, expires]) => expires === null || expires > this.nowMs);
    return space.tuples;
  }

  private find(pattern: string, take: boolean): string | null {
    const matches = matcher(pattern);
    const space = this.space();
    const tuples = this.live(space);
    const at = tuples.findIndex(([tuple]) => matches(tuple));
    if (at < 0) return null;
    const [tuple] = tuples[at]!;
    if (take) tuples.splice(at, 1);
    return JSON.stringify(tuple);
  }

  private lockKey(namespace: string, name: string): string {
    if (!name || name.length > 256) throw new HostError("invalid_arguments", "a lock name is 1 to 256 characters");
    return `${namespace || this.current()[0]}\u0000${name}`;
  }

  private held(key: string): LockGrant | null {
    const grant = this.locks.get(key);
    if (grant !== undefined && grant.expiresAtMs <= this.nowMs) {
      this.locks.delete(key);
      return null;
    }
    return grant ?? null;
  }

  private kvKey(key: string): string {
    if (!key || key.length > 256) throw new HostError("invalid_arguments", "a key is 1 to 256 characters");
    return `${this.current()[0]}\u0000${key}`;
  }

  private kvLive(key: string): string | null {
    const found = this.kvStore.get(key);
    if (found === undefined) return null;
    if (found[1] !== null && found[1] <= this.nowMs) {
      this.kvStore.delete(key);
      return null;
    }
    return found[0];
  }

  private kvSet(key: string, value: string, ttlMs: number): void {
    if (encodeUtf8(value).length > 1 << 20) throw new HostError("invalid_arguments", "a value is at most 1 MiB");
    this.kvStore.set(key, [value, ttlMs > 0 ? this.nowMs + ttlMs : null]);
  }

  private member(member: string): string {
    return member ? this.resolve(member).join("/") : this.current().join("/");
  }

  private groupOf(group: string): Map<string, Set<string> | null> {
    const key = `${this.current()[0]}\u0000${group}`;
    let members = this.groups.get(key);
    if (members === undefined) {
      members = new Map();
      this.groups.set(key, members);
    }
    return members;
  }

  private channel(name: string, namespace?: string): Channel {
    const scope = namespace || this.current()[0];
    const channel = this.channelStore.get(`${scope}\u0000${name}`);
    if (channel === undefined) {
      throw new HostError("not_found", `no channel ${JSON.stringify(name)} in ${scope}: create it first`);
    }
    return channel;
  }

  private topic(topic: string): Channel {
    const channel = this.channel(topic);
    if (channel.config.kind !== "topic") {
      throw new HostError("invalid_arguments", `${JSON.stringify(topic)} is a queue: only topics have subscriptions`);
    }
    return channel;
  }

  private subscribe(topic: string, subscription: string): boolean {
    const channel = this.topic(topic);
    if (channel.queues.has(subscription)) return false;
    channel.queues.set(subscription, new ChannelQueue());
    return true;
  }

  /** Hands each consumer one ready message; true when any was handed. */
  private pumpChannels(): boolean {
    let moved = false;
    for (const [key, channel] of [...this.channelStore]) {
      const name = key.slice(key.indexOf("\u0000") + 1);
      for (const [actor, consumer] of [...channel.consumers]) {
        // A handler this round may have ended this consumer (stopConsuming, unsubscribe).
        if (channel.consumers.get(actor) !== consumer) continue;
        const [subscription, action] = consumer;
        for (const [receipt, data, attempt] of channel.receive(name, subscription, 1, this.nowMs)) {
          moved = true;
          const payload = { channel: name, subscription: subscription || null, data: JSON.parse(data), receipt, attempt };
          try {
            this.deliver(addressOf(actor), action, payload);
          } catch (error) {
            if (!(error instanceof HostError)) throw error;
            this.logs.push([actor, "warn", `channel ${JSON.stringify(name)} message given back: ${error.message}`]);
            channel.settle(name, receipt, 100 * 2 ** Math.min(attempt - 1, 8), this.nowMs);
            continue;
          }
          channel.settle(name, receipt, null, this.nowMs);
        }
      }
    }
    return moved;
  }

  /** The backend `host` calls while this node serves a message. */
  backend(): Backend {
    const node = this;
    const id = () => node.current().join("/");
    return {
      actorId: id,
      tell(target, action, payload) {
        const body = JSON.parse(payload) as Payload;
        const told: Told = { sender: id(), target, action, payload: body };
        node.told.push(told);
        const standIn = node.tells.get(`${target}\u0000${action}`);
        if (standIn !== undefined) {
          standIn(body);
          return;
        }
        const address = node.resolve(target);
        try {
          node.runtime(address);
        } catch (error) {
          told.error = error as HostError;
          throw error;
        }
        node.queue.push([id(), address, action, body]);
      },
      ask(target, action, payload) {
        const body = JSON.parse(payload) as Payload;
        const standIn = node.asks.get(`${target}\u0000${action}`);
        if (standIn !== undefined) return JSON.stringify(standIn(body) ?? null);
        return JSON.stringify(node.deliver(node.resolve(target), action, body) ?? null);
      },
      log(level, message) {
        node.logs.push([id(), level, message]);
      },
      nowMs: () => node.nowMs,
      randomU64() {
        node.rng = BigInt.asUintN(64, node.rng + 0x9e3779b97f4a7c15n);
        let z = node.rng;
        z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
        z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
        return z ^ (z >> 31n);
      },
      tsWrite(tuple, leaseMs) {
        const fields = parseArray(tuple, "tuple");
        const space = node.space();
        const at = space.later.findIndex(([matches]) => matches(fields));
        if (at >= 0) {
          const [, address, action] = space.later.splice(at, 1)[0]!;
          node.queue.push([id(), address, action, { tuple: fields }]);
          return;
        }
        space.tuples.push([fields, leaseMs > 0 ? node.nowMs + leaseMs : null]);
      },
      tsRead: (pattern) => node.find(pattern, false),
      tsTake: (pattern) => node.find(pattern, true),
      tsCount(pattern) {
        const matches = matcher(pattern);
        return node.live(node.space()).filter(([tuple]) => matches(tuple)).length;
      },
      tsScan(pattern, limit) {
        const matches = matcher(pattern);
        const found = node.live(node.space()).filter(([tuple]) => matches(tuple));
        return found.slice(0, limit || 10_000).map(([tuple]) => JSON.stringify(tuple));
      },
      tsTakeLater(pattern, action) {
        const found = node.find(pattern, true);
        const me = node.current();
        if (found !== null) node.queue.push([id(), me, action, { tuple: JSON.parse(found) }]);
        else node.space().later.push([matcher(pattern), [...me] as Address, action]);
      },
      lockAcquire(namespace, name, holder, metadata, leaseMs): Grant | null {
        const key = node.lockKey(namespace, name);
        const who = holder || id();
        const held = node.held(key);
        if (held !== null && held.holder !== who) return null;
        let version: bigint;
        if (held === null) {
          node.lockVersions += 1n;
          version = node.lockVersions;
        } else {
          version = held.version;
        }
        const grant = { version, holder: who, metadata, expiresAtMs: node.nowMs + leaseMs };
        node.locks.set(key, grant);
        return { ...grant };
      },
      lockRenew(namespace, name, holder, version, leaseMs) {
        const key = node.lockKey(namespace, name);
        const held = node.held(key);
        const who = holder || id();
        if (held === null || held.version !== version || held.holder !== who) {
          throw new HostError("invalid_state", `lock ${JSON.stringify(name)} is not held by ${who} with version ${version}: acquire it again`);
        }
        held.expiresAtMs = node.nowMs + leaseMs;
        return { ...held };
      },
      lockRelease(namespace, name, version) {
        const key = node.lockKey(namespace, name);
        const held = node.held(key);
        if (held === null || held.version !== version) return false;
        node.locks.delete(key);
        return true;
      },
      kvGet: (key) => node.kvLive(node.kvKey(key)),
      kvPut: (key, value, ttlMs) => node.kvSet(node.kvKey(key), value, ttlMs),
      kvDelete(key) {
        const full = node.kvKey(key);
        const found = node.kvLive(full) !== null;
        node.kvStore.delete(full);
        return found;
      },
      kvList(prefix, after, limit) {
        const namespace = `${node.current()[0]}\u0000`;
        const keys = [...node.kvStore.keys()]
          .filter((key) => key.startsWith(namespace))
          .map((key) => key.slice(namespace.length))
          .filter((key) => key.startsWith(prefix) && (!after || key > after))
          .sort();
        const found: Array<[string, string]> = [];
        for (const key of keys) {
          const value = node.kvLive(namespace + key);
          if (value !== null) found.push([key, value]);
        }
        return found.slice(0, limit || 100);
      },
      kvCas(key, expected, value, ttlMs) {
        const full = node.kvKey(key);
        if (node.kvLive(full) !== expected) return false;
        if (value === null) node.kvStore.delete(full);
        else node.kvSet(full, value, ttlMs);
        return true;
      },
      pgJoin(group, member, topic) {
        const members = node.groupOf(group);
        const who = node.member(member);
        if (members.has(who) && members.get(who) === null) return false;
        if (topic === null) {
          members.set(who, null);
          return true;
        }
        const topics = members.get(who) ?? new Set<string>();
        if (topics.has(topic)) return false;
        topics.add(topic);
        members.set(who, topics);
        return true;
      },
      pgLeave(group, member, topic) {
        const members = node.groupOf(group);
        const who = node.member(member);
        if (!members.has(who)) return false;
        const topics = members.get(who)!;
        if (topic === null) {
          members.delete(who);
          return true;
        }
        if (topics === null || !topics.has(topic)) return false;
        topics.delete(topic);
        if (topics.size === 0) members.delete(who);
        return true;
      },
      pgMembers: (group) => [...node.groupOf(group).keys()].sort(),
      pgPublish(group, topic, data) {
        const members = node.groupOf(group);
        const body = { group, topic, data: JSON.parse(data), publisher: id() };
        let sent = 0;
        for (const who of [...members.keys()].sort()) {
          const topics = members.get(who)!;
          if (topics === null || (topic !== null && topics.has(topic))) {
            const [namespace, actorType, key] = who.split("/") as [string, string, string];
            node.queue.push([id(), [namespace, actorType, key], "pg_message", { ...body }]);
            sent++;
          }
        }
        return sent;
      },
      chCreate(name, kind, capacity, visibilityMs) {
        const key = `${node.current()[0]}\u0000${name}`;
        const config: ChannelConfig = { kind, capacity: capacity || 10_000, visibilityMs: visibilityMs || 30_000 };
        const existing = node.channelStore.get(key);
        if (existing !== undefined) {
          const was = existing.config;
          if (was.kind === config.kind && was.capacity === config.capacity && was.visibilityMs === config.visibilityMs) return false;
          throw new HostError(
            "already_exists",
            `channel ${JSON.stringify(name)} exists with another config: ${was.kind}, capacity ${was.capacity}, visibility ${was.visibilityMs} ms`,
          );
        }
        node.channelStore.set(key, new Channel(config));
        return true;
      },
      // Nothing else runs while a handler waits: a full channel refuses at once.
      chSend: (name, data) => node.channel(name).send(name, data, node.nowMs),
      chReceive: (name, subscription, max) => node.channel(name).receive(name, subscription, max || 1, node.nowMs),
      chAck: (name, receipt) => node.channel(name).settle(name, receipt, null, node.nowMs),
      chNack: (name, receipt, delayMs) => node.channel(name).settle(name, receipt, delayMs, node.nowMs),
      chSubscribe: (topic, subscription) => node.subscribe(topic, subscription),
      chUnsubscribe(topic, subscription) {
        const channel = node.topic(topic);
        for (const [actor, [sub]] of [...channel.consumers]) {
          if (sub === subscription) channel.consumers.delete(actor);
        }
        return channel.queues.delete(subscription);
      },
      chConsume(name, subscription, action) {
        const channel = node.channel(name);
        if (subscription) node.subscribe(name, subscription);
        channel.queue(name, subscription);
        const actor = id();
        const added = !channel.consumers.has(actor);
        channel.consumers.set(actor, [subscription, action]);
        return added;
      },
      chStopConsuming: (name) => node.channel(name).consumers.delete(id()),
      chClose(name) {
        const channel = node.channel(name);
        const was = channel.closed;
        channel.closed = true;
        return !was;
      },
      // Nothing is replayed here: every run runs its steps.
      wfStepBegin: () => null,
      wfStepEnd(name, value) {
        node.steps.push([id(), name, JSON.parse(value)]);
      },
      wfSleep(ms) {
        node.nowMs += ms; // the test's clock moves on; nothing waits
      },
      wfWaitSignal(name, timeoutMs) {
        const pending = node.pending.get(id()) ?? [];
        if (pending.some((text) => JSON.parse(text).action === name)) return true;
        node.nowMs += timeoutMs; // nothing can arrive while a test's run runs: it times out
        return false;
      },
      wfTakeSignals() {
        const pending = node.pending.get(id()) ?? [];
        node.pending.delete(id());
        return pending;
      },
      wfCommit(state) {
        const value = JSON.parse(decodeUtf8(state));
        node.committed[id()] = unwrapFsm(value, true);
      },
      wfIdempotencyKey: () => `${id()}:${node.steps.length}`,
      timerSchedule(action, payload, delayMs, durable) {
        node.timerIds++;
        const timerId = `timer-${node.timerIds}`;
        node.timers.push({ id: timerId, actor: id(), action, payload: JSON.parse(payload), dueMs: node.nowMs + delayMs, durable });
        return timerId;
      },
      timerCancel(timerId) {
        const before = node.timers.length;
        node.timers = node.timers.filter((timer) => timer.id !== timerId);
        return node.timers.length < before;
      },
    };
  }
}

/** One actor of a TestHost. */
export class ActorHandle {
  constructor(
    readonly node: TestHost,
    readonly address: Address,
  ) {}

  /** An ask: the reply's JSON value; throws HostError (`.code`) when the handler fails. */
  call(action: string, payload: Payload = {}): any {
    return this.node.with(() => {
      try {
        return this.node.deliver(this.address, action, payload);
      } finally {
        this.node.runUntilIdle();
      }
    });
  }

  /** A tell: handled at once, with what it sends; failures land in `node.logs`. */
  tell(action: string, payload: Payload = {}): void {
    this.node.with(() => {
      this.node.enqueue("test", this.address, action, payload);
      this.node.runUntilIdle();
    });
  }

  /** The committed state, as the node stores it (null before the first change). */
  get state(): any {
    return unwrapFsm(this.node.stateOf(this.address), this.node.isFsm(this.address));
  }

  /** The name of an FsmActor's state (null before the first change). */
  get fsmState(): string | null {
    const actor = this.node.stateOf(this.address) as Record<string, unknown> | null;
    return actor?.[FSM_KEY] == null ? null : String(actor[FSM_KEY]);
  }
}
