import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { cleanupAll, cli, startServer, tempDir, waitFor, type ServerProc } from "./harness.js";

const run = promisify(execFile);

/** The rsync daemon scripts/ci/start-rsyncd.sh starts. */
const RSYNC_DAEMON = "rsync://127.0.0.1:8873";

/** Every regular file under dir (".git" excluded) as path → content. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (relative: string) => {
    for (const name of readdirSync(join(dir, relative)).sort()) {
      const path = relative ? `${relative}/${name}` : name;
      if (statSync(join(dir, path)).isDirectory()) {
        if (path !== ".git") walk(path);
      } else out[path] = readFileSync(join(dir, path), "utf8");
    }
  };
  walk("");
  return out;
}

interface DeliveryJson {
  id: string;
  publisherId: string;
  revision: string;
  state: string;
  attempts?: number;
  error?: string;
}

// A real server process and the CLI: a namespace with an rsync and a git publisher; each upload
// moves the tag and is delivered; a delivery to a broken target is retried with backoff, survives
// a server restart as pending, and succeeds once the target is fixed.
describe("namespace delivery end to end", function () {
  this.timeout(120_000);
  let server: ServerProc;
  let dataDir: string;
  let dir: string;
  let env: Record<string, string>;
  const args = ["--delivery-backoff", "300ms", "--delivery-attempts", "20"];

  before(async () => {
    dataDir = tempDir("delivery-server");
    server = await startServer({ dataDir, args });
    dir = tempDir("delivery-files");
    env = { MOTTAINAI_SERVER: server.url, MOTTAINAI_TOKEN: server.adminToken, XDG_CONFIG_HOME: tempDir("config") };
  });
  after(cleanupAll);

  const ok = async (argv: string[]): Promise<string> => {
    const r = await cli(argv, env);
    assert.equal(r.code, 0, `mottainai ${argv.join(" ")}: ${r.stderr}`);
    return r.stdout.toString();
  };

  const deliveries = async (publisherId: string): Promise<DeliveryJson[]> =>
    JSON.parse(await ok(["namespace", "deliveries", "site", "--publisher", publisherId, "--json"])) as DeliveryJson[];

  const newest = (publisherId: string, check: (d: DeliveryJson) => boolean, what: string) =>
    waitFor(
      async () => {
        const [d] = await deliveries(publisherId);
        return d && check(d) ? d : undefined;
      },
      60_000,
      () => `${what}:\n${server.output.slice(-30).join("\n")}`,
    );

  it("delivers every tag move through rsync and git, retries a broken target across a restart", async () => {
    await ok(["namespace", "create", "site", "--visibility", "public"]);
    const blocker = join(dir, "blocker");
    writeFileSync(blocker, "a file where the mirror's parent directory should be");
    const mirror = join(blocker, "mirror");
    const rsyncId = (await ok(["namespace", "publisher", "add", "site", "rsync", mirror])).trim();
    const bare = join(dir, "site.git");
    await run("git", ["init", "-q", "--bare", bare]);
    const gitId = (await ok(["namespace", "publisher", "add", "site", "git", bare, "--branch", "pages"])).trim();
    const listed = JSON.parse(await ok(["namespace", "publisher", "list", "site", "--json"])) as { id: string; kind: string }[];
    assert.deepEqual(
      listed.map((p) => [p.id, p.kind]).sort(),
      [
        [rsyncId, "PUBLISHER_KIND_RSYNC"],
        [gitId, "PUBLISHER_KIND_GIT"],
      ].sort(),
    );

    const site = join(dir, "site");
    mkdirSync(join(site, "css"), { recursive: true });
    writeFileSync(join(site, "index.html"), "<h1>hello</h1>\n");
    writeFileSync(join(site, "css", "site.css"), "h1 { color: green }\n");
    await ok(["namespace", "upload", "site", site]);
    const expected = { "css/site.css": "h1 { color: green }\n", "index.html": "<h1>hello</h1>\n" };

    const pushed = await newest(gitId, (d) => d.state === "DELIVERY_STATE_SUCCEEDED", "the git delivery");
    const clone = join(dir, "clone");
    await run("git", ["clone", "-q", "--branch", "pages", bare, clone]);
    assert.deepEqual(tree(clone), expected);
    const { stdout: subject } = await run("git", ["log", "-1", "--format=%s|%an <%ae>"], { cwd: clone });
    assert.equal(subject.trim(), `site: revision ${pushed.revision}|Mottainai <mottainai@localhost>`);

    const retrying = await newest(
      rsyncId,
      (d) => d.state === "DELIVERY_STATE_PENDING" && (d.attempts ?? 0) >= 2,
      "the rsync delivery to be retried",
    );
    assert.match(retrying.error ?? "", /^rsync exited with code \d+: /);

    // Restart with the delivery still pending; the fixed target then gets it without any retry.
    await server.stop();
    rmSync(blocker);
    server = await startServer({ dataDir, args });
    env.MOTTAINAI_SERVER = server.url;
    const delivered = await newest(
      rsyncId,
      (d) => d.state === "DELIVERY_STATE_SUCCEEDED",
      "the rsync delivery after the restart",
    );
    assert.equal(delivered.id, retrying.id);
    assert.deepEqual(tree(mirror), expected);

    // A removal is delivered as a removal.
    await ok(["namespace", "remove", "site", "css/site.css"]);
    await newest(rsyncId, (d) => d.state === "DELIVERY_STATE_SUCCEEDED" && d.id !== delivered.id, "the removal's delivery");
    assert.deepEqual(tree(mirror), { "index.html": "<h1>hello</h1>\n" });
    const table = await ok(["namespace", "deliveries", "site"]);
    assert.match(table, /ID\s+PUBLISHER\s+REVISION\s+TAG\s+STATE/);
    assert.match(table, /succeeded/);
  });

  it("delivers to an rsync daemon module", async function () {
    let listing = "";
    try {
      listing = (await run("rsync", ["--contimeout=5", `${RSYNC_DAEMON}/`])).stdout;
    } catch {
      // handled below
    }
    if (!/^mottainai\b/m.test(listing)) {
      if (process.env.CI)
        throw new Error(`no rsync daemon lists the module mottainai on ${RSYNC_DAEMON} (run scripts/ci/start-rsyncd.sh)`);
      (process as NodeJS.EventEmitter).emit(
        "mottainai:test-skip",
        "rsync daemon",
        `no rsync daemon lists the module mottainai on ${RSYNC_DAEMON} (run scripts/ci/start-rsyncd.sh)`,
      );
      this.skip();
    }
    const target = `${RSYNC_DAEMON}/mottainai/e2e-${process.pid}-${Date.now()}`;
    const id = (await ok(["namespace", "publisher", "add", "site", "rsync", target])).trim();
    await newest(id, (d) => d.state === "DELIVERY_STATE_SUCCEEDED", "the daemon delivery");
    const fetched = join(dir, "fetched");
    await run("rsync", ["-a", `${target}/`, `${fetched}/`]);
    assert.deepEqual(tree(fetched), { "index.html": "<h1>hello</h1>\n" });
    await ok(["namespace", "publisher", "remove", id]);
  });
});
