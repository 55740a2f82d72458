import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { NodeService } from "@mottainai/proto";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Http2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { credentialPath, obtainCredential, readCredential } from "./credential-store.js";
import { AgentFatalError } from "./errors.js";
import { createServerTransport } from "./transport.js";

describe("credential store", () => {
  let dir: string;
  let server: Http2Server;
  let url: string;
  let calls: { token: string; name: string; hostname: string; authorization: string | null }[];
  let answer: () => { nodeId: string; credential: string };
  const closers: (() => void)[] = [];
  const logger = pino({ level: "silent" });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "mottainai-cred-"));
    calls = [];
    answer = () => ({ nodeId: "node-1", credential: "cred-1" });
    server = createServer(
      connectNodeAdapter({
        routes: (router) =>
          router.service(NodeService, {
            registerNode(req, ctx) {
              calls.push({
                token: req.registrationToken,
                name: req.name,
                hostname: req.hostname,
                authorization: ctx.requestHeader.get("authorization"),
              });
              return answer();
            },
          }),
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    for (const close of closers.splice(0)) close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  const obtain = (registrationToken: string | undefined, stateDir = join(dir, "state")) => {
    const t = createServerTransport({ server: url });
    closers.push(t.close);
    return obtainCredential({
      stateDir,
      name: "node-a",
      hostname: "host-a",
      registrationToken,
      transport: t.transport,
      logger,
      backoff: { initialMs: 1, maxMs: 5 },
    });
  };

  it("registers without a bearer token and stores the credential with mode 0600", async () => {
    const stateDir = join(dir, "state");
    const c = await obtain("reg-token", stateDir);
    assert.deepEqual(c, { nodeId: "node-1", name: "node-a", credential: "cred-1" });
    assert.deepEqual(calls, [{ token: "reg-token", name: "node-a", hostname: "host-a", authorization: null }]);
    assert.equal(statSync(credentialPath(stateDir)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(readFileSync(credentialPath(stateDir), "utf8")), c);
    assert.deepEqual(readdirSync(stateDir), ["credential.json"], "no temporary file is left");
    assert.deepEqual(await readCredential(stateDir), c);
  });

  it("uses the stored credential without calling the server", async () => {
    const stateDir = join(dir, "state");
    await obtain("reg-token", stateDir);
    answer = () => {
      throw new Error("must not be called");
    };
    assert.equal((await obtain(undefined, stateDir)).credential, "cred-1");
    assert.equal(calls.length, 1);
  });

  it("needs a registration token when nothing is stored, naming the flag", async () => {
    await assert.rejects(obtain(undefined), (err: Error) => {
      assert.ok(err instanceof AgentFatalError);
      assert.match(err.message, /^--registration-token: required to register this node/);
      return true;
    });
    assert.equal(calls.length, 0);
  });

  it("is fatal when the server refuses the registration, and retries while it is unavailable", async () => {
    answer = () => {
      throw new ConnectError("registration token revoked", Code.PermissionDenied);
    };
    await assert.rejects(
      obtain("bad"),
      (err: Error) => err instanceof AgentFatalError && err.message === "registration refused: registration token revoked",
    );
    let n = 0;
    answer = () => {
      if (++n < 3) throw new ConnectError("starting up", Code.Unavailable);
      return { nodeId: "node-2", credential: "cred-2" };
    };
    assert.equal((await obtain("good")).credential, "cred-2");
    assert.equal(n, 3);
  });

  it("rejects a damaged credential file", async () => {
    const stateDir = join(dir, "state");
    await obtain("reg-token", stateDir);
    writeFileSync(credentialPath(stateDir), "{ nope");
    await assert.rejects(readCredential(stateDir), /is not a node credential; delete it to register again/);
  });
});
