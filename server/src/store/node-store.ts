/** A build node (agent) row. Times are milliseconds since the epoch, 0 when never. */
export interface NodeRecord {
  id: string;
  name: string;
  hostname: string;
  /** sha256 of the node credential; the credential itself is never stored. */
  credentialHash: string;
  draining: boolean;
  labels: Record<string, string>;
  queues: { queue: string; slots: number }[];
  executors: string[];
  capacity: number;
  agentVersion: string;
  createTime: number;
  connectTime: number;
  lastHeartbeatTime: number;
}

/** A registration token row; only its hash is stored. */
export interface RegistrationTokenRecord {
  id: string;
  description: string;
  hash: string;
  createTime: number;
  /** 0 for never. */
  expireTime: number;
  revoked: boolean;
}

/** Persistence of nodes and registration tokens. Each method is atomic. */
export interface NodeStore {
  /** Creates the node, or replaces the credential of the node with the same name. */
  upsertByName(node: NodeRecord): Promise<NodeRecord>;
  get(id: string): Promise<NodeRecord | undefined>;
  getByName(name: string): Promise<NodeRecord | undefined>;
  getByCredentialHash(hash: string): Promise<NodeRecord | undefined>;
  list(): Promise<NodeRecord[]>;
  /** Writes the fields an agent reports in its hello. */
  updateConnection(
    id: string,
    fields: Pick<NodeRecord, "hostname" | "labels" | "queues" | "executors" | "capacity" | "agentVersion" | "connectTime">,
  ): Promise<void>;
  /** Records the latest heartbeat time of many nodes in one write. */
  setHeartbeats(heartbeats: Map<string, number>): Promise<void>;
  setDraining(id: string, draining: boolean): Promise<boolean>;
  delete(id: string): Promise<boolean>;
  createRegistrationToken(token: RegistrationTokenRecord): Promise<void>;
  getRegistrationTokenByHash(hash: string): Promise<RegistrationTokenRecord | undefined>;
  listRegistrationTokens(): Promise<RegistrationTokenRecord[]>;
  revokeRegistrationToken(id: string): Promise<boolean>;
}
