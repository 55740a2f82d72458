/**
 * Version of the agent protocol (DESIGN §3). An agent sends it in its hello and the server
 * refuses a different one with FailedPrecondition, naming both versions. Bump it on any change
 * that an older peer would misread; adding fields does not need a bump.
 */
export const PROTOCOL_VERSION = 1;
