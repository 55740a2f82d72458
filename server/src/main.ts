#!/usr/bin/env node
import { pino } from "pino";
import { ConfigError, loadServerConfig } from "./config.js";
import { startServer } from "./server.js";

async function main(): Promise<number> {
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
