import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import {
  AgentService,
  ConnectRequestSchema,
  GetCurrentUserRequestSchema,
  GetCurrentUserResponseSchema,
  type GetCurrentUserRequest,
  type GetCurrentUserResponse,
  NodeService,
  Role,
  UserService,
} from "@mottainai/proto";
import { adminClient, cleanupAll, registrationToken, ROOT, startServer, type ServerProc } from "./harness.js";

const run = promisify(execFile);
const BUF = join(ROOT, "node_modules/.bin/buf");

/** One port, every protocol: stock gRPC, gRPC-Web, Connect, buf curl and plain curl. */
describe("server protocols on one port", function () {
  this.timeout(60_000);
  let server: ServerProc;

  before(async () => {
    server = await startServer();
  });

  /** POSTs {} as Connect JSON with plain curl; returns what curl printed. */
  const curlJson = async (path: string, token: string, extra: string[] = []) =>
    (
      await run("curl", [
        "-sS",
        ...extra,
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        ...(token ? ["-H", `Authorization: Bearer ${token}`] : []),
        "-d",
        "{}",
        `${server.url}/${path}`,
      ])
    ).stdout;
  after(cleanupAll);

  /** GetCurrentUser through a stock @grpc/grpc-js client; resolves with the response or the error. */
  const grpcGetCurrentUser = async (token: string) => {
    const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    if (token) metadata.set("authorization", `Bearer ${token}`);
    try {
      return await new Promise<{ response?: GetCurrentUserResponse; error?: grpc.ServiceError }>((resolve) =>
        client.makeUnaryRequest(
          "/mottainai.v1.UserService/GetCurrentUser",
          (m: GetCurrentUserRequest) => Buffer.from(toBinary(GetCurrentUserRequestSchema, m)),
          (b: Buffer) => fromBinary(GetCurrentUserResponseSchema, b),
          create(GetCurrentUserRequestSchema),
          metadata,
          (error, response) => resolve(error ? { error } : { response }),
        ),
      );
    } finally {
      client.close();
    }
  };

  it("answers a stock @grpc/grpc-js client over HTTP/2", async () => {
    const { response } = await grpcGetCurrentUser(server.adminToken);
    assert.equal(response?.user?.name, "admin");
    assert.equal(response?.user?.role, Role.ADMIN);
  });

  it("gives a stock gRPC client UNAUTHENTICATED without a token", async () => {
    const { error } = await grpcGetCurrentUser("");
    assert.equal(error?.code, grpc.status.UNAUTHENTICATED);
    assert.equal(error?.details, "missing bearer token");
  });

  it("answers gRPC-Web over HTTP/1.1 and Connect over HTTP/2", async () => {
    const withToken = (t: { header: Headers }) => t.header.set("authorization", `Bearer ${server.adminToken}`);
    const web = createClient(
      UserService,
      createGrpcWebTransport({
        baseUrl: server.url,
        httpVersion: "1.1",
        interceptors: [(next) => (req) => (withToken(req), next(req))],
      }),
    );
    assert.equal((await web.getCurrentUser({})).user?.name, "admin");
    const grpcH2 = createClient(
      UserService,
      createGrpcTransport({ baseUrl: server.url, interceptors: [(next) => (req) => (withToken(req), next(req))] }),
    );
    assert.equal((await grpcH2.getCurrentUser({})).user?.name, "admin");
  });

  it("answers buf curl with the gRPC, gRPC-Web and Connect protocols", async () => {
    for (const protocol of ["grpc", "grpcweb", "connect"]) {
      const args = [
        "curl",
        "--schema",
        join(ROOT, "proto"),
        "--protocol",
        protocol,
        ...(protocol === "grpc" ? ["--http2-prior-knowledge"] : []),
        "-H",
        `Authorization: Bearer ${server.adminToken}`,
        `${server.url}/mottainai.v1.UserService/GetCurrentUser`,
      ];
      const { stdout } = await run(BUF, args, { cwd: ROOT });
      const body = JSON.parse(stdout) as { user: { name: string; role: string } };
      assert.equal(body.user.name, "admin", protocol);
      assert.equal(body.user.role, "ROLE_ADMIN", protocol);
    }
  });

  it("answers plain curl with Connect JSON, and 401 with a Connect error without a token", async () => {
    const body = JSON.parse(await curlJson("mottainai.v1.UserService/GetCurrentUser", server.adminToken)) as {
      user: { name: string; role: string };
    };
    assert.equal(body.user.name, "admin");
    assert.equal(body.user.role, "ROLE_ADMIN");
    const [json, status] = (await curlJson("mottainai.v1.TaskService/ListTasks", "", ["-w", "\n%{http_code}"])).split("\n");
    assert.equal(status, "401");
    assert.deepEqual(JSON.parse(json ?? ""), { code: "unauthenticated", message: "missing bearer token" });
  });

  it("serves a health endpoint over HTTP/1.1", async () => {
    const { stdout } = await run("curl", ["-sS", `${server.url}/healthz`]);
    assert.deepEqual(JSON.parse(stdout), { status: "ok" });
  });

  it("answers Unimplemented for services not built yet", async () => {
    const body = await curlJson("mottainai.v1.SettingService/ListSettings", server.adminToken);
    assert.equal((JSON.parse(body) as { code: string }).code, "unimplemented");
  });

  it("refuses an agent speaking another protocol version with FailedPrecondition", async () => {
    const { credential } = await createClient(NodeService, createGrpcTransport({ baseUrl: server.url })).registerNode({
      registrationToken: await registrationToken(server),
      name: "old-agent",
      hostname: "h",
    });
    const agent = createClient(
      AgentService,
      createGrpcTransport({
        baseUrl: server.url,
        interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${credential}`), next(req))],
      }),
    );
    async function* hello() {
      yield create(ConnectRequestSchema, { message: { case: "hello", value: { protocolVersion: 999, capacity: 1 } } });
      await new Promise((r) => setTimeout(r, 5000));
    }
    await assert.rejects(
      (async () => {
        for await (const _ of agent.connect(hello())) void _;
      })(),
      (err: unknown) => {
        const e = ConnectError.from(err);
        assert.equal(e.code, Code.FailedPrecondition);
        assert.equal(e.rawMessage, "protocol version mismatch: agent speaks 999, server speaks 1; upgrade the older side");
        return true;
      },
    );
    const nodes = await adminClient(server, NodeService).listNodes({});
    assert.ok(nodes.nodes.some((n) => n.name === "old-agent"));
  });
});
