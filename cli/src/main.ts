#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";
import type { CliSettings } from "./cli-context.js";
import { runCli } from "./cli.js";

// The only module that reads process.env and argv: everything below receives typed settings.

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

function configDir(env: NodeJS.ProcessEnv): string {
  const xdgConfigHome = nonEmpty(env.XDG_CONFIG_HOME);
  if (xdgConfigHome !== undefined && isAbsolute(xdgConfigHome)) {
    return join(xdgConfigHome, "mottainai");
  }
  return join(nonEmpty(env.HOME) ?? homedir(), ".config", "mottainai");
}

function packageVersion(): string {
  try {
    const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: string };
    return manifest.version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}

const settings: CliSettings = {
  configDir: configDir(process.env),
  server: nonEmpty(process.env.MOTTAINAI_SERVER),
  token: nonEmpty(process.env.MOTTAINAI_TOKEN),
  profile: nonEmpty(process.env.MOTTAINAI_PROFILE),
};

// First Ctrl-C cancels the running RPC (streams end, exit 130); a second one exits at once.
const interrupt = new AbortController();
process.once("SIGINT", () => {
  interrupt.abort();
  process.once("SIGINT", () => process.exit(130));
});

// A reader that went away (`mottainai task log ID | head`) is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") {
    process.exit(0);
  }
  throw error;
});

process.exitCode = await runCli(
  process.argv.slice(2),
  {
    settings,
    signal: interrupt.signal,
    env: {},
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    colorDepth: process.stdout.isTTY && process.env.NO_COLOR === undefined ? process.stdout.getColorDepth() : 1,
  },
  { version: packageVersion() },
);
