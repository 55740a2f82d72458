import { toJson } from "@bufbuild/protobuf";
import { MemberRole, type Organization, OrganizationSchema, OrganizationService } from "@mottainai/proto";
import { Command, Option } from "clipanion";
import { formatTimestamp } from "../format.js";
import { requireField } from "../require-field.js";
import { MottainaiCommand, jsonOption, requiredArgument } from "./mottainai-command.js";

const category = "Organizations";

/** A member role as a word: member or owner. */
export function memberRoleWord(role: MemberRole): string {
  return role === MemberRole.OWNER ? "owner" : role === MemberRole.MEMBER ? "member" : String(role);
}

/** Members as `user:role`, comma-separated. */
function membersText(org: Organization): string {
  return org.members.map((m) => `${m.userId}:${memberRoleWord(m.role)}`).join(",") || "-";
}

/** `mottainai org create NAME [--json]`: managers and admins; the creator becomes an owner. */
export class OrgCreateCommand extends MottainaiCommand {
  static override paths = [["org", "create"]];
  static override usage = Command.Usage({
    category,
    description: "Create an organization (managers and admins); prints its id",
    details: "Members of an organization read its organization-visible namespaces; its owners also write its namespaces.",
  });

  name = requiredArgument("NAME");
  json = jsonOption();

  async run(): Promise<void> {
    const org = requireField(
      (await (await this.client(OrganizationService)).createOrganization({ name: this.name })).organization,
      "organization",
    );
    if (this.json) this.output.json(toJson(OrganizationSchema, org));
    else this.output.line(org.id);
  }
}

/** `mottainai org list [--json]`: the caller's organizations (all of them for managers and admins). */
export class OrgListCommand extends MottainaiCommand {
  static override paths = [["org", "list"]];
  static override usage = Command.Usage({
    category,
    description: "List your organizations (all of them for managers and admins)",
  });

  json = jsonOption();

  async run(): Promise<void> {
    const { organizations } = await (await this.client(OrganizationService)).listOrganizations({});
    this.output.list(this.json, OrganizationSchema, organizations, ["NAME", "ID", "MEMBERS", "CREATED"], (o) => [
      o.name,
      o.id,
      membersText(o),
      formatTimestamp(o.createTime),
    ]);
  }
}

/** `mottainai org show ORG [--json]`. */
export class OrgShowCommand extends MottainaiCommand {
  static override paths = [["org", "show"]];
  static override usage = Command.Usage({ category, description: "Show an organization (by id or name) and its members" });

  id = requiredArgument("ORG");
  json = jsonOption();

  async run(): Promise<void> {
    const org = requireField(
      (await (await this.client(OrganizationService)).getOrganization({ id: this.id })).organization,
      "organization",
    );
    if (this.json) {
      this.output.json(toJson(OrganizationSchema, org));
      return;
    }
    this.output.fields([
      ["id", org.id],
      ["name", org.name],
      ["created", formatTimestamp(org.createTime)],
    ]);
    this.output.line("");
    this.output.table(
      ["USER", "ROLE"],
      org.members.map((m) => [m.userId, memberRoleWord(m.role)]),
    );
  }
}

/** `mottainai org remove ORG`: managers and admins. */
export class OrgRemoveCommand extends MottainaiCommand {
  static override paths = [["org", "remove"]];
  static override usage = Command.Usage({ category, description: "Delete an organization (managers and admins)" });

  id = requiredArgument("ORG");

  async run(): Promise<void> {
    await (await this.client(OrganizationService)).deleteOrganization({ id: this.id });
  }
}

/** `mottainai org add-member ORG USER [--owner]`. */
export class OrgAddMemberCommand extends MottainaiCommand {
  static override paths = [["org", "add-member"]];
  static override usage = Command.Usage({
    category,
    description: "Add a user (by id or name) to an organization, or change their role",
    details: "Allowed to the organization's owners, managers and admins.",
  });

  id = requiredArgument("ORG");
  user = requiredArgument("USER");
  owner = Option.Boolean("--owner", false, { description: "Make the user an owner (manages members, writes its namespaces)" });

  async run(): Promise<void> {
    await (
      await this.client(OrganizationService)
    ).addOrganizationMember({
      organizationId: this.id,
      userId: this.user,
      role: this.owner ? MemberRole.OWNER : MemberRole.MEMBER,
    });
  }
}

/** `mottainai org remove-member ORG USER`. */
export class OrgRemoveMemberCommand extends MottainaiCommand {
  static override paths = [["org", "remove-member"]];
  static override usage = Command.Usage({ category, description: "Remove a user (by id or name) from an organization" });

  id = requiredArgument("ORG");
  user = requiredArgument("USER");

  async run(): Promise<void> {
    await (await this.client(OrganizationService)).removeOrganizationMember({ organizationId: this.id, userId: this.user });
  }
}

/** Every `org` command, for registration with the Cli. */
export const organizationCommands = [
  OrgCreateCommand,
  OrgListCommand,
  OrgShowCommand,
  OrgRemoveCommand,
  OrgAddMemberCommand,
  OrgRemoveMemberCommand,
];
