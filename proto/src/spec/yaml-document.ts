import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type YAMLMap } from "yaml";
import { SpecError } from "./spec-error.js";
import { describe, keyPath } from "./field-readers.js";
import type { SpecWarnings } from "./spec-warnings.js";

const MAX_ALIAS_EXPANSIONS = 1000;

/** A number as written in the file: its value and its source text (`commit: 0123`). */
export class NumberLiteral {
  constructor(
    readonly value: number,
    readonly text: string,
  ) {}
}

export type Mapping = Map<string, Value>;
export type Value = null | boolean | string | NumberLiteral | Value[] | Mapping;

/**
 * Reads a YAML or JSON document whose top level is a mapping, with anchors and `<<` merge keys
 * resolved. A key repeated in one mapping keeps its last value, as the original's parser did,
 * with a warning naming the key and both lines. `warnings` also learns the line of every key.
 */
export function readDocument(text: string, warnings: SpecWarnings): Mapping {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, merge: true, prettyErrors: false, uniqueKeys: false });
  const [error] = doc.errors;
  if (error !== undefined) {
    const { line, col } = lineCounter.linePos(error.pos[0]);
    throw new SpecError("", `invalid YAML at line ${line}, column ${col}: ${error.message}`);
  }
  if (doc.contents === null) throw new SpecError("", "expected a mapping at the top level, got an empty document");
  const value = new NodeReader(doc, lineCounter, warnings).read(doc.contents, "");
  if (!(value instanceof Map)) throw new SpecError("", `expected a mapping at the top level, got ${describe(value)}`);
  return value;
}

class NodeReader {
  private expansions = 0;
  private readonly open = new Set<unknown>();

  constructor(
    private readonly doc: Document,
    private readonly lineCounter: LineCounter,
    private readonly warnings: SpecWarnings,
  ) {}

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
    const lines = new Map<string, number | undefined>();
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
      const offset = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
      const line = offset === undefined ? undefined : this.lineCounter.linePos(offset).line;
      if (result.has(key)) {
        const first = lines.get(key);
        this.warnings.add(
          pairField,
          `duplicate key${first === undefined ? "" : ` (first at line ${first})`}: the last value is used, as in the original`,
          line,
        );
      }
      lines.set(key, line);
      if (line !== undefined) this.warnings.noteKey(pairField, line);
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
