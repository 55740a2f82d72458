import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { NodeService, TaskService, TaskStatus } from "@mottainai/proto";
import { adminClient, cleanupAll, cli, ROOT, startCluster, waitFor, type Cluster, type ServerProc } from "./harness.js";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = mkdtempSync(join(tmpdir(), "mottainai-screenshots-"));
const DOC_SHOTS = join(ROOT, "docs", "screenshots");

/** The dashboard in Debian's chromium against a real server and agent (host executor). */
describe("web dashboard (server + agent + chromium)", function () {
  this.timeout(180_000);
  let server: ServerProc;
  let env: Record<string, string>;
  let file: Cluster["file"];
  let browser: Browser | undefined;
  let page: Page;

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI) throw new Error(`${CHROMIUM} is missing: scripts/ci/install-packages.sh installs Debian's chromium`);
      (process as NodeJS.EventEmitter).emit(
        "mottainai:test-skip",
        "chromium",
        `${CHROMIUM} is missing (apt-get install chromium)`,
      );
      this.skip();
    }
    ({ server, env, file } = await startCluster("web-agent"));
    browser = await chromium.launch({ executablePath: CHROMIUM });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  });
  after(async () => {
    await browser?.close();
    await cleanupAll();
  });

  const shot = async (name: string) => {
    const path = join(SHOTS, `${name}.png`);
    await page.screenshot({ path });
    mkdirSync(DOC_SHOTS, { recursive: true });
    copyFileSync(path, join(DOC_SHOTS, `${name}.png`));
  };

  const createTask = async (name: string, yaml: string): Promise<string> => {
    const r = await cli(["task", "create", "-f", file(name, yaml)], env);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.toString().trim();
  };

  it("serves the app with cache headers and an SPA fallback, leaving /healthz, /metrics and RPCs alone", async () => {
    const index = await fetch(`${server.url}/`);
    assert.equal(index.status, 200);
    assert.equal(index.headers.get("cache-control"), "no-cache");
    const html = await index.text();
    const asset = html.match(/src="(\/assets\/[^"]+\.js)"/)?.[1];
    assert.ok(asset, html);
    const js = await fetch(`${server.url}${asset}`);
    assert.equal(js.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
    const deep = await fetch(`${server.url}/tasks/0123456789abcdef`);
    assert.equal(deep.status, 200);
    assert.equal(await deep.text(), html);
    assert.deepEqual(await (await fetch(`${server.url}/healthz`)).json(), { status: "ok" });
    assert.equal((await fetch(`${server.url}/metrics`)).status, 200);
    const rpc = await fetch(`${server.url}/mottainai.v1.TaskService/ListTasks`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(rpc.status, 401);
  });

  it("signs in with a token, shows a task's status change and its log live", async () => {
    await page.goto(server.url);
    await page.fill('input[name="token"]', server.adminToken);
    await page.click('button[type="submit"]');
    await page.waitForSelector('[data-testid="who"]:has-text("admin")');
    const id = await createTask(
      "live.yaml",
      "name: live\ntype: host\nscript:\n  - printf '\\033[31mred\\033[0m line\\n'; sleep 2; echo second line\n",
    );
    await page.waitForSelector(`tr[data-task="${id}"]`);
    await shot("tasks");
    await page.click(`a[href="/tasks/${id}"]`);
    await page.waitForSelector('[data-testid="log"] :text("red line")');
    const red = await page
      .locator('[data-testid="log"] span', { hasText: "red" })
      .first()
      .evaluate((e) => e.ownerDocument.defaultView!.getComputedStyle(e).color);
    assert.equal(red, "rgb(204, 51, 51)");
    assert.equal(await page.textContent('[data-testid="task-status"]'), "running");
    await page.waitForSelector('[data-testid="log"] :text("second line")');
    await page.waitForSelector('[data-testid="task-status"]:has-text("done")');
    assert.equal(await page.textContent('[data-testid="task-result"]'), "success");
    await shot("task");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click('button:has-text("download raw")')]);
    assert.equal(download.suggestedFilename(), `${id}.log`);
    assert.equal(readFileSync((await download.path())!, "utf8"), "\x1b[31mred\x1b[0m line\nsecond line\n");
  });

  it("drains and resumes a node", async () => {
    await page.click('a[href="/nodes"]');
    const row = page.locator('tr[data-node="web-agent"]');
    await row.locator("button", { hasText: "drain" }).click();
    await row.locator('[data-testid="node-state"]', { hasText: "(draining)" }).waitFor();
    const { nodes } = await adminClient(server, NodeService).listNodes({});
    assert.equal(nodes.find((n) => n.name === "web-agent")?.draining, true);
    await shot("nodes");
    await row.locator("button", { hasText: "resume" }).click();
    await row.locator("button", { hasText: "drain" }).waitFor();
  });

  it("opens a 1,000,000-line log and scrolls to its end with the JS heap under 200 MB", async () => {
    const id = await createTask("big.yaml", "name: big\ntype: host\nscript:\n  - seq 1 1000000\n");
    const tasks = adminClient(server, TaskService);
    await waitFor(
      async () => (await tasks.getTask({ id })).task?.status === TaskStatus.DONE,
      120_000,
      () => "big task did not end",
    );
    await page.goto(`${server.url}/tasks/${id}`);
    await page.waitForSelector('[data-testid="log-lines"]:has-text("1000001 lines")', { timeout: 120_000 });
    await page.click('button:has-text("jump to end")');
    await page.waitForSelector('[data-testid="log"] :text-is("1000000")');
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Performance.enable");
    const { metrics } = await cdp.send("Performance.getMetrics");
    const heap = metrics.find((m) => m.name === "JSHeapUsedSize")?.value ?? Infinity;
    console.log(`    JS heap with a 1,000,000-line log: ${(heap / 1024 ** 2).toFixed(1)} MiB`);
    assert.ok(heap < 200 * 1024 ** 2, `heap ${heap} bytes`);
    const rendered = await page.locator('[data-testid="log"] .line').count();
    assert.ok(rendered < 200, `${rendered} lines rendered`);
  });

  const ok = async (args: string[]) => {
    const r = await cli(args, env);
    assert.equal(r.code, 0, r.stderr);
  };

  it("rolls a namespace back to an older revision after a confirmation", async () => {
    await ok(["namespace", "create", "repo", "--visibility", "public"]);
    await ok(["namespace", "create", "secret-repo"]);
    await ok(["namespace", "upload", "repo", file("a.txt", "one")]);
    await ok(["namespace", "upload", "repo", file("a.txt", "two")]);
    await page.click('a[href="/ns"]');
    await page.click('a[href="/ns/repo"]');
    await page.waitForSelector('[data-testid="tags"]:has-text("latest→2")');
    await shot("namespace");
    const dialogs: string[] = [];
    page.once("dialog", (d) => (dialogs.push(d.message()), void d.accept()));
    await page.click('tr[data-revision="1"] button:has-text("make latest")');
    await page.waitForSelector('[data-testid="tags"]:has-text("latest→1")');
    assert.deepEqual(dialogs, ['Move tag "latest" of repo to revision 1?']);
  });

  it("tails events live", async () => {
    await page.click('a[href="/events"]');
    await page.waitForSelector('tr[data-event="task.finished"]');
    const id = await createTask("tail.yaml", "name: tail\ntype: host\nscript:\n  - true\n");
    await page.waitForSelector(`tr[data-event="task.created"] td:text-is("${id}")`);
    await shot("events");
  });

  it("fits a phone's width: no page-wide horizontal scrolling (tables scroll inside)", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const path of ["/tasks", "/nodes", "/ns", "/ns/repo", "/events"]) {
      await page.goto(`${server.url}${path}`);
      await page.waitForSelector("main h1", { timeout: 5000 }).catch(async (e: Error) => {
        throw new Error(`${path}: ${e.message}\n${(await page.content()).slice(0, 1500)}`);
      });
      assert.ok(((await page.evaluate("document.documentElement.scrollWidth")) as number) <= 390, path);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("signs out: the token leaves session storage; anonymous visitors see public namespaces only", async () => {
    await page.click('button:has-text("sign out")');
    await page.waitForSelector('input[name="token"]');
    assert.equal(await page.evaluate("sessionStorage.getItem('mottainai.token')"), null);
    await page.click('a[href="/ns"]');
    await page.waitForSelector('tr[data-namespace="repo"]');
    assert.equal(await page.locator('tr[data-namespace="secret-repo"]').count(), 0);
  });
});
