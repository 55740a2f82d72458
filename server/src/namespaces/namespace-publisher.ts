import type { EventBus } from "../events/event-bus.js";
import type {
  NamespaceFileRecord,
  NamespaceRecord,
  NamespaceRevisionRecord,
  NamespaceStore,
  NamespaceTagRecord,
} from "../store/namespace-store.js";
import { NAMESPACE_PUBLISHED, NAMESPACE_TAG_DELETED, NAMESPACE_TAG_MOVED } from "./namespace-events.js";

/** The tag reads and publishes use when none is named. */
export const DEFAULT_TAG = "latest";

/** A blob a namespace path points at. */
export interface BlobRef {
  sha256: string;
  size: number;
}

/**
 * What a publish changes, relative to its base revision: `put` paths get that content, `remove`
 * paths disappear, other paths keep the base's content. With replaceAll the new revision holds
 * exactly `put` (the base is irrelevant). Paths must be normalised (normalizeFilePath).
 */
export interface NamespaceChanges {
  put: ReadonlyMap<string, BlobRef>;
  remove?: readonly string[];
  replaceAll?: boolean;
}

/** One publish: a new revision from a base ref plus changes; the tag moves to it. */
export interface PublishRequest {
  namespace: string;
  /** Tag moved to the new revision; DEFAULT_TAG when empty. */
  tag?: string;
  /**
   * Revision the changes apply to: a tag name or a revision number; the tag itself when empty.
   * A tag that does not exist yet means the head.
   */
  base?: string;
  changes: NamespaceChanges;
  /** When true, removing a path the base does not have fails with NamespacePathNotFoundError. */
  strictRemove?: boolean;
  taskId?: string;
  message?: string;
  creatorId: string;
}

/** The namespace does not exist (any more). */
export class NamespaceNotFoundError extends Error {
  override name = "NamespaceNotFoundError";
  constructor(readonly namespace: string) {
    super(`namespace ${namespace} not found`);
  }
}

/** A ref names no tag or revision of the namespace. */
export class NamespaceRefNotFoundError extends Error {
  override name = "NamespaceRefNotFoundError";
  constructor(
    readonly namespace: string,
    readonly ref: string,
  ) {
    super(`namespace ${namespace} has no tag or revision ${JSON.stringify(ref)}`);
  }
}

/** A removed path is not in the base revision. */
export class NamespacePathNotFoundError extends Error {
  override name = "NamespacePathNotFoundError";
  constructor(
    readonly namespace: string,
    readonly paths: readonly string[],
  ) {
    super(`namespace ${namespace} has no file ${paths.map((p) => JSON.stringify(p)).join(", ")}`);
  }
}

/** Publishes kept losing the cross-process compare-and-set. */
export class NamespaceBusyError extends Error {
  override name = "NamespaceBusyError";
}

/** A ref that names a revision by number ("12"); anything else names a tag. */
const REVISION_REF = /^[0-9]+$/;

/** Whether name may be a tag: tag names share the resource-name rules but cannot be all digits. */
export function isRevisionRef(ref: string): boolean {
  return REVISION_REF.test(ref);
}

/** Options of {@link NamespacePublisher}. */
export interface NamespacePublisherOptions {
  store: NamespaceStore;
  events: EventBus;
  now?: () => number;
  /** Commits tried before a publish gives up against other server processes; default 20. */
  maxAttempts?: number;
}

/**
 * Makes namespace revisions and moves tags (DESIGN §4).
 *
 * A publish computes the delta of the new revision against the namespace's head and commits it
 * with NamespaceStore.commitRevision, so its cost grows with the changed paths, not with the
 * namespace: only when the base is an older revision (after a rollback) does it also read the
 * paths that differ between base and head, and only replaceAll reads the head's whole listing.
 *
 * Publishes, tag moves and tag removals of one namespace run one at a time through an in-process
 * queue per namespace, in call order; across server processes the store's compare-and-set on
 * the head decides and the loser recomputes against the new head (up to maxAttempts times).
 * So publishes are serialized, never interleaved: each revision is its parent plus its own
 * changes. Every tag move publishes NAMESPACE_TAG_MOVED after it is committed.
 */
export class NamespacePublisher {
  private readonly tails = new Map<string, Promise<unknown>>();
  private readonly now: () => number;

  constructor(private readonly o: NamespacePublisherOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Runs fn after every earlier queued operation on the namespace settled. */
  private serialize<T>(namespace: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(namespace) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.tails.set(namespace, tail);
    void tail.then(() => {
      if (this.tails.get(namespace) === tail) this.tails.delete(namespace);
    });
    return run;
  }

  /**
   * The revision number a ref names: "" means DEFAULT_TAG; digits name a revision (0 … head, 0
   * being the empty state before the first publish); anything else is a tag. DEFAULT_TAG of a namespace that has no revision yet names 0 (empty).
   */
  async resolveRef(ns: NamespaceRecord, ref: string): Promise<number> {
    const name = ref || DEFAULT_TAG;
    if (isRevisionRef(name)) {
      const number = Number(name);
      if (number > ns.headRevision) throw new NamespaceRefNotFoundError(ns.name, name);
      return number;
    }
    const tag = await this.o.store.getTag(ns.name, name);
    if (tag) return tag.revision;
    if (name === DEFAULT_TAG && ns.headRevision === 0) return 0;
    throw new NamespaceRefNotFoundError(ns.name, name);
  }

  /** Commits a new revision (head + 1) and moves the tag to it; see PublishRequest. */
  publish(request: PublishRequest): Promise<NamespaceRevisionRecord> {
    return this.serialize(request.namespace, async () => {
      const attempts = this.o.maxAttempts ?? 20;
      for (let attempt = 1; attempt <= attempts; attempt++) {
        const { revision, previous } = await this.tryPublish(request);
        if (revision) {
          const ns = await this.o.store.get(request.namespace);
          await this.o.events.publish(NAMESPACE_PUBLISHED, request.namespace, undefined, {
            namespace: request.namespace,
            owner_id: ns?.ownerId ?? "",
            revision: String(revision.number),
            tag: request.tag || DEFAULT_TAG,
            creator_id: request.creatorId,
            message: request.message ?? "",
          });
          await this.tagMoved(request.namespace, request.tag || DEFAULT_TAG, revision.number, previous);
          return revision;
        }
        // Another server process committed first: recompute against its head.
        await new Promise((resolve) => setTimeout(resolve, Math.min(100, 2 ** attempt)));
      }
      throw new NamespaceBusyError(`namespace ${request.namespace}: ${attempts} concurrent publishes won in a row; retry`);
    });
  }

  private async tryPublish(
    request: PublishRequest,
  ): Promise<{ revision: NamespaceRevisionRecord | undefined; previous: number }> {
    const { store } = this.o;
    const ns = await store.get(request.namespace);
    if (!ns) throw new NamespaceNotFoundError(request.namespace);
    const tagName = request.tag || DEFAULT_TAG;
    const tag = await store.getTag(ns.name, tagName);
    const head = ns.headRevision;
    const baseRef = request.base || tagName;
    const base = !request.base && !tag ? head : await this.resolveRef(ns, baseRef);
    const { changes } = request;
    const remove = changes.remove ?? [];

    if (request.strictRemove && remove.length > 0) {
      const present = new Set((await store.getFiles(ns.name, base, remove)).map((f) => f.path));
      const missing = remove.filter((p) => !present.has(p));
      if (missing.length > 0) throw new NamespacePathNotFoundError(ns.name, missing);
    }

    // The wanted content of every path that may differ from the head: a file, or null (absent).
    const wanted = new Map<string, NamespaceFileRecord | null>();
    let headFiles: NamespaceFileRecord[] | undefined;
    if (changes.replaceAll) {
      headFiles = await store.listFiles(ns.name, head);
      for (const file of headFiles) wanted.set(file.path, null);
    } else if (base !== head) {
      const diff = await store.diff(ns.name, base, head);
      for (const file of diff.added) wanted.set(file.path, null);
      for (const file of diff.changed) wanted.set(file.path, null);
      for (const file of diff.removed) wanted.set(file.path, file);
      const changedPaths = diff.changed.map((f) => f.path);
      for (const file of await store.getFiles(ns.name, base, changedPaths)) wanted.set(file.path, file);
    }
    for (const path of remove) wanted.set(path, null);
    for (const [path, blob] of changes.put) wanted.set(path, { path, sha256: blob.sha256, size: blob.size });

    const current = new Map((headFiles ?? (await store.getFiles(ns.name, head, [...wanted.keys()]))).map((f) => [f.path, f]));
    const put: NamespaceFileRecord[] = [];
    const removed: string[] = [];
    for (const [path, file] of wanted) {
      const now = current.get(path);
      if (file === null) {
        if (now) removed.push(path);
      } else if (!now || now.sha256 !== file.sha256 || now.size !== file.size) {
        put.push(file);
      }
    }
    const revision = await store.commitRevision({
      namespace: ns.name,
      head,
      parent: base,
      put,
      remove: removed,
      taskId: request.taskId ?? "",
      message: request.message ?? "",
      creatorId: request.creatorId,
      tag: tagName,
      now: this.now(),
    });
    return { revision, previous: tag?.revision ?? 0 };
  }

  /** Points tag at the revision ref names (a rollback when it is older); copies nothing. */
  setTag(namespace: string, tag: string, ref: string): Promise<NamespaceTagRecord> {
    return this.serialize(namespace, async () => {
      const ns = await this.o.store.get(namespace);
      if (!ns) throw new NamespaceNotFoundError(namespace);
      const revision = await this.resolveRef(ns, ref);
      const previous = await this.o.store.getTag(namespace, tag);
      const now = this.now();
      if (revision === 0 || !(await this.o.store.setTag(namespace, tag, revision, now))) {
        throw new NamespaceRefNotFoundError(namespace, ref);
      }
      await this.tagMoved(namespace, tag, revision, previous?.revision ?? 0);
      return { name: tag, revision, updateTime: now };
    });
  }

  /** Removes a tag; false when it did not exist. */
  deleteTag(namespace: string, tag: string): Promise<boolean> {
    return this.serialize(namespace, async () => {
      const previous = await this.o.store.getTag(namespace, tag);
      if (!previous || !(await this.o.store.deleteTag(namespace, tag))) return false;
      await this.o.events.publish(NAMESPACE_TAG_DELETED, namespace, undefined, {
        namespace,
        tag,
        revision: String(previous.revision),
      });
      return true;
    });
  }

  /** Publishes NAMESPACE_TAG_MOVED for a tag that now points at revision. */
  async tagMoved(namespace: string, tag: string, revision: number, previous: number): Promise<void> {
    await this.o.events.publish(NAMESPACE_TAG_MOVED, namespace, undefined, {
      namespace,
      tag,
      revision: String(revision),
      previous: String(previous),
    });
  }
}
