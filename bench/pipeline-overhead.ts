import { performance } from "node:perf_hooks";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { PipelineService, PipelineSpecSchema, TaskSpecSchema, TaskStatus } from "@mottainai/proto";
import { bearer, createApi, createRegistrationSecret, createTasks, fakeTaskSpec } from "./api-clients.js";
import type { BenchOptions } from "./bench-options.js";
import { startMottainaiServer } from "./mottainai-server.js";
import { benchRow, type BenchResult } from "./report.js";
import { connectSimAgent, registerSimNode, type SimAgent } from "./sim-agent.js";
import { deferred, sleep, withTimeout } from "./waiting.js";

const MEMBERS = 200;
const CHORD = 10;
const AGENTS = 4;
const SLOTS = 50;

/**
 * Pipeline overhead (issue 13): a 200-member DAG of fake tasks (a group of 190 and a chord of
 * 10 that waits for all of them), timed from CreatePipeline to the pipeline done, against the
 * same 200 fake tasks created as independent tasks (createInFlight calls in flight) into the same
 * server and agents, timed from the first CreateTask to the last FinishAck. Goal: ratio ≤ 1.2.
 * The chord's wait for its group is part of what is measured.
 */
export async function runPipelineOverhead(options: BenchOptions): Promise<BenchResult> {
  const server = await startMottainaiServer({ nodeFlags: options.serverNodeFlags, args: [] });
  const api = createApi(server.url, server.adminToken);
  const sessionManager = new Http2SessionManager(server.url);
  const pipelines = createClient(
    PipelineService,
    createGrpcTransport({ baseUrl: server.url, sessionManager, interceptors: [bearer(server.adminToken)] }),
  );
  const agents: SimAgent[] = [];
  let acks = 0;
  let waiter: { target: number; resolve: () => void } | undefined;
  const onFinishAck = () => {
    acks++;
    if (waiter && acks >= waiter.target) waiter.resolve();
  };
  const untilAcks = (target: number) => {
    const d = deferred<void>();
    waiter = { target, resolve: d.resolve };
    if (acks >= target) d.resolve();
    return withTimeout(d.promise, 60_000, `${target} finished tasks (${acks} were)`);
  };
  try {
    const secret = await createRegistrationSecret(api, "bench pipelines");
    for (let i = 0; i < AGENTS; i++) {
      const name = `bench-pipeline-${i}`;
      agents.push(
        await connectSimAgent({
          baseUrl: server.url,
          credential: await registerSimNode(api, secret, name),
          hostname: name,
          slots: SLOTS,
          behaviour: "finish",
          onFinishAck,
        }),
      );
    }
    // Warm-up: one small pipeline and a few tasks.
    await createTasks(api, 20, options.createInFlight, "warm");
    await untilAcks(20);

    const keys = Array.from({ length: MEMBERS }, (_, i) => `m${i}`);
    const spec = create(PipelineSpecSchema, {
      pipelineName: "bench",
      group: keys.slice(0, MEMBERS - CHORD),
      chord: keys.slice(MEMBERS - CHORD),
      tasks: Object.fromEntries(keys.map((k) => [k, create(TaskSpecSchema, fakeTaskSpec(k))])),
    });
    const t0 = performance.now();
    const { pipeline } = await pipelines.createPipeline({ spec });
    const id = pipeline?.id ?? "";
    for (;;) {
      const { pipeline: p } = await pipelines.getPipeline({ id });
      if (p?.status === TaskStatus.DONE) break;
      if (performance.now() - t0 > 120_000) throw new Error("the pipeline did not finish in 120 s");
      await sleep(5);
    }
    const pipelineSeconds = (performance.now() - t0) / 1000;
    await untilAcks(20 + MEMBERS);

    const b0 = performance.now();
    await createTasks(api, MEMBERS, options.createInFlight, "independent");
    await untilAcks(20 + 2 * MEMBERS);
    const baselineSeconds = (performance.now() - b0) / 1000;
    return {
      rows: [
        benchRow(
          "pipeline 200-member DAG created→done",
          pipelineSeconds * 1000,
          "ms",
          { op: "<=", target: Math.round(baselineSeconds * 1200) },
          baselineSeconds * 1000,
        ),
      ],
      notes: [
        `pipelines: a group of ${MEMBERS - CHORD} and a chord of ${CHORD} fake tasks, ${AGENTS} simulated agents × ${SLOTS} slots, SQLite; ` +
          `baseline = the same ${MEMBERS} fake tasks created as independent tasks (${options.createInFlight} calls in flight), created→done; goal ratio ≤ 1.2.`,
      ],
    };
  } finally {
    for (const agent of agents) agent.close();
    sessionManager.abort();
    api.close();
    await server.stop();
  }
}
