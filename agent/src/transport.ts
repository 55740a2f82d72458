import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

/** Options of createServerTransport. */
export interface ServerTransportOptions {
  /** Server base URL, e.g. http://127.0.0.1:9090 (h2c) or https://… (TLS). */
  server?: string;
  /**
   * Several servers on one database, tried in this order (next() moves on, wrapping around);
   * overrides `server`.
   */
  servers?: readonly string[];
  /** Node credential sent as `authorization: Bearer …` on every call; none when absent. */
  credential?: string;
  /** HTTP/2 PING interval that detects a dead connection while the stream is idle. Default 10 s. */
  pingIntervalMs?: number;
}

/** A transport and the function that closes its HTTP/2 connection. */
export interface ServerTransport {
  /** Calls go to the current server. */
  transport: Transport;
  /** The current server's URL. */
  current(): string;
  /**
   * Moves to the next server of the list (a no-op with one) and returns its URL; calls made
   * from then on go there.
   */
  next(): string;
  /** Closes every connection and every stream on them. Idempotent. */
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
 * about two ping intervals, with the bearer credential when given. With several servers, one
 * connection at a time, to the current one.
 */
export function createServerTransport(options: ServerTransportOptions): ServerTransport {
  const pingIntervalMs = options.pingIntervalMs ?? 10_000;
  const servers = options.servers?.length ? [...options.servers] : [options.server ?? "http://127.0.0.1:9090"];
  const interceptors = options.credential !== undefined ? [bearerInterceptor(options.credential)] : [];
  const open = (server: string) => {
    const sessionManager = new Http2SessionManager(server, { pingIntervalMs, pingTimeoutMs: pingIntervalMs });
    return { sessionManager, transport: createGrpcTransport({ baseUrl: server, sessionManager, interceptors }) };
  };
  // One connection per server, opened when first used and kept: calls still running on the
  // previous server (an artefact upload) are not cut when the agent moves on.
  const connections = new Map<string, ReturnType<typeof open>>();
  let index = 0;
  const connection = () => {
    const server = servers[index] as string;
    let c = connections.get(server);
    if (!c) {
      c = open(server);
      connections.set(server, c);
    }
    return c;
  };
  const transport: Transport = {
    unary: (...args) => connection().transport.unary(...args),
    stream: (...args) => connection().transport.stream(...args),
  };
  return {
    transport,
    current: () => servers[index] as string,
    next() {
      index = (index + 1) % servers.length;
      return servers[index] as string;
    },
    close() {
      for (const c of connections.values()) c.sessionManager.abort();
    },
  };
}
