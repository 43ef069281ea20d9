/**
 * The WebAssembly entry point: the `guest` interface of wit/plexspaces.wit over the Runtime,
 * and `host` over the WIT imports. Only bundled into a component (`plexspaces-ts build`), where
 * the `plexspaces:actor/*` modules are the node's imports.
 */

import * as wBlobs from "plexspaces:actor/blobs@0.1.0";
import * as wChannels from "plexspaces:actor/channels@0.1.0";
import * as wHost from "plexspaces:actor/host@0.1.0";
import * as wKv from "plexspaces:actor/kv@0.1.0";
import * as wLocks from "plexspaces:actor/locks@0.1.0";
import * as wGroups from "plexspaces:actor/process-groups@0.1.0";
import * as wRegistry from "plexspaces:actor/registry@0.1.0";
import * as wTimers from "plexspaces:actor/timers@0.1.0";
import * as wTuples from "plexspaces:actor/tuplespace@0.1.0";
import * as wWorkflow from "plexspaces:actor/workflow@0.1.0";

import { actorClasses } from "./actor.js";
import { BYTES, CACHED, Failure, failureOf, FRESH, Runtime, SDK_VERSION } from "./dispatch.js";
import { type Backend, type BlobInfo, type Grant, HostError, type RegistrationRecord, setBackend } from "./host.js";

/** A host call's error (the import threw its `host-error`) as a HostError. */
function hostError(error: unknown): unknown {
  const payload = (error as { payload?: { code?: unknown; message?: unknown; errorType?: unknown } } | null)?.payload;
  if (payload && typeof payload.code === "string") {
    return new HostError(payload.code, String(payload.message ?? ""), (payload.errorType as string | undefined) ?? undefined);
  }
  return error;
}

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw hostError(error);
  }
}

// A u64 argument goes down as a Number: QuickJS's bindings trap on a BigInt there, and
// SpiderMonkey's take either. Only a lock version could pass 2^53; it stays a BigInt then.
const u64 = (value: number): number => Math.max(0, Math.floor(value));
const version = (value: bigint): number | bigint => (value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value);
const u32 = (value: number): number => Math.min(Math.max(0, Math.floor(value)), 0xffffffff);
const opt = <T>(value: T | null | undefined): T | null => (value == null ? null : value);

function grant(value: wLocks.Grant): Grant {
  return { version: BigInt(value.version), holder: value.holder, metadata: value.metadata, expiresAtMs: Number(value.expiresAtMs) };
}

function registration(value: wRegistry.Registration): RegistrationRecord {
  return {
    service: value.service,
    instance: value.instance,
    metadata: value.metadata,
    ttlMs: Number(value.ttlMs),
    registeredAtMs: Number(value.registeredAtMs),
    expiresAtMs: Number(value.expiresAtMs),
  };
}

function blobInfo(value: wBlobs.BlobInfo): BlobInfo {
  return {
    key: value.key,
    size: Number(value.size),
    contentType: value.contentType,
    modifiedAtMs: Number(value.modifiedAtMs),
    etag: value.etag,
  };
}

/** A `list<u8>` as a Uint8Array (the bindings hand one over already). */
const bytes = (value: Uint8Array | ArrayLike<number>): Uint8Array => (value instanceof Uint8Array ? value : Uint8Array.from(value));

const wasmHost: Backend = {
  actorId: () => wHost.actorId(),
  tell: (target, action, payload) => call(() => wHost.tell(target, action, payload)),
  ask: (target, action, payload, timeoutMs) => call(() => wHost.ask(target, action, payload, u32(timeoutMs))),
  log: (level, message) => wHost.log(level, message),
  nowMs: () => Number(wHost.nowMs()),
  randomU64: () => BigInt.asUintN(64, BigInt(wHost.randomU64())),
  tsWrite: (tuple, leaseMs) => call(() => wTuples.write(tuple, u64(leaseMs))),
  tsRead: (pattern, timeoutMs) => opt(call(() => wTuples.read(pattern, u32(timeoutMs)))),
  tsTake: (pattern, timeoutMs) => opt(call(() => wTuples.take(pattern, u32(timeoutMs)))),
  tsCount: (pattern) => Number(call(() => wTuples.count(pattern))),
  tsScan: (pattern, limit) => call(() => wTuples.scan(pattern, u32(limit))),
  tsTakeLater: (pattern, action) => call(() => wTuples.takeLater(pattern, action)),
  lockAcquire: (namespace, name, holder, metadata, leaseMs, timeoutMs) => {
    const found = call(() => wLocks.acquire(namespace, name, holder, metadata, u64(leaseMs), u32(timeoutMs)));
    return found == null ? null : grant(found);
  },
  lockRenew: (namespace, name, holder, lockVersion, leaseMs) =>
    grant(call(() => wLocks.renew(namespace, name, holder, version(lockVersion), u64(leaseMs)))),
  lockRelease: (namespace, name, lockVersion) => call(() => wLocks.release(namespace, name, version(lockVersion))),
  kvGet: (key) => opt(call(() => wKv.get(key))),
  kvPut: (key, value, ttlMs) => call(() => wKv.put(key, value, u64(ttlMs))),
  kvDelete: (key) => call(() => wKv.delete(key)),
  kvList: (prefix, after, limit) =>
    call(() => wKv.listPrefix(prefix, after, u32(limit))).map((entry): [string, string] => [entry.key, entry.value]),
  kvCas: (key, expected, value, ttlMs) =>
    call(() => wKv.compareAndSwap(key, expected ?? null, value ?? null, u64(ttlMs))),
  pgJoin: (group, member, topic) => call(() => wGroups.join(group, member, topic ?? null)),
  pgLeave: (group, member, topic) => call(() => wGroups.leave(group, member, topic ?? null)),
  pgMembers: (group) => call(() => wGroups.members(group)),
  pgPublish: (group, topic, data) => call(() => wGroups.publish(group, topic ?? null, data)),
  chCreate: (name, kind, capacity, visibilityMs) => call(() => wChannels.create(name, kind, u32(capacity), u64(visibilityMs))),
  chSend: (name, data, timeoutMs) => call(() => wChannels.send(name, data, u32(timeoutMs))),
  chReceive: (name, subscription, max, timeoutMs) =>
    call(() => wChannels.receive(name, subscription, u32(max), u32(timeoutMs))).map(
      (delivery): [string, string, number] => [delivery.receipt, delivery.data, delivery.attempt],
    ),
  chAck: (name, receipt) => call(() => wChannels.ack(name, receipt)),
  chNack: (name, receipt, delayMs) => call(() => wChannels.nack(name, receipt, u64(delayMs))),
  chSubscribe: (topic, subscription) => call(() => wChannels.subscribe(topic, subscription)),
  chUnsubscribe: (topic, subscription) => call(() => wChannels.unsubscribe(topic, subscription)),
  chConsume: (name, subscription, action) => call(() => wChannels.consume(name, subscription, action)),
  chStopConsuming: (name) => call(() => wChannels.stopConsuming(name)),
  chClose: (name) => call(() => wChannels.close(name)),
  regRegister: (service, instance, metadata, ttlMs) => registration(call(() => wRegistry.register(service, instance, metadata, u64(ttlMs)))),
  regHeartbeat: (service, instance, ttlMs) => registration(call(() => wRegistry.heartbeat(service, instance, u64(ttlMs)))),
  regDeregister: (service, instance) => call(() => wRegistry.deregister(service, instance)),
  regLookup: (service) => call(() => wRegistry.lookup(service)).map(registration),
  regListServices: (prefix, after, limit) =>
    call(() => wRegistry.listServices(prefix, after, u32(limit))).map((summary) => ({
      service: summary.service,
      instances: Number(summary.instances),
    })),
  blobPut: (key, data, contentType) => blobInfo(call(() => wBlobs.put(key, data, contentType))),
  blobGet: (key) => {
    const found = call(() => wBlobs.get(key));
    return found != null ? bytes(found) : null;
  },
  blobHead: (key) => {
    const found = call(() => wBlobs.head(key));
    return found != null ? blobInfo(found) : null;
  },
  blobDelete: (key) => call(() => wBlobs.delete(key)),
  blobList: (prefix, after, limit) => call(() => wBlobs.listPrefix(prefix, after, u32(limit))).map(blobInfo),
  blobPresign: (key, method, ttlMs) => call(() => wBlobs.presign(key, method, u64(ttlMs))),
  wfStepBegin: (name) => opt(call(() => wWorkflow.stepBegin(name))),
  wfStepEnd: (name, value) => call(() => wWorkflow.stepEnd(name, value)),
  wfSleep: (ms) => call(() => wWorkflow.sleep(u64(ms))),
  wfWaitSignal: (name, timeoutMs) => call(() => wWorkflow.waitSignal(name, u64(timeoutMs))),
  wfTakeSignals: () => call(() => wWorkflow.takeSignals()),
  wfCommit: (state) => call(() => wWorkflow.commit(state)),
  wfIdempotencyKey: () => wWorkflow.idempotencyKey(),
  timerSchedule: (action, payload, delayMs, durable) => call(() => wTimers.schedule(action, payload, u64(delayMs), durable)),
  timerCancel: (id) => call(() => wTimers.cancel(id)),
};

/** What `handle` throws: the WIT `failure` record, which the bindings lower as the `err` case. */
function failure(value: Failure): { code: string; message: string; errorType: string | null } {
  return { code: value.code, message: value.message, errorType: value.errorType ?? null };
}

function formatted(values: unknown[]): string {
  return values
    .map((value) => {
      if (typeof value === "string") return value;
      if (value instanceof Error) return `${value.name}: ${value.message}`;
      try {
        return JSON.stringify(value, (_key, inner) => (typeof inner === "bigint" ? `${inner}n` : inner)) ?? String(value);
      } catch {
        return String(value);
      }
    })
    .join(" ");
}

/** `console` in every engine (QuickJS has none): each call is a line in the node log and the
 * type's log buffer, tagged with the actor, at the method's level. */
const guestConsole = {
  log: (...values: unknown[]) => wHost.log("info", formatted(values)),
  info: (...values: unknown[]) => wHost.log("info", formatted(values)),
  debug: (...values: unknown[]) => wHost.log("debug", formatted(values)),
  trace: (...values: unknown[]) => wHost.log("trace", formatted(values)),
  warn: (...values: unknown[]) => wHost.log("warn", formatted(values)),
  error: (...values: unknown[]) => wHost.log("error", formatted(values)),
};

type StateIn = { tag: "fresh" } | { tag: "cached" } | { tag: "bytes"; val: Uint8Array };

/** Serves the actor classes a module exports, in `order` (their class names as the source
 * declares them); returns the `guest` export. Called by the entry `plexspaces-ts build` writes. */
export function serve(module: Record<string, unknown>, order: string[] = []) {
  const classes = actorClasses(module);
  const rank = (cls: Function) => {
    const at = order.indexOf(cls.name);
    return at < 0 ? order.length : at;
  };
  classes.sort((a, b) => rank(a) - rank(b));
  const runtime = new Runtime(classes, `typescript ${SDK_VERSION}`, () => wasmHost.randomU64());
  setBackend(wasmHost);
  (globalThis as { console: unknown }).console = guestConsole;
  return {
    describe(): string {
      return runtime.describe();
    },
    handle(
      classIndex: number,
      key: string,
      state: StateIn,
      action: string,
      payload: Uint8Array,
      evict: Array<[number, string]>,
    ): { payload: Uint8Array; state: Uint8Array | null } {
      const kind = state.tag === "cached" ? CACHED : state.tag === "bytes" ? BYTES : FRESH;
      try {
        const [reply, newState] = runtime.handle(classIndex, key, kind, state.tag === "bytes" ? state.val : null, action, payload, evict);
        return { payload: reply, state: newState };
      } catch (error) {
        // Never trap: every failure leaves as the `err` case.
        throw failure(failureOf(error));
      }
    },
  };
}
