import { Code, ConnectError } from "@connectrpc/connect";
import { UsageError } from "clipanion";

/**
 * Process exit codes of `mottainai`. Scripts rely on them: 0 success, 1 any failure (server
 * error, unreachable server, bad file), 2 a command line that does not parse or validate, 130
 * interrupted by Ctrl-C (the shell convention for SIGINT).
 */
export const ExitCode = {
  ok: 0,
  error: 1,
  usage: 2,
  interrupted: 130,
} as const;

/** One of the {@link ExitCode} values. */
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * The exit code for an error that ended a command: `usage` for clipanion's usage errors (also
 * thrown by commands for a bad option value), `interrupted` when the RPC was cancelled because
 * `signal` was aborted, `error` otherwise.
 */
export function exitCodeFor(error: unknown, signal?: AbortSignal): ExitCode {
  if (isUsageError(error)) {
    return ExitCode.usage;
  }
  if (signal?.aborted && ConnectError.from(error).code === Code.Canceled) {
    return ExitCode.interrupted;
  }
  return ExitCode.error;
}

/**
 * Whether `error` is clipanion's fault-of-the-user kind: a {@link UsageError}, an unknown or
 * ambiguous command line (clipanion marks those with a `clipanion` property).
 */
export function isUsageError(error: unknown): boolean {
  return error instanceof UsageError || (error instanceof Error && "clipanion" in error);
}
