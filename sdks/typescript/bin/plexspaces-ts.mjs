#!/usr/bin/env node
// plexspaces-ts: build TypeScript actors into PlexSpaces WebAssembly components.

import { readFile } from "node:fs/promises";
import path from "node:path";

import { build, check, CheckFailed, DEFAULT_ENGINE, ENGINES, test, WIT_DIR } from "./build.mjs";

const USAGE = `usage:
  plexspaces-ts build FILE.ts [-o FILE.wasm] [--engine ${ENGINES.join("|")}] [-q]
                             build FILE.ts into a component (engine: ${DEFAULT_ENGINE})
  plexspaces-ts check FILE.ts  check FILE.ts without building
  plexspaces-ts test FILES...  run tests (node:test) that use @plexspaces/sdk/testing
  plexspaces-ts wit            print the WIT world this SDK builds against`;

async function main(argv) {
  const [command, ...rest] = argv;
  if (command === "build") {
    let output = null;
    let engine = process.env.PLEXSPACES_TS_ENGINE || DEFAULT_ENGINE;
    let quiet = false;
    const files = [];
    for (let at = 0; at < rest.length; at++) {
      const arg = rest[at];
      if (arg === "-o" || arg === "--output") output = rest[++at];
      else if (arg === "--engine") engine = rest[++at];
      else if (arg.startsWith("--engine=")) engine = arg.slice("--engine=".length);
      else if (arg === "-q" || arg === "--quiet") quiet = true;
      else if (arg.startsWith("-")) throw new CheckFailed(`error: unknown option ${arg}\n${USAGE}`);
      else files.push(arg);
    }
    if (files.length !== 1 || output === undefined) throw new CheckFailed(USAGE);
    const file = files[0];
    await build(file, output ?? file.replace(/\.[cm]?[tj]s$/, "") + ".wasm", { engine, quiet });
    return 0;
  }
  if (command === "check" && rest.length === 1) {
    const classes = await check(rest[0]);
    process.stdout.write(`${rest[0]}: ok: ${classes.join(", ")}\n`);
    return 0;
  }
  if (command === "test") return await test(rest);
  if (command === "wit") {
    process.stdout.write(await readFile(path.join(WIT_DIR, "plexspaces.wit"), "utf8"));
    return 0;
  }
  process.stderr.write(`${USAGE}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`${error instanceof CheckFailed ? error.message : error?.stack ?? error}\n`);
    process.exit(1);
  },
);
