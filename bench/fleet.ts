import { join } from "node:path";
import { parseJsonLine, spawnChild, ROOT, type Child } from "./child-process.js";

/**
 * What a fleet process holds, each on its own TCP connection to url:
 * - "agents": count simulated agents, registered with registrationToken as NAMEPREFIX-I;
 * - "raw-h2": count bare HTTP/2 connections to the h2 sink, each with one open request stream
 *   that carries a 9-byte DATA frame every heartbeatMs (the size of a gRPC heartbeat message),
 *   the baseline of the agents.
 */
export type FleetConfig =
  | {
      mode: "agents";
      url: string;
      count: number;
      registrationToken: string;
      namePrefix: string;
      slots: number;
      behaviour: "finish" | "hold";
      /** Registrations and connections in progress at once. */
      concurrency: number;
    }
  | { mode: "raw-h2"; url: string; count: number; heartbeatMs: number; concurrency: number };

/** A line a fleet process prints on stdout, as JSON. */
export type FleetEvent =
  | { type: "ready"; count: number; connectMs: number }
  | { type: "assignment"; taskId: string; attempt: number }
  | { type: "error"; message: string };

/** A running fleet process. */
export interface Fleet {
  readonly child: Child;
  /** Time the process took to connect all of its clients (after registering them), in ms. */
  readonly connectMs: number;
  /** Calls listener with each assignment one of the fleet's agents receives. */
  onAssignment(listener: (taskId: string, attempt: number) => void): void;
  /** Closes every connection and ends the process. */
  stop(): Promise<void>;
}

/**
 * Starts a child process (fleet-process.ts) that opens config.count connections and resolves
 * once all of them are up, or rejects with the first error it reports. Holding the agents in
 * other processes keeps their client-side cost off the bench process and lets a test kill them.
 */
export async function startFleet(name: string, config: FleetConfig, timeoutMs: number): Promise<Fleet> {
  const child = spawnChild({
    name,
    nodeArgs: ["--import", "tsx", join(ROOT, "bench/fleet-process.ts"), JSON.stringify(config)],
    raiseFdLimit: true,
  });
  const events = (line: string) => parseJsonLine(line) as FleetEvent | undefined;
  try {
    const ready = await child.waitFor((line) => {
      const e = events(line);
      if (e?.type === "error") throw new Error(`${name}: ${e.message}`);
      return e?.type === "ready" ? e : undefined;
    }, timeoutMs);
    child.onLine((line) => {
      const e = events(line);
      if (e?.type === "error") process.stderr.write(`${name}: ${e.message}\n`);
    });
    return {
      child,
      connectMs: ready.connectMs,
      onAssignment(listener) {
        child.onLine((line) => {
          const e = events(line);
          if (e?.type === "assignment") listener(e.taskId, e.attempt);
        });
      },
      stop: () => child.stop(),
    };
  } catch (err) {
    await child.stop(1000);
    throw err;
  }
}
