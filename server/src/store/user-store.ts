/** Server-wide role of a user. */
export type UserRole = "admin" | "manager" | "user";

/** A user row. The password hash never leaves the store layer through the API. */
export interface UserRecord {
  id: string;
  name: string;
  email: string;
  role: UserRole;
  /** scrypt hash, empty for token-only accounts. */
  passwordHash: string;
  createTime: number;
}

/** An API token row; only the sha256 of the secret is stored. */
export interface TokenRecord {
  id: string;
  name: string;
  userId: string;
  hash: string;
  createTime: number;
  lastUseTime: number;
  /** 0 for never. */
  expireTime: number;
}

/** Persistence of users and their API tokens. Each method is atomic. */
export interface UserStore {
  count(): Promise<number>;
  create(user: UserRecord): Promise<void>;
  get(id: string): Promise<UserRecord | undefined>;
  getByName(name: string): Promise<UserRecord | undefined>;
  list(): Promise<UserRecord[]>;
  createToken(token: TokenRecord): Promise<void>;
  getTokenByHash(hash: string): Promise<TokenRecord | undefined>;
  listTokens(userId?: string): Promise<TokenRecord[]>;
  deleteToken(id: string): Promise<boolean>;
  touchToken(id: string, time: number): Promise<void>;
}
