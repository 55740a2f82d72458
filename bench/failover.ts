import { performance } from "node:perf_hooks";
import { createApi, createRegistrationSecret, fakeTaskSpec } from "./api-clients.js";
import type { BenchOptions } from "./bench-options.js";
import { startFleet } from "./fleet.js";
import { startMottainaiServer } from "./mottainai-server.js";
import { benchRow, type BenchResult } from "./report.js";
import { connectSimAgent, registerSimNode } from "./sim-agent.js";
import { median } from "./stats.js";
import { deferred, sleep, withTimeout } from "./waiting.js";

const HEARTBEAT_MS = 1000;
const LEASE_TTL_MS = 3000;

/**
 * Failover: a server with a 1 s heartbeat interval and a 3 s lease TTL; per round, simulated agent
 * A in a child process takes a task that never finishes, idle agent B connects from the bench,
 * and after a random wait of one to two heartbeat intervals (so the kill falls at any phase of A's
 * heartbeats) A's process is killed with SIGKILL. Measured: kill → B receives attempt 2 of the
 * task. Reported: the median of options.failoverRounds rounds. Baseline: the heartbeat interval.
 */
export async function runFailover(options: BenchOptions): Promise<BenchResult> {
  const server = await startMottainaiServer({
    args: ["--heartbeat-interval", `${HEARTBEAT_MS}ms`, "--lease-ttl", `${LEASE_TTL_MS}ms`],
    nodeFlags: options.serverNodeFlags,
  });
  const api = createApi(server.url, server.adminToken);
  const times: number[] = [];
  try {
    const secret = await createRegistrationSecret(api, "bench failover");
    const credentialB = await registerSimNode(api, secret, "bench-failover-b");
    for (let round = 1; round <= options.failoverRounds; round++) {
      const fleet = await startFleet(
        `failover-agent-a${round}`,
        {
          mode: "agents",
          url: server.url,
          count: 1,
          registrationToken: secret,
          namePrefix: `bench-failover-a${round}`,
          slots: 1,
          behaviour: "hold",
          concurrency: 1,
        },
        30_000,
      );
      try {
        const heldByA = deferred<string>();
        fleet.onAssignment((taskId) => heldByA.resolve(taskId));
        const { task } = await api.tasks.createTask({ spec: fakeTaskSpec(`failover-${round}`) });
        if ((await withTimeout(heldByA.promise, 10_000, "agent A's assignment")) !== task?.id)
          throw new Error("agent A got another task");

        const movedToB = deferred<{ attempt: number; at: number }>();
        const finishedOnB = deferred<void>();
        const agentB = await connectSimAgent({
          baseUrl: server.url,
          credential: credentialB,
          hostname: "bench-failover-b",
          slots: 1,
          behaviour: "finish",
          onAssignment: (a, at) => movedToB.resolve({ attempt: a.ref?.attempt ?? 0, at }),
          onFinishAck: () => finishedOnB.resolve(),
        });
        try {
          await sleep(HEARTBEAT_MS * (1 + Math.random()));
          const killedAt = performance.now();
          fleet.child.process.kill("SIGKILL");
          const moved = await withTimeout(movedToB.promise, 20 * HEARTBEAT_MS, "the task to move to agent B");
          if (moved.attempt !== 2) throw new Error(`agent B got attempt ${moved.attempt}, expected 2`);
          times.push(moved.at - killedAt);
          await withTimeout(finishedOnB.promise, 10_000, "agent B's FinishAck");
        } finally {
          agentB.close();
        }
      } finally {
        await fleet.stop();
      }
    }
  } finally {
    api.close();
    await server.stop();
  }
  return {
    rows: [benchRow("failover agent death→running", median(times), "ms", { op: "<=", target: 3 * HEARTBEAT_MS }, HEARTBEAT_MS)],
    notes: [
      `failover: heartbeat ${HEARTBEAT_MS} ms, lease TTL ${LEASE_TTL_MS} ms, median of ${times.length} rounds ` +
        `(${times.map((t) => t.toFixed(0)).join(", ")} ms); baseline = the heartbeat interval, so the ratio is in intervals.`,
    ],
  };
}
