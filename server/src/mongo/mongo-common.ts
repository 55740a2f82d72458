import { type Collection, MongoServerError } from "mongodb";

/**
 * A string map stored as a list of pairs. Label and attribute keys are user-chosen and may hold
 * "." or start with "$", which MongoDB field names handle badly (queries and updates cannot reach
 * them, and older servers refuse them), so maps never become field names.
 */
export type Pairs = { k: string; v: string }[];

/** Encodes a string map for storage; see Pairs. */
export const toPairs = (map: Record<string, string>): Pairs => Object.entries(map).map(([k, v]) => ({ k, v }));

/** Decodes a stored string map; see Pairs. */
export const fromPairs = (pairs: Pairs | undefined): Record<string, string> =>
  Object.fromEntries((pairs ?? []).map((p) => [p.k, p.v]));

/** Whether err is a unique-index violation (E11000). */
export const isDuplicateKey = (err: unknown): boolean => err instanceof MongoServerError && err.code === 11000;

/** A named counter: `_id` is the sequence's name, `value` its last value. */
export interface CounterDoc {
  _id: string;
  value: number;
}

/**
 * The next value of the named counter (1 for the first). One atomic findOneAndUpdate($inc) on a
 * shared document, so values are unique and increasing across every process on the database.
 */
export async function nextValue(counters: Collection<CounterDoc>, name: string): Promise<number> {
  const doc = await counters.findOneAndUpdate({ _id: name }, { $inc: { value: 1 } }, { upsert: true, returnDocument: "after" });
  if (!doc) throw new Error(`counter ${name} returned nothing`);
  return doc.value;
}

/** A regular expression matching strings that start with prefix, taken literally. */
export const prefixPattern = (prefix: string): RegExp => new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`);

/** A path filter: every path when prefix is "", else those starting with it (index-assisted range). */
export const pathPrefixFilter = (prefix: string): Record<string, unknown> =>
  prefix ? { path: { $gte: prefix, $regex: prefixPattern(prefix) } } : {};

/**
 * Runs an upsert, retrying once when it fails with a duplicate key: two concurrent upserts of one
 * new key both try to insert, the unique index refuses one, and its retry updates the winner's.
 */
export async function upsertRetrying<T>(upsert: () => Promise<T>): Promise<T> {
  try {
    return await upsert();
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    return upsert();
  }
}
