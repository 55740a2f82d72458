import { spawn } from "node:child_process";

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  cwd?: string;
  /** The child's whole environment; the server's own when omitted. */
  env?: NodeJS.ProcessEnv;
  /** Killed (SIGKILL, with everything it started) after this long. */
  timeoutMs: number;
  /** Killed when it aborts. */
  signal?: AbortSignal;
  /** How errors name the command, e.g. "git push"; file by default. */
  label?: string;
}

/** A command that failed: exited non-zero, was killed, timed out or could not start. */
export class CommandError extends Error {
  override name = "CommandError";
  constructor(
    message: string,
    /** The last lines of its stderr (or stdout when stderr was empty). */
    readonly output: string,
  ) {
    super(message);
  }
}

/** How many trailing lines of output a CommandError carries. */
const TAIL_LINES = 8;

/** Output kept per stream: stdout in full up to this, stderr's tail. */
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

const tail = (text: string): string => text.trimEnd().split("\n").slice(-TAIL_LINES).join("\n");

/**
 * Runs file with args (no shell) and resolves to its stdout. The child runs in a session of its
 * own (setsid), so that it has no controlling terminal: git, ssh and rsync can never stop to ask
 * for a password, they fail instead; a timeout or an abort kills its whole process group (ssh
 * included). Rejects with a CommandError whose message names the command and its exit code,
 * signal or timeout, followed by the last lines of its stderr.
 */
export function runCommand(file: string, args: readonly string[], options: RunCommandOptions): Promise<string> {
  const label = options.label ?? file;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let stdoutBytes = 0;
    let stderrBytes = 0;
    child.stdout.on("data", (chunk: Buffer) => {
      if (stdoutBytes < MAX_OUTPUT_BYTES) stdout.push(chunk);
      stdoutBytes += chunk.byteLength;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr.push(chunk);
      stderrBytes += chunk.byteLength;
      while (stderrBytes > 64 * 1024 && stderr.length > 1) stderrBytes -= stderr.shift()!.byteLength;
    });
    let killedFor: string | undefined;
    const kill = (why: string) => {
      if (killedFor !== undefined || child.pid === undefined) return;
      killedFor = why;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    };
    const timer = setTimeout(() => kill(`timed out after ${options.timeoutMs} ms`), options.timeoutMs);
    const onAbort = () => kill("was cancelled");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    const done = () => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    };
    child.once("error", (err: NodeJS.ErrnoException) => {
      done();
      reject(new CommandError(`${label} could not run (${err.code ?? err.message})`, ""));
    });
    child.once("close", (code, signal) => {
      done();
      const out = Buffer.concat(stdout).toString("utf8");
      if (code === 0 && killedFor === undefined) {
        resolve(out);
        return;
      }
      const output = tail(Buffer.concat(stderr).toString("utf8") || out);
      const what = killedFor ?? (code !== null ? `exited with code ${code}` : `was killed by ${signal}`);
      reject(new CommandError(`${label} ${what}${output ? `: ${output}` : ""}`, output));
    });
  });
}
