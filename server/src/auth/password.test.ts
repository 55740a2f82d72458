import assert from "node:assert/strict";
import { hashPassword, verifyPassword } from "./password.js";

describe("password hashing", () => {
  it("verifies the right password only, and salts every hash", async () => {
    const a = await hashPassword("correct horse");
    const b = await hashPassword("correct horse");
    assert.notEqual(a, b);
    assert.match(a, /^scrypt\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);
    assert.equal(await verifyPassword("correct horse", a), true);
    assert.equal(await verifyPassword("correct horse!", a), false);
    assert.equal(await verifyPassword("x", "plain"), false);
  });
});
