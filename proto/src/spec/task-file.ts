import { create } from "@bufbuild/protobuf";
import { TaskSpecSchema, type TaskSpec } from "../gen/mottainai/v1/task_pb.js";
import { executorForTaskType, TASK_TYPES } from "../task-types.js";
import {
  asBoolean,
  asCount,
  asSeconds,
  asNameList,
  asString,
  asStringList,
  countProblem,
  describe,
  joinField,
  keyPath,
  quote,
  setOwn,
  suggestion,
  unknownKey,
  withFile,
} from "./field-readers.js";
import { checkoutPathProblem, checkoutRelativePath } from "./checkout-path.js";
import { SpecError, type SpecIssue } from "./spec-error.js";
import { SpecWarnings } from "./spec-warnings.js";
import { overrideTaskSpec } from "./task-overrides.js";
import { readDocument, type Mapping, type Value } from "./yaml-document.js";

const DEFAULT_ARTEFACT_PATH = "artefacts";
const DEFAULT_STORAGE_PATH = "storage";

const ENVIRONMENT_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

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

/**
 * Keys the original's tools wrote into task files that the rebuild has no use for: accepted and
 * dropped with a warning (the reason below), so that such files run unchanged.
 */
export const IGNORED_WITH_WARNING: ReadonlyMap<string, string> = new Map([
  ["plan", 'ignored: the original\'s tools read it beside "planned"; the task runs without it'],
]);

/** Top-level keys of a pipeline file that are not also task keys. */
export const PIPELINE_ONLY_KEYS: readonly string[] = ["pipeline_name", "chain", "group", "chord", "tasks", "concurrency"];

/** No keys handled by the caller. */
export const NO_KEYS: ReadonlySet<string> = new Set();

/** A parsed definition and the warnings about what was accepted but not used as written. */
export interface Parsed<T> {
  spec: T;
  /** Each message once, `[<file>: ][line <n>: ]field "<field>": <reason>` (SpecWarnings). */
  warnings: string[];
}

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
 * The original's leniencies, each with a warning (see {@link parseTaskFileWithWarnings}):
 * `directory`, `artefact_path` and `storage_path` starting with `/` are relative to the
 * checkout (checkoutRelativePath, no warning); a `plan` key is ignored; other unknown keys are
 * ignored unless they look like a misspelling of a known key; a repeated key keeps its last
 * value; `virtualbox` and `virtualbox_execute` run on the libvirt executor.
 *
 * @throws SpecError naming the first bad field: YAML syntax, misplaced or misspelt keys (with a
 * suggestion), wrong value types, then the first issue of {@link validateTaskSpec}.
 */
export function parseTaskFile(text: string, file?: string): TaskSpec {
  return parseTaskFileWithWarnings(text, file).spec;
}

/**
 * {@link parseTaskFile}, also returning the warnings; with `overrides`, the fields it sets
 * replace the file's ({@link overrideTaskSpec}) before the result is validated, so that a file
 * completed by overrides (`task create -f FILE --image X`) is accepted. Warnings of the result
 * ({@link taskSpecWarnings}) follow the file's own, with the line of the file's key when the
 * value came from the file.
 *
 * @throws SpecError as parseTaskFile.
 */
export function parseTaskFileWithWarnings(text: string, file?: string, overrides?: TaskSpec): Parsed<TaskSpec> {
  const warnings = new SpecWarnings();
  const spec = withFile(file, () =>
    readTask(readDocument(text, warnings), "", TASK_FILE_MISPLACED, NO_KEYS, warnings, overrides),
  );
  return { spec, warnings: warnings.messages(file) };
}

/**
 * Checks a task spec from any source (a parsed file or a message arriving over the wire) and
 * returns every problem, in field order; an empty list means the spec is acceptable.
 *
 * Rules: `type` is one of {@link TASK_TYPES}; `image` is required for the docker, libvirt and
 * lxd types; `script` or `entrypoint` is non-empty; every `environment` entry is `NAME=value`
 * with NAME matching `[A-Za-z_][A-Za-z0-9_]*`; `directory`, `artefact_path` and `storage_path`
 * stay inside the checkout (a leading `/` means its root, as in the original; `..` must not
 * climb above it; no NUL; empty is allowed and means the default); `artefact_push_filters` and `namespace_filters` are valid JavaScript regular
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
  add("directory", checkoutPathProblem(spec.directory));
  add("artefact_path", checkoutPathProblem(spec.artefactPath));
  spec.artefactPushFilters.forEach((source, i) => add(`artefact_push_filters[${i}]`, regExpProblem(source)));
  spec.storage.forEach((name, i) => add(`storage[${i}]`, nameProblem(name)));
  add("storage_path", checkoutPathProblem(spec.storagePath));
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

/** The types that the rebuild runs on another executor than the original did, and how. */
const REMAPPED_TYPES: ReadonlyMap<string, string> = new Map(
  ["virtualbox", "virtualbox_execute"].map((type): [string, string] => [
    type,
    `${quote(type)} runs as a VM task on the libvirt executor (the original used Vagrant and VirtualBox); ` +
      "image names a directory of the agent's libvirt image dir, as for libvirt_vagrant",
  ]),
);

/**
 * Warnings about a spec that is acceptable but will not run exactly as the original ran it, in
 * field order: today only `type` virtualbox and virtualbox_execute, which run on the libvirt
 * executor. The server returns them from CreateTask for specs from the wire too.
 */
export function taskSpecWarnings(spec: TaskSpec): SpecIssue[] {
  const remapped = REMAPPED_TYPES.get(spec.type);
  return remapped === undefined ? [] : [{ field: "type", message: remapped }];
}

/**
 * `spec` with `directory`, `artefact_path` and `storage_path` made relative to the checkout
 * ({@link checkoutRelativePath}): what the server stores for a spec from the wire, so that every
 * executor sees the same relative paths as for a parsed file.
 */
export function normalizeTaskPaths(spec: TaskSpec): TaskSpec {
  return {
    ...spec,
    directory: checkoutRelativePath(spec.directory),
    artefactPath: checkoutRelativePath(spec.artefactPath),
    storagePath: checkoutRelativePath(spec.storagePath),
  };
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

export const TASK_KEYS: readonly string[] = [...Object.keys(TASK_FIELDS), "task"];

/** Explains top-level keys of a task file that belong in a pipeline or plan file. */
export const TASK_FILE_MISPLACED: ReadonlyMap<string, string> = new Map([
  ["planned", "planned belongs in a plan file"],
  ...PIPELINE_ONLY_KEYS.map((key): [string, string] => [key, `${key} belongs in a pipeline file`]),
]);

/** Explains keys of a pipeline's task that belong at the top of the file. */
export const PIPELINE_TASK_MISPLACED: ReadonlyMap<string, string> = new Map([
  ["planned", "planned belongs at the top of a plan file, not in a task"],
  ...PIPELINE_ONLY_KEYS.map((key): [string, string] => [key, `${key} belongs at the top of the pipeline file, not in a task`]),
]);

/**
 * Reads one task mapping; `base` prefixes its fields (`tasks.build`), `misplaced` explains keys
 * that belong elsewhere, `handledByCaller` are skipped, `overrides` replace what the file set
 * before validation. Warnings go to `warnings`.
 */
export function readTask(
  map: Mapping,
  base: string,
  misplaced: ReadonlyMap<string, string>,
  handledByCaller: ReadonlySet<string>,
  warnings: SpecWarnings,
  overrides?: TaskSpec,
): TaskSpec {
  let spec = create(TaskSpecSchema, {
    artefactPath: DEFAULT_ARTEFACT_PATH,
    storagePath: DEFAULT_STORAGE_PATH,
    namespaceMerged: true,
  });
  for (const [key, value] of map) {
    if (key === "task" || handledByCaller.has(key) || IGNORED_TASK_KEYS.has(key)) continue;
    const field = keyPath(base, key);
    const ignored = IGNORED_WITH_WARNING.get(key);
    const reader = Object.hasOwn(TASK_FIELDS, key) ? TASK_FIELDS[key] : undefined;
    if (ignored !== undefined) warnings.add(field, ignored);
    else if (reader === undefined) unknownKey(key, field, TASK_KEYS, misplaced, warnings);
    else if (value !== null) reader(spec, value, field);
  }
  const alias = map.get("task");
  if (alias !== undefined && alias !== null) {
    const aliasField = keyPath(base, "task");
    const type = asString(alias, aliasField);
    const explicit = map.get("type");
    if (explicit === undefined || explicit === null) spec.type = type;
    else if (type !== spec.type) throw new SpecError(aliasField, `${quote(type)} conflicts with type ${quote(spec.type)}`);
  }
  if (overrides !== undefined) spec = overrideTaskSpec(spec, overrides);
  const [issue] = validateTaskSpec(spec);
  if (issue !== undefined) throw new SpecError(joinField(base, issue.field), issue.message);
  spec = normalizeTaskPaths(spec);
  const typeLine = overrides?.type
    ? null
    : (warnings.lineOf(joinField(base, "type")) ?? warnings.lineOf(joinField(base, "task")));
  for (const { field, message } of taskSpecWarnings(spec)) warnings.add(joinField(base, field), message, typeLine ?? null);
  return spec;
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

function environmentProblem(entry: string): string | undefined {
  const eq = entry.indexOf("=");
  if (eq < 0) return `expected "NAME=value", got ${quote(entry)}`;
  const name = entry.slice(0, eq);
  return ENVIRONMENT_NAME.test(name) ? undefined : invalidNameMessage(name);
}

function invalidNameMessage(name: string): string {
  return `invalid variable name ${quote(name)}: use letters, digits and _, not starting with a digit`;
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
