import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { RpcMetrics } from "./server-metrics.js";

const codeName = (err: unknown): string => Code[ConnectError.from(err).code] ?? "unknown";

/**
 * A Connect interceptor that reports every call's service, method, code ("ok" or the Connect
 * code's name, e.g. "PermissionDenied") and duration. A streaming response is measured until
 * its last message was sent or it failed; put it first so that calls refused by later
 * interceptors (authentication) are counted too.
 */
export function createRpcMetricsInterceptor(
  metrics: RpcMetrics,
  now: () => number = performance.now.bind(performance),
): Interceptor {
  return (next) => async (req) => {
    const start = now();
    const service = req.service.typeName;
    const method = req.method.name;
    const report = (code: string) => metrics.rpc(service, method, code, (now() - start) / 1000);
    let res;
    try {
      res = await next(req);
    } catch (err) {
      report(codeName(err));
      throw err;
    }
    if (!res.stream) {
      report("ok");
      return res;
    }
    const messages = res.message;
    return {
      ...res,
      message: (async function* () {
        let code = "Canceled";
        try {
          yield* messages;
          code = "ok";
        } catch (err) {
          code = codeName(err);
          throw err;
        } finally {
          report(code);
        }
      })(),
    };
  };
}
