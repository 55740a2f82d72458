import type { Collection } from "mongodb";
import type { TokenRecord, UserRecord, UserStore } from "../store/user-store.js";

/** A user document: UserRecord with `_id` its id. */
export type UserDoc = Omit<UserRecord, "id"> & { _id: string };

/** An API token document: TokenRecord with `_id` its id. */
export type TokenDoc = Omit<TokenRecord, "id"> & { _id: string };

/** The collections' indexes (created at start by openMongoStore). */
export async function createUserIndexes(users: Collection<UserDoc>, tokens: Collection<TokenDoc>): Promise<void> {
  await users.createIndex({ name: 1 }, { unique: true });
  await tokens.createIndex({ hash: 1 }, { unique: true });
  await tokens.createIndex({ userId: 1, createTime: 1 });
  await tokens.createIndex({ createTime: 1 });
}

const toUser = (d: UserDoc): UserRecord => ({
  id: d._id,
  name: d.name,
  email: d.email,
  role: d.role,
  passwordHash: d.passwordHash,
  createTime: d.createTime,
});

const toToken = (d: TokenDoc): TokenRecord => ({
  id: d._id,
  name: d.name,
  userId: d.userId,
  hash: d.hash,
  createTime: d.createTime,
  lastUseTime: d.lastUseTime,
  expireTime: d.expireTime,
});

/**
 * UserStore on MongoDB. Unlike SQLite there is no foreign key from a token to its user: callers
 * create tokens only for users they just read.
 */
export class MongoUserStore implements UserStore {
  constructor(
    private readonly users: Collection<UserDoc>,
    private readonly tokens: Collection<TokenDoc>,
  ) {}

  async count(): Promise<number> {
    return this.users.countDocuments({});
  }

  async create(u: UserRecord): Promise<void> {
    const { id, ...rest } = u;
    await this.users.insertOne({ _id: id, ...rest });
  }

  async get(id: string): Promise<UserRecord | undefined> {
    const doc = await this.users.findOne({ _id: id });
    return doc ? toUser(doc) : undefined;
  }

  async getByName(name: string): Promise<UserRecord | undefined> {
    const doc = await this.users.findOne({ name });
    return doc ? toUser(doc) : undefined;
  }

  async list(): Promise<UserRecord[]> {
    return (await this.users.find({}).sort({ name: 1 }).toArray()).map(toUser);
  }

  async createToken(t: TokenRecord): Promise<void> {
    const { id, ...rest } = t;
    await this.tokens.insertOne({ _id: id, ...rest });
  }

  async getTokenByHash(hash: string): Promise<TokenRecord | undefined> {
    const doc = await this.tokens.findOne({ hash });
    return doc ? toToken(doc) : undefined;
  }

  async listTokens(userId?: string): Promise<TokenRecord[]> {
    return (
      await this.tokens
        .find(userId ? { userId } : {})
        .sort({ createTime: 1, _id: 1 })
        .toArray()
    ).map(toToken);
  }

  async deleteToken(id: string): Promise<boolean> {
    return (await this.tokens.deleteOne({ _id: id })).deletedCount > 0;
  }

  async touchToken(id: string, time: number): Promise<void> {
    await this.tokens.updateOne({ _id: id }, { $set: { lastUseTime: time } });
  }
}
