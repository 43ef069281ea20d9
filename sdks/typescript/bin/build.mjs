// `plexspaces-ts build FILE.ts -o FILE.wasm`: checks the actor module under Node, then bundles it
// with esbuild and componentizes it for the PlexSpaces world. Mistakes in the user's code (a
// syntax or bundling error, an exception at import, no actor class, two handlers for one
// action, an async handler) are reported as `file:line:col: error: ...` before any
// WebAssembly work starts.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import * as esbuild from "esbuild";

export const SDK_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const WIT_DIR = path.join(SDK_DIR, "wit");
export const WORLD = "actor-module";

/** The engines a component can embed. QuickJS is the default: see docs/adr/003-typescript-engine.md. */
export const ENGINES = ["quickjs", "spidermonkey"];
export const DEFAULT_ENGINE = "quickjs";

/** A mistake in the user's module; the message says where. */
export class CheckFailed extends Error {}

function sdkPlugin() {
  return {
    name: "plexspaces-sdk",
    setup(build) {
      // The SDK is this package's own source, whichever copy the user's project has installed:
      // the check, the component and the tests all run the SDK that built them.
      build.onResolve({ filter: /^@plexspaces\/sdk(\/testing)?$/ }, (args) => ({
        path: path.join(SDK_DIR, "src", args.path.endsWith("/testing") ? "testing.ts" : "index.ts"),
      }));
      build.onResolve({ filter: /^@plexspaces\/sdk\/internal\/(actor|guest)$/ }, (args) => ({
        path: path.join(SDK_DIR, "src", `${args.path.split("/").pop()}.ts`),
      }));
    },
  };
}

/** For Node bundles: each file's `import.meta.url` (and dirname, filename) stays its own, not the
 * bundle's, so tests find files beside them. */
const LOADERS = { ".ts": "ts", ".mts": "ts", ".cts": "ts", ".tsx": "tsx", ".jsx": "jsx" };

function ownImportMetaPlugin() {
  return {
    name: "plexspaces-import-meta",
    setup(build) {
      build.onLoad({ filter: /\.[cm]?[jt]sx?$/ }, async (args) => {
        if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
        const text = await readFile(args.path, "utf8");
        if (!text.includes("import.meta")) return undefined;
        const contents = text
          .replace(/\bimport\.meta\.url\b/g, JSON.stringify(pathToFileURL(args.path).href))
          .replace(/\bimport\.meta\.dirname\b/g, JSON.stringify(path.dirname(args.path)))
          .replace(/\bimport\.meta\.filename\b/g, JSON.stringify(args.path));
        return { contents, loader: LOADERS[path.extname(args.path)] ?? "js" };
      });
    },
  };
}

function where(location, fallback) {
  if (!location) return fallback;
  return `${location.file}:${location.line}:${location.column + 1}`;
}

function esbuildFailure(error, file) {
  const messages = error?.errors ?? [];
  if (messages.length === 0) return new CheckFailed(`${file}: error: ${error?.message ?? error}`);
  return new CheckFailed(messages.map((message) => `${where(message.location, file)}: error: ${message.text}`).join("\n"));
}

/** Bundles `entry` (source text resolved in `dir`) into one ES module. */
export async function bundle(contents, dir, { platform, outfile, sourcemap = false, file }) {
  try {
    await esbuild.build({
      stdin: { contents, resolveDir: dir, sourcefile: "plexspaces-entry.ts", loader: "ts" },
      bundle: true,
      format: "esm",
      platform,
      target: "es2022",
      mainFields: ["module", "main"],
      external: ["plexspaces:*"],
      keepNames: true,
      sourcemap: sourcemap ? "inline" : false,
      outfile,
      logLevel: "silent",
      plugins: platform === "node" ? [sdkPlugin(), ownImportMetaPlugin()] : [sdkPlugin()],
    });
  } catch (error) {
    throw esbuildFailure(error, file);
  }
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The 1-based line of the first match of `pattern` in `source`, or null. */
function lineOf(source, pattern) {
  const match = pattern.exec(source);
  return match ? source.slice(0, match.index).split("\n").length : null;
}

/** The line of the user's file in an error's stack (source maps on), or null. */
function stackLine(error, file) {
  const stack = String(error?.stack ?? "");
  for (const line of stack.split("\n")) {
    const at = line.indexOf(file);
    if (at >= 0) {
      const match = /:(\d+):(\d+)\)?\s*$/.exec(line.slice(at + file.length));
      if (match) return `${match[1]}:${match[2]}`;
    }
  }
  return null;
}

/** Imports the module under Node and returns its actor classes' names, in source order. */
export async function check(file) {
  const absolute = path.resolve(file);
  let source;
  try {
    source = await readFile(absolute, "utf8");
  } catch (error) {
    throw new CheckFailed(`${file}: error: cannot read the file: ${error.code ?? error.message}`);
  }
  const work = await mkdtemp(path.join(tmpdir(), "plexspaces-check-"));
  try {
    const outfile = path.join(work, "check.mjs");
    const entry =
      `export * as user from ${JSON.stringify(absolute)};\n` +
      `export { actorClasses, inspectClass, BuildError } from "@plexspaces/sdk/internal/actor";\n`;
    await bundle(entry, path.dirname(absolute), { platform: "node", outfile, sourcemap: true, file });
    process.setSourceMapsEnabled(true);
    let loaded;
    try {
      loaded = await import(pathToFileURL(outfile).href);
    } catch (error) {
      const line = stackLine(error, absolute);
      const name = error?.constructor?.name ?? "Error";
      throw new CheckFailed(`${file}${line ? `:${line}` : ""}: error: importing the module threw ${name}: ${error?.message ?? error}`);
    }
    const classes = loaded.actorClasses(loaded.user);
    if (classes.length === 0) {
      throw new CheckFailed(
        `${file}: error: no actor class: export a class that extends PlexSpacesActor, EventActor, FsmActor or WorkflowActor`,
      );
    }
    const position = (cls) => {
      const match = new RegExp(`class\\s+${escapeRegExp(cls.name)}\\b`).exec(source);
      return match ? match.index : Number.MAX_SAFE_INTEGER;
    };
    classes.sort((a, b) => position(a) - position(b));
    for (const cls of classes) {
      try {
        loaded.inspectClass(cls);
      } catch (error) {
        if (!(error instanceof loaded.BuildError)) throw error;
        const member = error.member
          ? lineOf(source, new RegExp(`^[ \\t]*(?:static\\s+|async\\s+|override\\s+)*${escapeRegExp(error.member)}\\b`, "m"))
          : null;
        const line = member ?? lineOf(source, new RegExp(`class\\s+${escapeRegExp(error.className)}\\b`));
        throw new CheckFailed(`${file}${line ? `:${line}` : ""}: error: ${error.message}`);
      }
    }
    return classes.map((cls) => cls.name);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function run(command, args, options) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("close", (code) => resolve({ code, output }));
    child.on("error", (error) => resolve({ code: -1, output: String(error) }));
  });
}

/** The directory of an installed package (whose `exports` may hide its package.json). */
function packageDir(name) {
  let main;
  try {
    main = fileURLToPath(import.meta.resolve(name));
  } catch {
    throw new CheckFailed(`error: cannot find the package ${name} (run npm install in ${SDK_DIR})`);
  }
  const marker = `${path.sep}node_modules${path.sep}${name.split("/").join(path.sep)}${path.sep}`;
  const at = main.lastIndexOf(marker);
  if (at < 0) throw new CheckFailed(`error: cannot find the package ${name} (run npm install in ${SDK_DIR})`);
  return main.slice(0, at + marker.length - 1);
}

async function componentize(engine, script, output, work) {
  // Both tools read the WIT from inside their working directory (jco cannot read it elsewhere).
  const wit = path.join(work, "wit");
  await mkdir(wit, { recursive: true });
  await copyFile(path.join(WIT_DIR, "plexspaces.wit"), path.join(wit, "plexspaces.wit"));
  let tool;
  let args;
  if (engine === "spidermonkey") {
    tool = path.join(packageDir("@bytecodealliance/componentize-js"), "src", "cli.js");
    args = [tool, "--wit", "wit", "--world-name", WORLD, "-d", "http", "-d", "fetch-event", "-o", output, script];
  } else {
    tool = path.join(packageDir("@bytecodealliance/jco"), "dist", "jco.js");
    // Synchronous exports: the node serves the world without component-model async.
    args = [tool, "componentize", script, "--backend", "qjs", "--backend-qjs-disable-async", "-w", "wit", "-n", WORLD, "-o", output];
  }
  const { code, output: printed } = await run(process.execPath, args, { cwd: work });
  if (code !== 0 || !existsSync(output)) {
    throw new CheckFailed(`${printed.trim()}\nerror: componentizing with ${engine} failed (exit ${code})`);
  }
}

/** Checks `file`, then writes its component to `output`. */
export async function build(file, output, { engine = DEFAULT_ENGINE, quiet = false } = {}) {
  if (!ENGINES.includes(engine)) {
    throw new CheckFailed(`error: unknown engine ${JSON.stringify(engine)} (engines: ${ENGINES.join(", ")})`);
  }
  const classes = await check(file);
  if (!quiet) process.stderr.write(`${file}: ${classes.length} actor class(es): ${classes.join(", ")}\n`);
  const absolute = path.resolve(file);
  const target = path.resolve(output);
  const work = await mkdtemp(path.join(tmpdir(), "plexspaces-build-"));
  try {
    const script = path.join(work, "actor.js");
    const entry =
      `import * as user from ${JSON.stringify(absolute)};\n` +
      `import { serve } from "@plexspaces/sdk/internal/guest";\n` +
      `export const guest = serve(user, ${JSON.stringify(classes)});\n`;
    await bundle(entry, path.dirname(absolute), { platform: "neutral", outfile: script, file });
    const partial = path.join(work, "actor.wasm");
    await componentize(engine, script, partial, work);
    await mkdir(path.dirname(target), { recursive: true });
    await copyFile(partial, `${target}.partial`);
    await rename(`${target}.partial`, target);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  if (!quiet) {
    const { size } = await stat(target);
    process.stderr.write(`wrote ${output} (${(size / 1e6).toFixed(1)} MB, ${engine})\n`);
  }
}

/** Bundles test files for Node (the SDK aliased, source maps on) and runs them with `node --test`. */
export async function test(files) {
  if (files.length === 0) throw new CheckFailed("error: name the test files to run");
  const work = await mkdtemp(path.join(tmpdir(), "plexspaces-test-"));
  try {
    const bundles = [];
    for (const file of files) {
      const absolute = path.resolve(file);
      const outfile = path.join(work, `${bundles.length}-${path.basename(file).replace(/\.[cm]?[tj]s$/, "")}.test.mjs`);
      await bundle(`import ${JSON.stringify(absolute)};\n`, path.dirname(absolute), { platform: "node", outfile, sourcemap: true, file });
      bundles.push(outfile);
    }
    const child = spawn(process.execPath, ["--enable-source-maps", "--test", ...bundles], { stdio: "inherit" });
    return await new Promise((resolve) => child.on("close", (code) => resolve(code ?? 1)));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export async function writeWit(out) {
  await writeFile(out, await readFile(path.join(WIT_DIR, "plexspaces.wit")));
}
