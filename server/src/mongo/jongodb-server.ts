import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { MongoClient } from "mongodb";

const PACKAGE = "@jongodb/memory-server-bin-linux-x64-gnu";
const READY_PREFIX = "JONGODB_URI=";
const FAILURE_PREFIX = "JONGODB_START_FAILURE=";

/** A running jongodb test server (test-only; see docs/mongodb.md for what it lacks). */
export interface JongodbServer {
  /** Connection string without a database, e.g. mongodb://127.0.0.1:41234. */
  readonly url: string;
  /** Ends the process (SIGTERM, then SIGKILL after a grace). Idempotent. */
  stop(): Promise<void>;
}

/** Options of startJongodb. */
export interface JongodbOptions {
  /** Launcher binary; default jongodbBinaryPath(). */
  binaryPath?: string;
  /** "standalone" (default) or "singleNodeReplicaSet" (what transactions need on a real server). */
  topology?: "standalone" | "singleNodeReplicaSet";
  /** How long to wait for the ready line and the first ping. Default 30 s. */
  startupTimeoutMs?: number;
}

/**
 * Where the jongodb launcher binary is: env.JONGODB_BINARY_PATH, else the npm package's, else
 * undefined when the package is not installed (it exists for linux-x64 with glibc only).
 */
export function jongodbBinaryPath(env: Record<string, string | undefined> = {}): string | undefined {
  if (env.JONGODB_BINARY_PATH) return env.JONGODB_BINARY_PATH;
  try {
    const pkg = createRequire(import.meta.url).resolve(`${PACKAGE}/package.json`);
    const binary = join(dirname(pkg), "bin", "jongodb");
    return existsSync(binary) ? binary : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts jongodb on a free loopback port (the launcher binds port 0 and prints the URI it got)
 * and resolves once the driver's ping succeeds. The caller must stop() it; should the test run
 * exit first, an exit hook kills it.
 */
export async function startJongodb(options: JongodbOptions = {}): Promise<JongodbServer> {
  const binary = options.binaryPath ?? jongodbBinaryPath();
  if (!binary) throw new Error(`the jongodb binary is missing: npm install ${PACKAGE}`);
  const args = ["--host=127.0.0.1", "--port=0", "--database=test"];
  if (options.topology === "singleNodeReplicaSet") args.push("--topology-profile=singleNodeReplicaSet", "--replica-set-name=rs0");
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const stop = async () => {
    process.off("exit", killOnExit);
    await stopProcess(child);
  };
  const timeoutMs = options.startupTimeoutMs ?? 30_000;
  try {
    const uri = await readyLine(child, timeoutMs);
    const url = uri.replace(/\/test(?=$|\?)/, "/");
    const client = new MongoClient(url, { serverSelectionTimeoutMS: timeoutMs });
    try {
      await client.db("admin").command({ ping: 1 });
    } finally {
      await client.close();
    }
    return { url, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function readyLine(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const tail: string[] = [];
    const timer = setTimeout(() => fail(new Error(`jongodb printed no ${READY_PREFIX} line in ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(new Error(`${err.message}${tail.length ? `; last output: ${tail.join(" | ")}` : ""}`));
    };
    const remember = (line: string) => {
      tail.push(line);
      if (tail.length > 10) tail.shift();
    };
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line.startsWith(READY_PREFIX)) {
        clearTimeout(timer);
        resolve(line.slice(READY_PREFIX.length).trim());
      } else remember(line);
    });
    createInterface({ input: child.stderr! }).on("line", (line) => {
      if (line.startsWith(FAILURE_PREFIX)) fail(new Error(`jongodb failed to start: ${line.slice(FAILURE_PREFIX.length)}`));
      else remember(line);
    });
    child.once("error", (err) => fail(new Error(`cannot run jongodb: ${err.message}`)));
    child.once("exit", (code, signal) => fail(new Error(`jongodb exited during start (code ${code}, signal ${signal})`)));
  });
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

/**
 * A jongodb server for a test suite, or undefined when it cannot start, so that a developer's
 * run skips. With `ci` (the test passes `process.env.CI`) that throws instead: CI must run the
 * MongoDB suites (DESIGN §8).
 */
export async function requireJongodb(
  ci: boolean,
  env: Record<string, string | undefined> = {},
): Promise<JongodbServer | undefined> {
  const binaryPath = jongodbBinaryPath(env);
  let problem: string;
  if (!binaryPath) {
    problem = `the jongodb binary is missing (npm install ${PACKAGE}, or set JONGODB_BINARY_PATH)`;
  } else {
    try {
      return await startJongodb({ binaryPath });
    } catch (err) {
      problem = (err as Error).message;
    }
  }
  if (ci) throw new Error(`MongoDB store tests cannot run in CI: ${problem}`);
  (process as NodeJS.EventEmitter).emit("mottainai:test-skip", "jongodb (MongoDB)", problem);
  return undefined;
}
