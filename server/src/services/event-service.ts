import type { ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { EventGapSchema, EventService, type Event, type EventFilter, type EventGap } from "@mottainai/proto";
import { requireUser } from "../auth/principal.js";
import { AsyncQueue } from "../async-queue.js";
import { eventToProto } from "../convert/event-convert.js";
import { createEventAccess } from "../events/event-access.js";
import type { SubscriberMetrics } from "../metrics/server-metrics.js";
import type { EventBus } from "../events/event-bus.js";
import { matchesFilter, type EventFilterSpec } from "../events/event-filter.js";
import type { EventRecord } from "../store/event-store.js";
import type { Store } from "../store/store.js";

const REPLAY_PAGE = 500;

const filterSpec = (types: string[], f: EventFilter | undefined): EventFilterSpec => ({
  types,
  subjectIds: f?.subjectIds ?? [],
  ownerId: f?.ownerId ?? "",
  namespace: f?.namespace ?? "",
  pipelineId: f?.pipelineId ?? "",
});

/**
 * EventService: replay from a sequence, then live, filtered on the server (type prefixes and
 * EventFilter) and by read rights (events/event-access.ts: a user sees the events about what
 * they may read; managers and admins see all). A caller resuming from a sequence that retention
 * removed gets an EventGap first (Subscribe: one response; ListEvents: the gap field).
 */
export function createEventService(
  store: Store,
  bus: EventBus,
  subscribers?: SubscriberMetrics,
): ServiceImpl<typeof EventService> {
  // A live event reaches every subscriber as the same record: convert it once for all of them.
  const converted = new WeakMap<EventRecord, Event>();
  const toProto = (e: EventRecord): Event => {
    let proto = converted.get(e);
    if (!proto) converted.set(e, (proto = eventToProto(e)));
    return proto;
  };
  /** The gap between `from` and the oldest kept event, if any (none for from 0: "all that is kept"). */
  const gapAfter = async (from: number): Promise<EventGap | undefined> => {
    if (from === 0) return undefined;
    const first = await store.events.firstSequence();
    if (first <= from + 1) return undefined;
    return create(EventGapSchema, { fromSequence: BigInt(from + 1), toSequence: BigInt(first - 1) });
  };

  return {
    async listEvents(req, ctx) {
      const user = requireUser(ctx);
      const spec = filterSpec(req.types, req.filter);
      const canSee = createEventAccess(store, user);
      const from = Number(req.fromSequence);
      const gap = await gapAfter(from);
      const page = await store.events.listAfter(from, Math.min(req.pageSize || 100, 1000));
      const events = [];
      for (const e of page) if (matchesFilter(e, spec) && (await canSee(e))) events.push(eventToProto(e));
      return { events, gap };
    },

    async *subscribe(req, ctx) {
      const user = requireUser(ctx);
      const spec = filterSpec(req.types, req.filter);
      const canSee = createEventAccess(store, user);
      const wanted = async (e: EventRecord) => matchesFilter(e, spec) && (await canSee(e));
      const live = new AsyncQueue<EventRecord>();
      const unlisten = bus.listen((e) => live.push(e));
      subscribers?.subscribed();
      const onAbort = () => live.close();
      ctx.signal.addEventListener("abort", onAbort);
      try {
        let last = Number(req.fromSequence);
        const gap = await gapAfter(last);
        if (gap) yield { gap };
        // Replay only up to what the bus has announced: on a shared store a later event may sit
        // behind a gap that the live feed is still waiting on (EventFeed).
        const upTo = bus.watermark();
        replay: while (last < upTo) {
          const page = await store.events.listAfter(last, REPLAY_PAGE);
          for (const e of page) {
            if (e.sequence > upTo) break replay;
            last = e.sequence;
            if (await wanted(e)) yield { event: eventToProto(e) };
          }
          if (page.length < REPLAY_PAGE) break;
        }
        for await (const e of live) {
          if (e.sequence <= last) continue;
          last = e.sequence;
          if (await wanted(e)) yield { event: toProto(e) };
        }
      } finally {
        unlisten();
        subscribers?.unsubscribed();
        ctx.signal.removeEventListener("abort", onAbort);
      }
    },
  };
}
