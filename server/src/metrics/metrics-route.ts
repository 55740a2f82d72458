import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { Registry } from "prom-client";

/** Options of the GET /metrics route. */
export interface MetricsRouteOptions {
  registry: Registry;
  /** Bearer token required to read; empty for none. */
  token: string;
}

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

/**
 * Serves `GET /metrics` (and HEAD) in the Prometheus text format; with a token, a request
 * without `Authorization: Bearer <token>` gets 401. Returns false for any other request, which
 * the caller then routes on.
 */
export function createMetricsRoute(o: MetricsRouteOptions): (req: Req, res: Res) => boolean {
  const expected = Buffer.from(`Bearer ${o.token}`);
  const allowed = (header: string | undefined) => {
    if (!o.token) return true;
    const given = Buffer.from(header ?? "");
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
  return (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) return false;
    if (!allowed(req.headers.authorization)) {
      res.writeHead(401, { "content-type": "text/plain; charset=utf-8", "www-authenticate": 'Bearer realm="metrics"' });
      res.end("a metrics token is required: send Authorization: Bearer <token>\n");
      return true;
    }
    o.registry.metrics().then(
      (text) => {
        res.writeHead(200, { "content-type": o.registry.contentType, "cache-control": "no-store" });
        if (req.method === "HEAD") res.end();
        else res.end(text);
      },
      (err: Error) => {
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
        res.end(`metrics collection failed: ${err.message}\n`);
      },
    );
    return true;
  };
}
