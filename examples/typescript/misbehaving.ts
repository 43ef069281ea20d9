// An actor that fails in every way a handler can, for the node's bad-input tests.
import { PlexSpacesActor } from "@plexspaces/sdk";

interface State {
  count: number;
  blob: unknown;
}

export class Misbehaving extends PlexSpacesActor<State> {
  getDefaultState(): State {
    return { count: 0, blob: "" };
  }

  onIncrement(payload: { amount?: unknown }) {
    const amount = payload.amount ?? 1;
    if (typeof amount !== "number") throw new TypeError(`amount must be a number, not ${JSON.stringify(amount)}`);
    this.state.count += amount;
    return { count: this.state.count };
  }

  onFailAfterChange() {
    this.state.count += 1000;
    throw new RangeError("the order is not valid");
  }

  onBadState() {
    this.state.blob = 10n;
    return {};
  }

  onCyclicState() {
    const loop: unknown[] = [];
    loop.push(loop);
    this.state.blob = loop;
    return {};
  }

  onBadReply() {
    return { big: 1n };
  }

  onSpin() {
    for (;;) this.state.count++;
  }

  onHog() {
    const chunks: Float64Array[] = [];
    for (;;) chunks.push(new Float64Array(1 << 17));
  }

  onRecurse() {
    const down = (depth: number): number => down(depth + 1) + 1;
    return down(0);
  }

  onGrow(payload: { kib: number }) {
    this.state.blob = "x".repeat(payload.kib * 1024);
    return { size: (this.state.blob as string).length };
  }

  onNoisy() {
    console.log("to stdout", this.state.count);
    console.error("to stderr");
    const random = Math.random();
    return { now: Date.now() > 1_600_000_000_000, random: random >= 0 && random < 1 };
  }
}
