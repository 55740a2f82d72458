import { NodeService, RegistrationTokenSchema } from "@mottainai/proto";
import { Command, Option } from "clipanion";
import { formatTimestamp, orNone } from "../format.js";
import { MottainaiCommand, requiredArgument, jsonOption } from "./mottainai-command.js";

const category = "Nodes";

/** `mottainai node token create [--description D]`: issues a registration token; prints only its secret. */
export class NodeTokenCreateCommand extends MottainaiCommand {
  static override paths = [["node", "token", "create"]];
  static override usage = Command.Usage({
    category,
    description: "Issue a token that agents exchange for a credential (admin only)",
    details: "Prints only the secret, which the server shows once: `token=$(mottainai node token create)`.",
  });

  description = Option.String("--description", "", { description: "What the token is for" });

  async run(): Promise<void> {
    const { secret } = await (await this.client(NodeService)).createRegistrationToken({ description: this.description });
    this.output.line(secret);
  }
}

/** `mottainai node token list [--json]`: registration tokens, without their secrets. */
export class NodeTokenListCommand extends MottainaiCommand {
  static override paths = [["node", "token", "list"]];
  static override usage = Command.Usage({ category, description: "List registration tokens" });

  json = jsonOption();

  async run(): Promise<void> {
    const { registrationTokens } = await (await this.client(NodeService)).listRegistrationTokens({});
    this.output.list(
      this.json,
      RegistrationTokenSchema,
      registrationTokens,
      ["ID", "DESCRIPTION", "CREATED", "EXPIRES", "REVOKED"],
      (token) => [
        token.id,
        orNone(token.description),
        formatTimestamp(token.createTime),
        formatTimestamp(token.expireTime),
        token.revoked ? "yes" : "no",
      ],
    );
  }
}

/** `mottainai node token revoke ID`: revokes a registration token; prints nothing. */
export class NodeTokenRevokeCommand extends MottainaiCommand {
  static override paths = [["node", "token", "revoke"]];
  static override usage = Command.Usage({ category, description: "Revoke a registration token" });

  id = requiredArgument();

  async run(): Promise<void> {
    await (await this.client(NodeService)).revokeRegistrationToken({ id: this.id });
  }
}

/** Every `node token` command, for registration with the Cli. */
export const nodeTokenCommands = [NodeTokenCreateCommand, NodeTokenListCommand, NodeTokenRevokeCommand];
