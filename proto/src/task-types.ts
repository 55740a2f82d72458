/**
 * Task types a task may name in its `type` key (or the original's alias `task`): the original
 * Mottainai types (its Vagrant+VirtualBox `virtualbox` and `virtualbox_execute` run as VM tasks
 * on the libvirt executor, with the image rules of `libvirt_vagrant`) plus `host` (a subprocess in a per-task workspace, the always-available
 * default) and `fake` (driven by the task's environment, for protocol and scale tests).
 * The order is stable and is the order error messages list them in.
 */
export const TASK_TYPES = [
  "docker",
  "docker_execute",
  "libvirt",
  "libvirt_execute",
  "libvirt_vagrant",
  "virtualbox",
  "virtualbox_execute",
  "lxd",
  "host",
  "fake",
] as const;

/** One of {@link TASK_TYPES}. */
export type TaskType = (typeof TASK_TYPES)[number];

const EXECUTOR_BY_TYPE: Readonly<Record<TaskType, string>> = {
  docker: "docker",
  docker_execute: "docker",
  libvirt: "libvirt",
  libvirt_execute: "libvirt",
  libvirt_vagrant: "libvirt",
  virtualbox: "libvirt",
  virtualbox_execute: "libvirt",
  lxd: "lxd",
  host: "host",
  fake: "fake",
};

/**
 * The executor kind (as an agent advertises it in its hello) that runs tasks of `type`:
 * `docker_execute` runs on `docker`; `libvirt_execute`, `libvirt_vagrant`, `virtualbox` and
 * `virtualbox_execute` on `libvirt`; and
 * every other known type on the executor of the same name. The match is exact (case-sensitive);
 * an unknown type gives `undefined`.
 */
export function executorForTaskType(type: string): string | undefined {
  return Object.hasOwn(EXECUTOR_BY_TYPE, type) ? EXECUTOR_BY_TYPE[type as TaskType] : undefined;
}
