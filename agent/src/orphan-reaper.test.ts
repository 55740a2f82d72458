import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { AgentService, TaskSpecSchema } from "@mottainai/proto";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { createAgent } from "./agent.js";
import { AgentFatalError } from "./errors.js";
import { createHostExecutor, workspaceName } from "./executor/host-executor.js";
import { processGroupRecordFile, readProcessGroupRecord, reapOrphans, writeProcessGroupRecord } from "./orphan-reaper.js";

const logger = pino({ level: "silent" });

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, "ESRCH");
    return false;
  }
}

describe("orphan reaper", () => {
  let stateDir: string;
  let work: string;

  beforeEach(() => {
    stateDir = mkdtempSync(join(tmpdir(), "mottainai-reaper-"));
    work = join(stateDir, "work");
  });
  afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

  /** Starts `sleep 300` in a host executor and drops the executor without destroy, as a killed agent would. */
  async function crashedAttempt(taskId: string): Promise<{ pgid: number; record: string }> {
    const executor = createHostExecutor(
      {
        taskId,
        attempt: 1,
        spec: create(TaskSpecSchema, { type: "host", script: ["sleep 300"] }),
        environment: {},
        workspaceRoot: work,
        onOutput: () => undefined,
        logger,
      },
      { path: process.env.PATH },
    );
    await executor.prepare();
    await executor.start();
    const record = processGroupRecordFile(join(work, workspaceName(taskId, 1)));
    const pgid = (await readProcessGroupRecord(record))?.pgid;
    assert.ok(pgid !== undefined, "the running attempt has a process group record");
    assert.ok(alive(pgid));
    return { pgid, record };
  }

  it("kills the process group a crashed agent left running and removes its record", async () => {
    const { pgid, record } = await crashedAttempt("crashed");
    assert.deepEqual(await reapOrphans(work), [pgid]);
    assert.throws(() => process.kill(pgid, 0), { code: "ESRCH" });
    assert.equal(existsSync(record), false);
  });

  it("removes stale, malformed and other-boot records without killing anything", async () => {
    const other = spawn("sleep", ["300"], { detached: true, stdio: "ignore" });
    const ended = spawn("true", [], { stdio: "ignore" });
    await new Promise((resolve) => ended.once("exit", resolve));
    try {
      const otherPid = other.pid as number;
      mkdirSync(work);
      writeFileSync(join(work, "other-boot.pgid"), `${otherPid} 00000000-0000-0000-0000-000000000000\n`);
      await writeProcessGroupRecord(join(work, "ended.pgid"), ended.pid as number);
      writeFileSync(join(work, "malformed.pgid"), "not a number\n");
      assert.deepEqual(await reapOrphans(work), []);
      assert.ok(alive(otherPid), "a group recorded in another boot is not ours");
      for (const name of ["other-boot.pgid", "ended.pgid", "malformed.pgid"])
        assert.equal(existsSync(join(work, name)), false, name);
    } finally {
      other.kill("SIGKILL");
    }
  });

  it("resolves with nothing when there is no work directory", async () => {
    assert.deepEqual(await reapOrphans(join(stateDir, "missing")), []);
  });

  it("runs when the agent starts, before work/ is cleared", async () => {
    const { pgid, record } = await crashedAttempt("before-restart");
    const transport = createRouterTransport(({ service }) =>
      service(AgentService, {
        // eslint-disable-next-line require-yield
        async *connect() {
          throw new ConnectError("refused for the test", Code.FailedPrecondition);
        },
      }),
    );
    const agent = createAgent({ transport, logger, stateDir, hostname: "test-host" });
    await assert.rejects(agent.run(), AgentFatalError);
    assert.throws(() => process.kill(pgid, 0), { code: "ESRCH" });
    assert.equal(existsSync(record), false);
    assert.equal(existsSync(work), false);
  });
});
