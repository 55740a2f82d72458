import type { Store } from "../store/store.js";
import { generateSecret, hashSecret, newId } from "./secrets.js";

/**
 * On first start (no user exists) creates the "admin" user and an API token for it, and returns
 * the token so that main can show it once and write it to a file; returns undefined afterwards.
 * Servers that start together on one empty database all try: the unique user name lets one
 * create the admin, and the others return undefined instead of failing.
 */
export async function bootstrapAdmin(store: Store, now: number): Promise<string | undefined> {
  if ((await store.users.count()) > 0) return undefined;
  const user = { id: newId(), name: "admin", email: "", role: "admin" as const, passwordHash: "", createTime: now };
  try {
    await store.users.create(user);
  } catch (err) {
    if ((await store.users.getByName("admin")) !== undefined) return undefined;
    throw err;
  }
  const secret = generateSecret("mtk");
  await store.users.createToken({
    id: newId(),
    name: "bootstrap",
    userId: user.id,
    hash: hashSecret(secret),
    createTime: now,
    lastUseTime: 0,
    expireTime: 0,
  });
  return secret;
}
