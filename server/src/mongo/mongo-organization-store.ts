import type { Collection } from "mongodb";
import type { MemberRole, OrganizationMemberRecord, OrganizationRecord, OrganizationStore } from "../store/organization-store.js";
import { isDuplicateKey, upsertRetrying } from "./mongo-common.js";
import type { UserDoc } from "./mongo-user-store.js";

/** An organization document: `_id` its id; name unique. Members live in their own collection. */
export interface OrganizationDoc {
  _id: string;
  name: string;
  createTime: number;
}

/** One membership, unique on (organizationId, userId). */
export interface OrganizationMemberDoc {
  organizationId: string;
  userId: string;
  role: MemberRole;
}

/** The collections' indexes (created at start by createMongoStore). */
export async function createOrganizationIndexes(
  organizations: Collection<OrganizationDoc>,
  members: Collection<OrganizationMemberDoc>,
): Promise<void> {
  await organizations.createIndex({ name: 1 }, { unique: true });
  await members.createIndex({ organizationId: 1, userId: 1 }, { unique: true });
  await members.createIndex({ userId: 1 });
}

/**
 * OrganizationStore on MongoDB. Memberships are documents of their own (no $push/$pull on the
 * jongodb test server, and one upsert per change is atomic anyway). Without foreign keys,
 * setMember checks the organization and the user, and takes its membership back when the
 * organization was deleted meanwhile, so a membership never outlives its organization (it
 * grants namespace access).
 */
export class MongoOrganizationStore implements OrganizationStore {
  constructor(
    private readonly organizations: Collection<OrganizationDoc>,
    private readonly members: Collection<OrganizationMemberDoc>,
    private readonly users: Collection<UserDoc>,
  ) {}

  private async withMembers(docs: OrganizationDoc[]): Promise<OrganizationRecord[]> {
    if (docs.length === 0) return [];
    const members = await this.members
      .find({ organizationId: { $in: docs.map((d) => d._id) } })
      .sort({ organizationId: 1, userId: 1 })
      .toArray();
    return docs.map((d) => ({
      id: d._id,
      name: d.name,
      createTime: d.createTime,
      members: members.filter((m) => m.organizationId === d._id).map((m) => ({ userId: m.userId, role: m.role })),
    }));
  }

  async create(org: OrganizationRecord): Promise<boolean> {
    try {
      await this.organizations.insertOne({ _id: org.id, name: org.name, createTime: org.createTime });
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
    if (org.members.length > 0) {
      await this.members.insertMany(org.members.map((m) => ({ organizationId: org.id, userId: m.userId, role: m.role })));
    }
    return true;
  }

  async get(id: string): Promise<OrganizationRecord | undefined> {
    const doc = await this.organizations.findOne({ _id: id });
    return doc ? (await this.withMembers([doc]))[0] : undefined;
  }

  async getByName(name: string): Promise<OrganizationRecord | undefined> {
    const doc = await this.organizations.findOne({ name });
    return doc ? (await this.withMembers([doc]))[0] : undefined;
  }

  async list(userId?: string): Promise<OrganizationRecord[]> {
    const filter =
      userId === undefined ? {} : { _id: { $in: (await this.members.find({ userId }).toArray()).map((m) => m.organizationId) } };
    return this.withMembers(await this.organizations.find(filter).sort({ name: 1 }).toArray());
  }

  async delete(id: string): Promise<boolean> {
    const deleted = (await this.organizations.deleteOne({ _id: id })).deletedCount > 0;
    await this.members.deleteMany({ organizationId: id });
    return deleted;
  }

  async setMember(organizationId: string, member: OrganizationMemberRecord): Promise<boolean> {
    if (!(await this.organizations.findOne({ _id: organizationId })) || !(await this.users.findOne({ _id: member.userId }))) {
      return false;
    }
    await upsertRetrying(() =>
      this.members.updateOne({ organizationId, userId: member.userId }, { $set: { role: member.role } }, { upsert: true }),
    );
    if (await this.organizations.findOne({ _id: organizationId })) return true;
    await this.members.deleteMany({ organizationId });
    return false;
  }

  async removeMember(organizationId: string, userId: string): Promise<boolean> {
    return (await this.members.deleteOne({ organizationId, userId })).deletedCount > 0;
  }

  async memberRole(organizationId: string, userId: string): Promise<MemberRole | undefined> {
    return (await this.members.findOne({ organizationId, userId }))?.role;
  }
}
