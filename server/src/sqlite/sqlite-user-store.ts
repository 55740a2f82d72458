import type { Database } from "better-sqlite3";
import type { TokenRecord, UserRecord, UserStore } from "../store/user-store.js";
import type { GroupCommit } from "./group-commit.js";
import { prepared } from "./statement-cache.js";

interface UserRow {
  id: string;
  name: string;
  email: string;
  role: UserRecord["role"];
  password_hash: string;
  create_time: number;
}

interface TokenRow {
  id: string;
  name: string;
  user_id: string;
  hash: string;
  create_time: number;
  last_use_time: number;
  expire_time: number;
}

const toUser = (r: UserRow): UserRecord => ({
  id: r.id,
  name: r.name,
  email: r.email,
  role: r.role,
  passwordHash: r.password_hash,
  createTime: r.create_time,
});

const toToken = (r: TokenRow): TokenRecord => ({
  id: r.id,
  name: r.name,
  userId: r.user_id,
  hash: r.hash,
  createTime: r.create_time,
  lastUseTime: r.last_use_time,
  expireTime: r.expire_time,
});

/** UserStore on SQLite. */
export class SqliteUserStore implements UserStore {
  constructor(
    private readonly db: Database,
    private readonly writes: GroupCommit,
  ) {}

  async count(): Promise<number> {
    return (prepared(this.db, "SELECT COUNT(*) AS n FROM users").get() as { n: number }).n;
  }

  async create(u: UserRecord): Promise<void> {
    return this.writes.write(() => {
      prepared(this.db, "INSERT INTO users (id, name, email, role, password_hash, create_time) VALUES (?, ?, ?, ?, ?, ?)").run(
        u.id,
        u.name,
        u.email,
        u.role,
        u.passwordHash,
        u.createTime,
      );
    });
  }

  async get(id: string): Promise<UserRecord | undefined> {
    const row = prepared(this.db, "SELECT * FROM users WHERE id = ?").get(id) as UserRow | undefined;
    return row && toUser(row);
  }

  async getByName(name: string): Promise<UserRecord | undefined> {
    const row = prepared(this.db, "SELECT * FROM users WHERE name = ?").get(name) as UserRow | undefined;
    return row && toUser(row);
  }

  async list(): Promise<UserRecord[]> {
    return (prepared(this.db, "SELECT * FROM users ORDER BY name").all() as UserRow[]).map(toUser);
  }

  async createToken(t: TokenRecord): Promise<void> {
    return this.writes.write(() => {
      prepared(
        this.db,
        "INSERT INTO tokens (id, name, user_id, hash, create_time, last_use_time, expire_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
      ).run(t.id, t.name, t.userId, t.hash, t.createTime, t.lastUseTime, t.expireTime);
    });
  }

  async getTokenByHash(hash: string): Promise<TokenRecord | undefined> {
    const row = prepared(this.db, "SELECT * FROM tokens WHERE hash = ?").get(hash) as TokenRow | undefined;
    return row && toToken(row);
  }

  async listTokens(userId?: string): Promise<TokenRecord[]> {
    const rows = userId
      ? prepared(this.db, "SELECT * FROM tokens WHERE user_id = ? ORDER BY create_time").all(userId)
      : prepared(this.db, "SELECT * FROM tokens ORDER BY create_time").all();
    return (rows as TokenRow[]).map(toToken);
  }

  async deleteToken(id: string): Promise<boolean> {
    return this.writes.write(() => {
      return prepared(this.db, "DELETE FROM tokens WHERE id = ?").run(id).changes > 0;
    });
  }

  async touchToken(id: string, time: number): Promise<void> {
    return this.writes.write(() => {
      prepared(this.db, "UPDATE tokens SET last_use_time = ? WHERE id = ?").run(time, id);
    });
  }
}
