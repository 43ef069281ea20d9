/**
 * What an actor may ask of the node while it handles a message: `import { host } from
 * "@plexspaces/sdk"`, then `host.tell(...)`, `host.ask(...)`, `host.getActorId()`, `host.log(...)`,
 * `host.now()`, `host.random()`, the tuple space (`tsWrite`, `tsRead`, `tsTake`, `tsCount`,
 * `tsScan`, `tsTakeLater`), locks (`lockAcquire`, `lockRenew`, `lockRelease`), KV (`kvGet`,
 * `kvPut`, `kvDelete`, `kvList`, `kvCas`), process groups (`host.processGroups.join`, `leave`,
 * `getMembers`, `publish`), channels (`host.channels.create`, `send`, `receive`, `ack`, `nack`,
 * `subscribe`, `unsubscribe`, `consume`, `stopConsuming`, `close`), the service registry
 * (`host.registry.register`, `heartbeat`, `deregister`, `lookup`, `list`), blobs
 * (`host.blobs.put`, `get`, `getText`, `head`, `delete`, `list`, `presign`), timers
 * (`schedule`, `cancelTimer`) and, in a workflow's `run`, the durable calls `step`, `sleep`,
 * `waitSignal` and `idempotencyKey`.
 *
 * The same surface and conventions as the Python SDK's `plexspaces.host`, in camelCase. Every
 * call returns its result directly (the node runs the actor on a fiber while it waits), so
 * handlers are plain synchronous methods. Inside a node the calls cross into the node through
 * the WIT world; under `@plexspaces/sdk/testing` they go to an in-memory host.
 */

import { decodeUtf8, encodeUtf8 } from "./utf8.js";

/** A host call that failed: `code` is stable (`not_found`, `timeout`, `actor_error`, ...);
 * `errorType` names the exception the remote actor raised, when it raised one. */
export class HostError extends Error {
  readonly code: string;
  readonly errorType: string | undefined;
  /** The message without the code. */
  readonly detail: string;
  constructor(code: string, message: string, errorType?: string | null) {
    super(`${code}: ${message}`);
    this.name = "HostError";
    this.code = code;
    this.detail = message;
    this.errorType = errorType ?? undefined;
  }
}

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error";
export const LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error"];

/** A lock grant as the host hands it out. */
export interface Grant {
  version: bigint;
  holder: string;
  metadata: string;
  expiresAtMs: number;
}

/** A registration as the backend hands it over: `metadata` is JSON text of an object. */
export interface RegistrationRecord {
  service: string;
  instance: string;
  metadata: string;
  ttlMs: number;
  registeredAtMs: number;
  expiresAtMs: number;
}

/** What `host` calls: the WIT imports inside a node, an in-memory node under testing. */
export interface Backend {
  actorId(): string;
  tell(target: string, action: string, payload: string): void;
  ask(target: string, action: string, payload: string, timeoutMs: number): string;
  log(level: LogLevel, message: string): void;
  nowMs(): number;
  randomU64(): bigint;
  tsWrite(tuple: string, leaseMs: number): void;
  tsRead(pattern: string, timeoutMs: number): string | null;
  tsTake(pattern: string, timeoutMs: number): string | null;
  tsCount(pattern: string): number;
  tsScan(pattern: string, limit: number): string[];
  tsTakeLater(pattern: string, action: string): void;
  lockAcquire(namespace: string, name: string, holder: string, metadata: string, leaseMs: number, timeoutMs: number): Grant | null;
  lockRenew(namespace: string, name: string, holder: string, version: bigint, leaseMs: number): Grant;
  lockRelease(namespace: string, name: string, version: bigint): boolean;
  kvGet(key: string): string | null;
  kvPut(key: string, value: string, ttlMs: number): void;
  kvDelete(key: string): boolean;
  kvList(prefix: string, after: string, limit: number): Array<[string, string]>;
  kvCas(key: string, expected: string | null, value: string | null, ttlMs: number): boolean;
  pgJoin(group: string, member: string, topic: string | null): boolean;
  pgLeave(group: string, member: string, topic: string | null): boolean;
  pgMembers(group: string): string[];
  pgPublish(group: string, topic: string | null, data: string): number;
  chCreate(name: string, kind: string, capacity: number, visibilityMs: number): boolean;
  chSend(name: string, data: string, timeoutMs: number): number;
  /** [receipt, data (JSON text), attempt] for each delivery. */
  chReceive(name: string, subscription: string, max: number, timeoutMs: number): Array<[string, string, number]>;
  chAck(name: string, receipt: string): boolean;
  chNack(name: string, receipt: string, delayMs: number): boolean;
  chSubscribe(topic: string, subscription: string): boolean;
  chUnsubscribe(topic: string, subscription: string): boolean;
  chConsume(name: string, subscription: string, action: string): boolean;
  chStopConsuming(name: string): boolean;
  chClose(name: string): boolean;
  regRegister(service: string, instance: string, metadata: string, ttlMs: number): RegistrationRecord;
  regHeartbeat(service: string, instance: string, ttlMs: number): RegistrationRecord;
  regDeregister(service: string, instance: string): boolean;
  regLookup(service: string): RegistrationRecord[];
  regListServices(prefix: string, after: string, limit: number): ServiceSummary[];
  blobPut(key: string, data: Uint8Array, contentType: string): BlobInfo;
  blobGet(key: string): Uint8Array | null;
  blobHead(key: string): BlobInfo | null;
  blobDelete(key: string): boolean;
  blobList(prefix: string, after: string, limit: number): BlobInfo[];
  blobPresign(key: string, method: string, ttlMs: number): string;
  wfStepBegin(name: string): string | null;
  wfStepEnd(name: string, value: string): void;
  wfSleep(ms: number): void;
  wfWaitSignal(name: string, timeoutMs: number): boolean;
  wfTakeSignals(): string[];
  wfCommit(state: Uint8Array): void;
  wfIdempotencyKey(): string;
  timerSchedule(action: string, payload: string, delayMs: number, durable: boolean): string;
  timerCancel(id: string): boolean;
}

const noHost: Backend = new Proxy({} as Backend, {
  get() {
    throw new HostError("unavailable", "no host here: actors run inside a node, or under @plexspaces/sdk/testing");
  },
});

let backend: Backend = noHost;

/** Installs the backend `host` calls (the guest entry point and the testing host do). */
export function setBackend(next: Backend | null): Backend {
  const previous = backend;
  backend = next ?? noHost;
  return previous;
}

/** The backend, unless the run in progress has been suspended: after a wait unwinds a run, no
 * host call may add to its journal, even if user code caught the unwinding. */
function live(): Backend {
  if (currentRun !== null && currentRun.suspended !== null) throw currentRun.suspended;
  return backend;
}

/** The backend installed now (the dispatch's workflow bookkeeping calls it directly). */
export function installedBackend(): Backend {
  return backend;
}

export const DEFAULT_ASK_TIMEOUT_MS = 30_000;
export const DEFAULT_LEASE_SECS = 30;

function payloadText(payload: unknown): string {
  if (payload === undefined || payload === null) return "{}";
  if (typeof payload === "string") return payload;
  if (typeof payload !== "object" || Array.isArray(payload)) {
    throw new HostError("invalid_arguments", "a payload is an object (or JSON text of an object)");
  }
  return jsonText(payload, "payload");
}

function jsonText(value: unknown, what: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new HostError("invalid_arguments", `the ${what} is not JSON-serializable: ${(error as Error).message}`);
  }
  if (text === undefined) throw new HostError("invalid_arguments", `the ${what} is not JSON-serializable`);
  return text;
}

function milliseconds(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new HostError("invalid_arguments", `${name} must be a non-negative integer`);
  }
  return value;
}

function nonEmpty(value: unknown, what: string): string {
  if (typeof value !== "string" || value === "") {
    throw new HostError("invalid_arguments", `a ${what} is a non-empty string`);
  }
  return value;
}

function arrayText(value: unknown, what: string): string {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return jsonText(value, what);
  throw new HostError("invalid_arguments", `a ${what} is an array, or JSON text of an array`);
}

function valueText(value: unknown): string {
  return typeof value === "string" ? value : jsonText(value, "value");
}

function grantJson(grant: Grant): string {
  return JSON.stringify({
    version: String(grant.version),
    holder_id: grant.holder,
    metadata: grant.metadata,
    expires_at: grant.expiresAtMs,
  });
}

function leaseMs(leaseSecs: unknown): number {
  if (typeof leaseSecs !== "number" || !(leaseSecs > 0) || !Number.isFinite(leaseSecs)) {
    throw new HostError("invalid_arguments", "leaseSecs must be a positive number");
  }
  return Math.floor(leaseSecs * 1000);
}

function lockVersion(version: unknown): bigint {
  if (typeof version === "bigint" && version >= 0n) return version;
  if (typeof version === "number" && Number.isInteger(version) && version >= 0) return BigInt(version);
  if (typeof version === "string") {
    let text = version.trim();
    if (text.startsWith("{")) {
      try {
        text = String(JSON.parse(text).version);
      } catch {
        throw new HostError("invalid_arguments", "not a grant lockAcquire returned");
      }
    }
    if (/^[0-9]+$/.test(text)) return BigInt(text);
  }
  throw new HostError("invalid_arguments", `not a lock version: ${JSON.stringify(String(version))}`);
}

// Durable workflows: the run in progress in this instance ---------------------------------------

/** Unwinds a run that waits (`host.sleep`, `host.waitSignal`) so that it gives up its instance;
 * the node resumes it by replay. Do not catch it: a run that catches it and goes on is still
 * reported as suspended, and every host call after it throws it again. */
export class Suspended extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Suspended";
  }
}

/** What the dispatch keeps for the run handler in progress. */
export interface RunContext {
  commit(): void;
  /** Hands signals sent since the last host call to their handlers; keeps them for waitSignal. */
  deliver(): void;
  pop(name: string): Record<string, unknown> | null;
  suspended: Suspended | null;
}

let currentRun: RunContext | null = null;

export function setRun(run: RunContext | null): RunContext | null {
  const previous = currentRun;
  currentRun = run;
  return previous;
}

function runOf(what: string): RunContext {
  if (currentRun === null) {
    throw new HostError("invalid_state", `host.${what} works in the run handler of a WorkflowActor`);
  }
  if (currentRun.suspended !== null) throw currentRun.suspended;
  return currentRun;
}

function waiting<T>(run: RunContext, call: () => T): T {
  try {
    return call();
  } catch (error) {
    if (error instanceof HostError && error.code === "suspended") {
      run.suspended = new Suspended(error.detail);
      throw run.suspended;
    }
    throw error;
  }
}

/** The process groups of this actor's namespace (Erlang pg style). Every member, the publisher
 * included, receives each publish once, in order per publisher, as the message
 * `{"action": "pg_message", group, topic, data, publisher}` (handler `onPgMessage`). */
export const processGroups = {
  /** Adds `actorId` (`type`, `type/key` or `namespace/type/key`; default: this actor) to
   * `group`, or only to its `topic`; false when it was in already. */
  join(group: string, actorId?: string | null, topic?: string | null): boolean {
    return live().pgJoin(nonEmpty(group, "group"), actorId ?? "", topic ?? null);
  },
  /** Takes `actorId` (default: this actor) out of `group` (of `topic` only, when given). */
  leave(group: string, actorId?: string | null, topic?: string | null): boolean {
    return live().pgLeave(nonEmpty(group, "group"), actorId ?? "", topic ?? null);
  },
  /** The members of `group` as `namespace/type/key`, in order. */
  getMembers(group: string): string[] {
    return live().pgMembers(nonEmpty(group, "group"));
  },
  members(group: string): string[] {
    return live().pgMembers(nonEmpty(group, "group"));
  },
  /** Sends `data` (JSON-serializable) to every member of `group` (with a `topic`: of the group
   * and of that topic); returns how many members it was sent to. */
  publish(group: string, data: unknown, topic?: string | null): number {
    if (topic != null) nonEmpty(topic, "topic");
    return live().pgPublish(nonEmpty(group, "group"), topic ?? null, valueText(data));
  },
};

/** A message `channels.receive` handed out. */
export interface Delivery {
  /** What `ack` and `nack` take. */
  receipt: string;
  /** The message, parsed from its JSON. */
  data: any;
  /** 1 the first time the message is delivered. */
  attempt: number;
}

/** A subscription, or "" for none (a queue's). */
function subscriptionName(value: unknown): string {
  if (value == null || value === "") return "";
  return nonEmpty(value, "subscription");
}

/** The queues and topics of this actor's namespace.
 *
 * A queue hands each message to one consumer, a topic to every subscription. A received message
 * is invisible to other consumers for the channel's visibility timeout: `ack` it when done,
 * `nack` it to give it back; one neither acknowledged nor given back in time is delivered again
 * (at least once; `attempt` counts the deliveries). A channel holds at most its capacity of
 * messages: past it `send` waits up to `timeoutMs` for room, then throws HostError
 * `channel_full`, so a slow consumer slows its producers down. `consume` has the node hand this
 * actor the messages one at a time as the action it names; a handler that returns acknowledges
 * the message, one that throws gives it back. */
export const channels = {
  /** Creates the channel `name`, a "queue" or a "topic", holding at most `capacity` messages
   * (0: 10000) with a visibility timeout of `visibilityMs` (0: 30000). False when it exists
   * with this config (with another: HostError `already_exists`). */
  create(name: string, kind = "queue", capacity = 0, visibilityMs = 0): boolean {
    if (kind !== "queue" && kind !== "topic") {
      throw new HostError("invalid_arguments", `a channel's kind is "queue" or "topic", not ${JSON.stringify(kind)}`);
    }
    return live().chCreate(
      nonEmpty(name, "channel name"),
      kind,
      milliseconds(capacity, "capacity"),
      milliseconds(visibilityMs, "visibilityMs"),
    );
  },
  /** Sends `data` (JSON-serializable); returns how many queues got it (a topic: its
   * subscriptions). A full channel: waits up to `timeoutMs` for room, then HostError
   * `channel_full`. */
  send(name: string, data: unknown, timeoutMs = 0): number {
    return live().chSend(nonEmpty(name, "channel name"), jsonText(data, "data"), milliseconds(timeoutMs, "timeoutMs"));
  },
  /** Up to `max` messages of a queue (of a topic: of `subscription`), oldest first, each
   * `{receipt, data, attempt}`; with none ready it waits up to `timeoutMs`. */
  receive(name: string, max = 1, timeoutMs = 0, subscription: string | null = null): Delivery[] {
    const got = live().chReceive(
      nonEmpty(name, "channel name"),
      subscriptionName(subscription),
      milliseconds(max, "max"),
      milliseconds(timeoutMs, "timeoutMs"),
    );
    return got.map(([receipt, data, attempt]) => ({ receipt, data: JSON.parse(data), attempt }));
  },
  /** Acknowledges a delivery: the message is gone. False when that delivery no longer holds it
   * (acknowledged already, or delivered again after its visibility timeout). */
  ack(name: string, receipt: string): boolean {
    return live().chAck(nonEmpty(name, "channel name"), nonEmpty(receipt, "receipt"));
  },
  /** Gives a delivery back: deliverable again after `delayMs`. */
  nack(name: string, receipt: string, delayMs = 0): boolean {
    return live().chNack(nonEmpty(name, "channel name"), nonEmpty(receipt, "receipt"), milliseconds(delayMs, "delayMs"));
  },
  /** Adds `subscription` to a topic: it gets every message sent from now on. False when it was
   * there. */
  subscribe(topic: string, subscription: string): boolean {
    return live().chSubscribe(nonEmpty(topic, "topic"), nonEmpty(subscription, "subscription"));
  },
  /** Removes a subscription with its messages. */
  unsubscribe(topic: string, subscription: string): boolean {
    return live().chUnsubscribe(nonEmpty(topic, "topic"), nonEmpty(subscription, "subscription"));
  },
  /** Has the node hand this actor the channel's messages (a topic's: those of `subscription`,
   * created when missing) one at a time, as the message `{"action": action, "channel",
   * "subscription", "data", "receipt", "attempt"}` (handler `on<Action>`; by default
   * `onChannelMessage`). The registration outlives activations. False when this actor consumed
   * the channel already. */
  consume(name: string, action = "channel_message", subscription: string | null = null): boolean {
    return live().chConsume(nonEmpty(name, "channel name"), subscriptionName(subscription), nonEmpty(action, "action"));
  },
  /** Ends this actor's `consume` of a channel. */
  stopConsuming(name: string): boolean {
    return live().chStopConsuming(nonEmpty(name, "channel name"));
  },
  /** Stops the channel's intake; what it holds is still delivered. False when closed already. */
  close(name: string): boolean {
    return live().chClose(nonEmpty(name, "channel name"));
  },
};

/** A live instance of a service in the registry. */
export interface Registration {
  service: string;
  /** The instance's name (by default the registering actor, as `namespace/type/key`). */
  instance: string;
  /** What the instance registered with (a JSON object). */
  metadata: Record<string, any>;
  /** The time to live each heartbeat renews. */
  ttlMs: number;
  /** When the instance registered, in ms since the Unix epoch (registering a live instance
   * again keeps it). */
  registeredAtMs: number;
  /** When it is gone unless it heartbeats, in ms since the Unix epoch. */
  expiresAtMs: number;
}

/** A service `registry.list` names, with how many live instances it has. */
export interface ServiceSummary {
  service: string;
  instances: number;
}

/** What the blob store knows of a blob. */
export interface BlobInfo {
  key: string;
  /** In bytes. */
  size: number;
  contentType: string;
  /** When it was last written, in ms since the Unix epoch. */
  modifiedAtMs: number;
  /** Changes whenever the blob is written. */
  etag: string;
}

/** An instance name, or "" for the calling actor. */
function instanceName(value: unknown): string {
  if (value == null || value === "") return "";
  return nonEmpty(value, "instance name");
}

function text(value: unknown, what: string): string {
  if (typeof value !== "string") throw new HostError("invalid_arguments", `${what} is a string`);
  return value;
}

/** Metadata as JSON text: an object, or JSON text of one (checked by the host). */
function metadataText(metadata: unknown): string {
  if (metadata == null) return "{}";
  if (typeof metadata === "string") return metadata;
  if (typeof metadata !== "object" || Array.isArray(metadata)) {
    throw new HostError("invalid_arguments", "metadata is an object (or JSON text of an object)");
  }
  return jsonText(metadata, "metadata");
}

function registration(record: RegistrationRecord): Registration {
  return {
    service: record.service,
    instance: record.instance,
    metadata: record.metadata === "" ? {} : JSON.parse(record.metadata),
    ttlMs: record.ttlMs,
    registeredAtMs: record.registeredAtMs,
    expiresAtMs: record.expiresAtMs,
  };
}

/** The service registry of this actor's namespace: named services whose instances register
 * with metadata and a time to live, and stay listed only while they heartbeat. An instance whose
 * time to live has passed is gone for every call at once (`heartbeat` then throws HostError
 * `not_found`: register again). A service name is 1 to 64 letters, digits, `.`, `_`, `-` or
 * `:`, starting with a letter or digit; an instance name 1 to 190 characters with no control
 * characters. */
export const registry = {
  /** Registers `instance` (empty: this actor, as `namespace/type/key`) of `service` with
   * `metadata` (an object, or JSON text of one; at most 64 KiB as JSON) for `ttlMs` (0: 30000; at most a day).
   * Registering a live instance again replaces its metadata and time to live and keeps its
   * `registeredAtMs`. */
  register(service: string, instance = "", metadata: Record<string, unknown> | string = {}, ttlMs = 0): Registration {
    return registration(
      live().regRegister(nonEmpty(service, "service name"), instanceName(instance), metadataText(metadata), milliseconds(ttlMs, "ttlMs")),
    );
  },
  /** Renews a live instance (empty: this actor) for `ttlMs` (0: its own time to live).
   * HostError `not_found` when it expired or was never registered: register it again. */
  heartbeat(service: string, instance = "", ttlMs = 0): Registration {
    return registration(live().regHeartbeat(nonEmpty(service, "service name"), instanceName(instance), milliseconds(ttlMs, "ttlMs")));
  },
  /** Removes an instance (empty: this actor); false when it was not registered (or had
   * expired). */
  deregister(service: string, instance = ""): boolean {
    return live().regDeregister(nonEmpty(service, "service name"), instanceName(instance));
  },
  /** The live instances of `service`, in instance order (at most 10000); none: []. */
  lookup(service: string): Registration[] {
    return live().regLookup(nonEmpty(service, "service name")).map(registration);
  },
  /** Up to `limit` (0: 100, at most 1000) services with live instances whose names start with
   * `prefix`, in name order, after the service `after` (for the next page, pass the last name
   * of this one), each `{service, instances}`. */
  list(prefix = "", after = "", limit = 100): ServiceSummary[] {
    return live()
      .regListServices(text(prefix, "prefix"), text(after, "after"), milliseconds(limit, "limit"))
      .map(({ service, instances }) => ({ service, instances }));
  },
};

/** The blob store of this actor's namespace: bytes by key, each with a content type. A key is 1
 * to 1024 bytes of UTF-8: segments separated by `/`, none empty, `.` or `..`, with no control
 * characters, each at most 240 bytes once stored (letters, digits and most punctuation take 1,
 * other characters 3 per byte of UTF-8). One call moves at most 8 MiB (more: HostError `payload_too_large`); larger blobs
 * travel through presigned URLs, which the node streams. */
export const blobs = {
  /** Stores `data` under `key`, replacing what was there; a string is stored as its UTF-8
   * bytes. `contentType` empty: "text/plain; charset=utf-8" for a string, else
   * "application/octet-stream". Durable once it returns. */
  put(key: string, data: Uint8Array | string, contentType = ""): BlobInfo {
    text(contentType, "contentType");
    let bytes: Uint8Array;
    if (typeof data === "string") {
      bytes = encodeUtf8(data);
      if (contentType === "") contentType = "text/plain; charset=utf-8";
    } else if (data instanceof Uint8Array) {
      bytes = data;
    } else {
      throw new HostError("invalid_arguments", "blob data is a Uint8Array or a string");
    }
    return blobInfo(live().blobPut(nonEmpty(key, "blob key"), bytes, contentType));
  },
  /** The blob's bytes, or null. HostError `payload_too_large` for a blob over 8 MiB: use a
   * presigned URL. */
  get(key: string): Uint8Array | null {
    return live().blobGet(nonEmpty(key, "blob key")) ?? null;
  },
  /** The blob's bytes as UTF-8 text, or null. HostError `unsupported_media_type` when they are
   * not UTF-8. */
  getText(key: string): string | null {
    const bytes = live().blobGet(nonEmpty(key, "blob key"));
    if (bytes == null) return null;
    try {
      return decodeUtf8(bytes);
    } catch (error) {
      throw new HostError("unsupported_media_type", `blob ${JSON.stringify(key)} is not UTF-8 text (${(error as Error).message}): read it with blobs.get`);
    }
  },
  /** The blob's info, or null. */
  head(key: string): BlobInfo | null {
    const info = live().blobHead(nonEmpty(key, "blob key"));
    return info == null ? null : blobInfo(info);
  },
  /** Removes the blob; false when there was none. */
  delete(key: string): boolean {
    return live().blobDelete(nonEmpty(key, "blob key"));
  },
  /** Up to `limit` (0: 100, at most 1000) blobs whose keys start with `prefix` (a plain string
   * prefix), in key order, with keys after `after` (for the next page, pass the last key of
   * this one). */
  list(prefix = "", after = "", limit = 100): BlobInfo[] {
    return live().blobList(text(prefix, "prefix"), text(after, "after"), milliseconds(limit, "limit")).map(blobInfo);
  },
  /** A URL on the node's invoke port that lets whoever holds it `method` ("GET" or "PUT") the
   * blob `key` with no other credential, for `ttlMs` (0: 15 minutes; at most 7 days). The node
   * refuses it after that (`url_expired`) and when any part of it was changed
   * (`signature_invalid`). */
  presign(key: string, method = "GET", ttlMs = 0): string {
    return live().blobPresign(nonEmpty(key, "blob key"), text(method, "method"), milliseconds(ttlMs, "ttlMs"));
  },
};

function blobInfo(info: BlobInfo): BlobInfo {
  return { key: info.key, size: info.size, contentType: info.contentType, modifiedAtMs: info.modifiedAtMs, etag: info.etag };
}

export const host = {
  /** Delivers `{"action": action, ...payload}` to `target` (`type`, `type/key` or
   * `namespace/type/key`) without waiting. Throws HostError (`not_found` for a type that is not
   * deployed). */
  tell(target: string, action: string, payload?: Record<string, unknown> | string | null): void {
    live().tell(target, action, payloadText(payload));
  },

  /** Sends like `tell` and returns the reply's JSON value (or null). Throws HostError on a
   * timeout, an error of the target or an unknown target. */
  ask(target: string, action: string, payload?: Record<string, unknown> | string | null, timeoutMs: number = DEFAULT_ASK_TIMEOUT_MS): any {
    const reply = live().ask(target, action, payloadText(payload), milliseconds(timeoutMs, "timeoutMs"));
    return reply === "" || reply == null ? null : JSON.parse(reply);
  },

  /** The calling actor, as `namespace/type/key`. */
  getActorId(): string {
    return live().actorId();
  },

  /** A line in the node log and the type's log buffer, tagged with this actor. */
  log(message: unknown, level: LogLevel = "info"): void {
    if (!LEVELS.includes(level)) {
      throw new HostError("invalid_arguments", `level must be one of ${LEVELS.join(", ")}`);
    }
    live().log(level, typeof message === "string" ? message : String(message));
  },

  /** Wall-clock time in milliseconds since the Unix epoch (as `Date.now()`; journaled for a
   * durable actor, so a replay reads the same time). */
  now(): number {
    return live().nowMs();
  },

  /** A random number in [0, 1) from the host (journaled for a durable actor). */
  random(): number {
    return Number(live().randomU64() >> 11n) / 2 ** 53;
  },

  // The tuple space: tuples and patterns are arrays (or JSON text of one); in a pattern null
  // matches any value, {"$type": "string"} (int, number, bool, array, object) any value of that
  // kind, and any other value only itself.

  /** Writes a tuple (`out`); with `leaseMs` > 0 it is gone after that long. */
  tsWrite(tuple: unknown[] | string, leaseMs = 0): void {
    live().tsWrite(arrayText(tuple, "tuple"), milliseconds(leaseMs, "leaseMs"));
  },
  /** The oldest matching tuple as JSON text, left in the space (`rd`), or null. With
   * `timeoutMs` > 0 it waits up to that long for one to be written. */
  tsRead(pattern: unknown[] | string, timeoutMs = 0): string | null {
    return live().tsRead(arrayText(pattern, "pattern"), milliseconds(timeoutMs, "timeoutMs")) ?? null;
  },
  /** As `tsRead`, but removes the tuple (`in`): each tuple is taken once. */
  tsTake(pattern: unknown[] | string, timeoutMs = 0): string | null {
    return live().tsTake(arrayText(pattern, "pattern"), milliseconds(timeoutMs, "timeoutMs")) ?? null;
  },
  /** How many tuples match. */
  tsCount(pattern: unknown[] | string): number {
    return live().tsCount(arrayText(pattern, "pattern"));
  },
  /** Up to `limit` matching tuples (JSON text), oldest first, left in the space. */
  tsScan(pattern: unknown[] | string, limit = 100): string[] {
    return live().tsScan(arrayText(pattern, "pattern"), milliseconds(limit, "limit"));
  },
  /** An asynchronous take: the matching tuple, now or whenever one is written, comes to this
   * actor as the message `{"action": action, "tuple": [...]}`. Nothing waits. */
  tsTakeLater(pattern: unknown[] | string, action = "ts_tuple"): void {
    live().tsTakeLater(arrayText(pattern, "pattern"), nonEmpty(action, "action"));
  },

  // Locks: a grant's version is its fencing token, handed out as a decimal string.

  /**
   * Takes a lock. Two forms, by argument count:
   *
   * `lockAcquire(name, timeoutMs)`: a 30 s lease for this actor; returns the version as a
   * decimal string, or null when another holder kept it for `timeoutMs`.
   *
   * `lockAcquire(namespace, name, holderId, metadata, leaseSecs, timeoutMs)`: returns JSON text
   * `{"version", "holder_id", "metadata", "expires_at"}`, or `"ERROR:<code>:<message>"`; an
   * empty namespace or holderId means this actor's own. Acquiring a lock one holds renews it.
   */
  lockAcquire(...args: unknown[]): string | null {
    if (args.length === 2) {
      const [name, timeoutMs] = args;
      const grant = live().lockAcquire("", nonEmpty(name, "lock name"), "", "", DEFAULT_LEASE_SECS * 1000, milliseconds(timeoutMs, "timeoutMs"));
      return grant == null ? null : String(grant.version);
    }
    if (args.length === 6) {
      const [namespace, name, holderId, metadata, leaseSecs, timeoutMs] = args;
      let grant: Grant | null;
      try {
        grant = live().lockAcquire(
          (namespace as string) || "",
          name as string,
          (holderId as string) || "",
          (metadata as string) || "",
          leaseMs(leaseSecs),
          milliseconds(timeoutMs, "timeoutMs"),
        );
      } catch (error) {
        if (error instanceof HostError) return `ERROR:${error.code}:${error.detail}`;
        throw error;
      }
      if (grant == null) return `ERROR:timeout:lock ${JSON.stringify(name)} is held by another holder`;
      return grantJson(grant);
    }
    throw new HostError(
      "invalid_arguments",
      "lockAcquire takes (name, timeoutMs) or (namespace, name, holderId, metadata, leaseSecs, timeoutMs)",
    );
  },
  /** Extends the lease of a grant; returns the grant as JSON text. Throws HostError
   * (`invalid_state`) when that grant no longer holds the lock. */
  lockRenew(name: string, version: unknown, leaseSecs: number = DEFAULT_LEASE_SECS, namespace = "", holderId = ""): string {
    return grantJson(live().lockRenew(namespace, name, holderId, lockVersion(version), leaseMs(leaseSecs)));
  },
  /** Releases a grant (either form lockAcquire returns). Safe to repeat: false, and nothing
   * changes, when the grant no longer holds the lock. */
  lockRelease(name: string, version: unknown, namespace = ""): boolean {
    return live().lockRelease(namespace, name, lockVersion(version));
  },

  // KV: the key-value store of this actor's namespace. Values are text: a value that is not a
  // string is stored as its JSON, and reads return the text.

  /** The value under `key`, or null. */
  kvGet(key: string): string | null {
    return live().kvGet(nonEmpty(key, "key")) ?? null;
  },
  /** Stores `value` under `key`; with `ttlMs` > 0 it is gone after that long. */
  kvPut(key: string, value: unknown, ttlMs = 0): void {
    live().kvPut(nonEmpty(key, "key"), valueText(value), milliseconds(ttlMs, "ttlMs"));
  },
  /** Removes `key`; false when it was not there. */
  kvDelete(key: string): boolean {
    return live().kvDelete(nonEmpty(key, "key"));
  },
  /** Up to `limit` [key, value] pairs whose keys start with `prefix`, in key order, with keys
   * after `after` (for the next page, pass the last key of this one). */
  kvList(prefix = "", limit = 100, after = ""): Array<[string, string]> {
    if (typeof prefix !== "string" || typeof after !== "string") {
      throw new HostError("invalid_arguments", "prefix and after are strings");
    }
    return live().kvList(prefix, after, milliseconds(limit, "limit"));
  },
  /** Compare-and-swap: stores `value` (removes the key when null) only if the value there is
   * `expected` (null: no value); true when it did. */
  kvCas(key: string, expected: unknown, value: unknown, ttlMs = 0): boolean {
    return live().kvCas(
      nonEmpty(key, "key"),
      expected == null ? null : valueText(expected),
      value == null ? null : valueText(value),
      milliseconds(ttlMs, "ttlMs"),
    );
  },

  processGroups,

  channels,

  registry,

  blobs,

  // Timers

  /** Sends `{"action": action, ...payload}` to this actor after `delayMs`. A durable timer (a
   * reminder) survives restarts of the node and fires once. Returns the timer's id. */
  schedule(action: string, payload: Record<string, unknown> | string | null = null, delayMs = 0, durable = false): string {
    return live().timerSchedule(nonEmpty(action, "timer action"), payloadText(payload), milliseconds(delayMs, "delayMs"), Boolean(durable));
  },
  /** Cancels a timer; false when it had fired or never existed. */
  cancelTimer(timerId: string): boolean {
    return live().timerCancel(timerId);
  },

  // Durable workflows: in the run handler of a WorkflowActor with the durability facet. A run
  // that waits gives up its instance; the node calls run again later, from the start, and every
  // host call made before the wait returns what it returned the first time.

  /** Runs `fn()` once: its result (JSON-serializable) is journaled, and when the run is replayed
   * the recorded result is returned instead of running `fn` again. */
  step<T>(name: string, fn: () => T): T {
    const run = runOf("step");
    nonEmpty(name, "step name");
    run.deliver();
    const recorded = live().wfStepBegin(name);
    let result: T;
    if (recorded != null) {
      result = JSON.parse(recorded) as T;
    } else {
      result = fn();
      if (result !== null && typeof result === "object" && typeof (result as { then?: unknown }).then === "function") {
        throw new HostError("invalid_arguments", `step ${JSON.stringify(name)} returned a Promise: steps are synchronous`);
      }
      const text = result === undefined ? "null" : jsonText(result, `result of step ${JSON.stringify(name)}`);
      live().wfStepEnd(name, text);
    }
    run.commit();
    return result;
  },

  /** A durable sleep: the run gives up its instance and resumes when `ms` have passed, also
   * across restarts of the node. */
  sleep(ms: number): void {
    const run = runOf("sleep");
    milliseconds(ms, "ms");
    run.deliver();
    run.commit();
    waiting(run, () => live().wfSleep(ms));
    run.deliver();
  },

  /** The first signal with action `name` sent to this workflow (its whole payload, the action
   * included), also one that arrived before the call; null when none came within `timeoutMs`. */
  waitSignal(name: string, timeoutMs: number = DEFAULT_ASK_TIMEOUT_MS): Record<string, any> | null {
    const run = runOf("waitSignal");
    milliseconds(timeoutMs, "timeoutMs");
    for (;;) {
      run.deliver();
      const found = run.pop(name);
      run.commit();
      if (found !== null) return found;
      if (!waiting(run, () => live().wfWaitSignal(name, timeoutMs))) return null;
    }
  },

  /** A key for an effect outside the node (a payment, an e-mail): the same when the step (or
   * the message) that makes it runs again after a crash, different for every other one. */
  idempotencyKey(): string {
    return live().wfIdempotencyKey();
  },
};

export type Host = typeof host;
