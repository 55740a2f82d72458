import { create } from "@bufbuild/protobuf";
import { CatchUp, PlanSpecSchema, type PlanSpec } from "../gen/mottainai/v1/plan_pb.js";
import { asString, quote, withFile } from "./field-readers.js";
import { PIPELINE_MARKER_KEYS, readPipeline } from "./pipeline-file.js";
import { SpecError } from "./spec-error.js";
import { SpecWarnings } from "./spec-warnings.js";
import { readTask, TASK_FILE_MISPLACED, type Parsed } from "./task-file.js";
import { readDocument, type Value } from "./yaml-document.js";

const PLAN_KEYS: ReadonlySet<string> = new Set(["planned", "timezone", "catch_up"]);

/**
 * Parses a plan file: a task file or a pipeline file plus `planned`, the schedule. `planned` is
 * required: cron with 6 fields (seconds first) or 5 (minute first), each `*`, `?` (day fields),
 * values, ranges, lists and `/steps`, with jan–dec and sun–sat names; or one of @yearly,
 * @annually, @monthly, @weekly, @daily, @midnight, @hourly; or `@every <duration>` in Go's
 * duration syntax (`@every 90s`, `@every 1h30m`), longer than zero. It is stored trimmed.
 * A file with any of `pipeline_name`, `chain`, `group`, `chord` or `tasks` is a pipeline plan
 * (`target.case` "pipeline"), otherwise a task plan (`target.case` "task").
 * Two keys the original lacked: `timezone`, the IANA zone the cron fields are read in (default
 * UTC, stored as ""), and `catch_up`, what to fire for occurrences missed while no server ran:
 * `skip` (the default) or `once`.
 * Unknown keys, `plan` and repeated keys are handled as in a task file, with warnings
 * ({@link parsePlanFileWithWarnings}).
 *
 * @throws SpecError naming the first bad field; `planned` is checked first.
 */
export function parsePlanFile(text: string, file?: string): PlanSpec {
  return parsePlanFileWithWarnings(text, file).spec;
}

/** {@link parsePlanFile}, also returning the warnings. */
export function parsePlanFileWithWarnings(text: string, file?: string): Parsed<PlanSpec> {
  const warnings = new SpecWarnings();
  const spec = withFile(file, () => {
    const map = readDocument(text, warnings);
    const planned = readPlanned(map.get("planned") ?? null);
    const timezone = readTimezone(map.get("timezone") ?? null);
    const catchUp = readCatchUp(map.get("catch_up") ?? null);
    const isPipeline = PIPELINE_MARKER_KEYS.some((key) => map.has(key));
    return create(PlanSpecSchema, {
      planned,
      timezone,
      catchUp,
      target: isPipeline
        ? { case: "pipeline", value: readPipeline(map, PLAN_KEYS, warnings) }
        : { case: "task", value: readTask(map, "", TASK_FILE_MISPLACED, PLAN_KEYS, warnings) },
    });
  });
  return { spec, warnings: warnings.messages(file) };
}

const SCHEDULE_FORMS =
  'a cron expression with 6 fields (seconds first) or 5, a descriptor such as @daily, or "@every <duration>" such as "@every 1h30m"';

const DESCRIPTORS: readonly string[] = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];

interface CronField {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
  question?: boolean;
}

const CRON_FIELDS: readonly CronField[] = [
  { name: "second", min: 0, max: 59 },
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31, question: true },
  {
    name: "month",
    min: 1,
    max: 12,
    names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
  },
  { name: "day of week", min: 0, max: 6, names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"], question: true },
];

const DURATION = /^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/;
const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;

function readTimezone(value: Value): string {
  if (value === null) return "";
  const timezone = asString(value, "timezone").trim();
  const problem = timezoneProblem(timezone);
  if (problem !== undefined) throw new SpecError("timezone", problem);
  return timezone;
}

function readCatchUp(value: Value): CatchUp {
  if (value === null) return CatchUp.UNSPECIFIED;
  const text = asString(value, "catch_up").trim();
  if (text === "skip") return CatchUp.SKIP;
  if (text === "once") return CatchUp.ONCE;
  throw new SpecError("catch_up", `expected "skip" or "once", got ${quote(text)}`);
}

/**
 * Why timezone is not an IANA time zone name this runtime knows ("" is UTC and valid), or
 * undefined when it is one.
 */
export function timezoneProblem(timezone: string): string | undefined {
  if (timezone === "") return undefined;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
    return undefined;
  } catch {
    return `unknown time zone ${quote(timezone)}: expected an IANA name such as UTC or Europe/Rome`;
  }
}

function readPlanned(value: Value): string {
  if (value === null) throw new SpecError("planned", `required: ${SCHEDULE_FORMS}`);
  const planned = asString(value, "planned").trim();
  const problem = scheduleProblem(planned);
  if (problem !== undefined) throw new SpecError("planned", problem);
  return planned;
}

/**
 * Why schedule is not a `planned` value the original accepted (robfig/cron v1), or undefined
 * when it is one: the same check parsePlanFile makes, for callers that get a PlanSpec another way.
 */
export function scheduleProblem(schedule: string): string | undefined {
  if (schedule === "") return `required: ${SCHEDULE_FORMS}`;
  const every = /^@every\s+(.*)$/.exec(schedule);
  if (every !== null) return durationProblem(every[1] ?? "");
  if (schedule.startsWith("@")) {
    if (DESCRIPTORS.includes(schedule)) return undefined;
    return `unknown schedule ${quote(schedule)}: expected one of ${DESCRIPTORS.join(", ")} or "@every <duration>"`;
  }
  const fields = schedule.split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    return `expected ${SCHEDULE_FORMS}; got ${quote(schedule)} (${fields.length} field${fields.length === 1 ? "" : "s"})`;
  }
  const specs = fields.length === 6 ? CRON_FIELDS : CRON_FIELDS.slice(1);
  for (const [i, text] of fields.entries()) {
    const spec = specs[i];
    if (spec !== undefined && !cronFieldIsValid(text, spec)) {
      const names = spec.names ? ` or ${spec.names[0]}-${spec.names[spec.names.length - 1]}` : "";
      return `invalid ${spec.name} field ${quote(text)} (values ${spec.min}-${spec.max}${names}) in ${quote(schedule)}`;
    }
  }
  return undefined;
}

function cronFieldIsValid(text: string, spec: CronField): boolean {
  return text.split(",").every((part) => {
    const [range = "", step, ...extra] = part.split("/");
    if (extra.length > 0) return false;
    if (step !== undefined && (!/^\d+$/.test(step) || Number(step) === 0)) return false;
    if (range === "*") return true;
    if (range === "?") return spec.question === true && step === undefined;
    const [low = "", high, ...more] = range.split("-");
    if (more.length > 0) return false;
    const from = cronValue(low, spec);
    const to = high === undefined ? from : cronValue(high, spec);
    return from !== undefined && to !== undefined && from <= to;
  });
}

function cronValue(text: string, spec: CronField): number | undefined {
  const named = spec.names?.indexOf(text.toLowerCase()) ?? -1;
  if (named >= 0) return named + spec.min;
  if (!/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  return value >= spec.min && value <= spec.max ? value : undefined;
}

function durationProblem(duration: string): string | undefined {
  if (!DURATION.test(duration)) {
    return `invalid duration ${quote(duration)} after @every: expected a Go duration such as 90s, 15m or 1h30m`;
  }
  const total = [...duration.matchAll(DURATION_PART)].reduce((sum, match) => sum + Number(match[1]), 0);
  return total > 0 ? undefined : `the duration after @every must be longer than zero, got ${quote(duration)}`;
}
