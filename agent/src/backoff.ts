/** Options of createBackoff. */
export interface BackoffOptions {
  /** Ceiling of the first delay. Default 200 ms. */
  initialMs?: number;
  /** Largest ceiling; the doubling stops here. Default 10 s. */
  maxMs?: number;
  /** Source of randomness in [0, 1). Default Math.random; tests pass a fixed function. */
  random?: () => number;
}

/**
 * Reconnect delays: exponential with full jitter. Each `next()` returns a delay drawn uniformly
 * from [0, ceiling), the ceiling doubling from `initialMs` up to `maxMs`; `reset()` (after a
 * successful welcome) starts over from `initialMs`.
 */
export interface Backoff {
  next(): number;
  reset(): void;
}

/** Creates a Backoff; defaults 200 ms doubling to 10 s, Math.random jitter. */
export function createBackoff(options: BackoffOptions = {}): Backoff {
  const initialMs = options.initialMs ?? 200;
  const maxMs = options.maxMs ?? 10_000;
  const random = options.random ?? Math.random;
  let failures = 0;
  return {
    next(): number {
      const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(failures, 30));
      failures++;
      return Math.floor(random() * ceiling);
    },
    reset(): void {
      failures = 0;
    },
  };
}
