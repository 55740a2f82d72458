/** Who may read a namespace (DESIGN §4). */
export type NamespaceVisibility = "public" | "internal" | "organization" | "private";

/** A namespace row. headRevision is 0 before the first publish. Times are ms since the epoch. */
export interface NamespaceRecord {
  name: string;
  ownerId: string;
  /** Empty when the namespace belongs to no organization. */
  organizationId: string;
  visibility: NamespaceVisibility;
  headRevision: number;
  createTime: number;
}

/** An immutable revision of a namespace. */
export interface NamespaceRevisionRecord {
  namespace: string;
  /** 1, 2, 3, … per namespace. */
  number: number;
  /** The revision this one was made from (0 for none); not number - 1 after a rollback. */
  parent: number;
  fileCount: number;
  totalSize: number;
  /** Task whose artefacts made it, empty otherwise. */
  taskId: string;
  message: string;
  creatorId: string;
  createTime: number;
}

/** One file of a revision: a path and the blob it names. */
export interface NamespaceFileRecord {
  path: string;
  size: number;
  /** Hex sha256 of the content (the blob store key). */
  sha256: string;
}

/** A tag: a name pointing at a revision. */
export interface NamespaceTagRecord {
  name: string;
  revision: number;
  updateTime: number;
}

/** Paths that differ between two revisions, each list sorted by path. */
export interface NamespaceDiff {
  /** In `to` only. */
  added: NamespaceFileRecord[];
  /** In `from` only (with their content in `from`). */
  removed: NamespaceFileRecord[];
  /** In both with different content (with their content in `to`). */
  changed: NamespaceFileRecord[];
}

/** One stored content of a path and the revisions [fromRevision, toRevision) it is valid in; toRevision null: still in the head. */
export interface NamespaceFileRange extends NamespaceFileRecord {
  fromRevision: number;
  toRevision: number | null;
}

/**
 * The diff between revisions `from` and `to` given every range of the paths that may differ
 * (ranges starting or ending between them), sorted by path then fromRevision. Both backends read
 * those ranges with one indexed query and share this comparison.
 */
export function diffFileRanges(ranges: readonly NamespaceFileRange[], from: number, to: number): NamespaceDiff {
  const diff: NamespaceDiff = { added: [], removed: [], changed: [] };
  const validAt = (r: NamespaceFileRange, rev: number) => r.fromRevision <= rev && (r.toRevision === null || r.toRevision > rev);
  const file = (r: NamespaceFileRange): NamespaceFileRecord => ({ path: r.path, size: r.size, sha256: r.sha256 });
  for (let i = 0; i < ranges.length;) {
    const path = ranges[i]!.path;
    let before: NamespaceFileRange | undefined;
    let after: NamespaceFileRange | undefined;
    for (; i < ranges.length && ranges[i]!.path === path; i++) {
      if (validAt(ranges[i]!, from)) before = ranges[i];
      if (validAt(ranges[i]!, to)) after = ranges[i];
    }
    if (before && after) {
      if (before.sha256 !== after.sha256 || before.size !== after.size) diff.changed.push(file(after));
    } else if (after) {
      diff.added.push(file(after));
    } else if (before) {
      diff.removed.push(file(before));
    }
  }
  return diff;
}

/**
 * A new revision as a delta against the current head: `put` paths get new content, `remove`
 * paths disappear; every other path keeps its head content. A path is in at most one of them.
 */
export interface RevisionCommit {
  namespace: string;
  /** The head the delta was computed against; the commit fails when the head moved since. */
  head: number;
  /** Revision the new one was based on (head, or an older one after a rollback). */
  parent: number;
  put: NamespaceFileRecord[];
  remove: string[];
  taskId: string;
  message: string;
  creatorId: string;
  /** Tag moved to the new revision, in the same transaction. */
  tag: string;
  now: number;
}

/**
 * Persistence of namespaces, their revisions, files and tags.
 *
 * A file's content is stored as a validity range [fromRevision, toRevision) of revisions, so a
 * revision is written as the delta to the previous head: commitRevision() costs O(changed paths),
 * not O(files), and diff() costs O(paths changed between the two revisions). Revisions are never
 * changed once committed. commitRevision() is a compare-and-set on the head, so concurrent
 * writers (also in other server processes) never interleave: one commits, the others get
 * undefined and recompute their delta against the new head. Every method is atomic.
 */
export interface NamespaceStore {
  /** Inserts a namespace with head 0; false when the name is taken. */
  create(ns: NamespaceRecord): Promise<boolean>;
  get(name: string): Promise<NamespaceRecord | undefined>;
  /** Every namespace, by name. */
  list(): Promise<NamespaceRecord[]>;
  /** Changes visibility and organization; undefined when the namespace does not exist. */
  update(name: string, fields: Pick<NamespaceRecord, "visibility" | "organizationId">): Promise<NamespaceRecord | undefined>;
  /** Removes a namespace with its revisions, files and tags; false when it did not exist. */
  delete(name: string): Promise<boolean>;

  /** Revisions, newest first. */
  listRevisions(name: string): Promise<NamespaceRevisionRecord[]>;
  getRevision(name: string, number: number): Promise<NamespaceRevisionRecord | undefined>;
  /**
   * Commits a new revision head + 1 from the delta and moves `tag` to it; undefined when the
   * namespace's head is no longer `head` (a concurrent commit won) or the namespace is gone.
   */
  commitRevision(commit: RevisionCommit): Promise<NamespaceRevisionRecord | undefined>;
  /**
   * Creates namespace `to` (head 1) whose revision 1 holds the files of `fromName` at
   * `fromRevision`, with `tag` on it; false when `to.name` is taken.
   */
  clone(
    fromName: string,
    fromRevision: number,
    to: NamespaceRecord,
    revision: Omit<NamespaceRevisionRecord, "namespace" | "number" | "parent" | "fileCount" | "totalSize">,
    tag: string,
  ): Promise<NamespaceRevisionRecord | undefined>;

  /** Files of a revision, by path; only those whose path starts with prefix when given. */
  listFiles(name: string, revision: number, prefix?: string): Promise<NamespaceFileRecord[]>;
  /** The given paths as they are in a revision (absent paths are left out). */
  getFiles(name: string, revision: number, paths: readonly string[]): Promise<NamespaceFileRecord[]>;
  /** What changed from revision `from` to revision `to` (either may be the older; 0 is empty). */
  diff(name: string, from: number, to: number): Promise<NamespaceDiff>;

  /** Tags by name. */
  listTags(name: string): Promise<NamespaceTagRecord[]>;
  getTag(name: string, tag: string): Promise<NamespaceTagRecord | undefined>;
  /** Points a tag at an existing revision (creating the tag); false when the revision does not exist. */
  setTag(name: string, tag: string, revision: number, now: number): Promise<boolean>;
  /** False when the tag did not exist. */
  deleteTag(name: string, tag: string): Promise<boolean>;
}
