import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { NamespaceService, Visibility } from "@mottainai/proto";
import { checkedName, checkedPath, checkedPrefix, readableTask } from "../auth/file-access.js";
import { canReadNamespace, readableNamespace, writableNamespace } from "../auth/namespace-access.js";
import { isPrivileged, principalKey, requireUser } from "../auth/principal.js";
import type { BlobStore } from "../blob/blob-store.js";
import { receiveUpload } from "../blob/receive-upload.js";
import { readBlobChunks } from "../blob/send-blob.js";
import {
  namespaceFileToProto,
  namespaceToProto,
  revisionToProto,
  tagToProto,
  visibilityFromProto,
} from "../convert/namespace-convert.js";
import type { EventBus } from "../events/event-bus.js";
import { NAMESPACE_CREATED, NAMESPACE_DELETED } from "../namespaces/namespace-events.js";
import {
  DEFAULT_TAG,
  isRevisionRef,
  NamespaceBusyError,
  NamespaceNotFoundError,
  NamespacePathNotFoundError,
  NamespaceRefNotFoundError,
  type NamespacePublisher,
} from "../namespaces/namespace-publisher.js";
import { publishTaskArtefacts } from "../namespaces/task-artefact-publishing.js";
import type { NamespaceRecord, NamespaceVisibility } from "../store/namespace-store.js";
import type { Store } from "../store/store.js";
import type { UserRecord } from "../store/user-store.js";

/** Dependencies of the namespace service. */
export interface NamespaceServiceOptions {
  store: Store;
  blobs: BlobStore;
  publisher: NamespacePublisher;
  events: EventBus;
  /** Largest accepted file (ServerConfig.maxUploadBytes). */
  maxUploadBytes: number;
  now?: () => number;
}

/** Value of UpdateNamespaceRequest.organization_id that removes the namespace from its organization. */
export const NO_ORGANIZATION = "-";

/** Visibility of a namespace created without one: readable by its writers only. */
export const DEFAULT_VISIBILITY: NamespaceVisibility = "private";

/** A tag name: a resource name that is not all digits (those name revisions). */
export function checkedTag(tag: string, field: string): string {
  if (tag === "") return DEFAULT_TAG;
  checkedName(tag, field);
  if (isRevisionRef(tag))
    throw new ConnectError(`${field}: a tag name cannot be all digits (that names a revision)`, Code.InvalidArgument);
  return tag;
}

/** A ref: a tag name or a revision number ("" for DEFAULT_TAG). */
function checkedRef(ref: string, field: string): string {
  if (ref === "" || isRevisionRef(ref)) return ref;
  return checkedName(ref, field);
}

/** The domain errors of namespace publishing as ConnectErrors; anything else is rethrown. */
export function publishErrorToConnect(err: unknown): never {
  if (
    err instanceof NamespaceNotFoundError ||
    err instanceof NamespaceRefNotFoundError ||
    err instanceof NamespacePathNotFoundError
  ) {
    throw new ConnectError(err.message, Code.NotFound);
  }
  if (err instanceof NamespaceBusyError) throw new ConnectError(err.message, Code.Aborted);
  throw err;
}

async function mapped<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    return publishErrorToConnect(err);
  }
}

/**
 * NamespaceService (DESIGN §4). Reads are callable anonymously (the authenticator lets them
 * through without a token) and honour visibility through auth/namespace-access.ts: a caller who
 * may not read a namespace gets NotFound, exactly as for one that does not exist; a caller who
 * can read it but not change it gets PermissionDenied on changes. Revisions are made by
 * NamespacePublisher, which serializes publishes per namespace.
 */
export function createNamespaceService(o: NamespaceServiceOptions): ServiceImpl<typeof NamespaceService> {
  const now = o.now ?? Date.now;
  const { store } = o;

  const view = async (ns: NamespaceRecord) => namespaceToProto(ns, await store.namespaces.listTags(ns.name));

  const revisionOf = async (ns: NamespaceRecord, ref: string, field: string): Promise<number> =>
    mapped(o.publisher.resolveRef(ns, checkedRef(ref, field)));

  /** The organization id for a namespace of `user`: it must exist and the user must belong to it. */
  const organizationFor = async (user: UserRecord, idOrName: string): Promise<string> => {
    const org = (await store.organizations.get(idOrName)) ?? (await store.organizations.getByName(idOrName));
    if (!org) throw new ConnectError(`organization_id: organization ${idOrName} not found`, Code.NotFound);
    if (!isPrivileged(user) && !org.members.some((m) => m.userId === user.id)) {
      throw new ConnectError(`organization_id: you are not a member of organization ${org.name}`, Code.PermissionDenied);
    }
    return org.id;
  };

  const principal = (ctx: HandlerContext) => ctx.values.get(principalKey);

  /**
   * CloneNamespace with replace onto an existing namespace: a new revision of `target` holding
   * exactly the files of `source` at `fromRevision` (none for revision 0), its latest tag moved.
   */
  const replaceWithRevision = async (
    caller: ReturnType<typeof principal>,
    source: NamespaceRecord,
    fromRevision: number,
    target: string,
    message: string,
  ) => {
    const { ns, user } = await writableNamespace(store, caller, target);
    const files = fromRevision === 0 ? [] : await store.namespaces.listFiles(source.name, fromRevision);
    const revision = await mapped(
      o.publisher.publish({
        namespace: ns.name,
        tag: DEFAULT_TAG,
        changes: { put: new Map(files.map((f) => [f.path, { sha256: f.sha256, size: f.size }])), replaceAll: true },
        message,
        creatorId: user.id,
      }),
    );
    const updated = (await store.namespaces.get(ns.name)) ?? ns;
    return { namespace: await view(updated), revision: revisionToProto(revision) };
  };

  return {
    async createNamespace(req, ctx) {
      const user = requireUser(ctx);
      const name = checkedName(req.name, "name");
      const visibility = req.visibility === Visibility.UNSPECIFIED ? DEFAULT_VISIBILITY : visibilityFromProto(req.visibility);
      if (!visibility) throw new ConnectError(`visibility: unknown value ${req.visibility}`, Code.InvalidArgument);
      const organizationId = req.organizationId ? await organizationFor(user, req.organizationId) : "";
      if (visibility === "organization" && !organizationId) {
        throw new ConnectError("organization_id: an organization-visible namespace needs an organization", Code.InvalidArgument);
      }
      const ns: NamespaceRecord = { name, ownerId: user.id, organizationId, visibility, headRevision: 0, createTime: now() };
      if (!(await store.namespaces.create(ns))) {
        throw new ConnectError(`namespace ${name} already exists`, Code.AlreadyExists);
      }
      await o.events.publish(NAMESPACE_CREATED, name, undefined, { namespace: name, owner_id: user.id, visibility });
      return { namespace: await view(ns) };
    },

    async getNamespace(req, ctx) {
      return { namespace: await view(await readableNamespace(store, principal(ctx), req.name)) };
    },

    async listNamespaces(_req, ctx) {
      const caller = principal(ctx);
      const readable: NamespaceRecord[] = [];
      for (const ns of await store.namespaces.list()) {
        if (await canReadNamespace(store, caller, ns)) readable.push(ns);
      }
      return { namespaces: await Promise.all(readable.map(view)) };
    },

    async updateNamespace(req, ctx) {
      const { ns, user } = await writableNamespace(store, principal(ctx), req.name);
      let visibility = ns.visibility;
      if (req.visibility !== Visibility.UNSPECIFIED) {
        const v = visibilityFromProto(req.visibility);
        if (!v) throw new ConnectError(`visibility: unknown value ${req.visibility}`, Code.InvalidArgument);
        visibility = v;
      }
      let organizationId = ns.organizationId;
      if (req.organizationId === NO_ORGANIZATION) organizationId = "";
      else if (req.organizationId) organizationId = await organizationFor(user, req.organizationId);
      if (visibility === "organization" && !organizationId) {
        throw new ConnectError("organization_id: an organization-visible namespace needs an organization", Code.InvalidArgument);
      }
      const updated = await store.namespaces.update(ns.name, { visibility, organizationId });
      if (!updated) throw new ConnectError(`namespace ${ns.name} not found`, Code.NotFound);
      return { namespace: await view(updated) };
    },

    async deleteNamespace(req, ctx) {
      const { ns } = await writableNamespace(store, principal(ctx), req.name);
      if (!(await store.namespaces.delete(ns.name))) throw new ConnectError(`namespace ${ns.name} not found`, Code.NotFound);
      await o.events.publish(NAMESPACE_DELETED, ns.name, undefined, { namespace: ns.name, owner_id: ns.ownerId });
      return {};
    },

    async listRevisions(req, ctx) {
      const ns = await readableNamespace(store, principal(ctx), req.name);
      return { revisions: (await store.namespaces.listRevisions(ns.name)).map(revisionToProto) };
    },

    async getRevision(req, ctx) {
      const ns = await readableNamespace(store, principal(ctx), req.name);
      const number = await revisionOf(ns, req.ref, "ref");
      const revision = number === 0 ? undefined : await store.namespaces.getRevision(ns.name, number);
      if (!revision) throw new ConnectError(`namespace ${ns.name} has no revision yet`, Code.NotFound);
      return { revision: revisionToProto(revision) };
    },

    async diffRevisions(req, ctx) {
      const ns = await readableNamespace(store, principal(ctx), req.name);
      const to = await revisionOf(ns, req.toRef, "to_ref");
      // Without from_ref: what the `to` revision changed against its parent.
      const from = req.fromRef
        ? await revisionOf(ns, req.fromRef, "from_ref")
        : ((await store.namespaces.getRevision(ns.name, to))?.parent ?? 0);
      const diff = await store.namespaces.diff(ns.name, from, to);
      return {
        added: diff.added.map(namespaceFileToProto),
        removed: diff.removed.map(namespaceFileToProto),
        changed: diff.changed.map(namespaceFileToProto),
      };
    },

    async setTag(req, ctx) {
      const { ns } = await writableNamespace(store, principal(ctx), req.name);
      const tag = checkedTag(req.tag, "tag");
      if (!req.ref) throw new ConnectError("ref: a tag name or revision number is required", Code.InvalidArgument);
      const moved = await mapped(o.publisher.setTag(ns.name, tag, checkedRef(req.ref, "ref")));
      return { tag: tagToProto(moved) };
    },

    async deleteTag(req, ctx) {
      const { ns } = await writableNamespace(store, principal(ctx), req.name);
      if (!req.tag) throw new ConnectError("tag: a tag name is required", Code.InvalidArgument);
      if (!(await o.publisher.deleteTag(ns.name, req.tag))) {
        throw new ConnectError(`namespace ${ns.name} has no tag ${req.tag}`, Code.NotFound);
      }
      return {};
    },

    async publishTaskArtefacts(req, ctx) {
      const caller = principal(ctx);
      const { ns, user } = await writableNamespace(store, caller, req.name);
      const task = await readableTask(store, caller, req.taskId);
      const revision = await mapped(
        publishTaskArtefacts(store, o.publisher, {
          namespace: ns.name,
          task,
          append: req.append,
          tag: checkedTag(req.tag, "tag"),
          creatorId: user.id,
        }),
      );
      return { revision: revisionToProto(revision) };
    },

    async cloneNamespace(req, ctx) {
      const caller = principal(ctx);
      const user = requireUser(ctx);
      const source = await readableNamespace(store, caller, req.fromName);
      const name = checkedName(req.toName, "to_name");
      const fromRevision = await revisionOf(source, req.fromRef, "from_ref");
      // The clone keeps the source's visibility and organization when its creator belongs there.
      let { visibility, organizationId } = source;
      if (organizationId && !isPrivileged(user) && !(await store.organizations.memberRole(organizationId, user.id))) {
        organizationId = "";
        if (visibility === "organization") visibility = "private";
      }
      const message = `clone of ${source.name}@${fromRevision}`;
      if (req.replace && (await store.namespaces.get(name))) {
        return replaceWithRevision(caller, source, fromRevision, name, message);
      }
      const ns: NamespaceRecord = { name, ownerId: user.id, organizationId, visibility, headRevision: 0, createTime: now() };
      if (fromRevision === 0) {
        if (!(await store.namespaces.create(ns))) throw new ConnectError(`namespace ${name} already exists`, Code.AlreadyExists);
        return { namespace: await view(ns) };
      }
      const revision = await store.namespaces.clone(
        source.name,
        fromRevision,
        ns,
        { taskId: "", message, creatorId: user.id, createTime: now() },
        DEFAULT_TAG,
      );
      if (!revision) throw new ConnectError(`namespace ${name} already exists`, Code.AlreadyExists);
      await o.publisher.tagMoved(name, DEFAULT_TAG, 1, 0);
      return { namespace: await view({ ...ns, headRevision: 1 }), revision: revisionToProto(revision) };
    },

    async listFiles(req, ctx) {
      const ns = await readableNamespace(store, principal(ctx), req.name);
      const revision = await revisionOf(ns, req.ref, "ref");
      const files = await store.namespaces.listFiles(ns.name, revision, checkedPrefix(req.prefix));
      return { files: files.map(namespaceFileToProto) };
    },

    async uploadFile(requests, ctx) {
      const caller = principal(ctx);
      let target: { ns: NamespaceRecord; user: UserRecord } | undefined;
      let path = "";
      let tag = DEFAULT_TAG;
      const { blob } = await receiveUpload(requests, {
        blobs: o.blobs,
        maxBytes: o.maxUploadBytes,
        accept: async (h) => {
          target = await writableNamespace(store, caller, h.name);
          path = checkedPath(h.path, "header.path");
          tag = checkedTag(h.tag, "header.tag");
        },
      });
      const { ns, user } = target!;
      const revision = await mapped(
        o.publisher.publish({
          namespace: ns.name,
          tag,
          changes: { put: new Map([[path, blob]]) },
          message: `upload ${path}`,
          creatorId: user.id,
        }),
      );
      return { revision: revisionToProto(revision), file: namespaceFileToProto({ path, ...blob }) };
    },

    async removeFile(req, ctx) {
      const { ns, user } = await writableNamespace(store, principal(ctx), req.name);
      if (req.paths.length === 0) throw new ConnectError("paths: at least one path is required", Code.InvalidArgument);
      const paths = [...new Set(req.paths.map((p, i) => checkedPath(p, `paths[${i}]`)))];
      const revision = await mapped(
        o.publisher.publish({
          namespace: ns.name,
          tag: checkedTag(req.tag, "tag"),
          changes: { put: new Map(), remove: paths },
          strictRemove: true,
          message: `remove ${paths.join(", ")}`,
          creatorId: user.id,
        }),
      );
      return { revision: revisionToProto(revision) };
    },

    async *downloadFile(req, ctx) {
      const ns = await readableNamespace(store, principal(ctx), req.name);
      const revision = await revisionOf(ns, req.ref, "ref");
      const path = checkedPath(req.path, "path");
      const [record] = await store.namespaces.getFiles(ns.name, revision, [path]);
      if (!record) throw new ConnectError(`namespace ${ns.name} has no file ${JSON.stringify(path)}`, Code.NotFound);
      if (req.offset > BigInt(record.size)) {
        throw new ConnectError(`offset: ${req.offset} is past the end of ${path} (${record.size} bytes)`, Code.OutOfRange);
      }
      const file = namespaceFileToProto(record);
      let first = true;
      for await (const { offset, chunk } of readBlobChunks(o.blobs, record.sha256, Number(req.offset))) {
        yield { file: first ? file : undefined, offset: BigInt(offset), chunk };
        first = false;
      }
      if (first) yield { file, offset: req.offset, chunk: new Uint8Array() };
    },
  };
}
