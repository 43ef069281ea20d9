/**
 * The base classes users extend, and what the SDK reads off each actor class.
 *
 * Conventions (the same as the Python SDK's, in TypeScript's idiom):
 * - `PlexSpacesActor<State>` (a GenServer): `getDefaultState()` gives a new actor id its state,
 *   `this.state` holds it, and a method `on<Action>` handles the action in snake_case:
 *   `onIncrement` handles `increment`, `onPlaceOrder` handles `place_order`. The handler gets
 *   the payload (without `action`) and returns the reply.
 * - `EventActor<State>` (a GenEvent): several handlers may take one action, `onOrderPlaced`,
 *   `onOrderPlaced_audit`, `onOrderPlaced_notify`...; each runs, in the order they are declared,
 *   and the reply is the list of their replies.
 * - `FsmActor<State>` (a GenFSM): `static initialState = "locked"` and
 *   `static transitions = { unlock: { from: ["locked"], to: "open" } }`; `this.fsmState` is the
 *   state's name. An action outside its `from` states is a 400 `invalid_state`.
 * - `WorkflowActor<State>` (a durable workflow with `static facets = ["durability"]`): `run(payload)`
 *   is the run handler, `on<Signal>(payload)` a signal handler (the whole payload, action
 *   included), `query<Name>(payload)` a read-only query.
 * - `static facets = ["durability"]` (or `[["durability", { checkpoint_every: 100 }]]`, or an
 *   object of name → config) attaches facets to every actor of the class.
 */

export type Behavior = "gen_server" | "gen_event" | "gen_fsm" | "workflow";
export type HandlerKind = "handler" | "run" | "signal" | "query";
export type FacetList = Array<string | [string, Record<string, unknown>]> | Record<string, Record<string, unknown>>;

export interface Transition {
  from?: string | string[];
  to?: string;
}

/** The base of every actor class: a GenServer. */
export abstract class PlexSpacesActor<State = Record<string, unknown>> {
  static readonly behavior: Behavior = "gen_server";
  static facets?: FacetList;
  /** The actor's state: one per actor id, stored as JSON after each successful handler. */
  state!: State;
  /** The state of a new actor id (called once for each). */
  abstract getDefaultState(): State;
}

/** A GenEvent: every handler of an action runs, in order; the reply lists their replies. */
export abstract class EventActor<State = Record<string, unknown>> extends PlexSpacesActor<State> {
  static override readonly behavior: Behavior = "gen_event";
}

/** A GenFSM: `static initialState` and `static transitions`; `this.fsmState` is where it is. */
export abstract class FsmActor<State = Record<string, unknown>> extends PlexSpacesActor<State> {
  static override readonly behavior: Behavior = "gen_fsm";
  static initialState?: string;
  static transitions?: Record<string, Transition>;
  /** The name of the machine's current state. */
  fsmState!: string;
}

/** A durable workflow: `run(payload)`, signal handlers `on<Signal>`, queries `query<Name>`. */
export abstract class WorkflowActor<State = Record<string, unknown>> extends PlexSpacesActor<State> {
  static override readonly behavior: Behavior = "workflow";
  /** The run handler: action `run`, one at a time. */
  abstract run(payload: Record<string, any>): unknown;
}

/** A mistake in an actor class, found before it is built. */
export class BuildError extends Error {
  readonly className: string;
  /** The method the mistake is in, when it is in one. */
  readonly member: string | undefined;
  constructor(message: string, className: string, member?: string) {
    super(message);
    this.name = "BuildError";
    this.className = className;
    this.member = member;
  }
}

export interface HandlerSpec {
  /** The action it handles. */
  name: string;
  kind: HandlerKind;
  /** The method's name on the class. */
  method: string;
  from: string[] | null;
  to: string | null;
}

export interface ClassSpec {
  cls: Function;
  name: string;
  behavior: Behavior;
  facets: Array<[string, Record<string, unknown>]>;
  handlers: HandlerSpec[];
  initial: string | null;
  durable: boolean;
}

/** `PlaceOrder` → `place_order`, `HTTPServer` → `http_server` (as the node names classes). */
export function snakeCase(name: string): string {
  let out = "";
  for (let at = 0; at < name.length; at++) {
    const char = name[at]!;
    if (char >= "A" && char <= "Z") {
      const previous = at > 0 ? name[at - 1]! : "";
      const next = at + 1 < name.length ? name[at + 1]! : "";
      const lower = (c: string) => c >= "a" && c <= "z";
      const upper = (c: string) => c >= "A" && c <= "Z";
      const digit = (c: string) => c >= "0" && c <= "9";
      if (previous && (lower(previous) || digit(previous) || (upper(previous) && lower(next))) && !out.endsWith("_")) {
        out += "_";
      }
      out += char.toLowerCase();
    } else {
      out += char;
    }
  }
  return out;
}

const BASES = new Set<Function>([PlexSpacesActor, EventActor, FsmActor, WorkflowActor]);

/** True for a class that extends one of the SDK's actor classes (and is not one of them). */
export function isActorClass(value: unknown): value is Function {
  if (typeof value !== "function" || BASES.has(value)) return false;
  return value.prototype instanceof PlexSpacesActor;
}

function facetsOf(cls: Function & { facets?: unknown }): Array<[string, Record<string, unknown>]> {
  const value = cls.facets;
  const name = cls.name;
  if (value == null) return [];
  let items: Array<[unknown, unknown]>;
  if (Array.isArray(value)) {
    items = value.map((item) => {
      if (typeof item === "string") return [item, {}];
      if (Array.isArray(item) && item.length === 2) return [item[0], item[1]];
      throw new BuildError(`static facets takes names or [name, config] pairs, not ${JSON.stringify(item)}`, name, "facets");
    });
  } else if (typeof value === "object") {
    items = Object.entries(value as Record<string, unknown>);
  } else {
    throw new BuildError("static facets is a list of facet names", name, "facets");
  }
  return items.map(([facet, config]) => {
    if (typeof facet !== "string" || facet === "") {
      throw new BuildError(`a facet name is a non-empty string, not ${JSON.stringify(facet)}`, name, "facets");
    }
    if (config == null) config = {};
    if (typeof config !== "object" || Array.isArray(config)) {
      throw new BuildError(`facet ${JSON.stringify(facet)}'s config is an object`, name, "facets");
    }
    return [facet, config as Record<string, unknown>];
  });
}

/** The methods of `cls` and the user classes it extends, in declaration order, base first. */
function methodsOf(cls: Function): string[] {
  const chain: object[] = [];
  for (let proto = cls.prototype; proto && !BASES.has(proto.constructor); proto = Object.getPrototypeOf(proto)) {
    chain.unshift(proto);
  }
  const seen = new Set<string>();
  const names: string[] = [];
  for (const proto of chain) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === "constructor" || seen.has(name)) continue;
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      if (!descriptor || typeof descriptor.value !== "function") continue;
      seen.add(name);
      names.push(name);
    }
  }
  return names;
}

function isAsync(fn: unknown): boolean {
  return typeof fn === "function" && (fn.constructor?.name === "AsyncFunction" || fn.constructor?.name === "AsyncGeneratorFunction");
}

/** What an actor class declares, checked: BuildError names the class and method at fault. */
export function inspectClass(cls: Function): ClassSpec {
  const statics = cls as Function & {
    behavior: Behavior;
    facets?: unknown;
    initialState?: unknown;
    transitions?: unknown;
  };
  const name = cls.name;
  if (!name) throw new BuildError("an actor class needs a name", "(anonymous)");
  const behavior = statics.behavior;
  const proto = cls.prototype as Record<string, unknown>;
  if (typeof proto.getDefaultState !== "function") {
    throw new BuildError(`${name} has no getDefaultState() method`, name);
  }
  const handlers: HandlerSpec[] = [];
  const byAction = new Map<string, HandlerSpec>();
  const add = (spec: HandlerSpec) => {
    const first = byAction.get(spec.name);
    if (first !== undefined && behavior !== "gen_event") {
      throw new BuildError(
        `two handlers take the action ${JSON.stringify(spec.name)}: ${first.method} and ${spec.method}`,
        name,
        spec.method,
      );
    }
    if (first === undefined) byAction.set(spec.name, spec);
    handlers.push(spec);
  };
  for (const method of methodsOf(cls)) {
    let kind: HandlerKind | null = null;
    let rest = "";
    if (behavior === "workflow" && method === "run") {
      kind = "run";
    } else if (/^on[A-Z0-9]/.test(method)) {
      kind = behavior === "workflow" ? "signal" : "handler";
      rest = method.slice(2);
    } else if (behavior === "workflow" && /^query[A-Z0-9]/.test(method)) {
      kind = "query";
      rest = method.slice(5);
    }
    if (kind === null) continue;
    if (isAsync(proto[method])) {
      throw new BuildError(
        `${method} is async: handlers are synchronous (host calls return their results directly), remove async`,
        name,
        method,
      );
    }
    if (behavior === "gen_event") rest = rest.split("_")[0]!;
    const action = kind === "run" ? "run" : snakeCase(rest);
    if (kind !== "run" && action === "run") {
      throw new BuildError(`${method} would take the action "run", which is the workflow's run`, name, method);
    }
    add({ name: action, kind, method, from: null, to: null });
  }
  let initial: string | null = null;
  if (behavior === "gen_fsm") {
    if (typeof statics.initialState !== "string" || statics.initialState === "") {
      throw new BuildError(`${name} is an FsmActor without static initialState = "<state>"`, name, "initialState");
    }
    initial = statics.initialState;
    const transitions = statics.transitions ?? {};
    if (typeof transitions !== "object" || Array.isArray(transitions)) {
      throw new BuildError("static transitions maps actions to { from, to }", name, "transitions");
    }
    for (const [action, transition] of Object.entries(transitions as Record<string, Transition>)) {
      const spec = byAction.get(action);
      if (spec === undefined) {
        throw new BuildError(`static transitions names the action ${JSON.stringify(action)}, which no on<Action> handles`, name, "transitions");
      }
      const from = transition?.from;
      spec.from = from == null ? null : Array.isArray(from) ? from.map(String) : [String(from)];
      spec.to = transition?.to == null ? null : String(transition.to);
    }
  } else if (statics.transitions !== undefined || statics.initialState !== undefined) {
    throw new BuildError("static initialState and transitions belong on an FsmActor", name, "transitions");
  }
  if (behavior === "workflow" && !handlers.some((spec) => spec.kind === "run")) {
    throw new BuildError(`${name} is a WorkflowActor without a run(payload) method`, name);
  }
  const facets = facetsOf(statics);
  return {
    cls,
    name,
    behavior,
    facets,
    handlers,
    initial,
    durable: facets.some(([facet]) => facet === "durability"),
  };
}

/** A class spec as `describe` reports it. */
export function describeClass(spec: ClassSpec): Record<string, unknown> {
  return {
    name: spec.name,
    behavior: spec.behavior,
    facets: spec.facets.map(([name, config]) => ({ name, config })),
    handlers: spec.handlers.map((handler) => ({ name: handler.name, kind: handler.kind })),
  };
}

/** The actor classes a module exports, in the order `order` (their place in the source) gives. */
export function actorClasses(module: Record<string, unknown>): Function[] {
  const found: Function[] = [];
  for (const value of Object.values(module)) {
    if (isActorClass(value) && !found.includes(value)) found.push(value);
  }
  return found;
}
