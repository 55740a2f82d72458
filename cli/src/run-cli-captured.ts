import { Readable, Writable } from "node:stream";
import type { CliSettings } from "./cli-context.js";
import { type CliOptions, runCli } from "./cli.js";

/** Inputs of {@link runCliCaptured}. */
export interface CapturedRunOptions extends CliOptions {
  /** Settings as main.ts would build them from the environment; only `configDir` is required. */
  settings: CliSettings;
  /** Bytes the command reads on stdin (`task create -f -`); empty by default. */
  stdin?: string | Uint8Array;
  /** Aborting it acts like Ctrl-C; never aborted by default. */
  signal?: AbortSignal;
}

/** What a {@link runCliCaptured} run produced. */
export interface CapturedRun {
  exitCode: number;
  /** Everything written to stdout, byte for byte. */
  stdout: Buffer;
  /** Everything written to stderr, as UTF-8. */
  stderr: string;
}

/**
 * Runs `mottainai args` in-process with in-memory streams and returns the exit code and the
 * output, for tests and tools that drive the CLI without spawning it. Colours are off.
 */
export async function runCliCaptured(args: readonly string[], options: CapturedRunOptions): Promise<CapturedRun> {
  const stdout = capture();
  const stderr = capture();
  const { settings, stdin, signal, ...cliOptions } = options;
  const exitCode = await runCli(
    args,
    {
      settings,
      signal: signal ?? new AbortController().signal,
      env: {},
      stdin: Readable.from(stdin === undefined ? [] : [Buffer.from(stdin)]),
      stdout: stdout.stream,
      stderr: stderr.stream,
      colorDepth: 1,
    },
    cliOptions,
  );
  return { exitCode, stdout: stdout.bytes(), stderr: stderr.bytes().toString("utf8") };
}

function capture(): { stream: Writable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(Buffer.from(chunk));
      callback();
    },
  });
  return { stream, bytes: () => Buffer.concat(chunks) };
}
