import { toJson } from "@bufbuild/protobuf";
import { UserSchema, UserService } from "@mottainai/proto";
import { Command } from "clipanion";
import { roleWord } from "../format.js";
import { MottainaiCommand, jsonOption } from "./mottainai-command.js";

/** `mottainai whoami [--json]`: the signed-in user as `name (role)`. */
export class WhoamiCommand extends MottainaiCommand {
  static override paths = [["whoami"]];
  static override usage = Command.Usage({
    category: "Users",
    description: "Show who the token signs in as: `name (role)`",
  });

  json = jsonOption();

  async run(): Promise<void> {
    const { user } = await (await this.client(UserService)).getCurrentUser({});
    if (user === undefined) {
      throw new Error("server returned no user");
    }
    if (this.json) {
      this.output.json(toJson(UserSchema, user));
    } else {
      this.output.line(`${user.name} (${roleWord(user.role)})`);
    }
  }
}

/** Every `whoami` command, for registration with the Cli. */
export const whoamiCommands = [WhoamiCommand];
