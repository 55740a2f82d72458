import { Builtins, Cli, type Command } from "clipanion";
import type { CliContext } from "./cli-context.js";
import { eventsCommands } from "./commands/events.js";
import { nodeTokenCommands } from "./commands/node-token.js";
import { namespaceCommands } from "./commands/namespace.js";
import { namespaceFileCommands } from "./commands/namespace-files.js";
import { namespacePublishCommands } from "./commands/namespace-publish.js";
import { namespaceTagCommands } from "./commands/namespace-tags.js";
import { namespacePublisherCommands } from "./commands/namespace-publisher.js";
import { nodeCommands } from "./commands/node.js";
import { organizationCommands } from "./commands/organization.js";
import { pipelineCommands } from "./commands/pipeline.js";
import { planCommands } from "./commands/plan.js";
import { profileCommands } from "./commands/profile.js";
import { storageCommands } from "./commands/storage.js";
import { taskAliasCommands } from "./commands/task-aliases.js";
import { taskArtefactCommands } from "./commands/task-artefacts.js";
import { taskMonitorCommands } from "./commands/task-monitor.js";
import { taskCommands } from "./commands/task.js";
import { whoamiCommands } from "./commands/whoami.js";
import { ExitCode } from "./exit-code.js";
import { createOutput } from "./output.js";
import { rewriteOriginalFileFlags } from "./original-file-flags.js";

/** Options of {@link createCli}. */
export interface CliOptions {
  /** Printed by `mottainai --version`; "0.0.0" when not given. */
  version?: string;
  /** Whether help texts use ANSI colours; default false (runCli sets it from the context's colour depth). */
  colors?: boolean;
}

/** Usage errors list at most this many matching usage lines; more get a pointer to --help. */
const maxUsageLines = 10;

/** How clipanion starts the candidate usage lines of a syntax error: `$ ` or `  1. `. */
const usageLinePattern = /^\s*(?:\$|\d+\.)\s+/;

/** The `mottainai` clipanion Cli with every command, `--help` and `--version` registered. */
export function createCli(options: CliOptions = {}): Cli<CliContext> {
  const cli = new Cli<CliContext>({
    binaryLabel: "Mottainai",
    binaryName: "mottainai",
    binaryVersion: options.version ?? "0.0.0",
    enableColors: options.colors ?? false,
  });
  const commands = [
    Builtins.HelpCommand,
    Builtins.VersionCommand,
    ...profileCommands,
    ...taskCommands,
    ...taskMonitorCommands,
    ...taskAliasCommands,
    ...pipelineCommands,
    ...nodeCommands,
    ...nodeTokenCommands,
    ...eventsCommands,
    ...whoamiCommands,
    ...taskArtefactCommands,
    ...storageCommands,
    ...namespaceCommands,
    ...namespaceFileCommands,
    ...namespaceTagCommands,
    ...namespacePublishCommands,
    ...namespacePublisherCommands,
    ...organizationCommands,
    ...planCommands,
  ];
  for (const command of commands) {
    cli.register(command);
  }
  return cli;
}

/**
 * Runs `mottainai` with `args` (argv without node and the script) in `context` and resolves to
 * the exit code (see `ExitCode`): 0 success, 1 error, 2 usage error (the message and the
 * matching usage lines on stderr; no arguments at all prints the command list there), 130 when
 * interrupted. Never throws and never exits the process, so tests run it in-process with fake
 * streams.
 */
export async function runCli(args: readonly string[], context: CliContext, options: CliOptions = {}): Promise<number> {
  const cli = createCli({ colors: context.colorDepth > 1, ...options });
  const output = createOutput(context);
  if (args.length === 0) {
    output.note(cli.usage(null));
    return ExitCode.usage;
  }
  let command: Command<CliContext>;
  try {
    command = cli.process(rewriteOriginalFileFlags(args), context);
  } catch (error) {
    const [reason = "", ...rest] = (error instanceof Error ? error.message : String(error)).split("\n");
    output.error(reason.startsWith("Command not found") ? `unknown command "${commandWords(args)}"` : reason);
    const usages = rest.filter((line) => usageLinePattern.test(line)).map((line) => line.replace(usageLinePattern, "  "));
    if (usages.length > maxUsageLines) {
      output.note('run "mottainai --help" for the list of commands');
    } else if (usages.length > 0) {
      output.note(`usage:\n${usages.join("\n")}`);
    }
    return ExitCode.usage;
  }
  return cli.run(command, context);
}

/** The leading words of `args`, before the first option: never echoes option values such as tokens. */
function commandWords(args: readonly string[]): string {
  const firstOption = args.findIndex((arg) => arg.startsWith("-"));
  return (firstOption === -1 ? args : args.slice(0, firstOption)).join(" ");
}
