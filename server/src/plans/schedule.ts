import { Cron } from "croner";
import { scheduleProblem, timezoneProblem } from "@mottainai/proto";

/**
 * A plan's schedule, as the original (robfig/cron v1) read `planned`: cron with 6 fields
 * (seconds first) or 5 (minute first, seconds 0), a descriptor, or `@every <Go duration>`.
 * `timezone` is the IANA zone the cron fields are read in ("" for UTC; @every ignores it).
 * `anchor` (ms since the epoch, normally the plan's creation time) is where @every counts from:
 * its occurrences are anchor + k × interval for k ≥ 1, the anchor rounded down to the second.
 */
export interface Schedule {
  planned: string;
  timezone: string;
  anchor: number;
}

/** A `planned` or `timezone` value that cannot be scheduled; message names the value and why. */
export class ScheduleError extends Error {
  override name = "ScheduleError";
  constructor(
    /** "planned" or "timezone". */
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** The descriptors of robfig/cron v1, as 6-field expressions. */
const DESCRIPTORS: Readonly<Record<string, string>> = {
  "@yearly": "0 0 0 1 1 *",
  "@annually": "0 0 0 1 1 *",
  "@monthly": "0 0 0 1 * *",
  "@weekly": "0 0 0 * * 0",
  "@daily": "0 0 0 * * *",
  "@midnight": "0 0 0 * * *",
  "@hourly": "0 0 * * * *",
};

const GO_UNITS_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

type Compiled = { kind: "every"; intervalMs: number; anchor: number } | { kind: "cron"; cron: Cron };

const cache = new Map<string, Compiled>();

/**
 * Checks a schedule without computing anything; throws ScheduleError naming the bad field, with
 * the same messages as parsePlanFile (the expression and why).
 */
export function validateSchedule(planned: string, timezone: string): void {
  compile({ planned, timezone, anchor: 0 });
}

function compile(s: Schedule): Compiled {
  const key = `${s.planned}\u0000${s.timezone}\u0000${s.anchor}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const planned = s.planned.trim();
  const problem = scheduleProblem(planned);
  if (problem !== undefined) throw new ScheduleError("planned", problem);
  const zoneProblem = timezoneProblem(s.timezone);
  if (zoneProblem !== undefined) throw new ScheduleError("timezone", zoneProblem);
  let compiled: Compiled;
  const every = /^@every\s+(.*)$/.exec(planned);
  if (every) {
    compiled = { kind: "every", intervalMs: everyIntervalMs(every[1] ?? ""), anchor: Math.floor(s.anchor / 1000) * 1000 };
  } else {
    const pattern = DESCRIPTORS[planned] ?? planned.replace(/\?/g, "*");
    try {
      compiled = {
        kind: "cron",
        cron: new Cron(pattern, {
          paused: true,
          mode: "5-or-6-parts",
          sloppyRanges: true,
          domAndDow: false,
          timezone: s.timezone || "UTC",
        }),
      };
    } catch (err) {
      throw new ScheduleError("planned", `invalid cron expression "${planned}": ${(err as Error).message}`);
    }
  }
  if (cache.size > 10_000) cache.clear();
  cache.set(key, compiled);
  return compiled;
}

/** robfig/cron v1's Every: the duration rounded down to whole seconds, at least one second. */
function everyIntervalMs(duration: string): number {
  let ms = 0;
  for (const m of duration.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    ms += Number(m[1]) * (GO_UNITS_MS[m[2] ?? ""] ?? 0);
  }
  return Math.max(1000, Math.floor(ms / 1000) * 1000);
}

/**
 * The first occurrence of the schedule strictly after `after` (ms since the epoch), or undefined
 * when there is none (a cron that can never match again). Pure: same inputs, same answer.
 *
 * @throws ScheduleError for a bad `planned` or `timezone`.
 */
export function nextOccurrence(schedule: Omit<Schedule, "timezone">, after: number, timezone: string): number | undefined {
  const c = compile({ ...schedule, timezone });
  if (c.kind === "every") {
    if (after < c.anchor) return c.anchor + c.intervalMs;
    return c.anchor + (Math.floor((after - c.anchor) / c.intervalMs) + 1) * c.intervalMs;
  }
  return c.cron.nextRun(new Date(after))?.getTime();
}

/**
 * The latest occurrence at or before `at` that is not before `from`, or undefined when there is
 * none in [from, at]. The scheduler asks it which occurrence of a gap is the one to fire.
 *
 * @throws ScheduleError for a bad `planned` or `timezone`.
 */
export function latestOccurrence(
  schedule: Omit<Schedule, "timezone">,
  from: number,
  at: number,
  timezone: string,
): number | undefined {
  if (at < from) return undefined;
  const c = compile({ ...schedule, timezone });
  let latest: number | undefined;
  if (c.kind === "every") {
    if (at < c.anchor + c.intervalMs) return undefined;
    latest = c.anchor + Math.floor((at - c.anchor) / c.intervalMs) * c.intervalMs;
  } else {
    // previousRuns is strictly before its reference, and occurrences fall on whole seconds.
    latest = c.cron.previousRuns(1, new Date(Math.floor(at / 1000) * 1000 + 1000))[0]?.getTime();
  }
  return latest !== undefined && latest >= from ? latest : undefined;
}
