// The node's imports as the component bindings present them (wit/plexspaces.wit). A call whose
// WIT result is an error throws an object whose `payload` is the `host-error` record.

declare module "plexspaces:actor/host@0.1.0" {
  export function actorId(): string;
  export function tell(target: string, action: string, payload: string): void;
  export function ask(target: string, action: string, payload: string, timeoutMs: number): string;
  export function log(level: "trace" | "debug" | "info" | "warn" | "error", message: string): void;
  export function nowMs(): bigint | number;
  export function randomU64(): bigint | number;
}

declare module "plexspaces:actor/tuplespace@0.1.0" {
  export function write(tuple: string, leaseMs: number | bigint): void;
  export function read(pattern: string, timeoutMs: number): string | undefined | null;
  export function take(pattern: string, timeoutMs: number): string | undefined | null;
  export function count(pattern: string): bigint | number;
  export function scan(pattern: string, limit: number): string[];
  export function takeLater(pattern: string, action: string): void;
}

declare module "plexspaces:actor/locks@0.1.0" {
  export interface Grant {
    version: bigint | number;
    holder: string;
    metadata: string;
    expiresAtMs: bigint | number;
  }
  export function acquire(namespace: string, name: string, holder: string, metadata: string, leaseMs: number | bigint, timeoutMs: number): Grant | undefined | null;
  export function renew(namespace: string, name: string, holder: string, version: number | bigint, leaseMs: number | bigint): Grant;
  export function release(namespace: string, name: string, version: number | bigint): boolean;
}

declare module "plexspaces:actor/kv@0.1.0" {
  export interface Entry {
    key: string;
    value: string;
    expiresAtMs: bigint | undefined | null;
  }
  export function get(key: string): string | undefined | null;
  export function put(key: string, value: string, ttlMs: number | bigint): void;
  function _delete(key: string): boolean;
  export { _delete as delete };
  export function listPrefix(prefix: string, after: string, limit: number): Entry[];
  export function compareAndSwap(key: string, expected: string | null, value: string | null, ttlMs: number | bigint): boolean;
}

declare module "plexspaces:actor/process-groups@0.1.0" {
  export function join(group: string, member: string, topic: string | null): boolean;
  export function leave(group: string, member: string, topic: string | null): boolean;
  export function members(group: string): string[];
  export function publish(group: string, topic: string | null, data: string): number;
}

declare module "plexspaces:actor/workflow@0.1.0" {
  export function stepBegin(name: string): string | undefined | null;
  export function stepEnd(name: string, value: string): void;
  export function sleep(ms: number | bigint): void;
  export function waitSignal(name: string, timeoutMs: number | bigint): boolean;
  export function takeSignals(): string[];
  export function commit(state: Uint8Array): void;
  export function idempotencyKey(): string;
}

declare module "plexspaces:actor/timers@0.1.0" {
  export function schedule(action: string, payload: string, delayMs: number | bigint, durable: boolean): string;
  export function cancel(id: string): boolean;
}

declare module "plexspaces:actor/channels@0.1.0" {
  export interface Delivery {
    receipt: string;
    data: string;
    attempt: number;
  }
  export function create(name: string, kind: string, capacity: number, visibilityMs: number | bigint): boolean;
  export function send(name: string, data: string, timeoutMs: number): number;
  export function receive(name: string, subscription: string, max: number, timeoutMs: number): Delivery[];
  export function ack(name: string, receipt: string): boolean;
  export function nack(name: string, receipt: string, delayMs: number | bigint): boolean;
  export function subscribe(topic: string, subscription: string): boolean;
  export function unsubscribe(topic: string, subscription: string): boolean;
  export function consume(name: string, subscription: string, action: string): boolean;
  export function stopConsuming(name: string): boolean;
  export function close(name: string): boolean;
}

declare module "plexspaces:actor/registry@0.1.0" {
  export interface Registration {
    service: string;
    instance: string;
    metadata: string;
    ttlMs: bigint | number;
    registeredAtMs: bigint | number;
    expiresAtMs: bigint | number;
  }
  export interface ServiceSummary {
    service: string;
    instances: number;
  }
  export function register(service: string, instance: string, metadata: string, ttlMs: number | bigint): Registration;
  export function heartbeat(service: string, instance: string, ttlMs: number | bigint): Registration;
  export function deregister(service: string, instance: string): boolean;
  export function lookup(service: string): Registration[];
  export function listServices(prefix: string, after: string, limit: number): ServiceSummary[];
}

declare module "plexspaces:actor/blobs@0.1.0" {
  export interface BlobInfo {
    key: string;
    size: bigint | number;
    contentType: string;
    modifiedAtMs: bigint | number;
    etag: string;
  }
  export function put(key: string, data: Uint8Array, contentType: string): BlobInfo;
  export function get(key: string): Uint8Array | undefined | null;
  export function head(key: string): BlobInfo | undefined | null;
  function _delete(key: string): boolean;
  export { _delete as delete };
  export function listPrefix(prefix: string, after: string, limit: number): BlobInfo[];
  export function presign(key: string, method: string, ttlMs: number | bigint): string;
}
