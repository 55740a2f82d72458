import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeExecutorConformance } from "../executor-conformance.js";
import type { ExecutorFactory } from "../executor.js";
import type { LxdClient } from "./lxd-client.js";
import { createLxdExecutor, lxdContainerPrefix } from "./lxd-executor.js";
import { lxdInstancesWithPrefix, requireLxd, TEST_LXD_IMAGE } from "./require-lxd.js";

describe("lxd executor (real LXD)", function () {
  let client: LxdClient;
  let root: string;
  const agentLabel = `conformance-${process.pid}`;

  before(async function () {
    const c = await requireLxd(Boolean(process.env.CI));
    if (!c) this.skip();
    client = c;
  });

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "mottainai-lxd-conformance-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const factory: ExecutorFactory = (kind, input) =>
    kind === "lxd" ? createLxdExecutor(input, { client, agentLabel }) : undefined;

  describeExecutorConformance("lxd", {
    factory,
    workspaceRoot: () => join(root, "work"),
    taskType: "lxd",
    image: TEST_LXD_IMAGE,
    async leaks(): Promise<string[]> {
      const left: string[] = [];
      const work = join(root, "work");
      for (const name of existsSync(work) ? readdirSync(work) : []) left.push(join(work, name));
      left.push(...(await lxdInstancesWithPrefix(client, lxdContainerPrefix(agentLabel))).map((n) => `container ${n}`));
      return left;
    },
  });
});
