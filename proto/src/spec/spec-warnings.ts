/** Warnings of task, pipeline and plan definitions: what was accepted but not used as written. */

interface Entry {
  field: string;
  reason: string;
  line: number | undefined;
}

/**
 * Collects the warnings of one parse, and where each key of the file is (its line), so that a
 * warning about a key can say where it is.
 *
 * A warning's message is `[<file>: ][line <n>: ]field "<field>": <reason>`: the same shape as a
 * {@link SpecError} message with the line of the key inserted when it is known. {@link messages}
 * lists each distinct message once, in the order the warnings were added.
 */
export class SpecWarnings {
  private readonly keyLines = new Map<string, number>();
  private readonly entries: Entry[] = [];

  /** Records that the key of `field` (a dotted path as in SpecError.field) is on `line` (1-based). */
  noteKey(field: string, line: number): void {
    this.keyLines.set(field, line);
  }

  /** The line of the key of `field`, when the document said it. */
  lineOf(field: string): number | undefined {
    return this.keyLines.get(field);
  }

  /** Adds a warning about `field`; `line` defaults to the line of its key, `null` says none. */
  add(field: string, reason: string, line?: number | null): void {
    this.entries.push({ field, reason, line: line === null ? undefined : (line ?? this.lineOf(field)) });
  }

  /** The messages, each distinct one once, prefixed with `file` when given. */
  messages(file?: string): string[] {
    const texts = this.entries.map(({ field, reason, line }) => formatSpecWarning(field, reason, line, file));
    return [...new Set(texts)];
  }
}

/** `[<file>: ][line <n>: ][field "<field>": ]<reason>`: the text of one warning. */
export function formatSpecWarning(field: string, reason: string, line?: number, file?: string): string {
  const where = field === "" ? "" : `field "${field}": `;
  return `${file ? `${file}: ` : ""}${line === undefined ? "" : `line ${line}: `}${where}${reason}`;
}
