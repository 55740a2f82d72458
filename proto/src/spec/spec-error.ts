/** Errors of task, pipeline and plan definitions. */

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
