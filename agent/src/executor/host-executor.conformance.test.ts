import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { processGroupRecordFile, readProcessGroupRecord } from "../orphan-reaper.js";
import { describeExecutorConformance } from "./executor-conformance.js";
import type { ExecutorFactory } from "./executor.js";
import { createHostExecutor, workspaceName } from "./host-executor.js";

const PATH = process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin";

/** Live (not zombie) processes in process group `pgid`, as "pid (command)". */
function groupMembers(pgid: number): string[] {
  const members: string[] = [];
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue;
    }
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(pgrp) === pgid && state !== "Z" && state !== "X") members.push(`${pid} (${comm})`);
  }
  return members;
}

describe("host executor", () => {
  let root: string;
  /** Process groups the host executors of the current case started, read from their records. */
  const groups = new Set<number>();

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "mottainai-host-conformance-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const factory: ExecutorFactory = (kind, input) => {
    if (kind !== "host") return undefined;
    const executor = createHostExecutor(input, { path: PATH });
    const record = processGroupRecordFile(join(input.workspaceRoot, workspaceName(input.taskId, input.attempt)));
    return {
      ...executor,
      async start(): Promise<void> {
        await executor.start();
        const pgid = (await readProcessGroupRecord(record))?.pgid;
        if (pgid !== undefined) groups.add(pgid);
      },
    };
  };

  describeExecutorConformance("host", {
    factory,
    workspaceRoot: () => join(root, "work"),
    taskType: "host",
    async leaks(): Promise<string[]> {
      const left: string[] = [];
      const work = join(root, "work");
      for (const name of existsSync(work) ? readdirSync(work) : []) left.push(join(work, name));
      for (const pgid of groups) {
        let members = groupMembers(pgid);
        for (let i = 0; i < 100 && members.length > 0; i++) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          members = groupMembers(pgid);
        }
        left.push(...members.map((member) => `process ${member} of group ${pgid}`));
      }
      groups.clear();
      return left;
    },
  });
});
