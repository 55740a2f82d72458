import { execFile } from "node:child_process";
import { readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";

/** Files of an image directory `<image dir>/<image>/` (docs/libvirt-guest.md). */
export const IMAGE_FILES = {
  kernel: "kernel",
  initrd: "initrd",
  cmdline: "cmdline",
  qcow2: "disk.qcow2",
  raw: "disk.raw",
} as const;

/** A task image found in the image directory. */
export interface LibvirtImage {
  /** The image's name, as the task's `image`. */
  name: string;
  /** The image's directory. */
  dir: string;
  /** Kernel and initramfs for a direct kernel boot, with the extra command line of `cmdline`. */
  boot?: { kernel: string; initrd: string; cmdline: string };
  /** The base disk, never written: each task runs on its own qcow2 overlay of it. */
  disk?: { file: string; format: "qcow2" | "raw" };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/**
 * Looks up the task image `name` in `imageDir`: the directory `<imageDir>/<name>/` with a boot
 * pair (`kernel` and `initrd`, optionally `cmdline`), a base disk (`disk.qcow2` or `disk.raw`),
 * or both. Rejects naming `image` when the name is not a plain directory name or the image is
 * missing or incomplete.
 */
export async function findLibvirtImage(imageDir: string, name: string): Promise<LibvirtImage> {
  const image = name.trim();
  if (image === "") throw new Error("image: a libvirt task needs an image (a directory of the agent's libvirt image dir)");
  if (!/^[A-Za-z0-9][A-Za-z0-9._:@+-]*$/.test(image) || image.includes(".."))
    throw new Error(`image: "${name}" is not an image name (letters, digits and ._:@+- only, no "/")`);
  const dir = resolve(imageDir, image);
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error("not a directory");
  } catch {
    throw new Error(`image: "${image}" is not an image of this agent (no directory ${dir})`);
  }
  const kernel = join(dir, IMAGE_FILES.kernel);
  const initrd = join(dir, IMAGE_FILES.initrd);
  const hasKernel = await isFile(kernel);
  const hasInitrd = await isFile(initrd);
  if (hasKernel !== hasInitrd)
    throw new Error(`image: "${image}" has ${hasKernel ? "a kernel but no initrd" : "an initrd but no kernel"} in ${dir}`);
  const result: LibvirtImage = { name: image, dir };
  if (hasKernel) {
    let cmdline = "";
    try {
      cmdline = (await readFile(join(dir, IMAGE_FILES.cmdline), "utf8")).replace(/\s+/g, " ").trim();
    } catch {
      // No extra command line.
    }
    result.boot = { kernel, initrd, cmdline };
  }
  if (await isFile(join(dir, IMAGE_FILES.qcow2))) result.disk = { file: join(dir, IMAGE_FILES.qcow2), format: "qcow2" };
  else if (await isFile(join(dir, IMAGE_FILES.raw))) result.disk = { file: join(dir, IMAGE_FILES.raw), format: "raw" };
  if (!result.boot && !result.disk)
    throw new Error(`image: "${image}" has neither a kernel and initrd nor a disk.qcow2 or disk.raw in ${dir}`);
  return result;
}

function run(argv: string[]): Promise<void> {
  return new Promise((resolveRun, rejectRun) => {
    execFile(argv[0] as string, argv.slice(1), { timeout: 60_000 }, (err, _stdout, stderr) => {
      if (err) rejectRun(new Error(`${argv.join(" ")}: ${stderr.trim() || err.message}`));
      else resolveRun();
    });
  });
}

/**
 * Creates `overlay`, a qcow2 file backed by the image's base disk (`qemu-img create -b`), so
 * that the task writes only to the overlay. The base is referenced by its absolute path.
 */
export async function createOverlay(
  base: { file: string; format: string },
  overlay: string,
  qemuImg = "qemu-img",
): Promise<void> {
  await run([qemuImg, "create", "-q", "-f", "qcow2", "-F", base.format, "-b", resolve(base.file), overlay]);
}
