#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import pino from "pino";
import { BridgeConfigError, parseBridgeConfig } from "./daemon/bridge-config.js";
import { runDaemon } from "./daemon/run-daemon.js";

const USAGE = `usage: mottainai-bridge --config FILE [--log-level info]
  --config FILE     YAML configuration (MOTTAINAI_BRIDGE_CONFIG); see the bridge README
  --log-level LEVEL pino level (MOTTAINAI_BRIDGE_LOG_LEVEL), default info`;

function main(): void {
  let values: { config?: string; "log-level"?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: { config: { type: "string" }, "log-level": { type: "string" }, help: { type: "boolean" } },
    }));
  } catch (err) {
    process.stderr.write(`mottainai-bridge: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const file = values.config ?? process.env.MOTTAINAI_BRIDGE_CONFIG;
  if (!file) {
    process.stderr.write(`mottainai-bridge: --config is required\n${USAGE}\n`);
    process.exit(2);
  }
  let config;
  try {
    config = parseBridgeConfig(readFileSync(file, "utf8"), (path) => readFileSync(path, "utf8"));
  } catch (err) {
    const why = err instanceof BridgeConfigError ? err.message : `cannot read: ${(err as Error).message}`;
    process.stderr.write(`mottainai-bridge: ${file}: ${why}\n`);
    process.exit(2);
  }
  const logger = pino({ level: values["log-level"] ?? process.env.MOTTAINAI_BRIDGE_LOG_LEVEL ?? "info" });
  const daemon = runDaemon(config, { logger, env: { ...process.env } });
  logger.info(
    { servers: config.servers, notifiers: [...config.notifiers.keys()], cursor: config.cursorFile },
    "mottainai-bridge started",
  );
  const stop = () => {
    logger.info("mottainai-bridge stopping");
    void daemon.close().then(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  daemon.done.catch((err: unknown) => {
    logger.fatal({ err }, "the cursor store failed");
    process.exit(1);
  });
}

main();
