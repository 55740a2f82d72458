import { createDockerClient, createDockerExecutor, type DockerExecutorOptions } from "./docker-executor.js";
import type { ExecutorFactory } from "./executor.js";
import { createFakeExecutor } from "./fake-executor.js";
import { createHostExecutor, type HostExecutorOptions } from "./host-executor.js";
import { createLibvirtConnection, createLibvirtExecutor, type LibvirtExecutorOptions } from "./libvirt-executor.js";
import { createLxdClient, createLxdExecutor, type LxdExecutorOptions } from "./lxd/index.js";

/** Executor kinds this agent build has, in the order it advertises them by default. */
export const BUILTIN_EXECUTORS: readonly string[] = ["host", "fake"];

/**
 * Every executor kind this agent build can run, including those advertised only when
 * configured (`docker` needs a Docker engine: `--executor docker`; `libvirt` needs libvirtd and
 * an image directory: `--executor libvirt --libvirt-image-dir DIR`; `lxd` needs LXD:
 * `--executor lxd`).
 */
export const EXECUTOR_KINDS: readonly string[] = ["host", "fake", "docker", "libvirt", "lxd"];

/** Options of createExecutorFactory. */
export interface ExecutorFactoryOptions extends HostExecutorOptions {
  /** Options of the docker executor. Default: the engine at /var/run/docker.sock. */
  docker?: DockerExecutorOptions;
  /** Options of the libvirt executor. Absent: this factory has no libvirt executor. */
  libvirt?: LibvirtExecutorOptions;
  /** Options of the lxd executor. Absent: this factory has no lxd executor. */
  lxd?: LxdExecutorOptions;
}

/**
 * The factory for the built-in executors: `host` (createHostExecutor), `fake`
 * (createFakeExecutor) and `docker` (createDockerExecutor, one engine client shared by all its
 * executors, made on first use; its checkouts use the host executor's `path` unless the docker
 * options give one) and `libvirt` (createLibvirtExecutor, when configured, one libvirt
 * connection shared by all its executors, opened on first use) and `lxd` (createLxdExecutor,
 * when configured, one LXD client shared by all its executors).
 */
export function createExecutorFactory(options: ExecutorFactoryOptions = {}): ExecutorFactory {
  const { docker: dockerOptions, libvirt: libvirtOptions, lxd: lxdOptions, ...hostOptions } = options;
  let docker: DockerExecutorOptions | undefined;
  let libvirt: LibvirtExecutorOptions | undefined;
  let lxd: LxdExecutorOptions | undefined;
  return (kind, input) => {
    switch (kind) {
      case "host":
        return createHostExecutor(input, hostOptions);
      case "fake":
        return createFakeExecutor(input);
      case "docker":
        docker ??= {
          ...(hostOptions.path !== undefined ? { path: hostOptions.path } : {}),
          ...dockerOptions,
          docker: dockerOptions?.docker ?? createDockerClient(dockerOptions?.host),
        };
        return createDockerExecutor(input, docker);
      case "libvirt":
        if (!libvirtOptions) return undefined;
        libvirt ??= {
          ...(hostOptions.path !== undefined ? { path: hostOptions.path } : {}),
          ...libvirtOptions,
          connection: libvirtOptions.connection ?? createLibvirtConnection(libvirtOptions.uri),
        };
        return createLibvirtExecutor(input, libvirt);
      case "lxd":
        if (!lxdOptions) return undefined;
        lxd ??= {
          ...(hostOptions.path !== undefined ? { path: hostOptions.path } : {}),
          ...lxdOptions,
          client: lxdOptions.client ?? createLxdClient(lxdOptions.endpoint),
        };
        return createLxdExecutor(input, lxd);
      default:
        return undefined;
    }
  };
}
