import { Command, Option, UsageError } from "clipanion";
import { MottainaiCommand, requiredArgument, jsonOption } from "./mottainai-command.js";

const category = "Profiles";

/**
 * `mottainai profile create NAME --server URL [--token T] [--use]`, or the original's positional
 * form `profile create NAME URL [KEY]`: saves a profile; prints nothing.
 */
export class ProfileCreateCommand extends MottainaiCommand {
  static override paths = [["profile", "create"]];
  static override usage = Command.Usage({
    category,
    description: "Save a server and token under a name",
    details:
      "The server and token are given with `--server` and `--token`, or as the positionals URL and KEY (the original's `profile create <name> <api-url> [api-key]`). The first profile becomes the current one; `--use` makes this one current. The token is stored in profiles.yaml with mode 0600.",
    examples: [
      ["Save the local server", "$0 profile create local --server http://127.0.0.1:9090 --token $TOKEN"],
      ["The same, the original's form", "$0 profile create local http://127.0.0.1:9090 $TOKEN"],
    ],
  });

  name = requiredArgument("NAME");
  url = Option.String({ name: "URL", required: false });
  key = Option.String({ name: "KEY", required: false });
  use = Option.Boolean("--use", false, { description: "Make the new profile the current one" });

  async run(): Promise<void> {
    const server = once("URL", this.url, "--server", this.server);
    if (server === undefined) {
      throw new UsageError("profile create needs --server URL");
    }
    const token = once("KEY", this.key, "--token", this.token);
    await this.profileStore().create(this.name, { server, token }, { use: this.use });
  }
}

/** A value given as a positional or as an option: either, both only when equal. */
function once(positional: string, value: string | undefined, option: string, optionValue: string | undefined) {
  if (value !== undefined && optionValue !== undefined && value !== optionValue) {
    throw new UsageError(`give ${positional} or ${option}, not both`);
  }
  return value ?? optionValue;
}

/** `mottainai profile list [--json]`: the profiles, the current one marked; never the tokens. */
export class ProfileListCommand extends MottainaiCommand {
  static override paths = [["profile", "list"]];
  static override usage = Command.Usage({
    category,
    description: "List profiles (the current one is marked with *)",
    details: "Tokens are never printed: the TOKEN column and the `hasToken` JSON field only say whether one is set.",
  });

  json = jsonOption();

  async run(): Promise<void> {
    const file = await this.profileStore().read();
    const profiles = Object.entries(file.profiles)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, profile]) => ({
        name,
        server: profile.server,
        current: name === file.current,
        hasToken: profile.token !== undefined,
      }));
    if (this.json) {
      this.output.json(profiles);
      return;
    }
    this.output.table(
      ["CURRENT", "NAME", "SERVER", "TOKEN"],
      profiles.map((profile) => [profile.current ? "*" : "", profile.name, profile.server, profile.hasToken ? "set" : "-"]),
    );
  }
}

/** `mottainai profile remove NAME`: deletes a profile; prints nothing. */
export class ProfileRemoveCommand extends MottainaiCommand {
  static override paths = [["profile", "remove"]];
  static override usage = Command.Usage({
    category,
    description: "Delete a profile",
    details: "Removing the current profile leaves none current until `profile use`.",
  });

  name = requiredArgument("NAME");

  async run(): Promise<void> {
    await this.profileStore().remove(this.name);
  }
}

/** `mottainai profile use NAME`: makes a profile the current one; prints nothing. */
export class ProfileUseCommand extends MottainaiCommand {
  static override paths = [["profile", "use"]];
  static override usage = Command.Usage({ category, description: "Make a profile the current one" });

  name = requiredArgument("NAME");

  async run(): Promise<void> {
    await this.profileStore().use(this.name);
  }
}

/** Every `profile` command, for registration with the Cli. */
export const profileCommands = [ProfileCreateCommand, ProfileListCommand, ProfileRemoveCommand, ProfileUseCommand];
