import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { EventService, NodeService, PlanService, TaskService, UserService } from "@mottainai/proto";

/** An interceptor that sends `authorization: Bearer <token>` on every call. */
export function bearer(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

/** Clients of the services the benchmarks call, sharing one HTTP/2 connection. */
export interface Api {
  tasks: Client<typeof TaskService>;
  nodes: Client<typeof NodeService>;
  events: Client<typeof EventService>;
  users: Client<typeof UserService>;
  plans: Client<typeof PlanService>;
  /** Closes the connection and every call on it. */
  close(): void;
}

/**
 * gRPC clients over one HTTP/2 connection (the transport the simulated agents use too), with the
 * bearer token when given (RegisterNode needs none).
 */
export function createApi(baseUrl: string, token?: string): Api {
  const sessionManager = new Http2SessionManager(baseUrl);
  const transport = createGrpcTransport({ baseUrl, sessionManager, interceptors: token === undefined ? [] : [bearer(token)] });
  return {
    tasks: createClient(TaskService, transport),
    nodes: createClient(NodeService, transport),
    events: createClient(EventService, transport),
    users: createClient(UserService, transport),
    plans: createClient(PlanService, transport),
    close: () => sessionManager.abort(),
  };
}

/** Creates a registration token as the admin and returns its secret. */
export async function createRegistrationSecret(api: Api, description: string): Promise<string> {
  return (await api.nodes.createRegistrationToken({ description })).secret;
}

/** The spec of a fake task that the simulated agents "run" (type fake is valid; queue general). */
export function fakeTaskSpec(name: string) {
  return { name, type: "fake", script: ["true"] };
}

/**
 * Creates count fake tasks with at most inFlight CreateTask calls outstanding; resolves with
 * their ids in creation order.
 */
export async function createTasks(api: Api, count: number, inFlight: number, prefix: string): Promise<string[]> {
  const ids: string[] = new Array<string>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const { task } = await api.tasks.createTask({ spec: fakeTaskSpec(`${prefix}-${i}`) });
      ids[i] = task?.id ?? "";
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, worker));
  return ids;
}
