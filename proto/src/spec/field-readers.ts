import { SpecError } from "./spec-error.js";
import type { SpecWarnings } from "./spec-warnings.js";
import { NumberLiteral, type Value } from "./yaml-document.js";

const MAX_UINT32 = 0xffff_ffff;
const FALSE_STRINGS: ReadonlySet<string> = new Set(["", "false", "no", "off", "0"]);

/** Re-raises a SpecError with the file name, so that every message says where it comes from. */
export function withFile<T>(file: string | undefined, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (file !== undefined && error instanceof SpecError) throw new SpecError(error.field, error.reason, file);
    throw error;
  }
}

export function asString(value: Value, field: string): string {
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return String(value);
  if (value instanceof NumberLiteral) return value.text;
  const hint = value instanceof Map ? ' (text containing ": " must be quoted)' : "";
  throw new SpecError(field, `expected a string, got ${describe(value)}${hint}`);
}

export function asStringList(value: Value, field: string): string[] {
  if (Array.isArray(value)) return value.map((item, i) => asString(item, `${field}[${i}]`));
  if (value instanceof Map) throw new SpecError(field, `expected a list of strings, got ${describe(value)}`);
  return [asString(value, field)];
}

export function asNameList(value: Value, field: string): string[] {
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

export function asBoolean(value: Value, field: string): boolean {
  if (typeof value === "boolean") return value;
  if (typeof value === "string") return !FALSE_STRINGS.has(value.trim().toLowerCase());
  if (value instanceof NumberLiteral) return value.value !== 0;
  throw new SpecError(field, `expected true or false, got ${describe(value)}`);
}

export function asCount(value: Value, field: string, expected: string): number {
  if (typeof value === "string" && value.trim() === "") return 0;
  const count =
    value instanceof NumberLiteral ? value.value : typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (countProblem(count) !== undefined) throw new SpecError(field, `expected ${expected}, got ${describe(value)}`);
  return count;
}

export function asSeconds(value: Value, field: string): number {
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

export function countProblem(count: number): string | undefined {
  return Number.isInteger(count) && count >= 0 && count <= MAX_UINT32
    ? undefined
    : `expected a non-negative integer, got ${count}`;
}

/** The reason of the warning for a key that is neither known nor close to a known one. */
export const UNKNOWN_KEY_IGNORED = "unknown key, ignored as in the original";

/**
 * Handles a key that no reader takes: a key of `misplaced` (it belongs in another kind of file)
 * and a likely misspelling of a `known` key are errors, with the suggestion; any other key is
 * ignored, as the original's parser did, with a warning. A misspelling is at edit distance 1
 * (a transposition counts as 1) from a known key, or 2 for keys of 6 characters or more, so
 * that short unrelated words (`node`, `env`) are not taken for `name` or `eta`.
 *
 * @throws SpecError for a misplaced or misspelt key.
 */
export function unknownKey(
  key: string,
  field: string,
  known: readonly string[],
  misplaced: ReadonlyMap<string, string>,
  warnings: SpecWarnings,
): void {
  const reason = misplaced.get(key);
  if (reason !== undefined) throw new SpecError(field, reason);
  const limit = key.length >= 6 ? 2 : 1;
  const close = key.length <= 64 && known.some((candidate) => editDistance(key.toLowerCase(), candidate.toLowerCase()) <= limit);
  if (close) throw new SpecError(field, `unknown key${suggestion(key, known)}`);
  warnings.add(field, UNKNOWN_KEY_IGNORED);
}

export function suggestion(word: string, candidates: readonly string[]): string {
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

export function editDistance(a: string, b: string): number {
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

export function describe(value: Value): string {
  if (value === null) return "null";
  if (typeof value === "string") return quote(value);
  if (typeof value === "boolean") return String(value);
  if (value instanceof NumberLiteral) return value.text;
  return Array.isArray(value) ? "a list" : "a mapping";
}

export function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

export function keyPath(base: string, key: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(key)) return `${base}[${JSON.stringify(key)}]`;
  return joinField(base, key);
}

export function joinField(base: string, field: string): string {
  if (base === "") return field;
  return field.startsWith("[") ? `${base}${field}` : `${base}.${field}`;
}

export function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}
