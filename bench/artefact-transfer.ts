// Upload and download of one large file (1 GiB by default) through the real CLI
// (`node cli/dist/main.js storage upload|download`) to a real mottainai-server, with the local blob
// backend and with S3 on the Ceph RADOS Gateway, each as a ratio to `cp` of the same file on the
// same disk, measured in the same run (issue 6: goal ≥ 0.5).
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { DeleteBucketCommand } from "@aws-sdk/client-s3";
import { openS3BlobStore } from "../server/src/blob/s3-blob-store.js";
import type { BenchOptions } from "./bench-options.js";
import { ROOT } from "./child-process.js";
import { deferCleanup } from "./cleanup.js";
import { startMottainaiServer, type ServerHandle } from "./mottainai-server.js";
import { readCpuSeconds } from "./proc-stats.js";
import { benchRow, type BenchResult, type BenchRow } from "./report.js";
import { median } from "./stats.js";

const CLI_MAIN = join(ROOT, "cli/dist/main.js");
const CEPH_ENV = "/tmp/mottainai-ceph/s3.env";
const GOAL_RATIO = 0.5;
/** MB/s as the table reports it: 10^6 bytes per second. */
const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

/** One timed command: wall time, and CPU seconds (user + system) of its process. */
interface Timed {
  ms: number;
  cpu: number;
}

/**
 * Runs argv, timing it from spawn to exit; rejects with its stderr on a non-zero exit. The CPU
 * time of the process is sampled from /proc every 20 ms (so it may miss the last 20 ms).
 */
function timeCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    let cpu = 0;
    const sample = () => {
      try {
        if (child.pid !== undefined) cpu = readCpuSeconds(child.pid);
      } catch {
        // exited between samples
      }
    };
    const timer = setInterval(sample, 20);
    child.once("error", (err) => {
      clearInterval(timer);
      reject(err);
    });
    child.once("exit", (code, signal) => {
      const ms = performance.now() - t0;
      clearInterval(timer);
      if (code === 0) resolve({ ms, cpu });
      else reject(new Error(`${argv.slice(0, 4).join(" ")} … exited with ${code ?? signal}: ${stderr.trim()}`));
    });
  });
}

/** Writes `bytes` random bytes to path (16 MiB writes) and returns their sha256. */
async function writeRandomFile(path: string, bytes: number): Promise<string> {
  const hash = createHash("sha256");
  const handle = await open(path, "wx");
  try {
    for (let written = 0; written < bytes;) {
      const chunk = randomBytes(Math.min(16 * 1024 * 1024, bytes - written));
      hash.update(chunk);
      await handle.write(chunk);
      written += chunk.byteLength;
    }
  } finally {
    await handle.close();
  }
  return hash.digest("hex");
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
  }
  return hash.digest("hex");
}

/** `sync`: write back dirty pages so that one measurement's writeback does not slow the next. */
const sync = () => timeCommand(["sync"], process.env).then(() => undefined);

/** The Ceph RGW keys of scripts/ci/start-ceph.sh, or why they cannot be used. */
async function cephSettings(): Promise<{ endpoint: string; accessKey: string; secretKey: string } | string> {
  if (!existsSync(CEPH_ENV)) return `no ${CEPH_ENV}; start Ceph with scripts/ci/start-ceph.sh`;
  const vars = Object.fromEntries(
    readFileSync(CEPH_ENV, "utf8")
      .split("\n")
      .map((l) => /^(?:export\s+)?(\w+)=["']?([^"'\n]*)["']?$/.exec(l.trim()))
      .filter((m) => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
  const endpoint = vars.MOTTAINAI_TEST_S3_ENDPOINT ?? "http://127.0.0.1:7480";
  const accessKey = vars.MOTTAINAI_TEST_S3_ACCESS_KEY;
  const secretKey = vars.MOTTAINAI_TEST_S3_SECRET_KEY;
  if (!accessKey || !secretKey) return `${CEPH_ENV} has no MOTTAINAI_TEST_S3_ACCESS_KEY/SECRET_KEY`;
  try {
    const text = await (await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(3000) })).text();
    if (!text.includes("ListAllMyBucketsResult")) return `${endpoint} does not answer as a RADOS Gateway`;
  } catch (err) {
    return `the RADOS Gateway at ${endpoint} is unreachable (${(err as Error).message}); start it with scripts/ci/start-ceph.sh`;
  }
  return { endpoint, accessKey, secretKey };
}

/** Per backend: the timed rounds of upload and download, and the servers' CPU seconds. */
interface BackendFigures {
  upload: Timed[];
  download: Timed[];
  uploadServerCpu: number[];
  downloadServerCpu: number[];
  /** `mottainai storage show` (process start and one unary call): the CLI's fixed cost in each figure. */
  cliStart: Timed[];
}

/**
 * Runs `rounds` rounds against a server: each round uploads the file with `mottainai storage
 * upload` (the same path again, so each round stores the full file again) and downloads it with
 * `mottainai storage download` into a fresh directory, whose sha256 is then checked (untimed).
 * cpRound() runs a `cp` baseline before each round, so that baseline and figure share the
 * machine's current load.
 */
async function measureBackend(
  server: ServerHandle,
  file: string,
  sha256: string,
  work: string,
  rounds: number,
  cpRound: () => Promise<void>,
): Promise<BackendFigures> {
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    MOTTAINAI_SERVER: server.url,
    MOTTAINAI_TOKEN: server.adminToken,
    XDG_CONFIG_HOME: join(work, "config"),
  };
  const cli = (args: string[]) => timeCommand([process.execPath, CLI_MAIN, ...args], env);
  await cli(["storage", "create", "bench"]);
  const figures: BackendFigures = { upload: [], download: [], uploadServerCpu: [], downloadServerCpu: [], cliStart: [] };
  for (let round = 0; round < rounds; round++) {
    figures.cliStart.push(await cli(["storage", "show", "bench"]));
    await cpRound();
    await sync();
    let cpu0 = readCpuSeconds(server.pid);
    figures.upload.push(await cli(["storage", "upload", "bench", file]));
    figures.uploadServerCpu.push(readCpuSeconds(server.pid) - cpu0);
    await sync();
    const out = join(work, `download-${round}`);
    cpu0 = readCpuSeconds(server.pid);
    figures.download.push(await cli(["storage", "download", "bench", "--to", out]));
    figures.downloadServerCpu.push(readCpuSeconds(server.pid) - cpu0);
    const got = await sha256File(join(out, "artefact.bin"));
    if (got !== sha256) throw new Error(`the downloaded file has sha256 ${got}, expected ${sha256}`);
    rmSync(out, { recursive: true, force: true });
  }
  return figures;
}

const fmtSpread = <T>(xs: T[], f: (x: T) => string) => xs.map(f).join(", ");

/**
 * The transfer benchmark. A file of options.transferBytes random bytes is written to a temporary
 * directory in os.tmpdir(), the file system that also holds the servers' data directories; it
 * stays in the page cache (RAM is far larger than the file), so every read below is warm and the
 * figures compare the software, not the disk. Baseline: `cp SRC DST` to a fresh destination,
 * spawn to exit, no fsync (neither cp nor mottainai fsyncs; `sync` runs untimed before each
 * measurement so that no one pays for another's writeback). Each round runs cp, then an upload
 * and a download through the CLI (process start included, as a user runs it). Medians of
 * options.transferRounds rounds; the spread is in the notes.
 */
export async function runArtefactTransfer(options: BenchOptions): Promise<BenchResult> {
  const bytes = options.transferBytes;
  const rounds = options.transferRounds;
  const work = mkdtempSync(join(tmpdir(), "mottainai-bench-transfer-"));
  const removeWork = deferCleanup(() => rmSync(work, { recursive: true, force: true }));
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  const sizeText = bytes % 1024 ** 3 === 0 ? `${bytes / 1024 ** 3} GiB` : `${(bytes / 1024 ** 2).toFixed(0)} MiB`;
  try {
    const file = join(work, "artefact.bin");
    const t0 = performance.now();
    const sha256 = await writeRandomFile(file, bytes);
    console.error(`[bench] transfer: wrote ${sizeText} of random bytes in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const cpTimes: Timed[] = [];
    const cpRound = async () => {
      const dst = join(work, "cp-copy.bin");
      rmSync(dst, { force: true });
      await sync();
      cpTimes.push(await timeCommand(["cp", file, dst], process.env));
      rmSync(dst, { force: true });
    };
    await cpRound(); // warm-up: cp's own pages and binary
    cpTimes.length = 0;

    const backends: { name: string; args: string[] | string; cleanup?: () => Promise<void> }[] = [{ name: "local", args: [] }];
    const ceph = await cephSettings();
    const bucket = `mottainai-bench-${randomBytes(4).toString("hex")}`;
    if (typeof ceph === "string") {
      backends.push({ name: "Ceph", args: ceph });
    } else {
      backends.push({
        name: "Ceph",
        args: [
          "--blobs",
          "s3",
          "--s3-endpoint",
          ceph.endpoint,
          "--s3-bucket",
          bucket,
          "--s3-access-key",
          ceph.accessKey,
          "--s3-secret-key",
          ceph.secretKey,
        ],
        // Deletes what the bench stored (RGW frees it after its garbage collection) and the bucket.
        cleanup: async () => {
          const store = await openS3BlobStore({
            endpoint: ceph.endpoint,
            bucket,
            accessKeyId: ceph.accessKey,
            secretAccessKey: ceph.secretKey,
          });
          try {
            for await (const blob of store.list()) await store.delete(blob.sha256);
            await store.client.send(new DeleteBucketCommand({ Bucket: bucket }));
          } finally {
            await store.close();
          }
        },
      });
    }

    for (const backend of backends) {
      if (typeof backend.args === "string") {
        notes.push(`transfer ${backend.name}: skipped: ${backend.args}`);
        continue;
      }
      const server = await startMottainaiServer({ args: backend.args, nodeFlags: options.serverNodeFlags });
      const removeBucket = backend.cleanup ? deferCleanup(backend.cleanup) : undefined;
      const dir = join(work, backend.name);
      mkdirSync(dir);
      const cpBefore = cpTimes.length;
      try {
        const f = await measureBackend(server, file, sha256, dir, rounds, cpRound);
        const cp = cpTimes.slice(cpBefore);
        const cpRate = mbps(bytes, median(cp.map((t) => t.ms)));
        const up = mbps(bytes, median(f.upload.map((t) => t.ms)));
        const down = mbps(bytes, median(f.download.map((t) => t.ms)));
        const ratioRow = (what: string, value: number) => {
          const row = benchRow(`${what} ${sizeText} via CLI, ${backend.name}`, value, "MB/s", { op: ">=", target: 0 }, cpRate);
          return { ...row, goal: `ratio >= ${GOAL_RATIO}`, met: row.ratio >= GOAL_RATIO };
        };
        const cpRow = benchRow(`cp ${sizeText} (${backend.name} rounds)`, cpRate, "MB/s", { op: ">=", target: 0 }, cpRate);
        rows.push({ ...cpRow, goal: "baseline", met: true }, ratioRow("upload", up), ratioRow("download", down));
        const secs = (t: Timed) => (t.ms / 1000).toFixed(2);
        const cpuOf = (t: Timed) => t.cpu.toFixed(2);
        notes.push(
          `transfer ${backend.name}: ${rounds} rounds of ${sizeText}; wall seconds cp ${fmtSpread(cp, secs)}; ` +
            `upload ${fmtSpread(f.upload, secs)} (CLI CPU ${fmtSpread(f.upload, cpuOf)} s, server CPU ${fmtSpread(f.uploadServerCpu, (x) => x.toFixed(2))} s); ` +
            `download ${fmtSpread(f.download, secs)} (CLI CPU ${fmtSpread(f.download, cpuOf)} s, server CPU ${fmtSpread(f.downloadServerCpu, (x) => x.toFixed(2))} s); ` +
            `CLI start + one call (\`storage show\`) ${fmtSpread(f.cliStart, secs)}`,
        );
      } finally {
        await server.stop();
        await removeBucket?.().catch((err: unknown) =>
          notes.push(`transfer ${backend.name}: could not remove bucket ${bucket}: ${(err as Error).message}`),
        );
      }
    }
    notes.push(
      "transfer: baseline = `cp SRC DST` (fresh DST on the same file system as the server's data dir, spawn to exit, no fsync, source in the page cache); " +
        "upload/download = `node cli/dist/main.js storage upload|download` spawn to exit (process start included; nobody fsyncs; `sync` runs untimed before each); downloaded sha256 checked untimed",
    );
    return { rows, notes };
  } finally {
    await removeWork();
  }
}
