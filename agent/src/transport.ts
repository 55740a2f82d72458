import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

/** Options of createServerTransport. */
export interface ServerTransportOptions {
  /** Server base URL, e.g. http://127.0.0.1:9090 (h2c) or https://… (TLS). */
  server: string;
  /** Node credential sent as `authorization: Bearer …` on every call; none when absent. */
  credential?: string;
  /** HTTP/2 PING interval that detects a dead connection while the stream is idle. Default 10 s. */
  pingIntervalMs?: number;
}

/** A transport and the function that closes its HTTP/2 connection. */
export interface ServerTransport {
  transport: Transport;
  /** Closes the connection and every stream on it. Idempotent. */
  close(): void;
}

/**
 * An interceptor that adds `authorization: Bearer <credential>` to every request that does not
 * carry its own (calls made for a task send its task token in their call options instead).
 */
export function bearerInterceptor(credential: string): Interceptor {
  return (next) => (req) => {
    if (!req.header.has("authorization")) req.header.set("authorization", `Bearer ${credential}`);
    return next(req);
  };
}

/**
 * The agent's transport to the server: gRPC over HTTP/2 (h2c for http:// URLs), one
 * connection kept alive with PING frames so that a silently dead peer is noticed within
 * about two ping intervals, with the bearer credential when given.
 */
export function createServerTransport(options: ServerTransportOptions): ServerTransport {
  const pingIntervalMs = options.pingIntervalMs ?? 10_000;
  const sessionManager = new Http2SessionManager(options.server, { pingIntervalMs, pingTimeoutMs: pingIntervalMs });
  const transport = createGrpcTransport({
    baseUrl: options.server,
    sessionManager,
    // Never ask for gzip: the agent's bulk traffic is task inputs (tarballs, packages, images),
    // which gzip cannot shrink but would cost the server a CPU core per 50 MB/s.
    acceptCompression: [],
    interceptors: options.credential !== undefined ? [bearerInterceptor(options.credential)] : [],
  });
  return { transport, close: () => sessionManager.abort() };
}
