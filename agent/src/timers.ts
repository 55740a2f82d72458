/**
 * The timer functions the agent uses for heartbeats, log flushes, timeouts, reconnect delays
 * and the stop deadline. Injected so tests can drive the agent with their own clock; the
 * agent never reads the time of day.
 */
export interface AgentTimers {
  /** Calls `callback` once after `ms` milliseconds; returns a handle for clearTimeout. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a pending callback; a handle that already fired or is undefined is ignored. */
  clearTimeout(handle: unknown): void;
}

/** AgentTimers backed by the Node.js global timers. */
export const systemTimers: AgentTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => {
    if (handle !== undefined) clearTimeout(handle as NodeJS.Timeout);
  },
};
