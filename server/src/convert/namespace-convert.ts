import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  MemberRole,
  NamespaceFileSchema,
  NamespaceRevisionSchema,
  NamespaceSchema,
  NamespaceTagSchema,
  OrganizationSchema,
  Visibility,
  type Namespace,
  type NamespaceFile,
  type NamespaceRevision,
  type NamespaceTag,
  type Organization,
} from "@mottainai/proto";
import type {
  NamespaceFileRecord,
  NamespaceRecord,
  NamespaceRevisionRecord,
  NamespaceTagRecord,
  NamespaceVisibility,
} from "../store/namespace-store.js";
import type { MemberRole as StoredMemberRole, OrganizationRecord } from "../store/organization-store.js";

const VISIBILITIES: Record<NamespaceVisibility, Visibility> = {
  public: Visibility.PUBLIC,
  internal: Visibility.INTERNAL,
  organization: Visibility.ORGANIZATION,
  private: Visibility.PRIVATE,
};

/** Wire form of a stored visibility. */
export function visibilityToProto(v: NamespaceVisibility): Visibility {
  return VISIBILITIES[v];
}

/** Stored form of a wire visibility; undefined for UNSPECIFIED or an unknown value. */
export function visibilityFromProto(v: Visibility): NamespaceVisibility | undefined {
  return (Object.keys(VISIBILITIES) as NamespaceVisibility[]).find((k) => VISIBILITIES[k] === v);
}

/** Wire form of a tag. */
export function tagToProto(t: NamespaceTagRecord): NamespaceTag {
  return create(NamespaceTagSchema, { name: t.name, revision: BigInt(t.revision), updateTime: timestampFromMs(t.updateTime) });
}

/** Wire form of a namespace with its tags. */
export function namespaceToProto(ns: NamespaceRecord, tags: readonly NamespaceTagRecord[]): Namespace {
  return create(NamespaceSchema, {
    name: ns.name,
    ownerId: ns.ownerId,
    organizationId: ns.organizationId,
    visibility: visibilityToProto(ns.visibility),
    tags: tags.map(tagToProto),
    headRevision: BigInt(ns.headRevision),
    createTime: timestampFromMs(ns.createTime),
  });
}

/** Wire form of a revision. */
export function revisionToProto(r: NamespaceRevisionRecord): NamespaceRevision {
  return create(NamespaceRevisionSchema, {
    number: BigInt(r.number),
    parent: BigInt(r.parent),
    fileCount: BigInt(r.fileCount),
    totalSize: BigInt(r.totalSize),
    taskId: r.taskId,
    message: r.message,
    creatorId: r.creatorId,
    createTime: timestampFromMs(r.createTime),
  });
}

/** Wire form of a namespace file. */
export function namespaceFileToProto(f: NamespaceFileRecord): NamespaceFile {
  return create(NamespaceFileSchema, { path: f.path, size: BigInt(f.size), sha256: f.sha256 });
}

/** Wire form of a member role. */
export function memberRoleToProto(role: StoredMemberRole): MemberRole {
  return role === "owner" ? MemberRole.OWNER : MemberRole.MEMBER;
}

/** Stored form of a wire member role; UNSPECIFIED means member. */
export function memberRoleFromProto(role: MemberRole): StoredMemberRole | undefined {
  return role === MemberRole.OWNER
    ? "owner"
    : role === MemberRole.MEMBER || role === MemberRole.UNSPECIFIED
      ? "member"
      : undefined;
}

/** Wire form of an organization. */
export function organizationToProto(o: OrganizationRecord): Organization {
  return create(OrganizationSchema, {
    id: o.id,
    name: o.name,
    members: o.members.map((m) => ({ userId: m.userId, role: memberRoleToProto(m.role) })),
    createTime: timestampFromMs(o.createTime),
  });
}
