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
 * `node.droppedPgMessages` counts it. A workflow's durable `sleep` moves the clock; `waitSignal`
 * takes a signal sent before the run, or times out at once.
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

  /** Delivers the queued tells, and those they send, until none is left. */
  runUntilIdle(): void {
    if (this.serving.length > 0) return;
    while (this.queue.length > 0) {
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
      this.with(() => this.runUntilIdle());
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
