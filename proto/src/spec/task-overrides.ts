import { clone, isFieldSet } from "@bufbuild/protobuf";
import { TaskSpecSchema, type TaskSpec } from "../gen/mottainai/v1/task_pb.js";

/**
 * `base` with every field that `overrides` sets replacing the same field of `base`: the
 * original's `task create --name … -f FILE` flags over the file. A field is set when it differs
 * from its proto3 default (a non-empty string, list or map, `true`, a non-zero number) or, for
 * `namespace_merged` (explicit presence), when it has a value, even `false`. Lists and maps
 * replace, they are not appended to. Neither argument is changed; the result shares nothing
 * with them.
 */
export function overrideTaskSpec(base: TaskSpec, overrides: TaskSpec): TaskSpec {
  const result = clone(TaskSpecSchema, base);
  const from = clone(TaskSpecSchema, overrides) as unknown as Record<string, unknown>;
  const into = result as unknown as Record<string, unknown>;
  for (const field of TaskSpecSchema.fields) {
    if (isFieldSet(overrides, field)) into[field.localName] = from[field.localName];
  }
  return result;
}
