#!/usr/bin/env node
import { pino } from "pino";
import { parseArchiveCommand, runArchiveCommand } from "./archive/archive-command.js";
import { ConfigError, loadServerConfig } from "./config.js";
import { startServer } from "./server.js";

/** `mottainai-server export --to DIR …` and `import --from DIR …` (docs/production.md). */
async function archiveMain(command: "export" | "import", argv: string[]): Promise<number> {
  let cmd;
  try {
    cmd = parseArchiveCommand(command, argv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mottainai-server ${command}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const logger = pino({ level: cmd.config.logLevel, base: { service: `mottainai-server-${command}` } });
  const manifest = await runArchiveCommand(cmd, logger);
  const records = Object.entries(manifest.parts)
    .filter(([name]) => name.startsWith("records/"))
    .reduce((n, [, part]) => n + part.count, 0);
  process.stdout.write(
    `${command === "export" ? "Exported" : "Imported"} ${records} records and ${manifest.blobs.count} blobs (${manifest.blobs.bytes} bytes) ${command === "export" ? "to" : "from"} ${cmd.path}\n`,
  );
  return 0;
}

async function main(): Promise<number> {
  const [first, ...rest] = process.argv.slice(2);
  if (first === "export" || first === "import") return archiveMain(first, rest);
  let config;
  try {
    config = loadServerConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mottainai-server: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const logger = pino({ level: config.logLevel, base: { service: "mottainai-server" } });
  const server = await startServer(config, logger);
  process.stdout.write(`mottainai-server listening on http://${config.host}:${server.port}\n`);
  if (server.adminToken) {
    process.stdout.write(
      `Created user "admin". Its API token is shown once here and saved to ${config.adminTokenFile} (mode 0600):\n` +
        `  ${server.adminToken}\n`,
    );
  }
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  logger.info("shutting down");
  await server.close();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`mottainai-server: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
