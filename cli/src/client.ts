import type { DescService } from "@bufbuild/protobuf";
import { type Client, type Interceptor, type Transport, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";

/** Where and how {@link createServerTransport} connects. */
export interface ServerTransportOptions {
  /** Base URL of the server, e.g. `http://127.0.0.1:9090`. */
  baseUrl: string;
  /** API token sent as `authorization: Bearer <token>` on every request; none when undefined. */
  token?: string;
  /** Aborts every call made through the transport (Ctrl-C); none when undefined. */
  signal?: AbortSignal;
}

/**
 * The Connect-protocol transport of the CLI, over HTTP/1.1 so that it passes through any proxy
 * (the server speaks Connect, gRPC and gRPC-Web on one port, HTTP/1.1 and h2c both).
 */
export function createServerTransport(options: ServerTransportOptions): Transport {
  const interceptors: Interceptor[] = [];
  if (options.token !== undefined) {
    interceptors.push(createBearerInterceptor(options.token));
  }
  if (options.signal !== undefined) {
    interceptors.push(createAbortInterceptor(options.signal));
  }
  return createConnectTransport({ baseUrl: options.baseUrl, httpVersion: "1.1", interceptors });
}

/** Interceptor that adds `authorization: Bearer <token>` to every request. */
export function createBearerInterceptor(token: string): Interceptor {
  return (next) => (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
}

/** Interceptor that cancels every call, unary or streaming, when `signal` aborts. */
export function createAbortInterceptor(signal: AbortSignal): Interceptor {
  return (next) => (request) => next({ ...request, signal: AbortSignal.any([request.signal, signal]) });
}

/** A typed client of `service` on the server of `options`. */
export function createServerClient<Service extends DescService>(
  service: Service,
  options: ServerTransportOptions,
): Client<Service> {
  return createClient(service, createServerTransport(options));
}
