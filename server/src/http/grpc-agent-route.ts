import type http from "node:http";
import http2 from "node:http2";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  AgentService as AgentServiceDesc,
  ConnectRequestSchema,
  ConnectResponseSchema,
  type ConnectRequest,
  type ConnectResponse,
} from "@mottainai/proto";
import type { Logger } from "pino";
import { AsyncQueue } from "../async-queue.js";
import type { AgentService, AgentStream } from "../services/agent-service.js";
import type { NodeRecord } from "../store/node-store.js";

/** The one path this route serves. */
export const AGENT_CONNECT_PATH = `/${AgentServiceDesc.typeName}/${AgentServiceDesc.method.connect.name}`;

/** Options of {@link createGrpcAgentRoute}. */
export interface GrpcAgentRouteOptions {
  service: AgentService;
  /**
   * The node a request's `authorization` header stands for. Rejects with a ConnectError
   * (Unauthenticated) when it stands for none.
   */
  authenticate(authorization: string | undefined): Promise<NodeRecord>;
  /** Largest agent message accepted; a larger one ends the stream with ResourceExhausted. */
  maxMessageBytes: number;
  logger: Logger;
}

/** Agent messages decoded but not handled yet before the route stops reading the socket. */
const HIGH_WATER = 64;

const { HTTP2_HEADER_CONTENT_TYPE } = http2.constants;

/**
 * Serves `AgentService.Connect` as plain gRPC over HTTP/2, straight on the stream: the 5-byte
 * length-prefixed frames of the gRPC wire format, protobuf-es for the messages, trailers for the
 * status. It exists for memory: connect-es keeps a chain of async iterables, promises and
 * abort controllers alive per bidi stream (about 40 KiB of heap per idle agent), and a server
 * holds one such stream per agent for as long as the agent runs. Here a stream costs one queue,
 * one loop and the HTTP/2 stream itself. Every other RPC still goes through connect-es.
 *
 * What it implements of gRPC: POST with `content-type: application/grpc` or
 * `application/grpc+proto`, identity encoding only (a compressed frame, or another
 * `grpc-encoding`, is refused with Unimplemented; the agent sends none), `grpc-status` and a
 * percent-encoded `grpc-message` in the trailers. `grpc-timeout` is ignored: the stream lives as
 * long as the agent.
 *
 * Order and back-pressure: agent messages are handled one at a time in arrival order; while
 * HIGH_WATER of them wait, the route stops reading the stream (HTTP/2 flow control then holds
 * the agent back). The welcome is always the first server message: what the scheduler sends
 * while the stream opens (a drain, a cancel) waits for it. The agent half-closing its side ends
 * the stream with OK after the messages already received; the stream closing (agent gone,
 * connection lost) ends the session.
 *
 * Returns false for any other path, so the caller passes the request on.
 */
export function createGrpcAgentRoute(
  o: GrpcAgentRouteOptions,
): (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => boolean {
  return (req, res) => {
    if (req.url !== AGENT_CONNECT_PATH) return false;
    const contentType = String(req.headers[HTTP2_HEADER_CONTENT_TYPE] ?? "")
      .split(";")[0]
      ?.trim();
    const grpc = contentType === "application/grpc" || contentType === "application/grpc+proto";
    if (!("stream" in req) || req.method !== "POST" || !grpc) {
      res.writeHead(415, { "content-type": "text/plain; charset=utf-8" });
      res.end(`${AGENT_CONNECT_PATH} speaks gRPC over HTTP/2 only (POST, content-type application/grpc)\n`);
      return true;
    }
    serve(o, req as http2.Http2ServerRequest, res as http2.Http2ServerResponse).catch((err: unknown) =>
      o.logger.error({ err }, "agent stream failed"),
    );
    return true;
  };
}

async function serve(o: GrpcAgentRouteOptions, req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) {
  const stream = req.stream;
  const inbox = new AsyncQueue<ConnectRequest>();
  const frames = new FrameReader(o.maxMessageBytes);
  let finished = false;

  // The response goes through the compatibility API: it owns the stream's trailers.
  const gone = () => stream.closed || stream.destroyed;
  const finish = (err?: unknown) => {
    if (finished) return;
    finished = true;
    inbox.close();
    if (gone()) return;
    const status = err === undefined ? { code: 0, message: "" } : statusOf(err);
    const trailers: http2.OutgoingHttpHeaders = { "grpc-status": String(status.code) };
    if (status.message) trailers["grpc-message"] = encodeURIComponent(status.message);
    if (!res.headersSent) res.writeHead(200, RESPONSE_HEADERS);
    res.addTrailers(trailers);
    res.end();
  };
  const send = (bytes: Uint8Array) => {
    if (finished || gone()) return;
    if (!res.headersSent) res.writeHead(200, RESPONSE_HEADERS);
    res.write(frame(bytes));
  };

  stream.on("data", (chunk: Buffer) => {
    if (finished) return; // the status is sent: what the agent still sends is dropped
    try {
      for (const message of frames.push(chunk)) inbox.push(fromBinary(ConnectRequestSchema, message));
    } catch (err) {
      finish(err);
      return;
    }
    if (inbox.length >= HIGH_WATER) stream.pause();
  });
  stream.once("end", () => inbox.close());
  stream.once("close", () => {
    finished = true;
    inbox.close();
  });
  stream.on("error", (err) => o.logger.debug({ err }, "agent stream error"));

  const encoding = req.headers["grpc-encoding"];
  let agent: AgentStream | undefined;
  try {
    if (encoding !== undefined && encoding !== "identity") {
      throw new ConnectError(`grpc-encoding ${String(encoding)} is not supported: send identity`, Code.Unimplemented);
    }
    const node = await o.authenticate(req.headers.authorization);
    // The scheduler may speak (a drain, a cancel) while open() runs: that waits for the welcome.
    const early: ConnectResponse[] = [];
    let welcomed = false;
    for await (const request of inbox) {
      if (agent === undefined) {
        agent = await o.service.open(node, request, {
          send: (response) => (welcomed ? send(toBinary(ConnectResponseSchema, response)) : early.push(response)),
          close: () => finish(),
        });
        send(toBinary(ConnectResponseSchema, agent.welcome));
        for (const response of early.splice(0)) send(toBinary(ConnectResponseSchema, response));
        welcomed = true;
      } else {
        await agent.handle(request);
      }
      if (finished) break;
      if (stream.isPaused() && inbox.length < HIGH_WATER / 2) stream.resume();
    }
    finish();
  } catch (err) {
    finish(err);
  } finally {
    await agent?.end();
  }
}

const RESPONSE_HEADERS: http2.OutgoingHttpHeaders = {
  [HTTP2_HEADER_CONTENT_TYPE]: "application/grpc+proto",
  "grpc-accept-encoding": "identity",
};

function statusOf(err: unknown): { code: Code; message: string } {
  const e = ConnectError.from(err);
  return { code: e.code, message: e.rawMessage };
}

/** One gRPC frame: flags (0: not compressed), big-endian length, message. */
function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** Splits a byte stream into gRPC frames' messages. */
class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);

  constructor(private readonly maxMessageBytes: number) {}

  /** The complete messages that chunk finishes; keeps the rest for the next chunk. */
  push(chunk: Buffer): Uint8Array[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const messages: Uint8Array[] = [];
    while (this.buffered.length >= 5) {
      const flags = this.buffered[0] as number;
      const length = this.buffered.readUInt32BE(1);
      if (flags & 1) throw new ConnectError("compressed messages are not supported: send identity", Code.Unimplemented);
      if (length > this.maxMessageBytes) {
        throw new ConnectError(
          `message of ${length} bytes is larger than the limit of ${this.maxMessageBytes}`,
          Code.ResourceExhausted,
        );
      }
      if (this.buffered.length < 5 + length) break;
      messages.push(this.buffered.subarray(5, 5 + length));
      this.buffered = this.buffered.subarray(5 + length);
    }
    return messages;
  }
}
