import { isPrivileged } from "../auth/principal.js";
import { userCanRead } from "../auth/namespace-access.js";
import type { EventRecord } from "../store/event-store.js";
import type { Store } from "../store/store.js";
import type { UserRecord } from "../store/user-store.js";
import { eventNamespace, eventOwner } from "./event-filter.js";

/** Decides, per event, whether one subscriber may see it. */
export type EventAccess = (e: EventRecord) => Promise<boolean>;

/**
 * Who sees which event (EVENT_TYPES in @mottainai/proto repeats it for clients):
 * - admins and managers: every event;
 * - any other user: the events about what they own (their tasks, with those tasks' artefacts
 *   and publish failures; their tokens, storages and namespaces, deleted ones included), and
 *   the events of the namespaces they may read now (namespace.*, delivery.*), checked with the
 *   same rule as every namespace read path (auth/namespace-access.ts) at the time the event is
 *   sent; nothing else (nodes, users, other users' private tasks);
 * - agents and running tasks cannot subscribe (EventService needs a user's token).
 * A namespace's visibility is looked up once per subscriber and name per `cacheMs` (default 5 s),
 * so a replay of thousands of events costs one read per namespace.
 */
export function createEventAccess(store: Store, user: UserRecord, cacheMs = 5000, now: () => number = Date.now): EventAccess {
  if (isPrivileged(user)) return async () => true;
  const readable = new Map<string, { ok: boolean; at: number }>();
  const canReadNamespace = async (name: string): Promise<boolean> => {
    const hit = readable.get(name);
    if (hit && now() - hit.at < cacheMs) return hit.ok;
    const ns = await store.namespaces.get(name);
    const ok = ns !== undefined && (await userCanRead(store, user, ns));
    readable.set(name, { ok, at: now() });
    return ok;
  };
  return async (e) => {
    if (eventOwner(e) === user.id) return true;
    if (e.payloadKind === "task" || e.type.startsWith("task.") || e.type.startsWith("artefact.")) return false;
    if (e.type === "namespace.publish_failed") return false;
    if (e.type.startsWith("namespace.") || e.type.startsWith("delivery.")) {
      const name = eventNamespace(e);
      return name !== "" && (await canReadNamespace(name));
    }
    return false;
  };
}
