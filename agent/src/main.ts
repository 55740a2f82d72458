#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { Code } from "@connectrpc/connect";
import { pino, type Logger } from "pino";
import { createAgent, type Agent } from "./agent.js";
import { AGENT_USAGE, loadAgentConfig, type AgentConfig } from "./config.js";
import { credentialPath, obtainCredential } from "./credential-store.js";
import { AgentFatalError } from "./errors.js";
import { removeLeftoverContainers } from "./executor/docker-cleanup.js";
import { agentLabelFor, createDockerClient, type DockerExecutorOptions } from "./executor/docker-executor.js";
import { DEFAULT_PATH } from "./executor/host-executor.js";
import { loadLibvirtBinding } from "./executor/libvirt-binding.js";
import { removeLeftoverDomains } from "./executor/libvirt-cleanup.js";
import { createLibvirtConnection, type LibvirtExecutorOptions } from "./executor/libvirt-executor.js";
import { createLxdClient, removeLeftoverLxdContainers, type LxdExecutorOptions } from "./executor/lxd/index.js";
import { createServerTransport } from "./transport.js";

function agentVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "0.0.0-dev";
  } catch {
    return "0.0.0-dev";
  }
}

function createLogger(level: string): Logger {
  return pino({ level, base: { name: "mottainai-agent", pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(AGENT_USAGE);
    return 0;
  }
  let config: AgentConfig;
  try {
    config = loadAgentConfig(argv, process.env);
  } catch (err) {
    createLogger("info").fatal((err as Error).message);
    return 1;
  }
  const logger = createLogger(config.logLevel);
  const version = agentVersion();
  const abort = new AbortController();
  const running: { agent?: Agent } = {};
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, "second signal: exiting without waiting");
      process.exit(1);
    }
    logger.info({ signal }, "stopping");
    abort.abort();
    void running.agent?.stop();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  logger.info(
    {
      version,
      servers: config.servers,
      nodeName: config.name,
      stateDir: config.stateDir,
      capacity: config.capacity,
      executors: config.executors,
    },
    "mottainai-agent starting",
  );

  let docker: DockerExecutorOptions | undefined;
  if (config.executors.includes("docker")) {
    const client = createDockerClient(config.dockerHost);
    const agentLabel = agentLabelFor(config.stateDir);
    docker = {
      docker: client,
      agentLabel,
      policy: config.dockerPolicy,
      ...(config.dockerImageCache ? { imageCache: config.dockerImageCache } : {}),
      ...(config.dockerRegistryAuth ? { registryAuth: config.dockerRegistryAuth } : {}),
    };
    logger.info(
      {
        dockerPolicy: config.dockerPolicy,
        dockerAuthRegistries: [...(config.dockerRegistryAuth?.registries.keys() ?? [])],
      },
      "docker executor policy",
    );
    try {
      await removeLeftoverContainers(client, agentLabel, logger);
    } catch (err) {
      logger.fatal(
        `docker executor: cannot reach the Docker engine at ${config.dockerHost ?? "unix:///var/run/docker.sock"}: ${(err as Error).message}`,
      );
      return 1;
    }
  }

  let libvirt: LibvirtExecutorOptions | undefined;
  if (config.executors.includes("libvirt") && config.libvirt.imageDir !== undefined) {
    try {
      await loadLibvirtBinding();
    } catch (err) {
      logger.fatal(`libvirt executor: ${(err as Error).message}`);
      return 1;
    }
    const connection = createLibvirtConnection(config.libvirt.uri);
    const agentLabel = agentLabelFor(config.stateDir);
    libvirt = {
      imageDir: config.libvirt.imageDir,
      connection,
      agentLabel,
      ...(config.libvirt.defaultCpus !== undefined ? { defaultCpus: config.libvirt.defaultCpus } : {}),
      ...(config.libvirt.maxCpus !== undefined ? { maxCpus: config.libvirt.maxCpus } : {}),
      ...(config.libvirt.defaultMemoryMiB !== undefined ? { defaultMemoryMiB: config.libvirt.defaultMemoryMiB } : {}),
      ...(config.libvirt.maxMemoryMiB !== undefined ? { maxMemoryMiB: config.libvirt.maxMemoryMiB } : {}),
    };
    logger.info({ libvirt: config.libvirt }, "libvirt executor settings");
    try {
      await removeLeftoverDomains(connection, agentLabel, { logger });
    } catch (err) {
      logger.fatal(`libvirt executor: cannot reach libvirt at ${config.libvirt.uri}: ${(err as Error).message}`);
      return 1;
    }
  }

  let lxd: LxdExecutorOptions | undefined;
  if (config.executors.includes("lxd")) {
    const client = createLxdClient(config.lxd.endpoint);
    const agentLabel = agentLabelFor(config.stateDir);
    lxd = { client, agentLabel, policy: config.lxd.policy, remotes: config.lxd.remotes };
    logger.info({ lxd: client.endpoint, lxdPolicy: config.lxd.policy, lxdRemotes: config.lxd.remotes }, "lxd executor settings");
    try {
      await removeLeftoverLxdContainers(client, agentLabel, logger);
    } catch (err) {
      logger.fatal(
        `lxd executor: cannot reach LXD at ${client.endpoint}: ${(err as Error).message} (start it, e.g. scripts/ci/start-lxd.sh)`,
      );
      return 1;
    }
  }

  // The node's own executors are checked before the server is contacted: a missing binding or
  // engine fails at once, even when the server is unreachable.
  const registration = createServerTransport({ servers: config.servers });
  let credential: string;
  try {
    credential = (
      await obtainCredential({
        stateDir: config.stateDir,
        name: config.name,
        hostname: hostname(),
        registrationToken: config.registrationToken,
        transport: registration.transport,
        onRetry: () => void registration.next(),
        logger,
        signal: abort.signal,
      })
    ).credential;
  } catch (err) {
    if (abort.signal.aborted) return 0;
    logger.fatal((err as Error).message);
    return 1;
  } finally {
    registration.close();
  }
  if (abort.signal.aborted) return 0;

  const agent = createAgent({
    servers: config.servers,
    credential,
    logger,
    stateDir: config.stateDir,
    hostname: hostname(),
    agentVersion: version,
    labels: config.labels,
    capacity: config.capacity,
    queues: config.queues,
    executors: config.executors,
    path: process.env.PATH || DEFAULT_PATH,
    ...(docker ? { docker } : {}),
    ...(libvirt ? { libvirt } : {}),
    ...(lxd ? { lxd } : {}),
  });
  running.agent = agent;
  try {
    await agent.run();
    logger.info("stopped");
    return 0;
  } catch (err) {
    const message = (err as Error).message;
    if (err instanceof AgentFatalError && (err.code === Code.Unauthenticated || err.code === Code.PermissionDenied)) {
      logger.fatal(
        { code: Code[err.code] },
        `the server refused this agent's credential: ${message} (delete ${credentialPath(config.stateDir)} and start with --registration-token to register again)`,
      );
    } else if (err instanceof AgentFatalError && err.code !== undefined) {
      logger.fatal({ code: Code[err.code] }, `the server refused this agent: ${message}`);
    } else {
      logger.fatal(message);
    }
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`mottainai-agent: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
