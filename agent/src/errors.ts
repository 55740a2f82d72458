import type { Code } from "@connectrpc/connect";

/**
 * An error the agent cannot recover from by retrying: a protocol version mismatch, a rejected
 * or revoked credential, a refused registration. main.ts prints its message as one line and
 * exits 1. `code` is the gRPC code the server answered with, when there was one.
 */
export class AgentFatalError extends Error {
  override name = "AgentFatalError";
  readonly code: Code | undefined;

  constructor(message: string, code?: Code) {
    super(message);
    this.code = code;
  }
}
