import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeExecutorConformance } from "./executor-conformance.js";
import type { ExecutorFactory } from "./executor.js";
import { domainPrefix } from "./libvirt-domain-xml.js";
import { createLibvirtExecutor, type LibvirtConnection } from "./libvirt-executor.js";
import { libvirtLeaks } from "./libvirt-test-support.js";
import { requireLibvirt, TEST_LIBVIRT_IMAGE, TEST_LIBVIRT_IMAGE_DIR } from "./require-libvirt.js";

describe("libvirt executor (real libvirtd)", function () {
  let connection: LibvirtConnection;
  let root: string;
  const agentLabel = `conformance-${process.pid}-${Date.now()}`;
  const socketDir = join(tmpdir(), `mottainai-lv-${process.pid}`);

  before(async function () {
    const c = await requireLibvirt(Boolean(process.env.CI));
    if (!c) this.skip();
    connection = c;
  });
  after(async () => {
    await connection?.close();
    rmSync(socketDir, { recursive: true, force: true });
  });

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "mottainai-libvirt-conformance-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const factory: ExecutorFactory = (kind, input) =>
    kind === "libvirt"
      ? createLibvirtExecutor(input, { connection, agentLabel, imageDir: TEST_LIBVIRT_IMAGE_DIR, socketDir })
      : undefined;

  describeExecutorConformance("libvirt", {
    factory,
    workspaceRoot: () => join(root, "work"),
    taskType: "libvirt_execute",
    image: TEST_LIBVIRT_IMAGE,
    timeoutScale: 3,
    async leaks(): Promise<string[]> {
      const left: string[] = [];
      const work = join(root, "work");
      for (const name of existsSync(work) ? readdirSync(work) : []) left.push(join(work, name));
      left.push(...(await libvirtLeaks(connection, domainPrefix(agentLabel), socketDir)));
      return left;
    },
  });
});
