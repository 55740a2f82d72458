/**
 * The field of an RPC response that the contract always sets (a message field is optional only in
 * the generated types): returns value, or throws `the server's response has no <what>` when a
 * server left it out, so that commands never print `undefined`.
 */
export function requireField<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`the server's response has no ${what}`);
  return value;
}
