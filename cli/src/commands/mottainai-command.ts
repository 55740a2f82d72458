import type { DescService } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { Command, Option } from "clipanion";
import * as t from "typanion";
import type { CliContext } from "../cli-context.js";
import { createServerClient } from "../client.js";
import { ExitCode, exitCodeFor } from "../exit-code.js";
import { createTransferClient } from "../file-transfer.js";
import { type Output, createOutput } from "../output.js";
import { type Connection, type ProfileStore, createProfileStore, resolveConnection } from "../profile-store.js";

/**
 * Base of every `mottainai` command: the shared `--profile`, `--server` and `--token` options
 * (also under the original mottainai-cli's names `-p`, `-m`/`--master` and `-k`/`--apikey`),
 * the output layer, the profile store and typed RPC clients. Subclasses implement
 * {@link MottainaiCommand.run}; an error it throws is written as one `mottainai: <message>` line
 * and mapped to an exit code by `exitCodeFor` (1, 2 for usage errors); an interruption (Ctrl-C)
 * ends quietly with 130.
 */
export abstract class MottainaiCommand extends Command<CliContext> {
  profile = Option.String("--profile,-p", {
    description: "Profile to use (default: MOTTAINAI_PROFILE, then the current profile)",
  });

  server = Option.String("--server,-m,--master", {
    description:
      "Server URL (default: MOTTAINAI_SERVER, then the profile's, then http://127.0.0.1:9090); -m and --master are the original's names",
  });

  token = Option.String("--token,-k,--apikey", {
    description: "API token (default: MOTTAINAI_TOKEN, then the profile's); -k and --apikey are the original's names",
  });

  private cachedOutput: Output | undefined;

  /** Does the command's work; a returned number is the exit code (0 when nothing is returned). */
  abstract run(): Promise<number | void>;

  /** Runs {@link MottainaiCommand.run}, turning a thrown error into its line on stderr and exit code. */
  override async execute(): Promise<number> {
    try {
      return (await this.run()) ?? 0;
    } catch (error) {
      const exitCode = exitCodeFor(error, this.context.signal);
      if (exitCode !== ExitCode.interrupted) {
        this.output.error(error);
      }
      return exitCode;
    }
  }

  /** The output layer over this command's stdout and stderr. */
  protected get output(): Output {
    this.cachedOutput ??= createOutput(this.context);
    return this.cachedOutput;
  }

  /** The profile store in the configured directory. */
  protected profileStore(): ProfileStore {
    return createProfileStore(this.context.settings.configDir);
  }

  /** Server and token for this command; see `resolveConnection` for the precedence. */
  protected async connection(): Promise<Connection> {
    const { settings } = this.context;
    const file = await this.profileStore().read();
    return resolveConnection(
      { server: this.server, token: this.token, profile: this.profile },
      { server: settings.server, token: settings.token, profile: settings.profile },
      file,
    );
  }

  /** A client of `service` on the resolved server, authenticated with the resolved token. */
  protected async client<Service extends DescService>(service: Service): Promise<Client<Service>> {
    const { server, token } = await this.connection();
    return createServerClient(service, { baseUrl: server, token, signal: this.context.signal });
  }

  /** A client for bulk uploads and downloads: like client() but without compression (createTransferClient). */
  protected async transferClient<Service extends DescService>(service: Service): Promise<Client<Service>> {
    const { server, token } = await this.connection();
    return createTransferClient(service, { baseUrl: server, token, signal: this.context.signal });
  }
}

/** The `--json` option: print proto3 canonical JSON instead of the human view. */
export function jsonOption(): boolean {
  return Option.Boolean("--json", false, {
    description: "Print JSON (proto3 canonical form for server objects) instead of the human view",
  });
}

/** A required positional argument, shown as `<ID>` (or `<name>`) in the usage. */
export function requiredArgument(name = "ID"): string {
  return Option.String({ name });
}

/**
 * An integer option of at least `minimum` (default 0), such as `--offset N`; undefined when not
 * given. A value that is not such an integer is a usage error (exit 2).
 */
export function integerOption(descriptor: string, description: string, minimum = 0): number | undefined {
  return Option.String(descriptor, {
    description,
    validator: t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(minimum)]),
  });
}
