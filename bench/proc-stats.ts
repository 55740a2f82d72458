import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

let clockTicks: number | undefined;

/** Resident set size of a process in bytes (VmRSS of /proc/PID/status). */
export function readRssBytes(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+)\s+kB$/m);
  if (!m?.[1]) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) * 1024;
}

/** CPU time a process has used so far (user + system) in seconds, from /proc/PID/stat. */
export function readCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  clockTicks ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** Number of sockets a process holds open (its /proc/PID/fd links to socket:[…]). */
export function countSockets(pid: number): number {
  let sockets = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:")) sockets++;
    } catch {
      // closed while we looked
    }
  }
  return sockets;
}

/**
 * Share of one core a process uses over windowMs: CPU seconds used in the window divided by the
 * window's wall time, as a fraction (0.2 = 20 % of one core).
 */
export async function measureCpuShare(pid: number, windowMs: number): Promise<number> {
  const cpu0 = readCpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  const cpu1 = readCpuSeconds(pid);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  return (cpu1 - cpu0) / wall;
}

/** The hard open-files limit children get when their soft limit is raised (bash `ulimit -Hn`). */
export function hardFdLimit(): number {
  const out = execFileSync("bash", ["-c", "ulimit -Hn"], { encoding: "utf8" }).trim();
  return out === "unlimited" ? Number.POSITIVE_INFINITY : Number(out);
}

/**
 * Waits until a one-second sample of the process's CPU share is below maxShare (the process has
 * worked off a burst, such as thousands of connections) or capMs passed; resolves with the time
 * waited in ms.
 */
export async function waitUntilQuiet(pid: number, maxShare: number, capMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < capMs) {
    if ((await measureCpuShare(pid, 1000)) < maxShare) break;
  }
  return Date.now() - t0;
}
