/**
 * How a message reaches a handler: state in, handler called, state out.
 *
 * The same code runs inside the WebAssembly guest and under `@plexspaces/sdk/testing`, so a unit
 * test exercises exactly what the node runs. Nothing may escape `Runtime.handle` but a
 * `Failure`: anything else would trap the instance.
 */

import { type ClassSpec, describeClass, type HandlerSpec, inspectClass } from "./actor.js";
import { HostError, installedBackend, type RunContext, setRun, Suspended } from "./host.js";
import { decodeUtf8, encodeUtf8 } from "./utf8.js";

export const WORLD_VERSION = "0.1.0";
export const SDK_VERSION = "0.1.0";
/** A GenFSM's state is stored as `{"state": .., "fsm_state": ..}`, as the Rust SDK stores it. */
export const FSM_KEY = "fsm_state";

/** The actor's own state out of what the host stores (a GenFSM's is wrapped). */
export function unwrapFsm(stored: unknown, fsm: boolean): unknown {
  return fsm && stored !== null && typeof stored === "object" && FSM_KEY in stored ? (stored as Obj).state : stored;
}

/** A handler that did not succeed, with its catalogue code. */
export class Failure {
  constructor(
    readonly code: string,
    readonly message: string,
    readonly errorType?: string,
  ) {}
}

export const FRESH = 0;
export const CACHED = 1;
export const BYTES = 2;

type Obj = Record<string, any>;

function errorType(error: unknown): string {
  if (error instanceof Error) {
    const ctor = (error as { constructor?: { name?: string } }).constructor?.name;
    return ctor && ctor !== "Error" ? ctor : error.name || "Error";
  }
  return typeof error;
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || String(error);
  try {
    return typeof error === "string" ? error : JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}

/** A failure for an exception that escaped user code. */
export function failureOf(error: unknown): Failure {
  if (error instanceof Failure) return error;
  if (error instanceof Suspended) return new Failure("suspended", error.message);
  if (error instanceof HostError && error.code === "suspended") return new Failure("suspended", error.detail);
  if (error instanceof RangeError && /call stack|recursion|stack overflow/i.test(error.message)) {
    return new Failure("actor_error", `maximum recursion depth exceeded: ${error.message}`, "RangeError");
  }
  if (error instanceof Error && /too much recursion/i.test(error.message)) {
    return new Failure("actor_error", `maximum recursion depth exceeded: ${error.message}`, "InternalError");
  }
  return new Failure("actor_error", errorMessage(error), errorType(error));
}

function isPlainObject(value: unknown): value is Obj {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function toJson(value: unknown, what: () => Failure): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value === undefined ? null : value);
  } catch {
    throw what();
  }
  if (text === undefined) throw what();
  return text;
}

function isThenable(value: unknown): boolean {
  return value !== null && typeof value === "object" && typeof (value as { then?: unknown }).then === "function";
}

/** One actor class, ready to serve messages. */
export class ClassRuntime {
  readonly spec: ClassSpec;
  readonly handlers = new Map<string, HandlerSpec[]>();
  readonly fsm: boolean;

  constructor(spec: ClassSpec) {
    this.spec = spec;
    for (const handler of spec.handlers) {
      const list = this.handlers.get(handler.name);
      if (list) list.push(handler);
      else this.handlers.set(handler.name, [handler]);
    }
    this.fsm = spec.behavior === "gen_fsm";
  }

  private blank(): Obj {
    return Object.create((this.spec.cls as { prototype: object }).prototype) as Obj;
  }

  private defaults(obj: Obj): unknown {
    try {
      return obj.getDefaultState();
    } catch (error) {
      const failure = failureOf(error);
      throw new Failure(failure.code, `getDefaultState() of ${this.spec.name} failed: ${failure.message}`, failure.errorType);
    }
  }

  /** A new actor: the class's default state. */
  fresh(): Obj {
    const obj = this.blank();
    obj.state = this.defaults(obj);
    if (this.fsm) obj.fsmState = this.spec.initial;
    return obj;
  }

  /** An actor from its stored state; fields added to the default state since get their defaults. */
  restore(data: Uint8Array): Obj {
    let saved: unknown;
    try {
      saved = JSON.parse(decodeUtf8(data));
    } catch (error) {
      throw new Failure("internal", `the stored state is not JSON: ${errorMessage(error)}`);
    }
    const obj = this.blank();
    let fsmState: unknown = this.spec.initial;
    if (this.fsm && isPlainObject(saved) && FSM_KEY in saved) fsmState = saved[FSM_KEY];
    saved = unwrapFsm(saved, this.fsm);
    const defaults = this.defaults(obj);
    obj.state = isPlainObject(saved) && isPlainObject(defaults) ? { ...defaults, ...saved } : saved;
    if (this.fsm) obj.fsmState = fsmState;
    return obj;
  }

  snapshot(obj: Obj): Uint8Array {
    const value = this.fsm ? { state: obj.state, [FSM_KEY]: obj.fsmState } : obj.state;
    const text = toJson(
      value,
      () => new Failure("state_not_serializable", `the state of ${this.spec.name} cannot be stored as JSON (a BigInt, a cycle, or a function?)`),
    );
    return encodeUtf8(text);
  }

  private call(obj: Obj, spec: HandlerSpec, argument: unknown): unknown {
    const reply = (obj[spec.method] as (payload: unknown) => unknown).call(obj, argument);
    if (isThenable(reply)) {
      throw new Failure(
        "actor_error",
        `${spec.method} returned a Promise: handlers are synchronous (host calls return their results directly)`,
        "TypeError",
      );
    }
    return reply;
  }

  /** Runs the handler(s) of `action` with every exception caught; returns the reply as JSON text
   * and whether the state may have changed: what the guest and the test host both run. */
  serve(obj: Obj, action: string, message: Obj): [string, boolean] {
    let reply: unknown;
    let changed: boolean;
    try {
      [reply, changed] = this.dispatch(obj, action, message);
    } catch (error) {
      throw failureOf(error);
    }
    const text = toJson(
      reply,
      () => new Failure("actor_error", `the reply of ${JSON.stringify(action)} cannot be sent as JSON`, "TypeError"),
    );
    return [text, changed];
  }

  /** Runs the handler(s) of `action`; returns the reply and whether the state may have changed. */
  dispatch(obj: Obj, action: string, message: Obj): [unknown, boolean] {
    const handlers = this.handlers.get(action);
    if (!handlers) {
      const known = [...this.handlers.keys()].sort().join(", ") || "none";
      throw new Failure("unknown_action", `${this.spec.name} has no handler for action ${JSON.stringify(action)} (handlers: ${known})`);
    }
    const first = handlers[0]!;
    const { action: _action, ...payload } = message;
    if (this.fsm && first.from !== null && !first.from.includes(obj.fsmState)) {
      throw new Failure(
        "invalid_state",
        `action ${JSON.stringify(action)} is not valid in state ${JSON.stringify(obj.fsmState)} (valid in: ${first.from.join(", ")})`,
      );
    }
    switch (first.kind) {
      case "run": {
        const run = new Run(this, obj);
        const previous = setRun(run);
        try {
          const reply = this.call(obj, first, message);
          if (run.suspended !== null) throw run.suspended;
          return [reply, true];
        } catch (error) {
          // A run that caught the unwinding is still suspended.
          if (run.suspended !== null) throw run.suspended;
          throw error;
        } finally {
          setRun(previous);
        }
      }
      case "signal":
        return [this.call(obj, first, message), true];
      case "query":
        return [this.call(obj, first, payload), false];
      default:
        break;
    }
    if (this.spec.behavior === "gen_event") {
      return [handlers.map((spec) => this.call(obj, spec, payload)), true];
    }
    const reply = this.call(obj, first, payload);
    if (this.fsm && first.to !== null) obj.fsmState = first.to;
    return [reply, true];
  }
}

/** The run in progress: its object, for signal handlers and commits. */
class Run implements RunContext {
  suspended: Suspended | null = null;
  private readonly delivered: Obj[] = [];
  constructor(
    private readonly runtime: ClassRuntime,
    private readonly obj: Obj,
  ) {}

  commit(): void {
    backendCommit(this.runtime.snapshot(this.obj));
  }

  deliver(): void {
    for (const text of backendTakeSignals()) {
      const signal = JSON.parse(text) as Obj;
      for (const spec of this.runtime.handlers.get(signal.action) ?? []) {
        if (spec.kind === "signal") (this.obj[spec.method] as (payload: unknown) => unknown).call(this.obj, signal);
      }
      this.delivered.push(signal);
    }
  }

  pop(name: string): Obj | null {
    const at = this.delivered.findIndex((signal) => signal.action === name);
    return at < 0 ? null : this.delivered.splice(at, 1)[0]!;
  }
}

function backendCommit(state: Uint8Array): void {
  installedBackend().wfCommit(state);
}
function backendTakeSignals(): string[] {
  return installedBackend().wfTakeSignals();
}

/** A small, fast generator for `Math.random`, seeded from the host. */
class SplitMix {
  private state: bigint;
  constructor(seed: bigint) {
    this.state = BigInt.asUintN(64, seed);
  }
  next(): number {
    this.state = BigInt.asUintN(64, this.state + 0x9e3779b97f4a7c15n);
    let z = this.state;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    z = z ^ (z >> 31n);
    return Number(z >> 11n) / 2 ** 53;
  }
}

/** Every class of a module, and the actors this instance keeps between messages. */
export class Runtime {
  readonly classes: ClassRuntime[];
  private readonly cache = new Map<string, Obj>();
  private random: SplitMix | null = null;

  constructor(
    classes: Function[],
    private readonly sdk: string,
    private readonly seed: (() => bigint) | null = null,
  ) {
    this.classes = classes.map((cls) => new ClassRuntime(inspectClass(cls)));
  }

  describe(): string {
    return JSON.stringify({
      world: WORLD_VERSION,
      sdk: this.sdk,
      classes: this.classes.map((runtime) => describeClass(runtime.spec)),
    });
  }

  /** `Math.random` draws from a generator seeded from the host (journaled for a durable actor,
   * so a replay draws the same numbers): once per message for a durable class, once per instance
   * otherwise, since every instance of a module starts from the state the build left. */
  private reseed(durable: boolean): void {
    if (this.seed === null || (this.random !== null && !durable)) return;
    const generator = new SplitMix(this.seed());
    this.random = generator;
    Math.random = () => generator.next();
  }

  handle(
    classIndex: number,
    key: string,
    stateKind: number,
    state: Uint8Array | null,
    action: string,
    payload: Uint8Array,
    evict: Array<[number, string]>,
  ): [Uint8Array, Uint8Array | null] {
    for (const [evictedClass, evictedKey] of evict) this.cache.delete(`${evictedClass}\u0000${evictedKey}`);
    const runtime = this.classes[classIndex];
    if (runtime === undefined) throw new Failure("internal", `this module has no class number ${classIndex}`);
    this.reseed(runtime.spec.durable);
    const cacheKey = `${classIndex}\u0000${key}`;
    let obj: Obj;
    if (stateKind === CACHED) {
      const kept = this.cache.get(cacheKey);
      if (kept === undefined) throw new Failure("need_state", "this instance no longer keeps the actor's state");
      obj = kept;
    } else if (stateKind === BYTES) {
      obj = runtime.restore(state ?? encodeUtf8("{}"));
    } else {
      obj = runtime.fresh();
    }
    // From here on the object may change: on any failure, forget it, so the next message starts
    // again from the committed state.
    this.cache.delete(cacheKey);
    let message: unknown;
    try {
      message = payload.length === 0 ? {} : JSON.parse(decodeUtf8(payload));
    } catch (error) {
      throw new Failure("invalid_json", `the payload is not JSON: ${errorMessage(error)}`);
    }
    if (!isPlainObject(message)) throw new Failure("invalid_arguments", "the payload must be a JSON object");
    const [replyText, changed] = runtime.serve(obj, action, message);
    const newState = changed ? runtime.snapshot(obj) : null;
    this.cache.set(cacheKey, obj);
    return [encodeUtf8(replyText), newState];
  }
}
