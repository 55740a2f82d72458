import type { ServiceImpl } from "@connectrpc/connect";
import { EventService } from "@mottainai/proto";
import { isPrivileged, requireUser } from "../auth/principal.js";
import { AsyncQueue } from "../async-queue.js";
import { eventToProto } from "../convert/event-convert.js";
import type { SubscriberMetrics } from "../metrics/server-metrics.js";
import type { EventBus } from "../events/event-bus.js";
import type { EventRecord } from "../store/event-store.js";
import type { Store } from "../store/store.js";
import type { TaskRecord } from "../store/task-store.js";

const REPLAY_PAGE = 500;

/**
 * EventService: replay from a sequence, then live. A user sees the events of their own tasks;
 * managers and admins see all.
 */
export function createEventService(
  store: Store,
  bus: EventBus,
  subscribers?: SubscriberMetrics,
): ServiceImpl<typeof EventService> {
  const visible = (types: string[], userId: string | undefined) => (e: EventRecord) =>
    (types.length === 0 || types.some((t) => e.type.startsWith(t))) &&
    (userId === undefined || (e.payloadKind === "task" && (e.payload as TaskRecord | null)?.ownerId === userId));

  return {
    async listEvents(req, ctx) {
      const user = requireUser(ctx);
      const filter = visible(req.types, isPrivileged(user) ? undefined : user.id);
      const events = await store.events.listAfter(Number(req.fromSequence), Math.min(req.pageSize || 100, 1000));
      return { events: events.filter(filter).map(eventToProto) };
    },

    async *subscribe(req, ctx) {
      const user = requireUser(ctx);
      const filter = visible(req.types, isPrivileged(user) ? undefined : user.id);
      const live = new AsyncQueue<EventRecord>();
      const unlisten = bus.listen((e) => live.push(e));
      subscribers?.subscribed();
      const onAbort = () => live.close();
      ctx.signal.addEventListener("abort", onAbort);
      try {
        // Replay only up to what the bus has announced: on a shared store a later event may sit
        // behind a gap that the live feed is still waiting on (EventFeed).
        const upTo = bus.watermark();
        let last = Number(req.fromSequence);
        replay: while (last < upTo) {
          const page = await store.events.listAfter(last, REPLAY_PAGE);
          for (const e of page) {
            if (e.sequence > upTo) break replay;
            last = e.sequence;
            if (filter(e)) yield { event: eventToProto(e) };
          }
          if (page.length < REPLAY_PAGE) break;
        }
        for await (const e of live) {
          if (e.sequence <= last) continue;
          last = e.sequence;
          if (filter(e)) yield { event: eventToProto(e) };
        }
      } finally {
        unlisten();
        subscribers?.unsubscribed();
        ctx.signal.removeEventListener("abort", onAbort);
      }
    },
  };
}
