import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Docker from "dockerode";
import { AGENT_LABEL, createDockerExecutor } from "./docker-executor.js";
import { describeExecutorConformance } from "./executor-conformance.js";
import type { ExecutorFactory } from "./executor.js";
import { requireDocker, TEST_IMAGE } from "./require-docker.js";

describe("docker executor (real dockerd)", function () {
  let docker: Docker;
  let root: string;
  const agentLabel = `conformance-${process.pid}-${Date.now()}`;

  before(async function () {
    const d = await requireDocker(Boolean(process.env.CI), process.env.DOCKER_HOST);
    if (!d) this.skip();
    docker = d;
  });

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "mottainai-docker-conformance-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const factory: ExecutorFactory = (kind, input) =>
    kind === "docker" ? createDockerExecutor(input, { docker, agentLabel }) : undefined;

  describeExecutorConformance("docker", {
    factory,
    workspaceRoot: () => join(root, "work"),
    taskType: "docker_execute",
    image: TEST_IMAGE,
    async leaks(): Promise<string[]> {
      const left: string[] = [];
      const work = join(root, "work");
      for (const name of existsSync(work) ? readdirSync(work) : []) left.push(join(work, name));
      const containers = await docker.listContainers({ all: true, filters: { label: [`${AGENT_LABEL}=${agentLabel}`] } });
      left.push(...containers.map((c) => `container ${c.Id} (${c.State})`));
      return left;
    },
  });
});
