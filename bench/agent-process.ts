import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseJsonLine, ROOT } from "./child-process.js";
import { deferCleanup } from "./cleanup.js";

/**
 * A real mottainai-agent (agent/dist/main.js, so `tsc -b` must have run) started by a benchmark
 * that times real executors. Its JSON log lines are kept for the breakdowns.
 */
export interface AgentProcess {
  /** Every JSON log line of stdout and stderr so far, in arrival order. */
  readonly lines: Record<string, unknown>[];
  /** Resolves with the exit code or signal name when the process ended. */
  readonly exited: Promise<string>;
  /** The time (epoch ms) of the first log line of taskId with msg; NaN when there is none yet. */
  logTime(taskId: string, msg: string): number;
  /** The last 40 output lines, prefixed `  [mottainai-agent] `, for error messages. */
  tail(): string;
  /** SIGTERM, then SIGKILL after 10 s; resolves when the process is gone. Idempotent. */
  stop(): Promise<void>;
}

const TAIL_LINES = 40;
const STOP_GRACE_MS = 10_000;

/**
 * Spawns `node agent/dist/main.js …args` in ROOT (stdin closed, stdout and stderr read line by
 * line) and registers its stop with the bench's cleanups.
 */
export function startAgentProcess(args: readonly string[]): AgentProcess {
  const child = spawn(process.execPath, [join(ROOT, "agent/dist/main.js"), ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const onLine = (line: string) => {
    raw.push(line);
    if (raw.length > TAIL_LINES) raw.shift();
    const entry = parseJsonLine(line);
    if (entry) lines.push(entry);
  };
  createInterface({ input: child.stdout }).on("line", onLine);
  createInterface({ input: child.stderr }).on("line", onLine);
  const exited = new Promise<string>((resolve) => child.once("exit", (code, signal) => resolve(String(code ?? signal))));
  const stop = deferCleanup(() => stopProcess(child, STOP_GRACE_MS));
  const logTime = (taskId: string, msg: string): number => {
    const line = lines.find((l) => l.taskId === taskId && l.msg === msg);
    return typeof line?.time === "number" ? line.time : Number.NaN;
  };
  return { lines, exited, logTime, tail: () => raw.map((l) => `  [mottainai-agent] ${l}`).join("\n"), stop };
}

/**
 * Ends child: SIGTERM, then SIGKILL after graceMs; resolves when it has exited (at once when it
 * already has).
 */
export async function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const kill = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(kill);
}
