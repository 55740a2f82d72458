import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseJsonLine, spawnChild, ROOT } from "./child-process.js";
import { deferCleanup } from "./cleanup.js";

/** Options of startMottainaiServer. */
export interface ServerOptions {
  /** Extra server flags, e.g. ["--heartbeat-interval", "1s"]. */
  args?: string[];
  /** Extra node flags, e.g. ["--cpu-prof", "--cpu-prof-dir=/tmp/prof"]. */
  nodeFlags?: string[];
  /** Raise the open-files limit to the hard limit (for thousands of agents). Default false. */
  raiseFdLimit?: boolean;
}

/** A real mottainai-server process on 127.0.0.1 with its own temporary data directory. */
export interface ServerHandle {
  /** Base URL, http://127.0.0.1:PORT. */
  readonly url: string;
  readonly pid: number;
  readonly adminToken: string;
  /** SIGTERM (so that --cpu-prof profiles are written), SIGKILL after 10 s, then removes the data dir. */
  stop(): Promise<void>;
}

/**
 * Starts `node server/dist/main.js --listen 127.0.0.1:0` on a fresh data directory and resolves
 * once it logged its port and wrote the admin token. Logs at info level because that is the
 * level of the "listening" line; the server logs nothing per request or heartbeat at that level,
 * only one line per agent (dis)connection.
 */
export async function startMottainaiServer(options: ServerOptions = {}): Promise<ServerHandle> {
  const dataDir = mkdtempSync(join(tmpdir(), "mottainai-bench-"));
  const removeDir = deferCleanup(() => rmSync(dataDir, { recursive: true, force: true }));
  const child = spawnChild({
    name: "mottainai-server",
    nodeArgs: [
      ...(options.nodeFlags ?? []),
      join(ROOT, "server/dist/main.js"),
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      dataDir,
      "--log-level",
      "info",
      ...(options.args ?? []),
    ],
    raiseFdLimit: options.raiseFdLimit,
    stopWith: "SIGTERM",
  });
  try {
    const port = await child.waitFor((line) => {
      const entry = parseJsonLine(line);
      return entry?.msg === "mottainai-server listening" && typeof entry.port === "number" ? entry.port : undefined;
    }, 30_000);
    const adminToken = readFileSync(join(dataDir, "admin-token"), "utf8").trim();
    return {
      url: `http://127.0.0.1:${port}`,
      pid: child.pid,
      adminToken,
      stop: async () => {
        await child.stop(10_000);
        await removeDir();
      },
    };
  } catch (err) {
    await child.stop(1000);
    await removeDir();
    throw err;
  }
}
