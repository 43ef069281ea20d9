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
 * `node.channels()` shows each channel's queues. The service registry and the blob store keep
 * the node's rules (names, keys, defaults, limits, error codes); registrations expire as `nowMs`
 * passes them (`node.registrations()` shows the live ones), blobs get a new etag on every write
 * (`node.blobs()`, `node.blobBytes(key)`), one call moves at most 8 MiB, and `blobs.presign`
 * signs real URLs (HMAC-SHA256 with a secret of this TestHost, expiring on `nowMs`) that
 * `node.openPresigned(url, method, data)` serves as the node does. A workflow's durable `sleep`
 * moves the clock; `waitSignal` takes a signal sent before the run, or times out at once.
 */

import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

import { actorClasses, inspectClass, snakeCase } from "./actor.js";
import { ClassRuntime, Failure, FSM_KEY, unwrapFsm } from "./dispatch.js";
import {
  type Backend,
  type BlobInfo,
  type Grant,
  HostError,
  type LogLevel,
  type Registration,
  type RegistrationRecord,
  type ServiceSummary,
  setBackend,
} from "./host.js";
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

// The registry and the blob store: the node's rules -------------------------------------------

const KIB = 1024;
const MIB = 1024 * KIB;
/** What one guest call moves at most: a blob put, or the blob a get returns. */
const GUEST_MOVE_LIMIT = 8 * MIB;
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
/** Unicode's control characters (category Cc), as the node's `char::is_control`. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const DEFAULT_REGISTRATION_TTL_MS = 30_000;
const MAX_REGISTRATION_TTL_MS = 86_400_000;
const MAX_METADATA_BYTES = 64 * KIB;
const MAX_LOOKUP = 10_000;
const DEFAULT_PRESIGN_TTL_MS = 900_000;
const MAX_PRESIGN_TTL_MS = 604_800_000;
const PRESIGNED_ROUTE = "/api/v1/presigned/";

/** The order of UTF-8 bytes (code points), as the node sorts names and keys; JavaScript's `<`
 * compares UTF-16 units, which puts U+E000..U+FFFF after the astral planes. */
function utf8Order(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let at = 0; at < n; at++) {
    let x = a.charCodeAt(at);
    let y = b.charCodeAt(at);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

function checkService(service: string): string {
  if (!SERVICE_NAME.test(service)) {
    throw new HostError(
      "invalid_arguments",
      `a service name is 1 to 64 ASCII letters, digits, '.', '_', '-' or ':', starting with a letter or digit, not ${JSON.stringify(service)}`,
    );
  }
  return service;
}

function checkInstance(instance: string): string {
  const chars = [...instance].length;
  if (chars === 0 || chars > 190 || CONTROL.test(instance)) {
    throw new HostError("invalid_arguments", `an instance name is 1 to 190 characters with no control characters, not ${JSON.stringify(instance)}`);
  }
  return instance;
}

/** Metadata text as stored: a JSON object of at most 64 KiB (empty or blank text is `{}`). */
function checkMetadata(text: string): string {
  if (text.trim() === "") return "{}";
  const size = encodeUtf8(text).length;
  if (size > MAX_METADATA_BYTES) {
    throw new HostError("invalid_arguments", `metadata is at most ${MAX_METADATA_BYTES} bytes of JSON, not ${size}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new HostError("invalid_json", `metadata is not JSON: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new HostError("invalid_arguments", "metadata is a JSON object");
  }
  return text;
}

function checkTtl(ttlMs: number, fallback: number, most: number, what: string): number {
  if (ttlMs > most) throw new HostError("invalid_arguments", `a ${what} time to live is at most ${most} ms, not ${ttlMs}`);
  return ttlMs || fallback;
}

/** A prefix of service names: at most 64 of their characters. */
function checkServicePrefix(prefix: string): string {
  if (prefix.length > 64 || !/^[A-Za-z0-9._:-]*$/.test(prefix)) {
    throw new HostError("invalid_arguments", `a service prefix is at most 64 of the characters of service names, not ${JSON.stringify(prefix)}`);
  }
  return prefix;
}

/** A prefix of blob keys: at most 1024 bytes, no control characters. */
function checkBlobPrefix(prefix: string): string {
  if (encodeUtf8(prefix).length > 1024 || CONTROL.test(prefix)) {
    throw new HostError("invalid_arguments", "a prefix is at most 1024 bytes with no control characters");
  }
  return prefix;
}

/** A page size: 0 is 100, at most 1000. */
function pageLimit(limit: number): number {
  if (limit > 1000) throw new HostError("invalid_arguments", `a page holds at most 1000 entries, not ${limit}`);
  return limit || 100;
}

function checkBlobKey(key: string): string {
  const size = encodeUtf8(key).length;
  const bad = (why: string) =>
    new HostError("invalid_arguments", `a blob key is 1 to 1024 bytes of UTF-8 in segments separated by '/', none empty, '.' or '..', with no control characters: ${JSON.stringify(key)} ${why}`);
  if (size === 0 || size > 1024) throw bad(`is ${size} bytes`);
  if (CONTROL.test(key)) throw bad("holds a control character");
  if (LONE_SURROGATE.test(key)) throw bad("is not UTF-8 (a lone surrogate)");
  for (const segment of key.split("/")) {
    if (segment === "" || segment === "." || segment === "..") throw bad(`has the segment ${JSON.stringify(segment)}`);
    const stored = storedLength(segment);
    if (stored > MAX_BLOB_SEGMENT) {
      throw new HostError(
        "invalid_arguments",
        `a segment of a blob key is at most ${MAX_BLOB_SEGMENT} bytes once stored (letters, digits and most punctuation take 1, other characters 3 per byte of UTF-8), not ${stored}: ${JSON.stringify(segment)}`,
      );
    }
  }
  return key;
}

/** The most bytes a key segment takes once percent-encoded for storage, as the node's store
 * (object_store) encodes it: non-ASCII bytes, controls and these characters take 3 each. */
const MAX_BLOB_SEGMENT = 240;
const ENCODED_IN_STORAGE = new Set(Array.from('/\\{^}%`]">[~<#|*?', (c) => c.charCodeAt(0)));

function storedLength(segment: string): number {
  let length = 0;
  for (const byte of encodeUtf8(segment)) {
    length += byte >= 0x80 || byte < 0x20 || byte === 0x7f || ENCODED_IN_STORAGE.has(byte) ? 3 : 1;
  }
  return length;
}

function checkContentType(given: string): string {
  const contentType = given.trim();
  if (contentType === "") return "application/octet-stream";
  if (encodeUtf8(contentType).length > 256 || CONTROL.test(contentType)) {
    throw new HostError("invalid_arguments", `a content type is at most 256 bytes with no control characters, not ${JSON.stringify(contentType.slice(0, 64))}`);
  }
  return contentType;
}

function tooLarge(size: number, key: string | null): HostError {
  const what = key === null ? `a guest stores at most ${GUEST_MOVE_LIMIT} bytes in one call, not ${size}` : `blob ${JSON.stringify(key)} is ${size} bytes; this call moves at most ${GUEST_MOVE_LIMIT}`;
  return new HostError("payload_too_large", `${what}: use a presigned URL (blobs.presign)`);
}

/** A path segment percent-encoded: everything but RFC 3986's unreserved characters. */
function percentSegment(segment: string): string {
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

interface RegistryEntry {
  metadata: string;
  ttlMs: number;
  registeredAtMs: number;
  expiresAtMs: number;
}

interface StoredBlob {
  data: Uint8Array;
  contentType: string;
  modifiedAtMs: number;
  etag: string;
}

function infoOf(key: string, blob: StoredBlob): BlobInfo {
  return { key, size: blob.data.length, contentType: blob.contentType, modifiedAtMs: blob.modifiedAtMs, etag: blob.etag };
}

function recordOf(service: string, instance: string, entry: RegistryEntry): RegistrationRecord {
  return { service, instance, ...entry };
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
  /** The tenant presigned URLs name. */
  tenant: string;
  /** Where presigned URLs point: the node's invoke port. */
  baseUrl: string;
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
  /** namespace \0 service -> instance -> registration (expired ones go as they are met). */
  private readonly registryStore = new Map<string, Map<string, RegistryEntry>>();
  /** namespace \0 key -> blob */
  private readonly blobStore = new Map<string, StoredBlob>();
  private blobWrites = 0;
  private readonly presignSecret: Uint8Array;
  private timerIds = 0;
  private rng: bigint;

  /**
   * `tenant` names the tenant in presigned URLs (default "default"), `baseUrl` their origin
   * (default "http://127.0.0.1:8080", the node's invoke port), `presignSecret` the key that signs
   * them (default: 32 random bytes, new for each TestHost).
   */
  constructor(
    options: {
      namespace?: string;
      nowMs?: number;
      seed?: number;
      tenant?: string;
      baseUrl?: string;
      presignSecret?: Uint8Array | string;
    } = {},
  ) {
    this.namespace = options.namespace ?? "default";
    this.nowMs = options.nowMs ?? 1_700_000_000_000;
    this.rng = BigInt(options.seed ?? 0);
    this.tenant = options.tenant ?? "default";
    this.baseUrl = options.baseUrl ?? "http://127.0.0.1:8080";
    const secret = options.presignSecret ?? randomBytes(32);
    this.presignSecret = typeof secret === "string" ? encodeUtf8(secret) : Uint8Array.from(secret);
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

  /** The live registrations of a namespace by service (in name order), each service's instances
   * in instance order (for assertions). */
  registrations(namespace?: string): Record<string, Registration[]> {
    const prefix = `${namespace ?? this.namespace}\u0000`;
    const out: Record<string, Registration[]> = {};
    const keys = [...this.registryStore.keys()].filter((key) => key.startsWith(prefix)).sort(utf8Order);
    for (const key of keys) {
      const service = key.slice(prefix.length);
      const instances = [...this.liveInstances(key)].sort(([a], [b]) => utf8Order(a, b));
      if (instances.length === 0) continue;
      out[service] = instances.map(([instance, entry]) => ({
        service,
        instance,
        metadata: JSON.parse(entry.metadata),
        ttlMs: entry.ttlMs,
        registeredAtMs: entry.registeredAtMs,
        expiresAtMs: entry.expiresAtMs,
      }));
    }
    return out;
  }

  /** The blobs of a namespace by key, in key order, with their info (for assertions). */
  blobs(namespace?: string): Record<string, BlobInfo> {
    const prefix = `${namespace ?? this.namespace}\u0000`;
    const out: Record<string, BlobInfo> = {};
    const keys = [...this.blobStore.keys()].filter((key) => key.startsWith(prefix)).sort(utf8Order);
    for (const key of keys) out[key.slice(prefix.length)] = infoOf(key.slice(prefix.length), this.blobStore.get(key)!);
    return out;
  }

  /** A copy of a blob's bytes, or null (for assertions; no size limit). */
  blobBytes(key: string, namespace?: string): Uint8Array | null {
    const blob = this.blobStore.get(`${namespace ?? this.namespace}\u0000${key}`);
    return blob === undefined ? null : blob.data.slice();
  }

  /**
   * Uses a URL `blobs.presign` made, as the node serves it to whoever holds it (no size limit:
   * the node streams). GET returns the blob's bytes; HEAD (allowed with a GET URL) its info; PUT
   * stores `data` (a string as its UTF-8 bytes) with `contentType` (empty: "text/plain;
   * charset=utf-8" for a string, as `fetch` sends one, else "application/octet-stream") and
   * returns the info. Throws HostError as the node answers: `signature_invalid` when any part of
   * the URL was changed or it is used with another method, then `url_expired` once `nowMs` is
   * past its expiry, then `not_found` for a GET or HEAD of a missing blob.
   */
  openPresigned(url: string, method?: "GET"): Uint8Array;
  openPresigned(url: string, method: "HEAD"): BlobInfo;
  openPresigned(url: string, method: "PUT", data?: Uint8Array | string, contentType?: string): BlobInfo;
  openPresigned(url: string, method?: string, data?: Uint8Array | string, contentType?: string): Uint8Array | BlobInfo;
  openPresigned(url: string, method = "GET", data: Uint8Array | string = new Uint8Array(0), contentType = ""): Uint8Array | BlobInfo {
    const verb = method.toUpperCase();
    if (verb !== "GET" && verb !== "HEAD" && verb !== "PUT") {
      throw new HostError("method_not_allowed", `a presigned URL takes GET, HEAD or PUT, not ${method}`);
    }
    const tampered = (why: string) =>
      new HostError("signature_invalid", `the URL's signature does not match it (${why}): it was changed, or it was signed for another method; ask for a new presigned URL`);
    const [withoutFragment] = url.split("#", 1) as [string];
    const question = withoutFragment.indexOf("?");
    const pathPart = question < 0 ? withoutFragment : withoutFragment.slice(0, question);
    // The node's routes sit under the base URL's path, if it has one.
    const basePath = this.baseUrl.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*/, "").replace(/\/+$/, "");
    const path = pathPart.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*/, "");
    if (!path.startsWith(basePath + PRESIGNED_ROUTE)) {
      throw new HostError("not_found", `no route ${JSON.stringify(path)}: not a presigned URL of this node`);
    }
    const query = new URLSearchParams(question < 0 ? "" : withoutFragment.slice(question + 1));
    let segments: string[];
    try {
      segments = path.slice(basePath.length + PRESIGNED_ROUTE.length).split("/").map(decodeURIComponent);
    } catch {
      throw tampered("the path is not percent-encoded UTF-8");
    }
    if (segments.length < 3) throw tampered("no tenant, namespace and key");
    const [tenant, namespace] = segments as [string, string];
    const key = segments.slice(2).join("/");
    const expiresText = query.get("expires") ?? "";
    const signature = query.get("signature") ?? "";
    // The expiry as the node reads it: a u64 written as the signer wrote it (no leading zeros).
    if (!/^(0|[1-9][0-9]{0,19})$/.test(expiresText) || BigInt(expiresText) >= 2n ** 64n) throw tampered("no expiry");
    const expires = Number(expiresText);
    // Hex in either case, as the node reads it.
    if (!/^[0-9a-fA-F]{64}$/.test(signature)) throw tampered("no signature");
    const expected = this.sign(verb === "PUT" ? "PUT" : "GET", tenant, namespace, key, expiresText);
    if (!timingSafeEqual(Buffer.from(signature, "hex"), Buffer.from(expected, "hex"))) throw tampered(`signed for another request than ${verb} ${key}`);
    if (this.nowMs > expires) {
      throw new HostError(
        "url_expired",
        `the URL expired ${Math.floor((this.nowMs - expires) / 1000)} s ago (at ${expires} ms since the Unix epoch); ask for a new presigned URL`,
      );
    }
    const full = `${namespace}\u0000${key}`;
    if (verb === "PUT") {
      const bytes = typeof data === "string" ? encodeUtf8(data) : data;
      const type = contentType === "" && typeof data === "string" ? "text/plain; charset=utf-8" : contentType;
      return this.storeBlob(namespace, key, bytes, checkContentType(type));
    }
    const blob = this.blobStore.get(full);
    if (blob === undefined) throw new HostError("not_found", `no blob ${JSON.stringify(key)} in ${namespace}`);
    return verb === "HEAD" ? infoOf(key, blob) : blob.data.slice();
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

  private serviceKey(service: string): string {
    return `${this.current()[0]}\u0000${checkService(service)}`;
  }

  /** The live instances of `namespace \0 service`, the expired ones dropped. */
  private liveInstances(key: string): Map<string, RegistryEntry> {
    const instances = this.registryStore.get(key) ?? new Map<string, RegistryEntry>();
    for (const [name, entry] of instances) {
      if (entry.expiresAtMs <= this.nowMs) instances.delete(name);
    }
    if (instances.size === 0) this.registryStore.delete(key);
    return instances;
  }

  private storeBlob(namespace: string, key: string, data: Uint8Array, contentType: string): BlobInfo {
    this.blobWrites++;
    const etag = `${createHash("sha256").update(data).digest("hex").slice(0, 16)}-${this.blobWrites}`;
    const blob: StoredBlob = { data: new Uint8Array(data), contentType, modifiedAtMs: this.nowMs, etag };
    this.blobStore.set(`${namespace}\u0000${key}`, blob);
    return infoOf(key, blob);
  }

  /** Lowercase hex HMAC-SHA256 of "{METHOD}\n{tenant}\n{namespace}\n{key}\n{expires}". */
  private sign(method: string, tenant: string, namespace: string, key: string, expires: number | string): string {
    return createHmac("sha256", this.presignSecret).update(`${method}\n${tenant}\n${namespace}\n${key}\n${expires}`).digest("hex");
  }

  private presignedUrl(namespace: string, key: string, method: string, expires: number): string {
    const base = this.baseUrl.replace(/\/+$/, "");
    const path = key.split("/").map(percentSegment).join("/");
    return `${base}${PRESIGNED_ROUTE}${this.tenant}/${namespace}/${path}?expires=${expires}&signature=${this.sign(method, this.tenant, namespace, key, expires)}`;
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
      regRegister(service, instance, metadata, ttlMs) {
        const key = node.serviceKey(service);
        const name = checkInstance(instance || id());
        const text = checkMetadata(metadata);
        const ttl = checkTtl(ttlMs, DEFAULT_REGISTRATION_TTL_MS, MAX_REGISTRATION_TTL_MS, "registration's");
        const instances = node.liveInstances(key);
        const was = instances.get(name);
        const entry: RegistryEntry = {
          metadata: text,
          ttlMs: ttl,
          registeredAtMs: was === undefined ? node.nowMs : was.registeredAtMs,
          expiresAtMs: node.nowMs + ttl,
        };
        instances.set(name, entry);
        node.registryStore.set(key, instances);
        return recordOf(service, name, entry);
      },
      regHeartbeat(service, instance, ttlMs) {
        const key = node.serviceKey(service);
        const name = checkInstance(instance || id());
        const ttl = checkTtl(ttlMs, 0, MAX_REGISTRATION_TTL_MS, "registration's");
        const entry = node.liveInstances(key).get(name);
        if (entry === undefined) {
          throw new HostError(
            "not_found",
            `service ${JSON.stringify(service)} has no instance ${JSON.stringify(name)}: it expired or was never registered; register it again`,
          );
        }
        if (ttl > 0) entry.ttlMs = ttl;
        entry.expiresAtMs = node.nowMs + entry.ttlMs;
        return recordOf(service, name, entry);
      },
      regDeregister(service, instance) {
        const key = node.serviceKey(service);
        const name = checkInstance(instance || id());
        const instances = node.liveInstances(key);
        const removed = instances.delete(name);
        if (instances.size === 0) node.registryStore.delete(key);
        return removed;
      },
      regLookup(service) {
        const key = node.serviceKey(service);
        return [...node.liveInstances(key)]
          .sort(([a], [b]) => utf8Order(a, b))
          .slice(0, MAX_LOOKUP)
          .map(([name, entry]) => recordOf(service, name, { ...entry }));
      },
      regListServices(prefix, after, limit) {
        checkServicePrefix(prefix);
        const most = pageLimit(limit);
        const scope = `${node.current()[0]}\u0000`;
        const found: ServiceSummary[] = [];
        const keys = [...node.registryStore.keys()].filter((key) => key.startsWith(scope)).sort(utf8Order);
        for (const key of keys) {
          const service = key.slice(scope.length);
          if (!service.startsWith(prefix) || (after && utf8Order(service, after) <= 0)) continue;
          const instances = node.liveInstances(key).size;
          if (instances > 0) found.push({ service, instances });
          if (found.length >= most) break;
        }
        return found;
      },
      blobPut(key, data, contentType) {
        if (data.length > GUEST_MOVE_LIMIT) throw tooLarge(data.length, null);
        checkBlobKey(key);
        const type = checkContentType(contentType);
        return node.storeBlob(node.current()[0], key, data, type);
      },
      blobGet(key) {
        const blob = node.blobStore.get(`${node.current()[0]}\u0000${checkBlobKey(key)}`);
        if (blob === undefined) return null;
        if (blob.data.length > GUEST_MOVE_LIMIT) throw tooLarge(blob.data.length, key);
        return blob.data.slice();
      },
      blobHead(key) {
        const blob = node.blobStore.get(`${node.current()[0]}\u0000${checkBlobKey(key)}`);
        return blob === undefined ? null : infoOf(key, blob);
      },
      blobDelete: (key) => node.blobStore.delete(`${node.current()[0]}\u0000${checkBlobKey(key)}`),
      blobList(prefix, after, limit) {
        const most = pageLimit(limit);
        checkBlobPrefix(prefix);
        const scope = `${node.current()[0]}\u0000`;
        const keys = [...node.blobStore.keys()]
          .filter((full) => full.startsWith(scope))
          .map((full) => full.slice(scope.length))
          .filter((key) => key.startsWith(prefix) && (!after || utf8Order(key, after) > 0))
          .sort(utf8Order)
          .slice(0, most);
        return keys.map((key) => infoOf(key, node.blobStore.get(scope + key)!));
      },
      blobPresign(key, method, ttlMs) {
        checkBlobKey(key);
        const verb = method.toUpperCase();
        if (verb !== "GET" && verb !== "PUT") {
          throw new HostError("invalid_arguments", `a presigned URL's method is "GET" or "PUT", not ${JSON.stringify(method)}`);
        }
        const ttl = checkTtl(ttlMs, DEFAULT_PRESIGN_TTL_MS, MAX_PRESIGN_TTL_MS, "presigned URL's");
        return node.presignedUrl(node.current()[0], key, verb, node.nowMs + ttl);
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
