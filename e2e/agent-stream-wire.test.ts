import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import http2 from "node:http2";
import { promisify } from "node:util";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import {
  ConnectRequestSchema,
  ConnectResponseSchema,
  NodeService,
  PROTOCOL_VERSION,
  type ConnectRequest,
  type ConnectResponse,
} from "@mottainai/proto";
import { adminClient, cleanupAll, registrationToken, startServer, type ServerProc } from "./harness.js";

const run = promisify(execFile);
const PATH = "/mottainai.v1.AgentService/Connect";

/** AgentService.Connect is served by its own gRPC route (server/src/http/grpc-agent-route.ts). */
describe("agent stream on the wire (stock gRPC client, raw HTTP/2)", function () {
  this.timeout(60_000);
  let server: ServerProc;
  let credential: string;

  before(async () => {
    server = await startServer();
    ({ credential } = await createClient(NodeService, createGrpcTransport({ baseUrl: server.url })).registerNode({
      registrationToken: await registrationToken(server),
      name: "wire-agent",
      hostname: "wire-host",
    }));
  });
  after(cleanupAll);

  const hello = (capacity = 1) =>
    create(ConnectRequestSchema, {
      message: {
        case: "hello",
        value: { protocolVersion: PROTOCOL_VERSION, capacity, hostname: "wire-host", executors: ["host"] },
      },
    });

  /** A bidi call through @grpc/grpc-js: writes the requests, half-closes, collects responses and the status. */
  const grpcCall = async (token: string, requests: ConnectRequest[]) => {
    const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    if (token) metadata.set("authorization", `Bearer ${token}`);
    try {
      return await new Promise<{ responses: ConnectResponse[]; status: grpc.StatusObject }>((resolve) => {
        const call = client.makeBidiStreamRequest(
          PATH,
          (m: ConnectRequest) => Buffer.from(toBinary(ConnectRequestSchema, m)),
          (b: Buffer) => fromBinary(ConnectResponseSchema, b),
          metadata,
        );
        const responses: ConnectResponse[] = [];
        call.on("data", (r: ConnectResponse) => responses.push(r));
        call.on("error", () => undefined);
        call.on("status", (status: grpc.StatusObject) => resolve({ responses, status }));
        for (const r of requests) call.write(r);
        call.end();
      });
    } finally {
      client.close();
    }
  };

  /** Sends raw bytes as the request body; the gRPC status and message from headers or trailers. */
  const rawCall = async (body: Buffer) => {
    const session = http2.connect(server.url);
    try {
      return await new Promise<{ status: string; message: string }>((resolve, reject) => {
        const req = session.request({
          ":method": "POST",
          ":path": PATH,
          "content-type": "application/grpc",
          te: "trailers",
          authorization: `Bearer ${credential}`,
        });
        const seen: http2.IncomingHttpHeaders = {};
        req.on("response", (h) => Object.assign(seen, h));
        req.on("trailers", (h) => Object.assign(seen, h));
        req.on("error", reject);
        req.on("data", () => undefined);
        req.on("close", () =>
          resolve({ status: String(seen["grpc-status"]), message: decodeURIComponent(String(seen["grpc-message"] ?? "")) }),
        );
        req.end(body);
      });
    } finally {
      session.close();
    }
  };

  it("welcomes a stock @grpc/grpc-js client and ends with OK when it half-closes", async () => {
    const { responses, status } = await grpcCall(credential, [hello(2)]);
    assert.equal(status.code, grpc.status.OK, status.details);
    assert.equal(responses[0]?.message.case, "welcome");
    const welcome = responses[0]?.message.value as { nodeName: string; protocolVersion: number; maxChunkBytes: number };
    assert.equal(welcome.nodeName, "wire-agent");
    assert.equal(welcome.protocolVersion, PROTOCOL_VERSION);
    assert.ok(welcome.maxChunkBytes > 0);
    const { node } = await adminClient(server, NodeService).getNode({ id: "wire-agent" });
    assert.equal(node?.capacity, 2, "the hello was recorded");
  });

  it("refuses a stream without a credential, or with a user's token, as UNAUTHENTICATED", async () => {
    const none = await grpcCall("", [hello()]);
    assert.equal(none.status.code, grpc.status.UNAUTHENTICATED);
    assert.equal(none.status.details, "missing bearer token");
    const user = await grpcCall(server.adminToken, [hello()]);
    assert.equal(user.status.code, grpc.status.UNAUTHENTICATED);
    assert.equal(user.status.details, "this call needs a node credential");
  });

  it("refuses a first message that is not a hello as INVALID_ARGUMENT", async () => {
    const credit = create(ConnectRequestSchema, { message: { case: "credit", value: { slots: 1 } } });
    const { status, responses } = await grpcCall(credential, [credit]);
    assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(status.details, "the first message must be a hello");
    assert.equal(responses.length, 0);
  });

  it("refuses a compressed frame as UNIMPLEMENTED and an oversized one as RESOURCE_EXHAUSTED", async () => {
    const compressed = await rawCall(Buffer.from([1, 0, 0, 0, 1, 0]));
    assert.deepEqual(compressed, { status: "12", message: "compressed messages are not supported: send identity" });
    const header = Buffer.alloc(5);
    header.writeUInt32BE(9 * 1024 * 1024, 1);
    const oversized = await rawCall(header);
    assert.deepEqual(oversized, {
      status: "8",
      message: `message of ${9 * 1024 * 1024} bytes is larger than the limit of ${8 * 1024 * 1024}`,
    });
  });

  it("sends the welcome first even when the scheduler speaks while the stream opens (a drained node)", async () => {
    const nodes = adminClient(server, NodeService);
    await nodes.drainNode({ id: "wire-agent" });
    try {
      const { responses, status } = await grpcCall(credential, [hello()]);
      assert.equal(status.code, grpc.status.OK, status.details);
      assert.deepEqual(
        responses.map((r) => r.message.case),
        ["welcome", "drain"],
      );
      assert.equal((responses[0]?.message.value as { draining: boolean }).draining, true);
    } finally {
      await nodes.resumeNode({ id: "wire-agent" });
    }
  });

  it("answers HTTP/1.1 and non-gRPC requests on its path with 415", async () => {
    const { stdout } = await run("curl", [
      "-sS",
      "-w",
      "\n%{http_code}",
      "-X",
      "POST",
      "-H",
      "Content-Type: application/json",
      "-d",
      "{}",
      `${server.url}${PATH}`,
    ]);
    assert.equal(stdout, `${PATH} speaks gRPC over HTTP/2 only (POST, content-type application/grpc)\n\n415`);
  });
});
