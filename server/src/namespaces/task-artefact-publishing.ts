import type { Logger } from "pino";
import { userCanWrite } from "../auth/namespace-access.js";
import type { EventBus } from "../events/event-bus.js";
import type { NamespaceRevisionRecord } from "../store/namespace-store.js";
import type { Store } from "../store/store.js";
import type { TaskRecord } from "../store/task-store.js";
import { NAMESPACE_PUBLISH_FAILED } from "./namespace-events.js";
import { DEFAULT_TAG, type BlobRef, type NamespacePublisher } from "./namespace-publisher.js";

/** One publish of a task's artefacts. */
export interface TaskArtefactPublish {
  namespace: string;
  task: TaskRecord;
  /** Keep the files of the tagged revision and add the artefacts; replace them all otherwise. */
  append: boolean;
  /** Tag the new revision is based on and moved to; DEFAULT_TAG when empty. */
  tag?: string;
  creatorId: string;
}

/**
 * Makes a revision of `namespace` from the task's committed artefacts (all of them, by path):
 * replace mode makes a revision holding exactly them, append mode the tagged revision plus them
 * (an artefact replaces a file at the same path). Rights are the caller's business.
 */
export async function publishTaskArtefacts(
  store: Store,
  publisher: NamespacePublisher,
  p: TaskArtefactPublish,
): Promise<NamespaceRevisionRecord> {
  const artefacts = await store.artefacts.list(p.task.id, "");
  const put = new Map<string, BlobRef>(artefacts.map((a) => [a.path, { sha256: a.sha256, size: a.size }]));
  return publisher.publish({
    namespace: p.namespace,
    tag: p.tag || DEFAULT_TAG,
    changes: { put, replaceAll: !p.append },
    taskId: p.task.id,
    message: `${p.append ? "append" : "publish"} artefacts of task ${p.task.id}`,
    creatorId: p.creatorId,
  });
}

/** Options of {@link createPublishOnSuccess}. */
export interface PublishOnSuccessOptions {
  store: Store;
  publisher: NamespacePublisher;
  events: EventBus;
  logger: Logger;
}

/**
 * The scheduler's hook for an attempt that ended with result success: when the task has a
 * `tag_namespace`, publishes its artefacts there (`publish_mode` "append" appends, anything else
 * replaces) with its owner's rights, moving the `latest` tag. Runs before the attempt's end is
 * recorded, after the agent uploaded the artefacts, so a task seen done has published.
 *
 * Never throws: a failure (namespace missing, the owner may not write it, a store error) is
 * published as a NAMESPACE_PUBLISH_FAILED event and resolves to the note the task's `error`
 * field records; the task keeps its success result, since its script did succeed and its
 * artefacts are stored (publish them again with PublishTaskArtefacts). Resolves to "" when there
 * was nothing to do or the publish succeeded.
 */
export function createPublishOnSuccess(o: PublishOnSuccessOptions): (task: TaskRecord) => Promise<string> {
  return async (task) => {
    const namespace = task.definition.tagNamespace;
    if (!namespace) return "";
    const append = task.definition.publishMode === "append";
    try {
      const owner = await o.store.users.get(task.ownerId);
      const ns = await o.store.namespaces.get(namespace);
      if (!ns) throw new Error(`namespace ${namespace} not found`);
      if (!owner || !(await userCanWrite(o.store, owner, ns))) {
        throw new Error(`the task's owner may not write namespace ${namespace}`);
      }
      const revision = await publishTaskArtefacts(o.store, o.publisher, { namespace, task, append, creatorId: owner.id });
      o.logger.info({ taskId: task.id, namespace, revision: revision.number, append }, "published task artefacts");
      return "";
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      const note = `publishing artefacts to namespace ${namespace} failed: ${why}`;
      o.logger.warn({ taskId: task.id, namespace, err }, "publishing task artefacts failed");
      try {
        await o.events.publish(NAMESPACE_PUBLISH_FAILED, task.id, undefined, {
          namespace,
          task_id: task.id,
          owner_id: task.ownerId,
          error: why,
        });
      } catch (eventErr) {
        o.logger.error({ err: eventErr, taskId: task.id }, "could not record the publish failure event");
      }
      return note;
    }
  };
}
