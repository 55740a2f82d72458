import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createLibvirtConnection, type LibvirtConnection } from "./libvirt-executor.js";

/** Where scripts/ci/build-libvirt-image.sh puts the test images. */
export const TEST_LIBVIRT_IMAGE_DIR = "/var/lib/mottainai-test/libvirt-images";
/** The boot-pair test image: Debian's cloud kernel and a busybox initramfs with the guest runner. */
export const TEST_LIBVIRT_IMAGE = "busybox";
/** The disk test image: the same boot pair plus an ext4 root disk (disk.qcow2) holding /etc/mottainai-image. */
export const TEST_LIBVIRT_DISK_IMAGE = "busybox-disk";
/** The libvirt URI of the tests. */
export const TEST_LIBVIRT_URI = "qemu:///system";

/**
 * A connection to the test libvirtd, or undefined when none answers or the test images are
 * missing, so that a developer's run skips. With `ci` (the test passes `process.env.CI`) that
 * throws instead: CI must run these tests (DESIGN §8).
 */
export async function requireLibvirt(ci: boolean, uri = TEST_LIBVIRT_URI): Promise<LibvirtConnection | undefined> {
  let problem: string | undefined;
  const connection = createLibvirtConnection(uri);
  try {
    await (await connection.hypervisor()).connectGetHostname();
    for (const image of [TEST_LIBVIRT_IMAGE, TEST_LIBVIRT_DISK_IMAGE]) {
      if (!existsSync(join(TEST_LIBVIRT_IMAGE_DIR, image, "kernel")))
        problem = `the test image ${join(TEST_LIBVIRT_IMAGE_DIR, image)} is missing (run scripts/ci/build-libvirt-image.sh)`;
    }
    try {
      execFileSync("qemu-img", ["--version"], { stdio: "ignore" });
    } catch {
      problem = "qemu-img is missing (install qemu-utils)";
    }
  } catch (err) {
    problem = `no libvirtd answers at ${uri} (${(err as Error).message}; run scripts/ci/start-libvirtd.sh)`;
  }
  if (problem === undefined) return connection;
  await connection.close();
  if (ci) throw new Error(`libvirt tests cannot run in CI: ${problem}`);
  (process as NodeJS.EventEmitter).emit("mottainai:test-skip", "libvirtd", problem);
  return undefined;
}
