import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { executorForTaskType, TaskSpecSchema, type TaskSpec } from "@mottainai/proto";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import type { Executor, ExecutorCollection, ExecutorFactory, ExecutorResult } from "./executor.js";

/** What describeExecutorConformance needs to drive one executor kind. */
export interface ConformanceSetup {
  /** Creates the executors under test, called as the agent calls its factory. */
  factory: ExecutorFactory;
  /**
   * The `workspaceRoot` each executor is given, read once per case, so it may be a fresh
   * directory made by the caller's beforeEach.
   */
  workspaceRoot(): string;
  /** Task `type` of every case, e.g. "host" or "docker_execute"; executorForTaskType must know it. */
  taskType: string;
  /** Task `image` of every case, for executors that need one. Default "". */
  image?: string;
  /**
   * Multiplies the suite's time bounds (60 s per case, 10 s for a cancel to take effect, 300 ms
   * of watching that a cancelled-before-start script prints nothing) for slow executors.
   * Default 1.
   */
  timeoutScale?: number;
  /**
   * Names of anything the executor left behind after destroy (workspaces, processes,
   * containers, domains); [] when clean. Called at the end of every case, after all of the
   * case's executors were destroyed; it may wait a little for asynchronous teardown to settle.
   */
  leaks(): Promise<string[]>;
}

/** Grace given to cancel(), as the agent's default cancel grace. */
const CANCEL_GRACE_MS = 1000;
/** Size of the large-output case: 50 MiB. */
const LARGE_OUTPUT_BYTES = 50 * 1024 * 1024;
/** `seq 1 N` prints more than LARGE_OUTPUT_BYTES for this N (about 55 MB). */
const LARGE_OUTPUT_SEQ_END = 7_000_000;

/** sha256 (hex) of the first `bytes` bytes of `seq 1 N` output ("1\n2\n3\n…"), computed in bounded memory. */
function seqDigest(bytes: number): string {
  const hash = createHash("sha256");
  let remaining = bytes;
  for (let next = 1; remaining > 0;) {
    let lines = "";
    for (let i = 0; i < 10_000; i++) lines += `${next++}\n`;
    const block = Buffer.from(lines).subarray(0, remaining);
    hash.update(block);
    remaining -= block.length;
  }
  return hash.digest("hex");
}

/** What the executor delivered through onOutput: kept whole or only counted and hashed. */
class OutputSink {
  private readonly hash = createHash("sha256");
  private readonly chunks: Buffer[] = [];
  length = 0;
  /** Set once wait() resolved: from then on no output may arrive. */
  waited = false;
  lateChunks = 0;

  constructor(private readonly keep: boolean) {}

  readonly receive = (chunk: Buffer): void => {
    if (this.waited) this.lateChunks++;
    this.length += chunk.length;
    this.hash.update(chunk);
    if (this.keep) this.chunks.push(Buffer.from(chunk));
  };

  bytes(): Buffer {
    assert.ok(this.keep, "this output was only hashed");
    return Buffer.concat(this.chunks);
  }

  text(): string {
    return this.bytes().toString();
  }

  digest(): string {
    return this.hash.copy().digest("hex");
  }
}

interface Created {
  executor: Executor;
  output: OutputSink;
  taskId: string;
}

interface Finished extends Created {
  result: ExecutorResult;
  collection: ExecutorCollection;
}

const logger = pino({ level: "silent" });
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Declares the conformance cases every executor must pass (DESIGN §6), as
 * `describe("executor conformance: <kind>")`. Each case drives executors through the lifecycle
 * of executor.ts exactly as the agent does (prepare → start → output → wait → collect →
 * destroy; cancel at any point) with the task type and image of `setup` and the MOTTAINAI_*
 * variables the server sends, then destroys whatever the case created and asserts that
 * `setup.leaks()` is []. Covered: exit codes 0 and 7; stdout and stderr interleaved in order;
 * 50 MiB of output complete and in order; the task's environment and the MOTTAINAI_* map;
 * the working directory; artefact collection; cancel while running and before start; destroy
 * twice; no output after wait() resolved. Scripts use only a POSIX shell with echo, printf,
 * pwd, true, mkdir, seq, head and sleep, so any image with a shell will do.
 */
export function describeExecutorConformance(kind: string, setup: ConformanceSetup): void {
  const scale = setup.timeoutScale ?? 1;

  describe(`executor conformance: ${kind}`, () => {
    let seq = 0;

    /** The executors of the running case, destroyed (again) when it ends. */
    let created: Created[] = [];

    function createExecutor(init: MessageInitShape<typeof TaskSpecSchema>, keepOutput = true): Created {
      const executorKind = executorForTaskType(setup.taskType);
      assert.ok(executorKind, `task type "${setup.taskType}" has no executor`);
      const taskId = `conformance-${process.pid}-${++seq}`;
      const spec: TaskSpec = create(TaskSpecSchema, {
        type: setup.taskType,
        image: setup.image ?? "",
        name: `conformance ${seq}`,
        artefactPath: "artefacts",
        storagePath: "storage",
        ...init,
      });
      const output = new OutputSink(keepOutput);
      const executor = setup.factory(executorKind, {
        taskId,
        attempt: 1,
        spec,
        environment: {
          MOTTAINAI_TASK_ID: taskId,
          MOTTAINAI_TASK_NAME: spec.name,
          MOTTAINAI_ARTEFACT_PATH: spec.artefactPath,
          MOTTAINAI_STORAGE_PATH: spec.storagePath,
          MOTTAINAI_TASK_TYPE: spec.type,
          MOTTAINAI_TASK_IMAGE: spec.image,
          MOTTAINAI_TASK_ATTEMPT: "1",
        },
        workspaceRoot: setup.workspaceRoot(),
        onOutput: output.receive,
        logger,
      });
      assert.ok(executor, `the factory has no "${executorKind}" executor`);
      const entry = { executor, output, taskId };
      created.push(entry);
      return entry;
    }

    /** prepare → start → wait → collect, as the agent runs an attempt that nobody stops; destroy is left to the case. */
    async function runToEnd(init: MessageInitShape<typeof TaskSpecSchema>, keepOutput = true): Promise<Finished> {
      const entry = createExecutor(init, keepOutput);
      await entry.executor.prepare();
      await entry.executor.start();
      const result = await entry.executor.wait();
      entry.output.waited = true;
      const collection = await entry.executor.collect();
      return { ...entry, result, collection };
    }

    function assertExited(result: ExecutorResult, exitCode: number, output?: string): void {
      assert.equal(result.exitCode, exitCode, `result ${JSON.stringify(result)}, output ${JSON.stringify(output)}`);
      assert.equal(result.signal, undefined);
      assert.equal(result.error, undefined);
    }

    /** A case: runs `body`, destroys every executor it created, then checks for late output and leaks. */
    function conformanceCase(title: string, body: () => Promise<void>): void {
      it(title, async function () {
        this.timeout(60_000 * scale);
        created = [];
        try {
          await body();
        } finally {
          for (const { executor } of created) await executor.destroy();
        }
        for (const { taskId, output } of created)
          assert.equal(output.lateChunks, 0, `${taskId}: output arrived after wait() resolved`);
        assert.deepEqual(await setup.leaks(), [], "left behind after destroy");
      });
    }

    conformanceCase("reports exit code 0", async () => {
      const { result, output } = await runToEnd({ script: ["exit 0"] });
      assertExited(result, 0, output.text());
    });

    conformanceCase("reports exit code 7", async () => {
      const { result, output } = await runToEnd({ script: ["exit 7"] });
      assertExited(result, 7, output.text());
    });

    conformanceCase("delivers stdout and stderr as one stream in the order written", async () => {
      const { result, output } = await runToEnd({ script: ["printf a; printf b >&2; printf c"] });
      assert.equal(output.text(), "abc");
      assertExited(result, 0);
    });

    conformanceCase("delivers 50 MiB of output complete and in order", async () => {
      const { result, output } = await runToEnd(
        { script: [`seq 1 ${LARGE_OUTPUT_SEQ_END} | head -c ${LARGE_OUTPUT_BYTES}`] },
        false,
      );
      assertExited(result, 0);
      assert.equal(output.length, LARGE_OUTPUT_BYTES);
      assert.equal(output.digest(), seqDigest(LARGE_OUTPUT_BYTES));
    });

    conformanceCase("shows the task environment over the MOTTAINAI_* variables, values with '=' intact", async () => {
      const { result, output, taskId } = await runToEnd({
        script: [
          'printf "%s|%s|%s|%s|%s|%s" "$A" "$B" "${EMPTY-unset}" "$MOTTAINAI_TASK_ID" "$MOTTAINAI_TASK_ATTEMPT" "$MOTTAINAI_TASK_NAME"',
        ],
        environment: ["A=x=y==z", "B=1", "B=2", "EMPTY=", "MOTTAINAI_TASK_NAME=from-task"],
      });
      assert.equal(output.text(), `x=y==z|2||${taskId}|1|from-task`);
      assertExited(result, 0);
    });

    conformanceCase("runs the script in `directory` inside the workspace", async () => {
      const { result, output } = await runToEnd({ script: ["pwd"], directory: "src/sub" });
      assert.match(output.text(), /\/src\/sub\n$/);
      assertExited(result, 0);
    });

    conformanceCase("collects what the script wrote under $MOTTAINAI_ARTEFACT_PATH", async () => {
      const { result, output, collection } = await runToEnd({
        script: [
          'mkdir -p "$MOTTAINAI_ARTEFACT_PATH/out"',
          String.raw`printf 'line\nbinary\001\377end' > "$MOTTAINAI_ARTEFACT_PATH/out/file.txt"`,
        ],
      });
      assertExited(result, 0, output.text());
      assert.ok(collection.artefactDir, "collect() gave no artefact directory");
      const bytes = await readFile(join(collection.artefactDir, "out", "file.txt"));
      assert.deepEqual(bytes, Buffer.from("line\nbinary\x01\xffend", "latin1"));
    });

    conformanceCase("cancel(grace) ends a running `sleep 30` with a signal or no exit code", async () => {
      const { executor, output } = createExecutor({ script: ["echo started", "sleep 30"] });
      await executor.prepare();
      await executor.start();
      for (const deadline = Date.now() + 10_000 * scale; output.text() === "" && Date.now() < deadline;) await sleep(20);
      assert.equal(output.text(), "started\n");
      const began = Date.now();
      executor.cancel(CANCEL_GRACE_MS);
      const result = await executor.wait();
      output.waited = true;
      const tookMs = Date.now() - began;
      assert.ok(result.exitCode === null || result.signal !== undefined, `result ${JSON.stringify(result)}`);
      assert.ok(tookMs < 10_000 * scale, `cancel(${CANCEL_GRACE_MS}) took ${tookMs} ms to end the run`);
    });

    conformanceCase("cancel before start makes start a no-op: nothing runs", async () => {
      const { executor, output } = createExecutor({ script: ["echo ran"] });
      await executor.prepare();
      executor.cancel(CANCEL_GRACE_MS);
      await executor.start();
      await sleep(300 * scale);
      assert.equal(output.length, 0);
    });

    conformanceCase("destroy is idempotent, after a run and before prepare", async () => {
      const { executor, result } = await runToEnd({ script: ["true"] });
      assertExited(result, 0);
      await executor.destroy();
      await executor.destroy();
      const unprepared = createExecutor({ script: ["true"] }).executor;
      await unprepared.destroy();
      await unprepared.destroy();
    });
  });
}
