export {
  createBridge,
  typeMatches,
  type Bridge,
  type BridgeFilter,
  type BridgeOptions,
  type EventHandler,
} from "./create-bridge.js";
export { FileCursorStore, MemoryCursorStore, type CursorStore } from "./cursor-store.js";
export { backoffDelay, type BackoffOptions } from "./backoff.js";
export { EVENT_GAP_TYPE, EVENT_TYPES, type Event, type EventGap } from "@mottainai/proto";
export * from "./daemon/index.js";
