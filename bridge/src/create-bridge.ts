import { create } from "@bufbuild/protobuf";
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { EVENT_GAP_TYPE, EventSchema, EventService, type Event, type EventGap } from "@mottainai/proto";
import pino, { type Logger } from "pino";
import { backoffDelay, sleep, type BackoffOptions } from "./backoff.js";
import { BoundedQueue } from "./bounded-queue.js";
import { MemoryCursorStore, type CursorStore } from "./cursor-store.js";

/** Server-side filters (EventService's types and EventFilter); all events when empty. */
export interface BridgeFilter {
  /** Type prefixes, e.g. "task." or "namespace.published". */
  types?: string[];
  subjectIds?: string[];
  ownerId?: string;
  namespace?: string;
  pipelineId?: string;
}

/** Options of {@link createBridge}. */
export interface BridgeOptions {
  /** Server base URLs (http://host:port), tried in turn: the next one after each failure. */
  servers: string[];
  /** A user's API token; the bridge sees what that user may read. */
  token: string;
  filter?: BridgeFilter;
  /** Where the last handled sequence is kept. Default: in memory, from 0. */
  cursor?: CursorStore;
  /** Events read ahead of the handlers. Default 1000; see {@link Bridge}. */
  queueSize?: number;
  /** Delay between reconnects. Default 200 ms doubling to 30 s, jittered. */
  reconnect?: BackoffOptions;
  /** Per-event handler retries: attempts in all (default 5) and their backoff (500 ms to 30 s). */
  handlerRetry?: BackoffOptions & { attempts: number };
  logger?: Logger;
  /** How to reach one server. Default: gRPC over HTTP/2 cleartext (https URLs use TLS). */
  transport?: (baseUrl: string) => Transport;
}

/** A handler of on(); a returned promise is awaited. */
export type EventHandler = (event: Event) => unknown;

/**
 * A subscription to the server's events that survives disconnects and restarts.
 *
 * Two ways to consume it (pick one): `for await (const event of bridge)`, or `on(type, fn)`
 * then `start()`. Events come once each in sequence order; a gap marker (events the server no
 * longer keeps) comes as an Event of type EVENT_GAP_TYPE ("events.gap") whose sequence is the
 * last missing one and whose attributes `from_sequence`/`to_sequence` say what is gone.
 *
 * Delivery is **at-least-once**: the cursor is saved after an event was handled (the iterator:
 * when the next one is asked for; on(): when every matching handler succeeded or gave up), so a
 * bridge killed between handling and saving sees that event again after a restart. Dedup by
 * `event.sequence` where a repeat matters.
 *
 * Reading runs ahead of handling through a bounded queue (queueSize). When it is full, the
 * bridge stops reading the stream: HTTP/2 flow control then holds the server back, nothing is
 * dropped, and the server keeps the events in its log; a slow handler never loses events, it
 * only delays them. After a disconnect the bridge resubscribes from the last sequence it
 * received (skipping repeats), moving to the next server with a jittered exponential backoff.
 */
export interface Bridge extends AsyncIterable<Event> {
  /**
   * Adds a handler for an exact type ("task.finished"), a prefix ending in ".*" ("task.*") or
   * "*". A handler that throws is retried with backoff (handlerRetry); after the last attempt
   * the error is logged and the event counts as handled.
   */
  on(type: string, handler: EventHandler): this;
  /** Runs the on() handlers until close(); rejects only if the cursor store fails. */
  start(): Promise<void>;
  /** Stops reading and handling; resolves after the running handler and cursor save. Idempotent. */
  close(): Promise<void>;
  /** The last handled (saved) sequence. */
  readonly handled: bigint;
}

const gapEvent = (gap: EventGap): Event =>
  create(EventSchema, {
    sequence: gap.toSequence,
    type: EVENT_GAP_TYPE,
    attributes: { from_sequence: String(gap.fromSequence), to_sequence: String(gap.toSequence) },
  });

/** Whether a handler pattern of on() matches a type. */
export function typeMatches(pattern: string, type: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith(".*")) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}

/** Creates a bridge; nothing connects until it is iterated or started. */
export function createBridge(o: BridgeOptions): Bridge {
  if (o.servers.length === 0) throw new Error("servers: at least one server URL is needed");
  const logger = o.logger ?? pino({ level: "silent" });
  const cursor = o.cursor ?? new MemoryCursorStore();
  const reconnect = o.reconnect ?? { initialMs: 200, maxMs: 30_000 };
  const retry = o.handlerRetry ?? { attempts: 5, initialMs: 500, maxMs: 30_000 };
  const transport =
    o.transport ??
    ((baseUrl: string) =>
      createGrpcTransport({
        baseUrl,
        pingIntervalMs: 10_000,
        pingTimeoutMs: 10_000,
        interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${o.token}`), next(req))],
      }));
  const clients: Client<typeof EventService>[] = o.servers.map((url) => createClient(EventService, transport(url)));
  const queue = new BoundedQueue<Event>(o.queueSize ?? 1000);
  const abort = new AbortController();
  const handlers: { pattern: string; fn: EventHandler }[] = [];
  let handled = 0n;
  let reading: Promise<void> | undefined;
  let consuming: Promise<void> | undefined;

  const read = async (from: bigint): Promise<void> => {
    let received = from;
    let failures = 0;
    let server = 0;
    while (!abort.signal.aborted) {
      const url = o.servers[server % o.servers.length]!;
      try {
        const stream = clients[server % clients.length]!.subscribe(
          {
            fromSequence: received,
            types: o.filter?.types ?? [],
            filter: {
              subjectIds: o.filter?.subjectIds ?? [],
              ownerId: o.filter?.ownerId ?? "",
              namespace: o.filter?.namespace ?? "",
              pipelineId: o.filter?.pipelineId ?? "",
            },
          },
          { signal: abort.signal },
        );
        logger.debug({ server: url, from: String(received) }, "subscribing");
        for await (const r of stream) {
          const event = r.gap ? gapEvent(r.gap) : r.event;
          if (!event || event.sequence <= received) continue;
          if (failures > 0) logger.info({ server: url, from: String(received) }, "event stream resumed");
          failures = 0;
          received = event.sequence;
          await queue.push(event);
        }
        if (!abort.signal.aborted) logger.warn({ server: url }, "the event stream ended; reconnecting");
      } catch (err) {
        if (abort.signal.aborted) break;
        logger.warn({ server: url, err: (err as Error).message }, "event stream failed; reconnecting");
      }
      failures++;
      server++;
      await sleep(backoffDelay(failures, reconnect), abort.signal);
    }
  };

  const begin = async (): Promise<void> => {
    if (reading) throw new Error("a bridge is consumed once: either iterated or started");
    handled = await cursor.load();
    reading = read(handled);
  };

  const commit = async (sequence: bigint): Promise<void> => {
    await cursor.save(sequence);
    handled = sequence;
  };

  const runHandlers = async (event: Event): Promise<void> => {
    for (const h of handlers) {
      if (!typeMatches(h.pattern, event.type)) continue;
      for (let attempt = 1; ; attempt++) {
        try {
          await h.fn(event);
          break;
        } catch (err) {
          const log = {
            sequence: String(event.sequence),
            type: event.type,
            handler: h.pattern,
            attempt,
            err: (err as Error).message,
          };
          if (attempt >= retry.attempts) {
            logger.error(log, "event handler failed on its last attempt; moving on");
            break;
          }
          logger.warn(log, "event handler failed; retrying");
          await sleep(backoffDelay(attempt, retry), abort.signal);
          if (abort.signal.aborted) throw abort.signal.reason;
        }
      }
    }
  };

  const bridge: Bridge = {
    get handled() {
      return handled;
    },

    on(type, fn) {
      handlers.push({ pattern: type, fn });
      return bridge;
    },

    start() {
      consuming ??= (async () => {
        await begin();
        for (;;) {
          const event = await queue.shift();
          if (!event) return;
          try {
            await runHandlers(event);
          } catch {
            return; // closed during a retry: not handled, it comes again next time
          }
          await commit(event.sequence);
        }
      })();
      return consuming;
    },

    async close() {
      abort.abort();
      queue.close();
      await reading;
      await consuming?.catch(() => undefined);
    },

    [Symbol.asyncIterator](): AsyncIterator<Event> {
      let started: Promise<void> | undefined;
      let pending: bigint | undefined;
      return {
        async next() {
          await (started ??= begin());
          if (pending !== undefined) {
            await commit(pending);
            pending = undefined;
          }
          const event = await queue.shift();
          if (!event) return { done: true, value: undefined };
          pending = event.sequence;
          return { done: false, value: event };
        },
        async return() {
          await bridge.close();
          return { done: true, value: undefined };
        },
      };
    },
  };
  return bridge;
}
