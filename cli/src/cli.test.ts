import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseTaskFile } from "@mottainai/proto";
import { runCliCaptured } from "./run-cli-captured.js";

/** A TCP port on 127.0.0.1 that nothing listens on (bound once, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("mottainai (in-process)", () => {
  let home: string;
  let configDir: string;
  const run = (args: string[], stdin?: string) => runCliCaptured(args, { settings: { configDir }, stdin });

  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), "mottainai-cli-"));
    configDir = join(home, "mottainai");
  });

  afterEach(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it("creates, lists, switches and removes profiles without ever printing a token", async () => {
    let result = await run(["profile", "create", "local", "--server", "http://127.0.0.1:9090", "--token", "s3cret-token"]);
    assert.deepEqual([result.exitCode, result.stdout.toString(), result.stderr], [0, "", ""]);
    result = await run(["profile", "create", "prod", "--server", "https://ci.example.org"]);
    assert.equal(result.exitCode, 0);

    result = await run(["profile", "list"]);
    assert.equal(result.exitCode, 0);
    assert.equal(
      result.stdout.toString(),
      [
        "CURRENT  NAME   SERVER                  TOKEN",
        "*        local  http://127.0.0.1:9090   set",
        "         prod   https://ci.example.org  -",
        "",
      ].join("\n"),
    );

    result = await run(["profile", "use", "prod"]);
    assert.deepEqual([result.exitCode, result.stdout.toString()], [0, ""]);
    result = await run(["profile", "list", "--json"]);
    assert.deepEqual(JSON.parse(result.stdout.toString()), [
      { name: "local", server: "http://127.0.0.1:9090", current: false, hasToken: true },
      { name: "prod", server: "https://ci.example.org", current: true, hasToken: false },
    ]);
    assert.doesNotMatch(result.stdout.toString(), /s3cret/);

    result = await run(["profile", "remove", "local"]);
    assert.deepEqual([result.exitCode, result.stdout.toString()], [0, ""]);
    assert.doesNotMatch(await readFile(join(configDir, "profiles.yaml"), "utf8"), /s3cret|local/);
    result = await run(["profile", "list"]);
    assert.equal(
      result.stdout.toString(),
      "CURRENT  NAME  SERVER                  TOKEN\n*        prod  https://ci.example.org  -\n",
    );
  });

  it("accepts the original's positional form profile create NAME URL [KEY]", async () => {
    let result = await run(["profile", "create", "local", "http://127.0.0.1:9090", "s3cret-key"]);
    assert.deepEqual([result.exitCode, result.stdout.toString(), result.stderr], [0, "", ""]);
    result = await run(["profile", "create", "bare", "https://ci.example.org", "--use"]);
    assert.deepEqual([result.exitCode, result.stderr], [0, ""]);
    result = await run(["profile", "create", "same", "http://s:1", "--server", "http://s:1"]);
    assert.deepEqual([result.exitCode, result.stderr], [0, ""]);
    result = await run(["profile", "list"]);
    assert.equal(
      result.stdout.toString(),
      [
        "CURRENT  NAME   SERVER                  TOKEN",
        "*        bare   https://ci.example.org  -",
        "         local  http://127.0.0.1:9090   set",
        "         same   http://s:1              -",
        "",
      ].join("\n"),
    );
    result = await run(["profile", "create", "twice", "http://a:1", "--server", "http://b:1"]);
    assert.deepEqual([result.exitCode, result.stderr], [2, "mottainai: give URL or --server, not both\n"]);
    result = await run(["profile", "create", "twice", "http://a:1", "k1", "--token", "k2"]);
    assert.deepEqual([result.exitCode, result.stderr], [2, "mottainai: give KEY or --token, not both\n"]);
    result = await run(["profile", "create", "nourl"]);
    assert.deepEqual([result.exitCode, result.stderr], [2, "mottainai: profile create needs --server URL\n"]);
  });

  it("makes --use the current profile and reports profile errors on one line with exit 1", async () => {
    await run(["profile", "create", "a", "--server", "http://a:1"]);
    await run(["profile", "create", "b", "--server", "http://b:1", "--use"]);
    assert.match((await run(["profile", "list"])).stdout.toString(), /^\*\s+b /m);

    let result = await run(["profile", "create", "a", "--server", "http://a:2"]);
    assert.deepEqual([result.exitCode, result.stderr], [1, 'mottainai: profile "a" already exists\n']);
    result = await run(["profile", "use", "nope"]);
    assert.deepEqual([result.exitCode, result.stderr], [1, 'mottainai: profile "nope" not found\n']);
    result = await run(["profile", "remove", "nope"]);
    assert.deepEqual([result.exitCode, result.stderr], [1, 'mottainai: profile "nope" not found\n']);
  });

  it("exits 2 with the usage on stderr for a command line that does not parse", async () => {
    let result = await run(["profile", "create", "a"]);
    assert.deepEqual([result.exitCode, result.stderr], [2, "mottainai: profile create needs --server URL\n"]);

    result = await run(["task", "show"]);
    assert.equal(result.exitCode, 2);
    assert.match(result.stderr, /^mottainai: Not enough positional arguments\.\nusage:\n {2}mottainai task show .*<ID>\n$/);
    assert.equal(result.stdout.length, 0);

    result = await run(["task", "list", "--limit", "many"]);
    assert.deepEqual(
      [result.exitCode, result.stderr],
      [2, 'mottainai: Invalid value for --limit: expected a number (got "many")\n'],
    );

    result = await run(["task", "list", "--status", "running,sleeping"]);
    assert.equal(result.exitCode, 2);
    assert.equal(
      result.stderr,
      'mottainai: invalid --status "sleeping": expected one of waiting, setup, running, done, stop, stopped\n',
    );

    result = await run(["frobnicate", "--token", "s3cret"]);
    assert.equal(result.exitCode, 2);
    assert.match(result.stderr, /^mottainai: unknown command "frobnicate"\n/);
    assert.doesNotMatch(result.stderr, /s3cret/);

    result = await run([]);
    assert.equal(result.exitCode, 2);
    assert.match(result.stderr, /mottainai task create/);
  });

  it("prints help on stdout with exit 0", async () => {
    const result = await run(["task", "log", "--help"]);
    assert.equal(result.exitCode, 0);
    assert.match(result.stdout.toString(), /--follow/);
    assert.ok(!result.stdout.toString().includes("\u001b["), "no colours without a terminal");
  });

  it("rejects a malformed task file with the SpecError line and exit 1, sending nothing", async () => {
    const file = join(home, "task.yaml");
    const text = "name: build\ntype: docker\nimage: debian\nscript: [make]\ntimeout: abc\n";
    await writeFile(file, text);
    const expected = (() => {
      try {
        parseTaskFile(text, file);
      } catch (error) {
        return (error as Error).message;
      }
      assert.fail("the file should not parse");
    })();
    assert.equal(expected, `${file}: field "timeout": expected a number of seconds, got "abc"`);

    const server = `http://127.0.0.1:${await closedPort()}`;
    const result = await run(["task", "create", "-f", file, "--server", server]);
    assert.equal(result.exitCode, 1);
    assert.equal(result.stderr, `mottainai: ${expected}\n`);
    assert.equal(result.stdout.length, 0);

    // The same server does answer RPCs with a connection error: so no RPC was made above.
    const unreachable = await run(["whoami", "--server", server]);
    assert.equal(unreachable.exitCode, 1);
    assert.match(unreachable.stderr, /^mottainai: unavailable: /);
  });

  it("reads the task file from stdin with -f -", async () => {
    const server = `http://127.0.0.1:${await closedPort()}`;
    const result = await run(["task", "create", "-f", "-", "--server", server], "name: x\ntype: teleport\n");
    assert.equal(result.exitCode, 1);
    assert.match(result.stderr, /^mottainai: <stdin>: field "type": unknown task type "teleport"/);
  });
});
