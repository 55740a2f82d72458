import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { TaskSpecSchema } from "@mottainai/proto";
import assert from "node:assert/strict";
import { pino } from "pino";
import type { Executor, ExecutorResult } from "./executor.js";
import { createFakeExecutor, fakeOutput } from "./fake-executor.js";

const logger = pino({ level: "silent" });

function make(
  spec: MessageInitShape<typeof TaskSpecSchema>,
  environment: Record<string, string> = {},
): { executor: Executor; output: Buffer[] } {
  const output: Buffer[] = [];
  const executor = createFakeExecutor({
    taskId: "t",
    attempt: 1,
    spec: create(TaskSpecSchema, { type: "fake", ...spec }),
    environment,
    workspaceRoot: "/nonexistent",
    onOutput: (chunk) => output.push(chunk),
    logger,
  });
  return { executor, output };
}

async function run(
  spec: MessageInitShape<typeof TaskSpecSchema>,
  environment: Record<string, string> = {},
): Promise<{ output: Buffer; result: ExecutorResult }> {
  const { executor, output } = make(spec, environment);
  await executor.prepare();
  await executor.start();
  const result = await executor.wait();
  await executor.collect();
  await executor.destroy();
  return { output: Buffer.concat(output), result };
}

describe("fake executor", () => {
  it("exits 0 with no output by default", async () => {
    const { output, result } = await run({});
    assert.equal(output.length, 0);
    assert.deepEqual(result, { exitCode: 0 });
  });

  it("writes FAKE_OUTPUT_BYTES bytes of the repeating pattern and exits with FAKE_EXIT_CODE", async () => {
    const { output, result } = await run({ environment: ["FAKE_OUTPUT_BYTES=200003", "FAKE_EXIT_CODE=3"] });
    assert.equal(output.length, 200_003);
    assert.equal(output.subarray(0, 20).toString(), "0123456789abcdef0123");
    assert.deepEqual(output, fakeOutput(200_003));
    assert.equal(output.subarray(65_530, 65_542).toString(), "abcdef012345", "the pattern runs on across writes");
    assert.deepEqual(result, { exitCode: 3 });
  });

  it("reads the assignment environment, the task's entries overriding it", async () => {
    assert.deepEqual((await run({}, { FAKE_EXIT_CODE: "4" })).result, { exitCode: 4 });
    assert.deepEqual((await run({ environment: ["FAKE_EXIT_CODE=5"] }, { FAKE_EXIT_CODE: "4" })).result, { exitCode: 5 });
  });

  it("honours cancel while sleeping", async () => {
    const { executor } = make({ environment: ["FAKE_SLEEP_MS=60000"] });
    await executor.prepare();
    await executor.start();
    setTimeout(() => executor.cancel(1000), 10);
    assert.deepEqual(await executor.wait(), { exitCode: null, signal: "SIGTERM" });
    await executor.destroy();
    await executor.destroy();
  });

  it("stops writing when cancelled mid-output", async () => {
    const { executor, output } = make({ environment: ["FAKE_OUTPUT_BYTES=100000000"] });
    await executor.prepare();
    await executor.start();
    executor.cancel(0);
    assert.equal((await executor.wait()).signal, "SIGTERM");
    assert.ok(Buffer.concat(output).length < 100_000_000);
  });

  it("does nothing when cancelled before start", async () => {
    const { executor, output } = make({ environment: ["FAKE_OUTPUT_BYTES=10"] });
    await executor.prepare();
    executor.cancel(0);
    await executor.start();
    assert.equal((await executor.wait()).exitCode, null);
    assert.deepEqual(output, []);
    await executor.destroy();
  });

  it("rejects malformed settings naming the variable", async () => {
    await assert.rejects(
      make({ environment: ["FAKE_EXIT_CODE=x"] }).executor.prepare(),
      /^Error: FAKE_EXIT_CODE: expected an integer from 0 to 255, got "x"/,
    );
    await assert.rejects(make({ environment: ["FAKE_EXIT_CODE=256"] }).executor.prepare(), /FAKE_EXIT_CODE/);
    await assert.rejects(make({ environment: ["FAKE_SLEEP_MS=-1"] }).executor.prepare(), /FAKE_SLEEP_MS/);
    await assert.rejects(make({ environment: ["FAKE_OUTPUT_BYTES=1e3"] }).executor.prepare(), /FAKE_OUTPUT_BYTES/);
  });
});
