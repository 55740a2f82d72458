import { Code, ConnectError } from "@connectrpc/connect";
import type { NamespaceRecord } from "../store/namespace-store.js";
import type { Store } from "../store/store.js";
import type { UserRecord } from "../store/user-store.js";
import { checkedName } from "./file-access.js";
import { isPrivileged, type Principal } from "./principal.js";

// Who may read and write a namespace (DESIGN §4, §7), shared by NamespaceService, the plain HTTP
// namespace routes and the publish-on-success hook, so that every read path answers alike.
//
// Write: the namespace's owner, managers and admins, and the owners (MemberRole owner) of its
// organization. Tasks never write through their token: a task's artefacts reach a namespace
// only through its tag_namespace, published with its owner's rights.
//
// Read, by visibility: public — anyone, anonymous callers too; internal — any signed-in user and
// any running task; organization — members of the namespace's organization (and writers);
// private — its writers only. A running task (task token) also reads the namespaces its
// definition's `namespace` field declares, but only those its owner may read: declaring a name
// grants nothing its owner does not have.

/** Whether the user may change the namespace (publish, tag, update, delete). */
export async function userCanWrite(store: Store, user: UserRecord, ns: NamespaceRecord): Promise<boolean> {
  if (isPrivileged(user) || ns.ownerId === user.id) return true;
  if (!ns.organizationId) return false;
  return (await store.organizations.memberRole(ns.organizationId, user.id)) === "owner";
}

/** Whether the user may read the namespace. */
export async function userCanRead(store: Store, user: UserRecord, ns: NamespaceRecord): Promise<boolean> {
  if (ns.visibility === "public" || ns.visibility === "internal") return true;
  if (await userCanWrite(store, user, ns)) return true;
  if (ns.visibility === "organization" && ns.organizationId) {
    return (await store.organizations.memberRole(ns.organizationId, user.id)) !== undefined;
  }
  return false;
}

/** Whether the principal may read the namespace; see the rules above. */
export async function canReadNamespace(store: Store, principal: Principal, ns: NamespaceRecord): Promise<boolean> {
  if (ns.visibility === "public") return true;
  switch (principal.kind) {
    case "user":
      return userCanRead(store, principal.user, ns);
    case "task": {
      if (ns.visibility === "internal") return true;
      if (!principal.task.definition.namespace.includes(ns.name)) return false;
      const owner = await store.users.get(principal.task.ownerId);
      return owner !== undefined && (await userCanRead(store, owner, ns));
    }
    default:
      return false;
  }
}

/**
 * The namespace `name` if the principal may read it. NotFound both when it does not exist and
 * when the caller may not read it, so that its existence is not revealed; InvalidArgument for a
 * malformed name.
 */
export async function readableNamespace(store: Store, principal: Principal, name: string): Promise<NamespaceRecord> {
  checkedName(name, "name");
  const ns = await store.namespaces.get(name);
  if (!ns || !(await canReadNamespace(store, principal, ns))) {
    throw new ConnectError(`namespace ${name} not found`, Code.NotFound);
  }
  return ns;
}

/**
 * The namespace `name` if the principal may change it, with the user who does. Unauthenticated
 * for anonymous callers; NotFound for callers who may not read it (as readableNamespace);
 * PermissionDenied for those who can see it but not change it (tasks included).
 */
export async function writableNamespace(
  store: Store,
  principal: Principal,
  name: string,
): Promise<{ ns: NamespaceRecord; user: UserRecord }> {
  if (principal.kind === "anonymous") throw new ConnectError("this call needs a bearer token", Code.Unauthenticated);
  const ns = await readableNamespace(store, principal, name);
  if (principal.kind !== "user" || !(await userCanWrite(store, principal.user, ns))) {
    throw new ConnectError(
      `namespace ${name}: only its owner, its organization's owners, managers and admins may change it`,
      Code.PermissionDenied,
    );
  }
  return { ns, user: principal.user };
}
