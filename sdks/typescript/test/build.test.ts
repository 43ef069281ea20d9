// The build's checks: mistakes are reported with the user's file and line, before any wasm work.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, "../bin/plexspaces-ts.mjs");

function check(fixture: string): { code: number | null; out: string } {
  const file = path.join("test/fixtures", fixture);
  const run = spawnSync(process.execPath, [cli, "check", file], { cwd: path.join(here, ".."), encoding: "utf8" });
  return { code: run.status, out: run.stdout + run.stderr };
}

test("a good module checks", () => {
  const { code, out } = check("actors.ts");
  assert.equal(code, 0, out);
  assert.match(out, /ok: OrderDesk, Audit, Door, Journal, Approval, Services/);
});

test("the SEDA pipeline checks (it imports the channels)", () => {
  const { code, out } = check("seda_pipeline.ts");
  assert.equal(code, 0, out);
  assert.match(out, /ok: Validate, Enrich, Store/);
});

for (const [fixture, says] of [
  ["two_handlers.ts", /two_handlers\.ts:10: error: two handlers take the action "place_order": onPlaceOrder and onPlace_order/],
  ["async_handler.ts", /async_handler\.ts:8: error: onFetch is async: handlers are synchronous/],
  ["syntax_error.ts", /syntax_error\.ts:5:\d+: error: Expected "}" but found ";"/],
  ["throws_at_import.ts", /throws_at_import\.ts:11:\d+: error: importing the module threw Error: PLEX_URL is not set/],
  ["no_actor.ts", /no_actor\.ts: error: no actor class/],
  ["fsm_no_initial.ts", /fsm_no_initial\.ts:3: error: Gate is an FsmActor without static initialState/],
  ["missing.ts", /missing\.ts: error: cannot read the file: ENOENT/],
] as const) {
  test(`the check refuses ${fixture} with its file and line`, () => {
    const { code, out } = check(fixture);
    assert.equal(code, 1, out);
    assert.match(out, says);
  });
}

test("an unknown engine is refused", () => {
  const run = spawnSync(process.execPath, [cli, "build", "test/fixtures/actors.ts", "--engine", "v8"], { cwd: path.join(here, ".."), encoding: "utf8" });
  assert.equal(run.status, 1);
  assert.match(run.stderr, /unknown engine "v8" \(engines: quickjs, spidermonkey\)/);
});
