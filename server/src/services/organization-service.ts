import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { OrganizationService } from "@mottainai/proto";
import { checkedName } from "../auth/file-access.js";
import { isPrivileged, requireUser } from "../auth/principal.js";
import { newId } from "../auth/secrets.js";
import { memberRoleFromProto, organizationToProto } from "../convert/namespace-convert.js";
import type { OrganizationRecord } from "../store/organization-store.js";
import type { Store } from "../store/store.js";
import type { UserRecord } from "../store/user-store.js";

/** Dependencies of the organization service. */
export interface OrganizationServiceOptions {
  store: Store;
  now?: () => number;
}

/**
 * OrganizationService: managers and admins create and delete organizations (the creator becomes
 * an owner) and see them all; a user sees the organizations they belong to (others: NotFound).
 * Members are added and removed by managers, admins and the organization's owners
 * (PermissionDenied for its other members). Users are named by id or name.
 */
export function createOrganizationService(o: OrganizationServiceOptions): ServiceImpl<typeof OrganizationService> {
  const now = o.now ?? Date.now;
  const { store } = o;

  const find = async (idOrName: string) =>
    idOrName ? ((await store.organizations.get(idOrName)) ?? (await store.organizations.getByName(idOrName))) : undefined;

  const visible = async (user: UserRecord, idOrName: string): Promise<OrganizationRecord> => {
    if (!idOrName) throw new ConnectError("id: an organization id or name is required", Code.InvalidArgument);
    const org = await find(idOrName);
    if (!org || (!isPrivileged(user) && !org.members.some((m) => m.userId === user.id))) {
      throw new ConnectError(`organization ${idOrName} not found`, Code.NotFound);
    }
    return org;
  };

  const managed = async (user: UserRecord, idOrName: string): Promise<OrganizationRecord> => {
    const org = await visible(user, idOrName);
    if (!isPrivileged(user) && !org.members.some((m) => m.userId === user.id && m.role === "owner")) {
      throw new ConnectError(
        `organization ${org.name}: only its owners, managers and admins manage members`,
        Code.PermissionDenied,
      );
    }
    return org;
  };

  const userOf = async (idOrName: string): Promise<UserRecord> => {
    if (!idOrName) throw new ConnectError("user_id: a user id or name is required", Code.InvalidArgument);
    const user = (await store.users.get(idOrName)) ?? (await store.users.getByName(idOrName));
    if (!user) throw new ConnectError(`user ${idOrName} not found`, Code.NotFound);
    return user;
  };

  const reload = async (id: string) => {
    const org = await store.organizations.get(id);
    if (!org) throw new ConnectError(`organization ${id} not found`, Code.NotFound);
    return organizationToProto(org);
  };

  return {
    async createOrganization(req, ctx) {
      const user = requireUser(ctx);
      if (!isPrivileged(user)) throw new ConnectError("only managers and admins create organizations", Code.PermissionDenied);
      const name = checkedName(req.name, "name");
      const org: OrganizationRecord = { id: newId(), name, createTime: now(), members: [{ userId: user.id, role: "owner" }] };
      if (!(await store.organizations.create(org))) {
        throw new ConnectError(`organization ${name} already exists`, Code.AlreadyExists);
      }
      return { organization: organizationToProto(org) };
    },

    async getOrganization(req, ctx) {
      return { organization: organizationToProto(await visible(requireUser(ctx), req.id)) };
    },

    async listOrganizations(_req, ctx) {
      const user = requireUser(ctx);
      const orgs = await store.organizations.list(isPrivileged(user) ? undefined : user.id);
      return { organizations: orgs.map(organizationToProto) };
    },

    async deleteOrganization(req, ctx) {
      const user = requireUser(ctx);
      const org = await visible(user, req.id);
      if (!isPrivileged(user)) throw new ConnectError("only managers and admins delete organizations", Code.PermissionDenied);
      await store.organizations.delete(org.id);
      return {};
    },

    async addOrganizationMember(req, ctx) {
      const org = await managed(requireUser(ctx), req.organizationId);
      const member = await userOf(req.userId);
      const role = memberRoleFromProto(req.role);
      if (!role) throw new ConnectError(`role: unknown value ${req.role}`, Code.InvalidArgument);
      if (!(await store.organizations.setMember(org.id, { userId: member.id, role }))) {
        throw new ConnectError(`organization ${org.name} was deleted`, Code.NotFound);
      }
      return { organization: await reload(org.id) };
    },

    async removeOrganizationMember(req, ctx) {
      const org = await managed(requireUser(ctx), req.organizationId);
      const member = await userOf(req.userId);
      if (!(await store.organizations.removeMember(org.id, member.id))) {
        throw new ConnectError(`user ${req.userId} is not a member of organization ${org.name}`, Code.NotFound);
      }
      return { organization: await reload(org.id) };
    },
  };
}
