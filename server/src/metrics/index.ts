export {
  createServerMetrics,
  type ByteMetrics,
  type MetricsSources,
  type RpcMetrics,
  type SchedulerMetrics,
  type ServerMetrics,
  type SubscriberMetrics,
} from "./server-metrics.js";
export { meteredBlobStore } from "./metered-blob-store.js";
export { createRpcMetricsInterceptor } from "./rpc-metrics-interceptor.js";
export { createMetricsRoute, type MetricsRouteOptions } from "./metrics-route.js";
