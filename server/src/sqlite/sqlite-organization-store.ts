import type { Database } from "better-sqlite3";
import type { MemberRole, OrganizationMemberRecord, OrganizationRecord, OrganizationStore } from "../store/organization-store.js";
import type { GroupCommit } from "./group-commit.js";
import { prepared } from "./statement-cache.js";

interface OrganizationRow {
  id: string;
  name: string;
  create_time: number;
}

const isConstraint = (err: unknown, code: string) => (err as { code?: string }).code === code;

/** OrganizationStore on SQLite. */
export class SqliteOrganizationStore implements OrganizationStore {
  constructor(
    private readonly db: Database,
    private readonly writes: GroupCommit,
  ) {}

  private withMembers(row: OrganizationRow): OrganizationRecord {
    const members = prepared(
      this.db,
      "SELECT user_id AS userId, role FROM organization_members WHERE organization_id = ? ORDER BY user_id",
    ).all(row.id) as OrganizationMemberRecord[];
    return { id: row.id, name: row.name, createTime: row.create_time, members };
  }

  async create(org: OrganizationRecord): Promise<boolean> {
    try {
      await this.writes.write(() => {
        prepared(this.db, "INSERT INTO organizations (id, name, create_time) VALUES (?, ?, ?)").run(
          org.id,
          org.name,
          org.createTime,
        );
        for (const m of org.members) {
          prepared(this.db, "INSERT INTO organization_members (organization_id, user_id, role) VALUES (?, ?, ?)").run(
            org.id,
            m.userId,
            m.role,
          );
        }
      });
      return true;
    } catch (err) {
      if (isConstraint(err, "SQLITE_CONSTRAINT_UNIQUE") || isConstraint(err, "SQLITE_CONSTRAINT_PRIMARYKEY")) return false;
      throw err;
    }
  }

  async get(id: string): Promise<OrganizationRecord | undefined> {
    const row = prepared(this.db, "SELECT * FROM organizations WHERE id = ?").get(id) as OrganizationRow | undefined;
    return row && this.withMembers(row);
  }

  async getByName(name: string): Promise<OrganizationRecord | undefined> {
    const row = prepared(this.db, "SELECT * FROM organizations WHERE name = ?").get(name) as OrganizationRow | undefined;
    return row && this.withMembers(row);
  }

  async list(userId?: string): Promise<OrganizationRecord[]> {
    const rows =
      userId === undefined
        ? prepared(this.db, "SELECT * FROM organizations ORDER BY name").all()
        : prepared(
            this.db,
            "SELECT o.* FROM organizations o JOIN organization_members m ON m.organization_id = o.id WHERE m.user_id = ? ORDER BY o.name",
          ).all(userId);
    return (rows as OrganizationRow[]).map((r) => this.withMembers(r));
  }

  async delete(id: string): Promise<boolean> {
    return this.writes.write(() => {
      return prepared(this.db, "DELETE FROM organizations WHERE id = ?").run(id).changes > 0;
    });
  }

  async setMember(organizationId: string, member: OrganizationMemberRecord): Promise<boolean> {
    return this.writes.write(() => {
      try {
        prepared(
          this.db,
          "INSERT INTO organization_members (organization_id, user_id, role) VALUES (?, ?, ?) ON CONFLICT (organization_id, user_id) DO UPDATE SET role = excluded.role",
        ).run(organizationId, member.userId, member.role);
        return true;
      } catch (err) {
        if (isConstraint(err, "SQLITE_CONSTRAINT_FOREIGNKEY")) return false;
        throw err;
      }
    });
  }

  async removeMember(organizationId: string, userId: string): Promise<boolean> {
    return this.writes.write(() => {
      return (
        prepared(this.db, "DELETE FROM organization_members WHERE organization_id = ? AND user_id = ?").run(
          organizationId,
          userId,
        ).changes > 0
      );
    });
  }

  async memberRole(organizationId: string, userId: string): Promise<MemberRole | undefined> {
    const row = prepared(this.db, "SELECT role FROM organization_members WHERE organization_id = ? AND user_id = ?").get(
      organizationId,
      userId,
    ) as { role: MemberRole } | undefined;
    return row?.role;
  }
}
