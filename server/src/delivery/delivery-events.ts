import type { DeliveryRecord, PublisherRecord } from "../store/delivery-store.js";

// Event types of namespace deliveries (issue 6, item 7): every state change of a delivery is one
// event, so that a bridge or a user following the event stream sees every failure and retry.
// Subject: the delivery id. Attributes (all strings): `namespace`, `publisher_id`, `kind`
// ("rsync" | "git"), `tag`, `revision`, `attempt` (attempts made so far), and where it applies
// `error` (the last attempt's reason) and `next_attempt_time` (ISO 8601).

/** A tag move (or RetryDelivery, attribute `reason` "retry") queued a delivery. */
export const DELIVERY_QUEUED = "delivery.queued";
/** A newer tag move replaced a delivery that had not succeeded yet. */
export const DELIVERY_SUPERSEDED = "delivery.superseded";
/** An attempt started. */
export const DELIVERY_STARTED = "delivery.started";
/** The target holds the revision. */
export const DELIVERY_SUCCEEDED = "delivery.succeeded";
/** An attempt failed; another one runs at `next_attempt_time`. */
export const DELIVERY_RETRYING = "delivery.retrying";
/** The last attempt failed (or the failure cannot be retried); RetryDelivery queues it again. */
export const DELIVERY_FAILED = "delivery.failed";

/** The attributes every delivery event carries. */
export function deliveryAttributes(
  d: DeliveryRecord,
  publisher: Pick<PublisherRecord, "kind"> | undefined,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    namespace: d.namespace,
    publisher_id: d.publisherId,
    kind: publisher?.kind ?? "",
    tag: d.tag,
    revision: String(d.revision),
    attempt: String(d.attempts),
    ...extra,
  };
}
