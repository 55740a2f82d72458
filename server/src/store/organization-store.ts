/** A user's role inside one organization: owners manage its members and write its namespaces. */
export type MemberRole = "member" | "owner";

/** One member of an organization. */
export interface OrganizationMemberRecord {
  userId: string;
  role: MemberRole;
}

/** An organization row with its members (sorted by user id). Times are ms since the epoch. */
export interface OrganizationRecord {
  id: string;
  name: string;
  createTime: number;
  members: OrganizationMemberRecord[];
}

/**
 * Persistence of organizations and their members. Each method is atomic; callers serialize
 * nothing. Deleting an organization removes its memberships (namespaces that named it keep the
 * id and become readable by nobody but their owner and privileged users).
 */
export interface OrganizationStore {
  /** Inserts a new organization (its members too); false when the name is taken. */
  create(org: OrganizationRecord): Promise<boolean>;
  get(id: string): Promise<OrganizationRecord | undefined>;
  getByName(name: string): Promise<OrganizationRecord | undefined>;
  /** Every organization, by name; only those userId belongs to when given. */
  list(userId?: string): Promise<OrganizationRecord[]>;
  /** False when it did not exist. */
  delete(id: string): Promise<boolean>;
  /** Adds the member or changes its role; false when the organization or the user does not exist. */
  setMember(organizationId: string, member: OrganizationMemberRecord): Promise<boolean>;
  /** False when the user was not a member. */
  removeMember(organizationId: string, userId: string): Promise<boolean>;
  /** The user's role in the organization, undefined when not a member. */
  memberRole(organizationId: string, userId: string): Promise<MemberRole | undefined>;
}
