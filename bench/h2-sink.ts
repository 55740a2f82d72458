import { join } from "node:path";
import { parseJsonLine, spawnChild, ROOT } from "./child-process.js";

/** The baseline HTTP/2 server (h2-sink-server.ts) running in its own process. */
export interface H2Sink {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Starts the trivial node:http2 sink in a child process; resolves once it listens. */
export async function startH2Sink(options: { raiseFdLimit?: boolean } = {}): Promise<H2Sink> {
  const child = spawnChild({
    name: "h2-sink",
    nodeArgs: ["--import", "tsx", join(ROOT, "bench/h2-sink-server.ts")],
    raiseFdLimit: options.raiseFdLimit,
  });
  try {
    const port = await child.waitFor((line) => {
      const port = parseJsonLine(line)?.port;
      return typeof port === "number" ? port : undefined;
    }, 20_000);
    return { url: `http://127.0.0.1:${port}`, pid: child.pid, stop: () => child.stop() };
  } catch (err) {
    await child.stop(1000);
    throw err;
  }
}
