import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { TaskSpecSchema } from "@mottainai/proto";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import type { Executor, ExecutorInput, ExecutorResult } from "./executor.js";
import { removeLeftoverDomains } from "./libvirt-cleanup.js";
import { domainName, domainPrefix, taskDomainXml } from "./libvirt-domain-xml.js";
import { createLibvirtExecutor, guestRunScript, parseMemoryMiB, vmLimits, type LibvirtConnection } from "./libvirt-executor.js";
import { findLibvirtImage } from "./libvirt-images.js";
import { libvirtLeaks } from "./libvirt-test-support.js";
import { requireLibvirt, TEST_LIBVIRT_DISK_IMAGE, TEST_LIBVIRT_IMAGE, TEST_LIBVIRT_IMAGE_DIR } from "./require-libvirt.js";

const logger = pino({ level: "silent" });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("libvirt executor: settings and images", () => {
  const limits = { defaultCpus: 1, maxCpus: 4, defaultMemoryMiB: 512, maxMemoryMiB: 2048 };

  it("takes CPU= and RAM= from the task within the maximums, naming the variable otherwise", () => {
    assert.deepEqual(vmLimits([], limits), { vcpus: 1, memoryMiB: 512 });
    assert.deepEqual(vmLimits(["CPU=2", "RAM=1024"], limits), { vcpus: 2, memoryMiB: 1024 });
    assert.deepEqual(vmLimits(["RAM=1g", "CPU=1", "CPU=3"], limits), { vcpus: 3, memoryMiB: 1024 });
    assert.throws(() => vmLimits(["CPU=8"], limits), /^Error: CPU: 8 is above this agent's maximum of 4$/);
    assert.throws(() => vmLimits(["CPU=0.5"], limits), /^Error: CPU: expected a whole number of vCPUs/);
    assert.throws(() => vmLimits(["RAM=4g"], limits), /^Error: RAM: 4g is above this agent's maximum of 2048 MiB$/);
    assert.throws(() => vmLimits(["RAM=lots"], limits), /^Error: RAM: expected MiB or a size/);
    assert.throws(() => vmLimits(["RAM=64"], limits), /^Error: RAM: 64 is below the minimum of 128 MiB$/);
    assert.equal(parseMemoryMiB("1.5g"), 1536);
    assert.equal(parseMemoryMiB("2048KiB"), 2);
  });

  it("finds boot pairs and disks, and names `image` when one is missing or incomplete", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mottainai-libvirt-images-"));
    try {
      mkdirSync(join(dir, "pair"));
      writeFileSync(join(dir, "pair", "kernel"), "k");
      writeFileSync(join(dir, "pair", "initrd"), "i");
      writeFileSync(join(dir, "pair", "cmdline"), "  quiet\n loglevel=3\n");
      mkdirSync(join(dir, "disk"));
      writeFileSync(join(dir, "disk", "disk.raw"), "");
      mkdirSync(join(dir, "half"));
      writeFileSync(join(dir, "half", "kernel"), "k");
      mkdirSync(join(dir, "empty"));
      const pair = await findLibvirtImage(dir, "pair");
      assert.deepEqual(pair.boot, {
        kernel: join(dir, "pair/kernel"),
        initrd: join(dir, "pair/initrd"),
        cmdline: "quiet loglevel=3",
      });
      assert.equal(pair.disk, undefined);
      assert.deepEqual((await findLibvirtImage(dir, "disk")).disk, { file: join(dir, "disk/disk.raw"), format: "raw" });
      await assert.rejects(findLibvirtImage(dir, "nope"), /^Error: image: "nope" is not an image of this agent/);
      await assert.rejects(findLibvirtImage(dir, "../etc"), /^Error: image: "..\/etc" is not an image name/);
      await assert.rejects(findLibvirtImage(dir, ""), /^Error: image: a libvirt task needs an image/);
      await assert.rejects(findLibvirtImage(dir, "half"), /^Error: image: "half" has a kernel but no initrd/);
      await assert.rejects(findLibvirtImage(dir, "empty"), /^Error: image: "empty" has neither/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("describes a TCG domain that every ending destroys, with disks found by serial and no network", () => {
    const xml = taskDomainXml({
      name: domainName("label", "task/1", 2),
      agentLabel: "label",
      taskId: "task/1",
      attempt: 2,
      vcpus: 2,
      memoryMiB: 256,
      boot: { kernel: "/i/k", initrd: "/i/i", cmdline: "console=ttyS0 panic=-1" },
      rootDisk: { file: "/s/root.qcow2", format: "qcow2" },
      inputDisk: "/s/in.tar",
      outputDisk: "/s/out.raw",
      consoleSocket: "/r/c",
      serialSocket: "/r/s",
    });
    assert.match(xml, /^<domain type='qemu'>/);
    assert.match(xml, /<name>mottainai-label-task_1-2<\/name>/);
    for (const ending of ["on_poweroff", "on_reboot", "on_crash"])
      assert.match(xml, new RegExp(`<${ending}>destroy</${ending}>`));
    for (const serial of ["mottainai-in", "mottainai-out", "mottainai-root"])
      assert.match(xml, new RegExp(`<serial>${serial}</serial>`));
    assert.match(xml, /<target type='virtio' name='org.mottainai.output'\/>/);
    assert.doesNotMatch(xml, /<interface/);
    assert.match(xml, /<cmdline>console=ttyS0 panic=-1<\/cmdline>/);
  });

  it("writes a guest run script that sets exactly the task's environment, quoting every value", () => {
    const spec = create(TaskSpecSchema, { script: ["echo 'a'", "exit 3"] });
    const script = guestRunScript(spec, "/mottainai/workspace/it's", { A: "x=y 'z'\nw" });
    assert.match(script, /^cd '\/mottainai\/workspace\/it'\\''s' \|\| exit 1$/m);
    assert.match(script, /exec env -i 'A=x=y '\\''z'\\''\nw' \/bin\/sh -c /);
    assert.match(script, /'echo '\\''a'\\'' && exit 3'\n$/);
  });
});

describe("libvirt executor (real libvirtd)", function () {
  let connection: LibvirtConnection;
  let root: string;
  let socketDir: string;
  const agentLabel = `test-${process.pid}-${Date.now()}`;
  let seq = 0;
  let created: Executor[] = [];

  before(async function () {
    const c = await requireLibvirt(Boolean(process.env.CI));
    if (!c) this.skip();
    connection = c;
  });
  after(async () => {
    await connection?.close();
  });
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "mottainai-libvirt-test-"));
    socketDir = join(root, "run");
    created = [];
  });
  afterEach(async () => {
    for (const executor of created) await executor.destroy();
    const left = connection ? await libvirtLeaks(connection, domainPrefix(agentLabel), socketDir) : [];
    const work = join(root, "work");
    if (existsSync(work)) left.push(...readdirSync(work).map((n) => join(work, n)));
    rmSync(root, { recursive: true, force: true });
    assert.deepEqual(left, [], "nothing outlives its task");
  });

  interface Run {
    executor: Executor;
    output: Buffer[];
    taskId: string;
    text(): string;
  }

  function executor(
    init: MessageInitShape<typeof TaskSpecSchema>,
    extra: Partial<ExecutorInput> = {},
    options: { imageDir?: string; bootTimeoutMs?: number; maxCpus?: number; maxMemoryMiB?: number } = {},
  ): Run {
    const taskId = `t${++seq}`;
    const output: Buffer[] = [];
    const spec = create(TaskSpecSchema, {
      type: "libvirt_execute",
      image: TEST_LIBVIRT_IMAGE,
      artefactPath: "artefacts",
      storagePath: "storage",
      ...init,
    });
    const e = createLibvirtExecutor(
      {
        taskId,
        attempt: 1,
        spec,
        environment: { MOTTAINAI_TASK_ID: taskId },
        workspaceRoot: join(root, "work"),
        onOutput: (c) => output.push(Buffer.from(c)),
        logger,
        ...extra,
      },
      { connection, agentLabel, imageDir: options.imageDir ?? TEST_LIBVIRT_IMAGE_DIR, socketDir, ...options },
    );
    created.push(e);
    return { executor: e, output, taskId, text: () => Buffer.concat(output).toString() };
  }

  async function runToEnd(run: Run): Promise<ExecutorResult> {
    await run.executor.prepare();
    await run.executor.start();
    return run.executor.wait();
  }

  function qemuRunning(name: string): boolean {
    try {
      return execFileSync("pgrep", ["-f", `guest=${name},`], { encoding: "utf8" }).trim() !== "";
    } catch {
      return false;
    }
  }

  async function isRunning(name: string): Promise<boolean> {
    const h = await connection.hypervisor();
    try {
      const info = await (await h.domainLookupByName(name)).getInfo();
      return info.state === 1;
    } catch {
      return false;
    }
  }

  it("rejects a missing image and limits above the maximums before anything runs", async () => {
    await assert.rejects(
      executor({ image: "no-such-image", script: ["true"] }).executor.prepare(),
      /^Error: image: "no-such-image"/,
    );
    await assert.rejects(
      executor({ script: ["true"], environment: ["CPU=3"] }, {}, { maxCpus: 2 }).executor.prepare(),
      /^Error: CPU: 3 is above this agent's maximum of 2$/,
    );
    await assert.rejects(
      executor({ script: ["true"], environment: ["RAM=1g"] }, {}, { maxMemoryMiB: 512 }).executor.prepare(),
      /^Error: RAM: 1g is above this agent's maximum of 512 MiB$/,
    );
  });

  it("gives the VM the task's CPU= and RAM=, and brings back staged inputs with new artefacts", async function () {
    this.timeout(120_000);
    const run = executor(
      {
        environment: ["CPU=2", "RAM=300"],
        script: [
          "grep -c ^processor /proc/cpuinfo",
          'awk \'/MemTotal/ { print ($2 > 200000 && $2 < 307200) ? "ram ok" : "ram " $2 }\' /proc/meminfo',
          'cat "$MOTTAINAI_ARTEFACT_PATH/input.txt" "$MOTTAINAI_STORAGE_PATH/s.txt"',
          'mkdir -p "$MOTTAINAI_ARTEFACT_PATH/new" && echo made > "$MOTTAINAI_ARTEFACT_PATH/new/out.txt"',
        ],
      },
      {
        stageInputs: async (dirs) => {
          writeFileSync(join(dirs.artefactDir, "input.txt"), "from root task\n");
          writeFileSync(join(dirs.storageDir, "s.txt"), "from storage\n");
        },
      },
    );
    const result = await runToEnd(run);
    assert.deepEqual(result, { exitCode: 0 }, run.text());
    assert.equal(run.text(), "2\nram ok\nfrom root task\nfrom storage\n");
    const { artefactDir } = await run.executor.collect();
    assert.ok(artefactDir);
    assert.equal(readFileSync(join(artefactDir, "input.txt"), "utf8"), "from root task\n");
    assert.equal(readFileSync(join(artefactDir, "new", "out.txt"), "utf8"), "made\n");
  });

  it("reports a guest that panics as an error with the kernel's reason, in the result and the output", async function () {
    this.timeout(120_000);
    const run = executor({ script: ["echo before", "echo c > /proc/sysrq-trigger", "echo never"] });
    const result = await runToEnd(run);
    assert.equal(result.exitCode, null);
    assert.match(
      result.error ?? "",
      /^the VM ended before the task reported an exit code .*Kernel panic - not syncing: sysrq triggered crash$/,
    );
    assert.match(run.text(), /^before\n\n\[mottainai\] the VM ended before the task reported an exit code .*Kernel panic/);
    assert.doesNotMatch(run.text(), /never/);
  });

  it("reports a VM that never starts the task (an initrd without the runner) as an error with the reason", async function () {
    this.timeout(120_000);
    const images = join(root, "images");
    mkdirSync(join(images, "broken"), { recursive: true });
    copyFileSync(join(TEST_LIBVIRT_IMAGE_DIR, TEST_LIBVIRT_IMAGE, "kernel"), join(images, "broken", "kernel"));
    writeFileSync(join(images, "broken", "initrd"), "not an initramfs");
    const run = executor({ image: "broken", script: ["echo never"] }, {}, { imageDir: images });
    const result = await runToEnd(run);
    assert.equal(result.exitCode, null);
    assert.match(result.error ?? "", /^the VM ended before the guest started the task: .*Kernel panic/);
  });

  it("ends the run when the script exits, killing what it left running in the background", async function () {
    this.timeout(120_000);
    const began = Date.now();
    const run = executor({ script: ["(sleep 60; echo late) & echo main", "exit 5"] });
    const result = await runToEnd(run);
    assert.deepEqual(result, { exitCode: 5 });
    assert.equal(run.text(), "main\n");
    assert.ok(Date.now() - began < 50_000, "the background sleep did not hold the run");
  });

  it("destroys a guest that does not start the task within the boot timeout, as an error", async function () {
    this.timeout(120_000);
    const run = executor({ script: ["echo too late"] }, {}, { bootTimeoutMs: 300 });
    const result = await runToEnd(run);
    assert.equal(result.exitCode, null);
    assert.match(result.error ?? "", /^the guest did not start the task within 0.3s/);
    assert.doesNotMatch(run.text(), /too late/);
  });

  it("destroys the domain within 2 s of a cancel, and leaves nothing behind", async function () {
    this.timeout(120_000);
    const run = executor({ script: ["echo started", "sleep 60"] });
    await run.executor.prepare();
    await run.executor.start();
    const name = domainName(agentLabel, run.taskId, 1);
    for (const deadline = Date.now() + 60_000; run.text() === "" && Date.now() < deadline;) await sleep(20);
    assert.equal(run.text(), "started\n");
    assert.equal(await isRunning(name), true);
    const began = Date.now();
    run.executor.cancel(10_000);
    while (qemuRunning(name) && Date.now() - began < 10_000) await sleep(10);
    const vmMs = Date.now() - began;
    while ((await isRunning(name)) && Date.now() - began < 10_000) await sleep(20);
    const domainMs = Date.now() - began;
    assert.ok(vmMs < 2000, `the VM (its qemu) ran ${vmMs} ms after cancel`);
    // libvirtd's own bookkeeping of the killed qemu lags behind on a loaded machine.
    assert.ok(
      domainMs < 5000,
      `libvirt listed the domain as running ${domainMs} ms after cancel (the VM ended after ${vmMs} ms)`,
    );
    assert.deepEqual(await run.executor.wait(), { exitCode: null, signal: "SIGKILL" });
    await run.executor.destroy();
  });

  it("runs a disk image on a per-task overlay that is gone afterwards, the base unchanged", async function () {
    this.timeout(120_000);
    const base = join(TEST_LIBVIRT_IMAGE_DIR, TEST_LIBVIRT_DISK_IMAGE, "disk.qcow2");
    const digest = (): string => createHash("sha256").update(readFileSync(base)).digest("hex");
    const before = digest();
    const run = executor({
      image: TEST_LIBVIRT_DISK_IMAGE,
      script: [
        "cat /etc/mottainai-image",
        "echo scribble > /etc/mottainai-image",
        "rm -rf /bin/sh.old; cat /etc/mottainai-image",
      ],
    });
    const result = await runToEnd(run);
    assert.deepEqual(result, { exitCode: 0 }, run.text());
    assert.equal(run.text(), "mottainai-test busybox-disk\nscribble\n");
    const scratch = join(root, "work", `${run.taskId}-1.vm`);
    assert.ok(existsSync(join(scratch, "root.qcow2")), "the overlay exists while the executor does");
    await run.executor.destroy();
    assert.equal(existsSync(scratch), false, "overlay and scratch disks are removed");
    assert.equal(digest(), before, "the base disk is never written");
  });

  it("runs two VMs at once", async function () {
    this.timeout(120_000);
    const runs = [
      executor({ script: ["echo one; sleep 3; echo one done"] }),
      executor({ script: ["echo two; sleep 3; echo two done"] }),
    ];
    await Promise.all(runs.map((r) => r.executor.prepare()));
    await Promise.all(runs.map((r) => r.executor.start()));
    const names = runs.map((r) => domainName(agentLabel, r.taskId, 1));
    let together = false;
    const results = Promise.all(runs.map((r) => r.executor.wait()));
    for (let i = 0; i < 600 && !together; i++) {
      together =
        (await isRunning(names[0] as string)) && (await isRunning(names[1] as string)) && runs.every((r) => r.text() !== "");
      if (!together) await sleep(50);
    }
    assert.ok(together, "both guests ran their scripts at the same time");
    assert.deepEqual(await results, [{ exitCode: 0 }, { exitCode: 0 }]);
    assert.equal(runs[0]?.text(), "one\none done\n");
    assert.equal(runs[1]?.text(), "two\ntwo done\n");
  });

  it("removes, at agent start, the domains and sockets an earlier run of the agent left behind", async function () {
    this.timeout(120_000);
    const run = executor({ script: ["sleep 60"] });
    await run.executor.prepare();
    await run.executor.start();
    const name = domainName(agentLabel, run.taskId, 1);
    assert.equal(await isRunning(name), true);
    // The agent died here without destroy(); the next one cleans up before it accepts work.
    const removed = await removeLeftoverDomains(connection, agentLabel, { socketDir });
    assert.deepEqual(removed, [name]);
    assert.equal(await isRunning(name), false);
    assert.deepEqual(readdirSync(socketDir), []);
    assert.deepEqual(await libvirtLeaks(connection, domainPrefix(agentLabel)), []);
    const result = await run.executor.wait();
    assert.equal(result.exitCode, null);
  });
});
