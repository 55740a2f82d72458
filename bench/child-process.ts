import { spawn, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { deferCleanup } from "./cleanup.js";

/** Root of the repository (bench/..): the working directory of every child. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Options of spawnChild. */
export interface ChildOptions {
  /** Name used in error messages. */
  name: string;
  /** Arguments of `node` (flags, script, script arguments). */
  nodeArgs: string[];
  /**
   * Raise the soft open-files limit to the hard one before exec'ing node (through bash), for
   * processes that hold thousands of sockets. Default false.
   */
  raiseFdLimit?: boolean;
  /**
   * How stop() asks the process to end before it escalates: by closing its stdin (the bench's
   * own children exit on that) or with SIGTERM (mottainai-server). Default "stdin".
   */
  stopWith?: "stdin" | "SIGTERM";
}

/** A child node process whose stdout is read line by line and whose stderr is kept. */
export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code or signal name when the process ended. */
  readonly exited: Promise<string>;
  /** Calls listener with every stdout line from now on. */
  onLine(listener: (line: string) => void): void;
  /**
   * Resolves with the first stdout line (from now on) for which pick returns a value; rejects
   * when pick throws, when the process exits first or after timeoutMs (quoting its last output).
   */
  waitFor<T>(pick: (line: string) => T | undefined, timeoutMs: number): Promise<T>;
  /** The last lines of stdout and stderr, for error messages. */
  tail(): string;
  /**
   * Ends the process: asks as ChildOptions.stopWith says, then SIGTERM after graceMs, then
   * SIGKILL after another graceMs. Resolves when it is gone. Idempotent.
   */
  stop(graceMs?: number): Promise<void>;
}

const TAIL_LINES = 40;

/** Spawns `node …nodeArgs` in ROOT with piped stdio and registers its cleanup. */
export function spawnChild(options: ChildOptions): Child {
  const command = options.raiseFdLimit ? "bash" : process.execPath;
  const args = options.raiseFdLimit
    ? ["-c", 'ulimit -n "$(ulimit -Hn)" && exec "$@"', "bash", process.execPath, ...options.nodeArgs]
    : options.nodeArgs;
  const child = spawn(command, args, { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
  if (child.pid === undefined) throw new Error(`${options.name}: could not start ${command}`);
  const output: string[] = [];
  const keep = (line: string) => {
    output.push(line);
    if (output.length > TAIL_LINES) output.shift();
  };
  const listeners = new Set<(line: string) => void>();
  createInterface({ input: child.stdout }).on("line", (line) => {
    keep(line);
    for (const listener of listeners) listener(line);
  });
  createInterface({ input: child.stderr }).on("line", keep);
  child.stdin.on("error", () => undefined);
  const exited = new Promise<string>((resolve) => child.once("exit", (code, signal) => resolve(String(code ?? signal))));
  const tail = () => output.map((l) => `  [${options.name}] ${l}`).join("\n");

  let stopping: Promise<void> | undefined;
  const terminate = (graceMs: number): Promise<void> =>
    (stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin.end();
      if (options.stopWith === "SIGTERM") child.kill("SIGTERM");
      const term = setTimeout(() => child.kill("SIGTERM"), graceMs);
      const kill = setTimeout(() => child.kill("SIGKILL"), 2 * graceMs);
      await exited;
      clearTimeout(term);
      clearTimeout(kill);
    })());
  const cleanup = deferCleanup(() => terminate(5000));

  return {
    name: options.name,
    process: child,
    pid: child.pid,
    exited,
    onLine: (listener) => void listeners.add(listener),
    waitFor<T>(pick: (line: string) => T | undefined, timeoutMs: number): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          listeners.delete(listener);
        };
        const listener = (line: string) => {
          let value: T | undefined;
          try {
            value = pick(line);
          } catch (err) {
            done();
            reject(err);
            return;
          }
          if (value === undefined) return;
          done();
          resolve(value);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${options.name}: nothing expected on stdout within ${timeoutMs} ms\n${tail()}`));
        }, timeoutMs);
        listeners.add(listener);
        void exited.then((how) => {
          done();
          reject(new Error(`${options.name} exited (${how})\n${tail()}`));
        });
      });
    },
    tail,
    stop: (graceMs = 5000) => terminate(graceMs).then(cleanup),
  };
}

/** Parses a stdout line as a JSON object; undefined when it is not one. */
export function parseJsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
