import { create } from "@bufbuild/protobuf";
import { PipelineSpecSchema, type PipelineSpec } from "../gen/mottainai/v1/pipeline_pb.js";
import {
  asBoolean,
  asCount,
  asString,
  asStringList,
  describe,
  joinField,
  keyPath,
  quote,
  setOwn,
  suggestion,
  unknownKey,
  withFile,
} from "./field-readers.js";
import { compilePipelineGraph } from "./pipeline-graph.js";
import { SpecError, type SpecIssue } from "./spec-error.js";
import { SpecWarnings } from "./spec-warnings.js";
import {
  IGNORED_WITH_WARNING,
  NO_KEYS,
  PIPELINE_TASK_MISPLACED,
  readTask,
  TASK_KEYS,
  validateTaskSpec,
  type Parsed,
} from "./task-file.js";
import { readDocument, type Mapping, type Value } from "./yaml-document.js";

const IGNORED_PIPELINE_KEYS: ReadonlySet<string> = new Set([
  "ID",
  "id",
  "status",
  "owner_id",
  "created_time",
  "start_time",
  "end_time",
  "last_update_time",
]);

/** Keys whose presence makes a plan file a pipeline plan. */
export const PIPELINE_MARKER_KEYS: readonly string[] = ["pipeline_name", "chain", "group", "chord", "tasks"];

/**
 * Parses an original pipeline file (YAML or JSON): `pipeline_name`, `chain` or `group` with an
 * optional `chord` (lists of task keys), `tasks` (key → task, each read with the rules of
 * {@link parseTaskFile} and reported as `tasks.<key>.<field>`, plus the pipeline-only task keys
 * `depends_on` (a key list) and `inherit_artefacts` (a boolean)), `queue` and `concurrency`
 * (default 0: no limit). Exactly one of `chain` and `group` is non-empty, `chord` needs a
 * `group`, every listed key names an entry of `tasks` and is listed once, and every entry of
 * `tasks` is listed (the original dropped unlisted tasks silently; put a YAML anchor on a listed
 * task instead of a template entry). `depends_on` names listed keys and makes no cycle (see
 * compilePipelineGraph). A task's empty `queue` stays empty: the pipeline's `queue` applies to
 * it when the pipeline is created. Exported state keys (`ID`, `status`, `owner_id`, times) are
 * ignored.
 * Unknown keys, `plan` and repeated keys are handled as in a task file, with warnings
 * ({@link parsePipelineFileWithWarnings}).
 *
 * @throws SpecError naming the first bad field.
 */
export function parsePipelineFile(text: string, file?: string): PipelineSpec {
  return parsePipelineFileWithWarnings(text, file).spec;
}

/** {@link parsePipelineFile}, also returning the warnings (those of its tasks included). */
export function parsePipelineFileWithWarnings(text: string, file?: string): Parsed<PipelineSpec> {
  const warnings = new SpecWarnings();
  const spec = withFile(file, () => readPipeline(readDocument(text, warnings), NO_KEYS, warnings));
  return { spec, warnings: warnings.messages(file) };
}

/** Keys of a pipeline's task that only pipelines know; read by the pipeline, not by readTask. */
const MEMBER_KEYS: ReadonlySet<string> = new Set(["depends_on", "inherit_artefacts"]);

type PipelineFieldReader = (spec: PipelineSpec, value: Value, field: string, warnings: SpecWarnings) => void;

const PIPELINE_FIELDS: Readonly<Record<string, PipelineFieldReader>> = {
  pipeline_name: (spec, value, field) => (spec.pipelineName = asString(value, field)),
  chain: (spec, value, field) => (spec.chain = asStringList(value, field)),
  group: (spec, value, field) => (spec.group = asStringList(value, field)),
  chord: (spec, value, field) => (spec.chord = asStringList(value, field)),
  tasks: (spec, value, field, warnings) => {
    if (!(value instanceof Map)) throw new SpecError(field, `expected a mapping of task keys to tasks, got ${describe(value)}`);
    for (const [key, task] of value) {
      const taskField = keyPath(field, key);
      if (!(task instanceof Map)) throw new SpecError(taskField, `expected a task (a mapping), got ${describe(task)}`);
      const member = readTask(task, taskField, PIPELINE_TASK_MISPLACED, MEMBER_KEYS, warnings);
      const dependsOn = task.get("depends_on");
      if (dependsOn !== undefined && dependsOn !== null)
        member.dependsOn = asStringList(dependsOn, keyPath(taskField, "depends_on"));
      const inherit = task.get("inherit_artefacts");
      if (inherit !== undefined && inherit !== null) {
        member.inheritArtefacts = asBoolean(inherit, keyPath(taskField, "inherit_artefacts"));
      }
      setOwn(spec.tasks, key, member);
    }
  },
  queue: (spec, value, field) => (spec.queue = asString(value, field)),
  concurrency: (spec, value, field) => (spec.concurrency = asCount(value, field, "a non-negative integer")),
};

const PIPELINE_KEYS: readonly string[] = Object.keys(PIPELINE_FIELDS);

const PIPELINE_MISPLACED: ReadonlyMap<string, string> = new Map([
  ["planned", "planned belongs in a plan file"],
  ...TASK_KEYS.filter((key) => key !== "task" && !Object.hasOwn(PIPELINE_FIELDS, key)).map((key): [string, string] => [
    key,
    `${key} belongs in a task under tasks`,
  ]),
]);

/** Reads a pipeline mapping; `handledByCaller` keys (a plan's `planned`) are skipped. */
export function readPipeline(map: Mapping, handledByCaller: ReadonlySet<string>, warnings: SpecWarnings): PipelineSpec {
  const spec = create(PipelineSpecSchema);
  for (const [key, value] of map) {
    if (handledByCaller.has(key) || IGNORED_PIPELINE_KEYS.has(key)) continue;
    const field = keyPath("", key);
    const ignored = IGNORED_WITH_WARNING.get(key);
    const reader = Object.hasOwn(PIPELINE_FIELDS, key) ? PIPELINE_FIELDS[key] : undefined;
    if (ignored !== undefined) warnings.add(field, ignored);
    else if (reader === undefined) unknownKey(key, field, PIPELINE_KEYS, PIPELINE_MISPLACED, warnings);
    else if (value !== null) reader(spec, value, field, warnings);
  }
  const [issue] = validatePipelineSpec(spec);
  if (issue !== undefined) throw new SpecError(issue.field, issue.message);
  return spec;
}

/**
 * Checks a pipeline spec from any source (a parsed file or a message arriving over the wire)
 * and returns its problems (the first graph problem last, once the lists are sound); an empty
 * list means the spec is acceptable. Rules: those of {@link parsePipelineFile}, and every task
 * passes validateTaskSpec.
 */
export function validatePipelineSpec(spec: PipelineSpec): SpecIssue[] {
  const issues: SpecIssue[] = [];
  const hasChain = spec.chain.length > 0;
  const hasGroup = spec.group.length > 0;
  if (!hasChain && !hasGroup) issues.push({ field: "chain", message: "a pipeline needs a chain or a group of task keys" });
  if (hasChain && hasGroup) issues.push({ field: "group", message: "a pipeline has a chain or a group, not both" });
  if (spec.chord.length > 0 && !hasGroup) {
    issues.push({ field: "chord", message: "a chord runs after a group, and this pipeline has no group" });
  }
  const taskKeys = Object.keys(spec.tasks);
  const listedAt = new Map<string, string>();
  const lists: [string, string[]][] = [
    ["chain", spec.chain],
    ["group", spec.group],
    ["chord", spec.chord],
  ];
  for (const [name, keys] of lists) {
    keys.forEach((key, i) => {
      const field = `${name}[${i}]`;
      const previous = listedAt.get(key);
      if (!Object.hasOwn(spec.tasks, key)) {
        issues.push({ field, message: `no task ${quote(key)} in tasks${suggestion(key, taskKeys)}` });
      } else if (previous !== undefined) {
        issues.push({ field, message: `task ${quote(key)} is already listed at ${previous}` });
      } else {
        listedAt.set(key, field);
      }
    });
  }
  for (const [key, task] of Object.entries(spec.tasks)) {
    if (!listedAt.has(key)) {
      issues.push({
        field: keyPath("tasks", key),
        message: `task ${quote(key)} is not listed in chain, group or chord (the original dropped it silently)`,
      });
    }
    for (const issue of validateTaskSpec(task)) {
      issues.push({ field: joinField(keyPath("tasks", key), issue.field), message: issue.message });
    }
  }
  for (const [key, task] of Object.entries(spec.tasks)) {
    if (!task.inheritArtefacts) continue;
    const parents = [...task.dependsOn, ...(spec.chain.includes(key) ? spec.chain : spec.chord.includes(key) ? spec.group : [])];
    const bad = parents.find((k) => k === "." || k === ".." || /[/\0]/.test(k));
    if (bad !== undefined) {
      issues.push({
        field: keyPath(keyPath("tasks", key), "inherit_artefacts"),
        message: `parent ${quote(bad)} cannot name the directory its artefacts go to (no "/", ".", "..")`,
      });
    }
  }
  if (issues.length === 0) {
    try {
      compilePipelineGraph(spec);
    } catch (err) {
      if (!(err instanceof SpecError)) throw err;
      issues.push({ field: err.field, message: err.reason });
    }
  }
  return issues;
}
