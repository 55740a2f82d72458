import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { agentLabelFor } from "@mottainai/agent";
import { cleanupAll, cli, registrationToken, startAgent, startServer, tempDir, type ServerProc } from "./harness.js";

const IMAGE_DIR = "/var/lib/mottainai-test/libvirt-images";
const IMAGE = "busybox";
const URI = "qemu:///system";

/** Whether libvirtd answers and the test image exists; in CI their absence fails the suite. */
function libvirtReady(): boolean {
  try {
    execFileSync("virsh", ["-c", URI, "version"], { stdio: "ignore", timeout: 30_000 });
    if (!existsSync(join(IMAGE_DIR, IMAGE, "kernel"))) throw new Error(`${IMAGE_DIR}/${IMAGE} is missing`);
    return true;
  } catch (err) {
    if (process.env.CI) {
      throw new Error(
        `libvirt e2e cannot run in CI (scripts/ci/start-libvirtd.sh, scripts/ci/build-libvirt-image.sh): ${(err as Error).message}`,
      );
    }
    (process as NodeJS.EventEmitter).emit(
      "mottainai:test-skip",
      "libvirtd",
      `${(err as Error).message} (run scripts/ci/start-libvirtd.sh, scripts/ci/build-libvirt-image.sh)`,
    );
    return false;
  }
}

function domains(prefix: string): string[] {
  return execFileSync("virsh", ["-c", URI, "list", "--all", "--name"], { encoding: "utf8" })
    .split("\n")
    .filter((n) => n.startsWith(prefix));
}

/** End to end: an original libvirt_execute task file runs in a VM through a real agent. */
describe("libvirt task (server + agent --executor libvirt + CLI processes, real libvirtd)", function () {
  this.timeout(180_000);
  let server: ServerProc;
  let env: Record<string, string>;
  let dir: string;
  let prefix: string;

  before(async function () {
    if (!libvirtReady()) return this.skip();
    server = await startServer();
    const stateDir = tempDir("libvirt-agent");
    prefix = `mottainai-${agentLabelFor(stateDir)}-`;
    // A domain an earlier run of this agent left defined: the agent removes it when it starts.
    const leftover = join(tempDir("libvirt-leftover"), "domain.xml");
    writeFileSync(
      leftover,
      `<domain type='qemu'><name>${prefix}e2e-leftover-1</name><memory unit='MiB'>128</memory><os><type arch='x86_64'>hvm</type></os></domain>`,
    );
    execFileSync("virsh", ["-c", URI, "define", leftover], { stdio: "ignore" });
    await startAgent(server, {
      registrationToken: await registrationToken(server),
      name: "e2e-libvirt-agent",
      stateDir,
      args: ["--executor", "host", "--executor", "libvirt", "--libvirt-image-dir", IMAGE_DIR, "--libvirt-uri", URI],
    });
    dir = tempDir("libvirt-files");
    env = { MOTTAINAI_SERVER: server.url, MOTTAINAI_TOKEN: server.adminToken, XDG_CONFIG_HOME: tempDir("config") };
  });
  after(cleanupAll);

  it("removed, when the agent started, the domain an earlier run of it left behind", () => {
    assert.deepEqual(domains(prefix), []);
  });

  it("runs an original libvirt_execute task file in a VM: exact output, exit code, artefacts uploaded, nothing left", async () => {
    // In the original's format: a script list, K=V environment (CPU=/RAM= size the VM), artefact_path.
    const path = join(dir, "libvirt.yaml");
    writeFileSync(
      path,
      [
        'name: "Build in a VM"',
        "type: libvirt_execute",
        `image: ${IMAGE}`,
        "environment:",
        '  - "CPU=1"',
        '  - "RAM=256"',
        '  - "GREETING=hello=world"',
        "artefact_path: out",
        "script:",
        '  - echo "$GREETING from $MOTTAINAI_TASK_NAME on $(uname -s)"',
        "  - printf 'err\\n' >&2; printf 'no newline'",
        '  - mkdir -p "$MOTTAINAI_ARTEFACT_PATH/pkgs" && printf alpha > "$MOTTAINAI_ARTEFACT_PATH/pkgs/a.tbz2"',
        "",
      ].join("\n"),
    );
    const created = await cli(["task", "create", "-f", path], env);
    assert.equal(created.code, 0, created.stderr);
    const id = created.stdout.toString().trim();
    const log = await cli(["task", "log", id, "--follow"], env);
    assert.equal(log.code, 0, log.stderr);
    const shown = await cli(["task", "show", id, "--json"], env);
    const task = JSON.parse(shown.stdout.toString()) as Record<string, unknown>;
    assert.equal(task.result, "TASK_RESULT_SUCCESS", log.stdout.toString());
    assert.equal(task.exitCode, 0);
    assert.match(log.stdout.toString(), /^hello=world from Build in a VM on Linux\nerr\nno newline/);
    const artefacts = await cli(["task", "artefacts", id, "--json"], env);
    assert.equal(artefacts.code, 0, artefacts.stderr);
    const list = JSON.parse(artefacts.stdout.toString()) as { path: string; sha256: string }[];
    assert.deepEqual(
      list.map((a) => [a.path, a.sha256]),
      [["pkgs/a.tbz2", createHash("sha256").update("alpha").digest("hex")]],
    );
    assert.deepEqual(domains(prefix), []);
    assert.deepEqual(
      readdirSync("/var/log/libvirt/qemu").filter((n) => n.startsWith(prefix)),
      [],
    );
  });

  it("reports a failing script in a VM as failed with its exit code", async () => {
    const path = join(dir, "fail.yaml");
    writeFileSync(path, `name: fails\ntype: libvirt\nimage: ${IMAGE}\nscript:\n  - echo before\n  - exit 3\n  - echo never\n`);
    const created = await cli(["task", "create", "-f", path], env);
    assert.equal(created.code, 0, created.stderr);
    const id = created.stdout.toString().trim();
    const log = await cli(["task", "log", id, "--follow"], env);
    assert.equal(log.stdout.toString(), "before\n");
    const task = JSON.parse((await cli(["task", "show", id, "--json"], env)).stdout.toString()) as Record<string, unknown>;
    assert.equal(task.result, "TASK_RESULT_FAILED");
    assert.equal(task.exitCode, 3);
  });
});
