import { create } from "@bufbuild/protobuf";
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type YAMLMap } from "yaml";
import { PipelineSpecSchema, type PipelineSpec } from "./gen/mottainai/v1/pipeline_pb.js";
import { PlanSpecSchema, type PlanSpec } from "./gen/mottainai/v1/plan_pb.js";
import { TaskSpecSchema, type TaskSpec } from "./gen/mottainai/v1/task_pb.js";
import { executorForTaskType, TASK_TYPES } from "./task-types.js";

/**
 * A task, pipeline or plan definition that cannot be accepted, raised before anything runs.
 *
 * `field` is the dotted path of the offending key in the file's own spelling, with list indexes
 * (`timeout`, `environment[2]`, `tasks.build.script[0]`); it is `""` for problems with the file
 * as a whole (YAML syntax, a top level that is not a mapping). `reason` says what was expected
 * and what was given. The message is `<file>: field "<field>": <reason>`, without `<file>: `
 * when no file name is known and without `field "": ` when the field is empty.
 */
export class SpecError extends Error {
  override readonly name = "SpecError";
  /** Dotted path of the offending key; `""` for the file as a whole. */
  readonly field: string;
  /** What was wrong, without the file and field prefix. */
  readonly reason: string;
  /** Name of the file the definition came from, when the caller gave one. */
  readonly file?: string;

  constructor(field: string, reason: string, file?: string) {
    const where = field === "" ? "" : `field "${field}": `;
    super(`${file ? `${file}: ` : ""}${where}${reason}`);
    this.field = field;
    this.reason = reason;
    if (file !== undefined) this.file = file;
  }
}

/**
 * One problem found by {@link validateTaskSpec}: `field` uses the task file's key names and the
 * same path syntax as {@link SpecError.field}; `message` is the reason alone.
 */
export interface SpecIssue {
  field: string;
  message: string;
}

const DEFAULT_ARTEFACT_PATH = "artefacts";
const DEFAULT_STORAGE_PATH = "storage";
const MAX_UINT32 = 0xffff_ffff;
const MAX_ALIAS_EXPANSIONS = 1000;
const ENVIRONMENT_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FALSE_STRINGS: ReadonlySet<string> = new Set(["", "false", "no", "off", "0"]);
const PUBLISH_MODES: readonly string[] = ["", "append"];

/**
 * Keys of the original's exported task JSON that describe a task's state, not its definition;
 * they are accepted and dropped so that an exported task can be created again unchanged.
 */
const IGNORED_TASK_KEYS: ReadonlySet<string> = new Set([
  "ID",
  "id",
  "status",
  "result",
  "output",
  "exit_status",
  "created_time",
  "start_time",
  "end_time",
  "last_update_time",
  "node_id",
  "owner_id",
  "pipeline_id",
  "authhosts",
  "yaml",
]);

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

const PIPELINE_ONLY_KEYS: readonly string[] = ["pipeline_name", "chain", "group", "chord", "tasks", "concurrency"];
const PIPELINE_MARKER_KEYS: readonly string[] = ["pipeline_name", "chain", "group", "chord", "tasks"];
const PLAN_KEYS: ReadonlySet<string> = new Set(["planned"]);
const NO_KEYS: ReadonlySet<string> = new Set();

class NumberLiteral {
  constructor(
    readonly value: number,
    readonly text: string,
  ) {}
}

type Mapping = Map<string, Value>;
type Value = null | boolean | string | NumberLiteral | Value[] | Mapping;

/**
 * Parses an original Mottainai task file (YAML or JSON) into a validated {@link TaskSpec}.
 *
 * Every original key is accepted unchanged; `task` is an alias of `type`. Defaults:
 * `artefact_path` "artefacts", `storage_path` "storage", `namespace_merged` true; an empty
 * `artefact_path` or `storage_path` also means the default. A null value means the key is absent.
 * Comma-separated `storage`, `namespace` and `root_task` become trimmed lists; `script`,
 * `entrypoint`, `environment`, `binds` and the filter lists accept a single string as a
 * one-element list; `environment` also accepts a `{NAME: value}` mapping. Numbers and booleans
 * in string fields keep their text as written (`commit: 0123` is "0123"). Booleans accept
 * true/false, numbers (0 is false) and the original's strings ("", "false", "no", "off" and "0",
 * in any case, are false; any other string is true). The state keys of an exported task (`ID`,
 * `status`, `output`, …) are ignored; `<<` merge keys and anchors work.
 *
 * @throws SpecError naming the first bad field: YAML syntax, unknown keys (with a suggestion),
 * wrong value types, then the first issue of {@link validateTaskSpec}.
 */
export function parseTaskFile(text: string, file?: string): TaskSpec {
  return withFile(file, () => readTask(readDocument(text), "", TASK_FILE_MISPLACED, NO_KEYS));
}

/**
 * Parses an original pipeline file (YAML or JSON): `pipeline_name`, `chain` or `group` with an
 * optional `chord` (lists of task keys), `tasks` (key → task, each read with the rules of
 * {@link parseTaskFile} and reported as `tasks.<key>.<field>`), `queue` and `concurrency`
 * (default 0: no limit). Exactly one of `chain` and `group` is non-empty, `chord` needs a
 * `group`, every listed key names an entry of `tasks` and is listed once; tasks that no list
 * names are kept. A task's empty `queue` stays empty: the pipeline's `queue` applies to it when
 * the pipeline is created. Exported state keys (`ID`, `status`, `owner_id`, times) are ignored.
 *
 * @throws SpecError naming the first bad field.
 */
export function parsePipelineFile(text: string, file?: string): PipelineSpec {
  return withFile(file, () => readPipeline(readDocument(text), NO_KEYS));
}

/**
 * Parses a plan file: a task file or a pipeline file plus `planned`, the schedule. `planned` is
 * required: cron with 6 fields (seconds first) or 5 (minute first), each `*`, `?` (day fields),
 * values, ranges, lists and `/steps`, with jan–dec and sun–sat names; or one of @yearly,
 * @annually, @monthly, @weekly, @daily, @midnight, @hourly; or `@every <duration>` in Go's
 * duration syntax (`@every 90s`, `@every 1h30m`), longer than zero. It is stored trimmed.
 * A file with any of `pipeline_name`, `chain`, `group`, `chord` or `tasks` is a pipeline plan
 * (`target.case` "pipeline"), otherwise a task plan (`target.case` "task").
 *
 * @throws SpecError naming the first bad field; `planned` is checked first.
 */
export function parsePlanFile(text: string, file?: string): PlanSpec {
  return withFile(file, () => {
    const map = readDocument(text);
    const planned = readPlanned(map.get("planned") ?? null);
    const isPipeline = PIPELINE_MARKER_KEYS.some((key) => map.has(key));
    return create(PlanSpecSchema, {
      planned,
      target: isPipeline
        ? { case: "pipeline", value: readPipeline(map, PLAN_KEYS) }
        : { case: "task", value: readTask(map, "", TASK_FILE_MISPLACED, PLAN_KEYS) },
    });
  });
}

/**
 * Checks a task spec from any source (a parsed file or a message arriving over the wire) and
 * returns every problem, in field order; an empty list means the spec is acceptable.
 *
 * Rules: `type` is one of {@link TASK_TYPES}; `image` is required for the docker, libvirt and
 * lxd types; `script` or `entrypoint` is non-empty; every `environment` entry is `NAME=value`
 * with NAME matching `[A-Za-z_][A-Za-z0-9_]*`; `directory`, `artefact_path` and `storage_path`
 * are relative (no leading `/`, no `..` segment, no NUL; empty is allowed and means the
 * default); `artefact_push_filters` and `namespace_filters` are valid JavaScript regular
 * expressions; `storage`, `namespace` and `root_task` hold no empty names; `publish_mode` is
 * "" or "append"; `retry` and `eta` are integers in 0..2^32-1; `timeout` is finite and ≥ 0;
 * label names are non-empty.
 */
export function validateTaskSpec(spec: TaskSpec): SpecIssue[] {
  const issues: SpecIssue[] = [];
  const add = (field: string, message: string | undefined): void => {
    if (message !== undefined) issues.push({ field, message });
  };
  const executor = executorForTaskType(spec.type);
  if (spec.type === "") {
    add("type", `required, one of: ${TASK_TYPES.join(", ")}`);
  } else if (executor === undefined) {
    add("type", unknownTypeMessage(spec.type));
  }
  if ((executor === "docker" || executor === "libvirt" || executor === "lxd") && spec.image.trim() === "") {
    add("image", `required for type ${quote(spec.type)}`);
  }
  if (spec.script.length === 0 && spec.entrypoint.length === 0) {
    add("script", "a task needs a script or an entrypoint");
  }
  spec.environment.forEach((entry, i) => add(`environment[${i}]`, environmentProblem(entry)));
  add("directory", relativePathProblem(spec.directory));
  add("artefact_path", relativePathProblem(spec.artefactPath));
  spec.artefactPushFilters.forEach((source, i) => add(`artefact_push_filters[${i}]`, regExpProblem(source)));
  spec.storage.forEach((name, i) => add(`storage[${i}]`, nameProblem(name)));
  add("storage_path", relativePathProblem(spec.storagePath));
  spec.namespace.forEach((name, i) => add(`namespace[${i}]`, nameProblem(name)));
  spec.namespaceFilters.forEach((source, i) => add(`namespace_filters[${i}]`, regExpProblem(source)));
  spec.rootTask.forEach((name, i) => add(`root_task[${i}]`, nameProblem(name)));
  if (!PUBLISH_MODES.includes(spec.publishMode)) {
    add("publish_mode", `expected "" (replace) or "append", got ${quote(spec.publishMode)}`);
  }
  add("retry", countProblem(spec.retry));
  if (!Number.isFinite(spec.timeout) || spec.timeout < 0) {
    add("timeout", `expected a non-negative number of seconds, got ${spec.timeout}`);
  }
  add("eta", countProblem(spec.eta));
  if (Object.hasOwn(spec.labels, "")) add("labels", "label names must not be empty");
  return issues;
}

/**
 * Splits an `environment` entry on its first `=`: `A=b=c` gives `["A", "b=c"]` and `EMPTY=`
 * gives `["EMPTY", ""]`. An entry without `=` gives the whole entry and an empty value;
 * {@link validateTaskSpec} rejects such entries.
 */
export function splitEnvironmentEntry(entry: string): [key: string, value: string] {
  const eq = entry.indexOf("=");
  return eq < 0 ? [entry, ""] : [entry.slice(0, eq), entry.slice(eq + 1)];
}

function withFile<T>(file: string | undefined, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (file !== undefined && error instanceof SpecError) throw new SpecError(error.field, error.reason, file);
    throw error;
  }
}

function readDocument(text: string): Mapping {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, merge: true, prettyErrors: false });
  const [error] = doc.errors;
  if (error !== undefined) {
    const { line, col } = lineCounter.linePos(error.pos[0]);
    throw new SpecError("", `invalid YAML at line ${line}, column ${col}: ${error.message}`);
  }
  if (doc.contents === null) throw new SpecError("", "expected a mapping at the top level, got an empty document");
  const value = new NodeReader(doc).read(doc.contents, "");
  if (!(value instanceof Map)) throw new SpecError("", `expected a mapping at the top level, got ${describe(value)}`);
  return value;
}

class NodeReader {
  private expansions = 0;
  private readonly open = new Set<unknown>();

  constructor(private readonly doc: Document) {}

  read(node: unknown, field: string): Value {
    if (node === null || node === undefined) return null;
    if (isAlias(node)) {
      this.expansions += 1;
      if (this.expansions > MAX_ALIAS_EXPANSIONS) {
        throw new SpecError(field, `more than ${MAX_ALIAS_EXPANSIONS} alias expansions`);
      }
      const target = node.resolve(this.doc);
      if (this.open.has(target)) throw new SpecError(field, `alias *${node.source} refers to itself`);
      return this.read(target, field);
    }
    if (isScalar(node)) {
      const value = node.value;
      if (value === null || typeof value === "string" || typeof value === "boolean") return value;
      if (typeof value === "number" || typeof value === "bigint") {
        return new NumberLiteral(Number(value), node.source ?? String(value));
      }
      throw new SpecError(field, `unsupported YAML value${node.tag ? ` of type ${node.tag}` : ""}`);
    }
    if (isSeq(node)) {
      this.open.add(node);
      try {
        return node.items.map((item, i) => this.read(item, `${field}[${i}]`));
      } finally {
        this.open.delete(node);
      }
    }
    if (isMap(node)) {
      this.open.add(node);
      try {
        return this.readMap(node, field);
      } finally {
        this.open.delete(node);
      }
    }
    throw new SpecError(field, "unsupported YAML node");
  }

  private readMap(node: YAMLMap, field: string): Mapping {
    const result: Mapping = new Map();
    const merged: Mapping[] = [];
    for (const pair of node.items) {
      if (isScalar(pair.key) && typeof pair.key.value === "symbol") {
        const mergeField = keyPath(field, "<<");
        const source = this.read(pair.value, mergeField);
        const sources = Array.isArray(source) ? source : [source];
        for (const item of sources) {
          if (!(item instanceof Map)) {
            throw new SpecError(mergeField, `expected a mapping or a list of mappings to merge, got ${describe(item)}`);
          }
          merged.push(item);
        }
        continue;
      }
      const key = this.readKey(pair.key, field);
      const pairField = keyPath(field, key);
      if (result.has(key)) throw new SpecError(pairField, "duplicate key");
      result.set(key, this.read(pair.value, pairField));
    }
    for (const source of merged) {
      for (const [key, value] of source) if (!result.has(key)) result.set(key, value);
    }
    return result;
  }

  private readKey(key: unknown, field: string): string {
    if (isScalar(key)) {
      const value = key.value;
      if (value === null) return "";
      if (typeof value === "string") return value;
      if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") {
        return key.source ?? String(value);
      }
    }
    throw new SpecError(field, "mapping keys must be plain strings");
  }
}

type TaskFieldReader = (spec: TaskSpec, value: Value, field: string) => void;

const TASK_FIELDS: Readonly<Record<string, TaskFieldReader>> = {
  name: (spec, value, field) => (spec.name = asString(value, field)),
  type: (spec, value, field) => (spec.type = asString(value, field)),
  image: (spec, value, field) => (spec.image = asString(value, field)),
  script: (spec, value, field) => (spec.script = asStringList(value, field)),
  entrypoint: (spec, value, field) => (spec.entrypoint = asStringList(value, field)),
  environment: (spec, value, field) => (spec.environment = asEnvironment(value, field)),
  source: (spec, value, field) => (spec.source = asString(value, field)),
  commit: (spec, value, field) => (spec.commit = asString(value, field)),
  directory: (spec, value, field) => (spec.directory = asString(value, field)),
  privkey: (spec, value, field) => (spec.privkey = asString(value, field)),
  binds: (spec, value, field) => (spec.binds = asStringList(value, field)),
  artefact_path: (spec, value, field) => (spec.artefactPath = asString(value, field) || DEFAULT_ARTEFACT_PATH),
  artefact_push_filters: (spec, value, field) => (spec.artefactPushFilters = asStringList(value, field)),
  storage: (spec, value, field) => (spec.storage = asNameList(value, field)),
  storage_path: (spec, value, field) => (spec.storagePath = asString(value, field) || DEFAULT_STORAGE_PATH),
  namespace: (spec, value, field) => (spec.namespace = asNameList(value, field)),
  namespace_filters: (spec, value, field) => (spec.namespaceFilters = asStringList(value, field)),
  namespace_merged: (spec, value, field) => (spec.namespaceMerged = asBoolean(value, field)),
  root_task: (spec, value, field) => (spec.rootTask = asNameList(value, field)),
  tag_namespace: (spec, value, field) => (spec.tagNamespace = asString(value, field)),
  publish_mode: (spec, value, field) => (spec.publishMode = asString(value, field)),
  queue: (spec, value, field) => (spec.queue = asString(value, field)),
  retry: (spec, value, field) => (spec.retry = asCount(value, field, "a non-negative integer")),
  timeout: (spec, value, field) => (spec.timeout = asSeconds(value, field)),
  eta: (spec, value, field) => (spec.eta = asCount(value, field, "a non-negative integer number of seconds")),
  cache_image: (spec, value, field) => (spec.cacheImage = asBoolean(value, field)),
  cache_clean: (spec, value, field) => (spec.cacheClean = asBoolean(value, field)),
  prune: (spec, value, field) => (spec.prune = asBoolean(value, field)),
  disable_push_on_failure: (spec, value, field) => (spec.disablePushOnFailure = asBoolean(value, field)),
  quota: (spec, value, field) => (spec.quota = asString(value, field)),
  labels: (spec, value, field) => (spec.labels = asLabels(value, field)),
};

const TASK_KEYS: readonly string[] = [...Object.keys(TASK_FIELDS), "task"];

const TASK_FILE_MISPLACED: ReadonlyMap<string, string> = new Map([
  ["planned", "planned belongs in a plan file"],
  ...PIPELINE_ONLY_KEYS.map((key): [string, string] => [key, `${key} belongs in a pipeline file`]),
]);

const PIPELINE_TASK_MISPLACED: ReadonlyMap<string, string> = new Map([
  ["planned", "planned belongs at the top of a plan file, not in a task"],
  ...PIPELINE_ONLY_KEYS.map((key): [string, string] => [key, `${key} belongs at the top of the pipeline file, not in a task`]),
]);

function readTask(
  map: Mapping,
  base: string,
  misplaced: ReadonlyMap<string, string>,
  handledByCaller: ReadonlySet<string>,
): TaskSpec {
  const spec = create(TaskSpecSchema, {
    artefactPath: DEFAULT_ARTEFACT_PATH,
    storagePath: DEFAULT_STORAGE_PATH,
    namespaceMerged: true,
  });
  for (const [key, value] of map) {
    if (key === "task" || handledByCaller.has(key) || IGNORED_TASK_KEYS.has(key)) continue;
    const field = keyPath(base, key);
    const reader = Object.hasOwn(TASK_FIELDS, key) ? TASK_FIELDS[key] : undefined;
    if (reader === undefined) throw unknownKey(key, field, TASK_KEYS, misplaced);
    if (value !== null) reader(spec, value, field);
  }
  const alias = map.get("task");
  if (alias !== undefined && alias !== null) {
    const aliasField = keyPath(base, "task");
    const type = asString(alias, aliasField);
    const explicit = map.get("type");
    if (explicit === undefined || explicit === null) spec.type = type;
    else if (type !== spec.type) throw new SpecError(aliasField, `${quote(type)} conflicts with type ${quote(spec.type)}`);
  }
  const [issue] = validateTaskSpec(spec);
  if (issue !== undefined) throw new SpecError(joinField(base, issue.field), issue.message);
  return spec;
}

type PipelineFieldReader = (spec: PipelineSpec, value: Value, field: string) => void;

const PIPELINE_FIELDS: Readonly<Record<string, PipelineFieldReader>> = {
  pipeline_name: (spec, value, field) => (spec.pipelineName = asString(value, field)),
  chain: (spec, value, field) => (spec.chain = asStringList(value, field)),
  group: (spec, value, field) => (spec.group = asStringList(value, field)),
  chord: (spec, value, field) => (spec.chord = asStringList(value, field)),
  tasks: (spec, value, field) => {
    if (!(value instanceof Map)) throw new SpecError(field, `expected a mapping of task keys to tasks, got ${describe(value)}`);
    for (const [key, task] of value) {
      const taskField = keyPath(field, key);
      if (!(task instanceof Map)) throw new SpecError(taskField, `expected a task (a mapping), got ${describe(task)}`);
      setOwn(spec.tasks, key, readTask(task, taskField, PIPELINE_TASK_MISPLACED, NO_KEYS));
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

function readPipeline(map: Mapping, handledByCaller: ReadonlySet<string>): PipelineSpec {
  const spec = create(PipelineSpecSchema);
  for (const [key, value] of map) {
    if (handledByCaller.has(key) || IGNORED_PIPELINE_KEYS.has(key)) continue;
    const field = keyPath("", key);
    const reader = Object.hasOwn(PIPELINE_FIELDS, key) ? PIPELINE_FIELDS[key] : undefined;
    if (reader === undefined) throw unknownKey(key, field, PIPELINE_KEYS, PIPELINE_MISPLACED);
    if (value !== null) reader(spec, value, field);
  }
  const [issue] = pipelineIssues(spec);
  if (issue !== undefined) throw new SpecError(issue.field, issue.message);
  return spec;
}

function pipelineIssues(spec: PipelineSpec): SpecIssue[] {
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
    for (const issue of validateTaskSpec(task)) {
      issues.push({ field: joinField(keyPath("tasks", key), issue.field), message: issue.message });
    }
  }
  return issues;
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

function readPlanned(value: Value): string {
  if (value === null) throw new SpecError("planned", `required: ${SCHEDULE_FORMS}`);
  const planned = asString(value, "planned").trim();
  const problem = scheduleProblem(planned);
  if (problem !== undefined) throw new SpecError("planned", problem);
  return planned;
}

function scheduleProblem(schedule: string): string | undefined {
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

function asString(value: Value, field: string): string {
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return String(value);
  if (value instanceof NumberLiteral) return value.text;
  const hint = value instanceof Map ? ' (text containing ": " must be quoted)' : "";
  throw new SpecError(field, `expected a string, got ${describe(value)}${hint}`);
}

function asStringList(value: Value, field: string): string[] {
  if (Array.isArray(value)) return value.map((item, i) => asString(item, `${field}[${i}]`));
  if (value instanceof Map) throw new SpecError(field, `expected a list of strings, got ${describe(value)}`);
  return [asString(value, field)];
}

function asNameList(value: Value, field: string): string[] {
  if (typeof value === "string") {
    return value
      .split(",")
      .map((name) => name.trim())
      .filter((name) => name !== "");
  }
  if (Array.isArray(value)) return value.map((item, i) => asString(item, `${field}[${i}]`).trim());
  if (value instanceof Map) {
    throw new SpecError(field, `expected a comma-separated string or a list of names, got ${describe(value)}`);
  }
  return [asString(value, field)];
}

function asEnvironment(value: Value, field: string): string[] {
  if (!(value instanceof Map)) return asStringList(value, field);
  return [...value].map(([name, entry]) => {
    const entryField = keyPath(field, name);
    if (!ENVIRONMENT_NAME.test(name)) throw new SpecError(entryField, invalidNameMessage(name));
    return `${name}=${entry === null ? "" : asString(entry, entryField)}`;
  });
}

function asLabels(value: Value, field: string): Record<string, string> {
  if (!(value instanceof Map)) throw new SpecError(field, `expected a mapping of label names to values, got ${describe(value)}`);
  const labels: Record<string, string> = {};
  for (const [name, label] of value) {
    setOwn(labels, name, label === null ? "" : asString(label, keyPath(field, name)));
  }
  return labels;
}

function asBoolean(value: Value, field: string): boolean {
  if (typeof value === "boolean") return value;
  if (typeof value === "string") return !FALSE_STRINGS.has(value.trim().toLowerCase());
  if (value instanceof NumberLiteral) return value.value !== 0;
  throw new SpecError(field, `expected true or false, got ${describe(value)}`);
}

function asCount(value: Value, field: string, expected: string): number {
  if (typeof value === "string" && value.trim() === "") return 0;
  const count =
    value instanceof NumberLiteral ? value.value : typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (countProblem(count) !== undefined) throw new SpecError(field, `expected ${expected}, got ${describe(value)}`);
  return count;
}

function asSeconds(value: Value, field: string): number {
  if (typeof value === "string" && value.trim() === "") return 0;
  const seconds =
    value instanceof NumberLiteral
      ? value.value
      : typeof value === "string" && /^\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)\s*$/.test(value)
        ? Number(value)
        : NaN;
  if (Number.isNaN(seconds)) throw new SpecError(field, `expected a number of seconds, got ${describe(value)}`);
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new SpecError(field, `expected a non-negative number of seconds, got ${describe(value)}`);
  }
  return seconds;
}

function countProblem(count: number): string | undefined {
  return Number.isInteger(count) && count >= 0 && count <= MAX_UINT32
    ? undefined
    : `expected a non-negative integer, got ${count}`;
}

function environmentProblem(entry: string): string | undefined {
  const eq = entry.indexOf("=");
  if (eq < 0) return `expected "NAME=value", got ${quote(entry)}`;
  const name = entry.slice(0, eq);
  return ENVIRONMENT_NAME.test(name) ? undefined : invalidNameMessage(name);
}

function invalidNameMessage(name: string): string {
  return `invalid variable name ${quote(name)}: use letters, digits and _, not starting with a digit`;
}

function relativePathProblem(path: string): string | undefined {
  if (path.includes("\0")) return "must not contain a NUL character";
  if (path.startsWith("/")) return `must be a relative path, got ${quote(path)}`;
  if (path.split("/").includes("..")) return `must not contain a ".." segment, got ${quote(path)}`;
  return undefined;
}

function regExpProblem(source: string): string | undefined {
  try {
    new RegExp(source);
    return undefined;
  } catch (error) {
    const detail = error instanceof Error ? error.message.replace(/^Invalid regular expression: /, "") : String(error);
    return `invalid regular expression ${detail}`;
  }
}

function nameProblem(name: string): string | undefined {
  return name.trim() === "" ? "names must not be empty" : undefined;
}

function unknownTypeMessage(type: string): string {
  return `unknown task type ${quote(type)}${suggestion(type, TASK_TYPES)} (known types: ${TASK_TYPES.join(", ")})`;
}

function unknownKey(key: string, field: string, known: readonly string[], misplaced: ReadonlyMap<string, string>): SpecError {
  return new SpecError(field, misplaced.get(key) ?? `unknown key${suggestion(key, known)}`);
}

function suggestion(word: string, candidates: readonly string[]): string {
  if (word.length > 64) return "";
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best === undefined ? "" : `, did you mean ${quote(best)}?`;
}

function editDistance(a: string, b: string): number {
  const width = b.length + 1;
  const d: number[] = [];
  const at = (i: number, j: number): number => d[i * width + j] ?? 0;
  for (let i = 0; i <= a.length; i++) {
    for (let j = 0; j <= b.length; j++) {
      if (i === 0 || j === 0) {
        d[i * width + j] = i + j;
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        distance = Math.min(distance, at(i - 2, j - 2) + 1);
      }
      d[i * width + j] = distance;
    }
  }
  return at(a.length, b.length);
}

function describe(value: Value): string {
  if (value === null) return "null";
  if (typeof value === "string") return quote(value);
  if (typeof value === "boolean") return String(value);
  if (value instanceof NumberLiteral) return value.text;
  return Array.isArray(value) ? "a list" : "a mapping";
}

function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

function keyPath(base: string, key: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(key)) return `${base}[${JSON.stringify(key)}]`;
  return joinField(base, key);
}

function joinField(base: string, field: string): string {
  if (base === "") return field;
  return field.startsWith("[") ? `${base}${field}` : `${base}.${field}`;
}

function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}
