// A child process of the bench holding many connections to one server (see fleet.ts): it reads
// its FleetConfig from argv[2] as JSON, prints FleetEvents as JSON lines and exits when its stdin
// closes (so it never outlives the bench).
import http2 from "node:http2";
import { once } from "node:events";
import { performance } from "node:perf_hooks";
import { createApi } from "./api-clients.js";
import type { FleetConfig, FleetEvent } from "./fleet.js";
import { connectSimAgent, registerSimNode } from "./sim-agent.js";

const config = JSON.parse(process.argv[2] ?? "{}") as FleetConfig;
const closers: (() => void)[] = [];

const emit = (event: FleetEvent) => process.stdout.write(`${JSON.stringify(event)}\n`);

/** Runs job(0..count-1) with at most concurrency jobs in progress. */
async function forEachLimited(count: number, concurrency: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await job(next++);
  };
  await Promise.all(Array.from({ length: Math.min(count, concurrency) }, worker));
}

async function startAgents(c: Extract<FleetConfig, { mode: "agents" }>): Promise<void> {
  const registrar = createApi(c.url);
  const credentials: string[] = [];
  await forEachLimited(c.count, c.concurrency, async (i) => {
    credentials[i] = await registerSimNode(registrar, c.registrationToken, `${c.namePrefix}-${i}`);
  });
  registrar.close();
  const t0 = performance.now();
  await forEachLimited(c.count, c.concurrency, async (i) => {
    const agent = await connectSimAgent({
      baseUrl: c.url,
      credential: credentials[i] ?? "",
      hostname: `${c.namePrefix}-${i}`,
      slots: c.slots,
      behaviour: c.behaviour,
      onAssignment: (a) => emit({ type: "assignment", taskId: a.ref?.taskId ?? "", attempt: a.ref?.attempt ?? 0 }),
    });
    closers.push(agent.close);
    void agent.ended.then((err) => {
      if (err) emit({ type: "error", message: `${c.namePrefix}-${i}: ${String(err)}` });
    });
  });
  emit({ type: "ready", count: c.count, connectMs: performance.now() - t0 });
}

/** The 5-byte gRPC prefix and a 4-byte heartbeat message: what one agent heartbeat puts on the wire. */
const HEARTBEAT_FRAME = Buffer.from([0, 0, 0, 0, 4, 0x1a, 0x02, 0x08, 0x01]);

async function startRawConnections(c: Extract<FleetConfig, { mode: "raw-h2" }>): Promise<void> {
  const t0 = performance.now();
  await forEachLimited(c.count, c.concurrency, async () => {
    const session = http2.connect(c.url);
    session.on("error", (err) => emit({ type: "error", message: String(err) }));
    const stream = session.request({ ":method": "POST", ":path": "/idle", "content-type": "application/octet-stream" });
    stream.on("error", (err) => emit({ type: "error", message: String(err) }));
    await once(stream, "response");
    const timer = setInterval(() => stream.write(HEARTBEAT_FRAME), c.heartbeatMs);
    closers.push(() => {
      clearInterval(timer);
      session.destroy();
    });
  });
  emit({ type: "ready", count: c.count, connectMs: performance.now() - t0 });
}

process.stdin.resume();
process.stdin.on("close", () => {
  for (const close of closers) close();
  process.exit(0);
});

(config.mode === "agents" ? startAgents(config) : startRawConnections(config)).catch((err: unknown) => {
  emit({ type: "error", message: err instanceof Error ? err.message : String(err) });
});
