import { createHash, randomBytes } from "node:crypto";

/**
 * Generates a bearer secret: a kind prefix (so a leaked secret says what it is) and 32 random
 * bytes in base64url. Secrets have 256 bits of entropy, so a plain sha256 is a safe hash for them.
 */
export function generateSecret(prefix: "mtk" | "mrt" | "mnc" | "mtt"): string {
  return `${prefix}_${randomBytes(32).toString("base64url")}`;
}

/** The stored form of a secret: hex sha256. */
export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** A random identifier of 16 hex characters. */
export function newId(): string {
  return randomBytes(8).toString("hex");
}
