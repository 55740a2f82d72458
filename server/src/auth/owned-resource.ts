import type { HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { isPrivileged, requireUser } from "./principal.js";

/**
 * The `kind` ("task", "pipeline", "plan") with id `id`, read through `get`, for the calling
 * user: the ownership rule of every service whose resources belong to one user. Unauthenticated
 * without a user's token; InvalidArgument `id: a <kind> id is required` for an empty id; NotFound
 * `<kind> <id> not found`; PermissionDenied `<kind> <id> belongs to another user` unless the
 * caller owns it or is a manager or admin.
 */
export async function loadOwned<T extends { ownerId: string }>(
  ctx: HandlerContext,
  kind: string,
  id: string,
  get: (id: string) => Promise<T | undefined>,
): Promise<T> {
  const user = requireUser(ctx);
  if (!id) throw new ConnectError(`id: a ${kind} id is required`, Code.InvalidArgument);
  const resource = await get(id);
  if (!resource) throw new ConnectError(`${kind} ${id} not found`, Code.NotFound);
  if (resource.ownerId !== user.id && !isPrivileged(user)) {
    throw new ConnectError(`${kind} ${id} belongs to another user`, Code.PermissionDenied);
  }
  return resource;
}
