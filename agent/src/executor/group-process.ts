import { spawn, type ChildProcess } from "node:child_process";
import { rm } from "node:fs/promises";
import { writeProcessGroupRecord } from "../orphan-reaper.js";

/** How a GroupProcess ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: string;
}

/**
 * A command in its own process group with stdout and stderr on one pipe: the command runs
 * under `/bin/sh -c 'exec "$@" 2>&1'`, so fd 2 is a copy of fd 1 and the bytes keep the order
 * the script wrote them in. When the main process exits, whatever it left behind in its group
 * is killed, so the pipe closes and nothing outlives the attempt. While the group may exist,
 * its id is recorded in `recordFile` (writeProcessGroupRecord): `started` resolves once the
 * record is written, `done` once it is removed again.
 */
export class GroupProcess {
  private readonly child: ChildProcess;
  private exited = false;
  private closed = false;
  private killTimer: NodeJS.Timeout | undefined;
  readonly started: Promise<void>;
  readonly done: Promise<Exit>;

  constructor(
    argv: string[],
    cwd: string,
    env: Record<string, string>,
    onOutput: (chunk: Buffer) => void,
    closeTimeoutMs: number,
    recordFile: string,
  ) {
    const child = spawn("/bin/sh", ["-c", 'exec "$@" 2>&1', "sh", ...argv], {
      cwd,
      env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    const forward = (chunk: Buffer): void => {
      if (!this.closed) onOutput(chunk);
    };
    child.stdout?.on("data", forward);
    child.stderr?.on("data", forward);
    let spawnFailed: (err: Error) => void = () => undefined;
    const spawned = new Promise<void>((resolveSpawned, rejectSpawned) => {
      child.once("spawn", () => resolveSpawned());
      spawnFailed = rejectSpawned;
    });
    this.started = spawned.then(() => writeProcessGroupRecord(recordFile, child.pid as number));
    this.started.catch(() => undefined);
    const ended = new Promise<Exit>((resolveDone) => {
      let exit: Exit | undefined;
      let closeTimer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        if (this.closed) return;
        this.closed = true;
        clearTimeout(closeTimer);
        clearTimeout(this.killTimer);
        child.stdout?.destroy();
        child.stderr?.destroy();
        resolveDone(exit ?? { code: null, signal: null });
      };
      child.on("error", (err) => {
        spawnFailed(err);
        if (child.pid === undefined && !this.exited) {
          exit = { code: null, signal: null, error: err.message };
          this.exited = true;
          finish();
        }
      });
      child.once("exit", (code, signal) => {
        exit = { code, signal };
        this.exited = true;
        this.signalGroup("SIGKILL");
        closeTimer = setTimeout(finish, closeTimeoutMs);
      });
      child.once("close", finish);
    });
    this.done = ended.then(async (exit) => {
      await this.started.catch(() => undefined);
      await rm(recordFile, { force: true }).catch(() => undefined);
      return exit;
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return !this.exited;
  }

  terminate(graceMs: number): void {
    if (this.exited || this.killTimer) return;
    this.signalGroup("SIGTERM");
    this.killTimer = setTimeout(() => this.signalGroup("SIGKILL"), Math.max(0, graceMs));
  }

  kill(): void {
    if (!this.closed) this.signalGroup("SIGKILL");
  }

  private signalGroup(signal: NodeJS.Signals): void {
    if (this.closed || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // The group is already gone.
    }
  }
}
