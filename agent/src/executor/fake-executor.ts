import type { Executor, ExecutorCollection, ExecutorInput, ExecutorResult } from "./executor.js";
import { taskEnvironment } from "./task-environment.js";

/** The bytes the fake executor writes, repeated: byte i of the output is FAKE_OUTPUT_PATTERN[i % 16]. */
export const FAKE_OUTPUT_PATTERN = "0123456789abcdef";

const WRITE_BYTES = 64 * 1024;
const PATTERN_BLOCK = Buffer.from(FAKE_OUTPUT_PATTERN.repeat(WRITE_BYTES / FAKE_OUTPUT_PATTERN.length));

/** The first `length` bytes the fake executor writes, for comparing a stored log with. */
export function fakeOutput(length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let pos = 0; pos < length; pos += WRITE_BYTES) PATTERN_BLOCK.copy(out, pos, 0, Math.min(WRITE_BYTES, length - pos));
  return out;
}

interface FakeSettings {
  exitCode: number;
  sleepMs: number;
  outputBytes: number;
}

function readSettings(env: Record<string, string>): FakeSettings {
  const integer = (name: string, max: number, what: string): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return 0;
    if (!/^\d+$/.test(raw.trim()) || Number(raw) > max) throw new Error(`${name}: expected ${what}, got "${raw}"`);
    return Number(raw);
  };
  return {
    exitCode: integer("FAKE_EXIT_CODE", 255, "an integer from 0 to 255"),
    sleepMs: integer("FAKE_SLEEP_MS", 2 ** 31 - 1, "a number of milliseconds"),
    outputBytes: integer("FAKE_OUTPUT_BYTES", Number.MAX_SAFE_INTEGER, "a number of bytes"),
  };
}

/**
 * An executor for protocol and scale tests (task type `fake`): no subprocess and no workspace.
 * Driven by the task's environment (the task's `environment` entries over the assignment's):
 * `FAKE_OUTPUT_BYTES` (default 0) bytes of the repeating FAKE_OUTPUT_PATTERN are written in
 * 64 KiB pieces, then it sleeps `FAKE_SLEEP_MS` (default 0) and exits with `FAKE_EXIT_CODE`
 * (default 0). prepare rejects a malformed value naming the variable. cancel stops it at once
 * (the grace is not needed): wait() then resolves with exitCode null and signal SIGTERM.
 */
export function createFakeExecutor(input: ExecutorInput): Executor {
  let settings: FakeSettings = { exitCode: 0, sleepMs: 0, outputBytes: 0 };
  let started = false;
  let cancelled = false;
  let ended = false;
  let timer: NodeJS.Timeout | undefined;
  let resolveResult: (result: ExecutorResult) => void = () => undefined;
  const result = new Promise<ExecutorResult>((resolve) => {
    resolveResult = resolve;
  });
  const end = (r: ExecutorResult): void => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    resolveResult(r);
  };

  const writeFrom = (pos: number): void => {
    if (cancelled || ended) return;
    if (pos >= settings.outputBytes) {
      timer = setTimeout(() => end({ exitCode: settings.exitCode }), settings.sleepMs);
      return;
    }
    const n = Math.min(WRITE_BYTES, settings.outputBytes - pos);
    input.onOutput(Buffer.from(PATTERN_BLOCK.subarray(0, n)));
    setImmediate(() => writeFrom(pos + n));
  };

  return {
    kind: "fake",

    async prepare(): Promise<void> {
      settings = readSettings(taskEnvironment(input));
    },

    async start(): Promise<void> {
      if (cancelled || started) return;
      started = true;
      setImmediate(() => writeFrom(0));
    },

    wait(): Promise<ExecutorResult> {
      if (!started) return Promise.resolve({ exitCode: null, error: cancelled ? "cancelled before start" : "not started" });
      return result;
    },

    async collect(): Promise<ExecutorCollection> {
      return {};
    },

    cancel(): void {
      if (cancelled) return;
      cancelled = true;
      if (started) end({ exitCode: null, signal: "SIGTERM" });
    },

    async destroy(): Promise<void> {
      cancelled = true;
      end({ exitCode: null, signal: "SIGKILL" });
    },
  };
}
