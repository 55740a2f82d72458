/** XML namespace of the `<metadata>` element that marks a domain as a Mottainai task's. */
export const LIBVIRT_METADATA_NAMESPACE = "https://mottainai.sabayon.org/libvirt/1";

/** Disk serials the guest runner looks its disks up by (docs/libvirt-guest.md). */
export const DISK_SERIAL = { input: "mottainai-in", output: "mottainai-out", root: "mottainai-root" } as const;

/**
 * Name of the virtio-serial port that carries the task's output. A port, not the virtio
 * console: qemu drops console bytes the agent cannot take at once, but throttles a port.
 */
export const OUTPUT_PORT_NAME = "org.mottainai.output";

/** Kernel command line given to boot-pair images before the image's own `cmdline` file. */
export const DEFAULT_KERNEL_CMDLINE = "console=ttyS0 panic=-1 quiet";

/** What describes one task's domain. */
export interface TaskDomain {
  /** Domain name, `mottainai-<agent label>-<task id>-<attempt>` (domainName). */
  name: string;
  /** Agent label, task id and attempt, also stored in the domain's `<metadata>`. */
  agentLabel: string;
  taskId: string;
  attempt: number;
  vcpus: number;
  /** Memory in MiB. */
  memoryMiB: number;
  /** Direct kernel boot: kernel, initramfs and command line. Absent: the root disk boots by itself. */
  boot?: { kernel: string; initrd: string; cmdline: string };
  /** The task's overlay of the image's disk, attached with serial `mottainai-root`. */
  rootDisk?: { file: string; format: "qcow2" };
  /** The raw disk whose bytes are the input tar (read-only). */
  inputDisk: string;
  /** The sparse raw disk the guest writes its status and artefacts to. */
  outputDisk: string;
  /** Unix socket the agent listens on for the output port (OUTPUT_PORT_NAME), the task's output. */
  consoleSocket: string;
  /** Unix socket the agent listens on for the serial console (ttyS0), the kernel's messages. */
  serialSocket: string;
}

/** Escapes text for an XML attribute or element. */
export function xmlEscape(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c] as string);
}

/** The name prefix of every domain of one agent; an agent removes the leftovers with it at start. */
export function domainPrefix(agentLabel: string): string {
  return `mottainai-${agentLabel}-`;
}

/** The domain name of one attempt: the agent's prefix, the task id (made safe) and the attempt. */
export function domainName(agentLabel: string, taskId: string, attempt: number): string {
  return `${domainPrefix(agentLabel)}${taskId.replace(/[^A-Za-z0-9._-]/g, "_")}-${attempt}`;
}

/**
 * The XML of a task's transient domain (created with virDomainCreateXML, so it disappears
 * when it stops): `type='qemu'` (TCG; nested KVM is not usable), ACPI only for more than one
 * vCPU, no network, no USB, no
 * graphics, no balloon; every ending (reboot, poweroff, crash) destroys it, so the guest ends
 * the run with `reboot -f` and a kernel panic (`panic=-1`) ends it too. Disks are virtio with
 * serials; the output port and the serial console are unix sockets qemu connects to.
 */
export function taskDomainXml(d: TaskDomain): string {
  const e = xmlEscape;
  const disk = (file: string, format: string, serial: string, dev: string, readonly: boolean): string =>
    [
      `    <disk type='file' device='disk'>`,
      `      <driver name='qemu' type='${format}'/>`,
      `      <source file='${e(file)}'/>`,
      `      <target dev='${dev}' bus='virtio'/>`,
      `      <serial>${serial}</serial>`,
      ...(readonly ? [`      <readonly/>`] : []),
      `    </disk>`,
    ].join("\n");
  const os = d.boot
    ? [
        `    <kernel>${e(d.boot.kernel)}</kernel>`,
        `    <initrd>${e(d.boot.initrd)}</initrd>`,
        `    <cmdline>${e(d.boot.cmdline)}</cmdline>`,
      ]
    : [`    <boot dev='hd'/>`];
  const disks = [
    ...(d.rootDisk ? [disk(d.rootDisk.file, d.rootDisk.format, DISK_SERIAL.root, "vda", false)] : []),
    disk(d.inputDisk, "raw", DISK_SERIAL.input, d.rootDisk ? "vdb" : "vda", true),
    disk(d.outputDisk, "raw", DISK_SERIAL.output, d.rootDisk ? "vdc" : "vdb", false),
  ];
  return [
    `<domain type='qemu'>`,
    `  <name>${e(d.name)}</name>`,
    `  <title>mottainai task ${e(d.taskId)} attempt ${d.attempt}</title>`,
    `  <metadata>`,
    `    <mottainai:task xmlns:mottainai='${LIBVIRT_METADATA_NAMESPACE}' agent='${e(d.agentLabel)}' task='${e(d.taskId)}' attempt='${d.attempt}'/>`,
    `  </metadata>`,
    `  <memory unit='MiB'>${d.memoryMiB}</memory>`,
    `  <vcpu>${d.vcpus}</vcpu>`,
    `  <os>`,
    `    <type arch='x86_64' machine='pc'>hvm</type>`,
    ...os,
    `  </os>`,
    // ACPI describes the vCPUs to the guest (Debian's cloud kernel has no MP-table parser); a
    // single-vCPU guest boots faster without it.
    ...(d.vcpus > 1 ? [`  <features><acpi/><apic/></features>`] : []),
    `  <on_poweroff>destroy</on_poweroff>`,
    `  <on_reboot>destroy</on_reboot>`,
    `  <on_crash>destroy</on_crash>`,
    `  <devices>`,
    ...disks,
    `    <controller type='usb' model='none'/>`,
    `    <serial type='unix'>`,
    `      <source mode='connect' path='${e(d.serialSocket)}'/>`,
    `      <target port='0'/>`,
    `    </serial>`,
    `    <channel type='unix'>`,
    `      <source mode='connect' path='${e(d.consoleSocket)}'/>`,
    `      <target type='virtio' name='${OUTPUT_PORT_NAME}'/>`,
    `    </channel>`,
    `    <memballoon model='none'/>`,
    `  </devices>`,
    `</domain>`,
    ``,
  ].join("\n");
}
