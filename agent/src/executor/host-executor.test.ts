import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { TaskSpecSchema } from "@mottainai/proto";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import type { Executor, ExecutorInput, ExecutorResult } from "./executor.js";
import { createHostExecutor, workspaceName, type HostExecutorOptions } from "./host-executor.js";

const logger = pino({ level: "silent" });
const PATH = process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin";

describe("host executor", () => {
  let root: string;
  let seq = 0;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "mottainai-host-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  function make(
    spec: MessageInitShape<typeof TaskSpecSchema>,
    environment: Record<string, string> = {},
    options: HostExecutorOptions = {},
  ): { executor: Executor; output: Buffer[]; workspace: string } {
    const output: Buffer[] = [];
    const input: ExecutorInput = {
      taskId: `task-${++seq}`,
      attempt: 1,
      spec: create(TaskSpecSchema, { type: "host", ...spec }),
      environment,
      workspaceRoot: join(root, "work"),
      onOutput: (chunk) => output.push(chunk),
      logger,
    };
    const executor = createHostExecutor(input, { path: PATH, ...options });
    return { executor, output, workspace: join(root, "work", workspaceName(input.taskId, 1)) };
  }

  async function run(
    spec: MessageInitShape<typeof TaskSpecSchema>,
    environment: Record<string, string> = {},
    options: HostExecutorOptions = {},
  ): Promise<{ text: string; result: ExecutorResult; workspace: string }> {
    const { executor, output, workspace } = make(spec, environment, options);
    try {
      await executor.prepare();
      await executor.start();
      const result = await executor.wait();
      await executor.collect();
      return { text: Buffer.concat(output).toString(), result, workspace };
    } finally {
      await executor.destroy();
    }
  }

  async function waitForFile(path: string): Promise<string> {
    for (let i = 0; i < 500; i++) {
      if (existsSync(path)) {
        const text = readFileSync(path, "utf8").trim();
        if (text !== "") return text;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`${path} never appeared`);
  }

  function alive(pid: number): boolean {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      return !/^\d+ \(.*\) Z/.test(stat);
    } catch {
      return false;
    }
  }

  async function gone(pid: number): Promise<boolean> {
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 10));
    return !alive(pid);
  }

  it("keeps many interleaved writes in order", async () => {
    const { text } = await run({ script: ["for i in $(seq 1 200); do echo out$i; echo err$i >&2; done"] });
    const expected = Array.from({ length: 200 }, (_, i) => `out${i + 1}\nerr${i + 1}\n`).join("");
    assert.equal(text, expected);
  });

  it("joins script items with && and stops at the first failure", async () => {
    const { text, result } = await run({ script: ["echo one", "false", "echo three"] });
    assert.equal(text, "one\n");
    assert.equal(result.exitCode, 1);
  });

  it("shows the MOTTAINAI_* variables, with task entries overriding them, and a minimal base environment", async () => {
    process.env.MOTTAINAI_AGENT_ONLY_SECRET = "leak";
    try {
      const { text, workspace } = await run(
        {
          script: [
            'printf "%s|%s|%s|%s|%s|%s" "$MOTTAINAI_TASK_ID" "$MOTTAINAI_TASK_NAME" "$HOME" "$LANG" "$PATH" "${MOTTAINAI_AGENT_ONLY_SECRET-unset}"',
          ],
          environment: ["MOTTAINAI_TASK_NAME=from-task"],
        },
        { MOTTAINAI_TASK_ID: "t-42", MOTTAINAI_TASK_NAME: "from-server" },
      );
      assert.equal(text, `t-42|from-task|${workspace}|C.UTF-8|${PATH}|unset`);
    } finally {
      delete process.env.MOTTAINAI_AGENT_ONLY_SECRET;
    }
  });

  it("runs the entrypoint with the script items as its arguments", async () => {
    const a = await run({ entrypoint: ["/bin/sh", "-c"], script: ['echo "$0 $1"', "zero", "one"] });
    assert.equal(a.text, "zero one\n");
    const b = await run({ entrypoint: ["printf", "[%s]"], script: ["a b", "c && d"] });
    assert.equal(b.text, "[a b][c && d]");
    const c = await run({ entrypoint: ["does-not-exist-anywhere"] });
    assert.equal(c.result.exitCode, 127);
    assert.match(c.text, /does-not-exist-anywhere/);
  });

  it("runs in workspace/directory with the artefact and storage directories created", async () => {
    const { text, workspace, result } = await run({
      script: ["pwd", "test -d ../../artefacts", "test -d ../../out/storage-here", "echo ok > ../../artefacts/a.txt"],
      directory: "src/sub",
      storagePath: "out/storage-here",
    });
    assert.equal(result.exitCode, 0, text);
    assert.equal(text, `${join(workspace, "src/sub")}\n`);
  });

  it("uses bash, or sh when PATH has no bash", async () => {
    const withBash = await run({ script: ['echo "$0"'] });
    assert.match(withBash.text, /bash\n$/);
    const bin = join(root, "bin");
    mkdirSync(bin);
    symlinkSync("/bin/sh", join(bin, "sh"));
    const noBash = await run({ script: ['echo "$0"'] }, {}, { path: bin });
    assert.equal(noBash.text, `${join(bin, "sh")}\n`);
  });

  it("rejects paths that leave the workspace, naming the field", async () => {
    for (const [spec, field] of [
      [{ directory: "../x" }, /^Error: directory: /],
      [{ artefactPath: "/etc" }, /^Error: artefact_path: /],
      [{ storagePath: "a/../../b" }, /^Error: storage_path: /],
    ] as const) {
      const { executor } = make({ script: ["true"], ...spec });
      await assert.rejects(executor.prepare(), field);
      await executor.destroy();
    }
  });

  it("cancel ends `sleep 30` within the grace", async () => {
    const { executor } = make({ script: ["sleep 30"] });
    await executor.prepare();
    await executor.start();
    const began = Date.now();
    executor.cancel(1000);
    const result = await executor.wait();
    assert.ok(Date.now() - began < 1500, `took ${Date.now() - began} ms`);
    assert.deepEqual(result, { exitCode: null, signal: "SIGTERM" });
    await executor.destroy();
  });

  it("cancel kills the whole process group, with SIGKILL after the grace when TERM is ignored", async () => {
    const { executor, workspace } = make({ script: ['trap "" TERM; sleep 30 & echo $! > child.pid; wait'] });
    await executor.prepare();
    await executor.start();
    const child = Number(await waitForFile(join(workspace, "child.pid")));
    assert.ok(alive(child));
    const began = Date.now();
    executor.cancel(300);
    const result = await executor.wait();
    const took = Date.now() - began;
    assert.ok(took >= 250 && took < 800, `took ${took} ms`);
    assert.deepEqual(result, { exitCode: null, signal: "SIGKILL" });
    assert.ok(await gone(child), "the child sleep is gone too");
    await executor.destroy();
  });

  it("kills what the script left running in the background, so wait does not hang", async () => {
    const { executor, output, workspace } = make({ script: ["(sleep 30; echo late) & echo $! > bg.pid; echo done"] });
    await executor.prepare();
    await executor.start();
    const result = await executor.wait();
    assert.deepEqual(result, { exitCode: 0 });
    assert.equal(Buffer.concat(output).toString(), "done\n");
    assert.ok(await gone(Number(readFileSync(join(workspace, "bg.pid"), "utf8"))), "the background process is gone");
    await executor.destroy();
  });

  it("destroy is idempotent after a failed prepare", async () => {
    const { executor } = make({ script: ["true"], directory: "../escape" });
    await assert.rejects(executor.prepare());
    await executor.destroy();
    await executor.destroy();
  });

  it("destroy while running kills the script", async () => {
    const { executor, workspace } = make({ script: ["sleep 30"] });
    await executor.prepare();
    await executor.start();
    await executor.destroy();
    assert.deepEqual(await executor.wait(), { exitCode: null, signal: "SIGKILL" });
    assert.equal(existsSync(workspace), false);
  });

  it("checks out source at commit before running the script", async () => {
    const repo = join(root, "repo");
    mkdirSync(repo);
    const git = (...args: string[]): string =>
      execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main", ...args], {
        cwd: repo,
        encoding: "utf8",
      }).trim();
    git("init", "--quiet");
    execFileSync("sh", ["-c", "echo first > file.txt"], { cwd: repo });
    git("add", "file.txt");
    git("commit", "--quiet", "-m", "first");
    const first = git("rev-parse", "HEAD");
    execFileSync("sh", ["-c", "echo second > file.txt"], { cwd: repo });
    git("commit", "--quiet", "-am", "second");

    const head = await run({ source: repo, script: ["cat file.txt"] });
    assert.equal(head.text, "second\n");
    const pinned = await run({ source: repo, commit: first, script: ["cat file.txt", "test -d artefacts"] });
    assert.equal(pinned.text, "first\n");
    assert.equal(pinned.result.exitCode, 0);
    const { executor } = make({ source: join(root, "missing-repo"), script: ["true"] });
    await assert.rejects(executor.prepare(), /^Error: source: cloning .* failed/);
    await executor.destroy();
  });
});
