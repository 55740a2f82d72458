import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  DeliverySchema,
  DeliveryState,
  NamespacePublisherSchema,
  PublisherKind,
  type Delivery,
  type NamespacePublisher,
} from "@mottainai/proto";
import type {
  DeliveryRecord,
  DeliveryState as StoredDeliveryState,
  PublisherKind as StoredPublisherKind,
  PublisherRecord,
} from "../store/delivery-store.js";

const KINDS: Record<StoredPublisherKind, PublisherKind> = {
  rsync: PublisherKind.RSYNC,
  git: PublisherKind.GIT,
};

const STATES: Record<StoredDeliveryState, DeliveryState> = {
  pending: DeliveryState.PENDING,
  running: DeliveryState.RUNNING,
  succeeded: DeliveryState.SUCCEEDED,
  failed: DeliveryState.FAILED,
  superseded: DeliveryState.SUPERSEDED,
};

/** The stored kind of a wire kind; undefined for UNSPECIFIED and unknown values. */
export function publisherKindFromProto(kind: PublisherKind): StoredPublisherKind | undefined {
  return (Object.keys(KINDS) as StoredPublisherKind[]).find((k) => KINDS[k] === kind);
}

/** The wire form of a publisher. */
export function publisherToProto(p: PublisherRecord): NamespacePublisher {
  return create(NamespacePublisherSchema, {
    id: p.id,
    namespace: p.namespace,
    kind: KINDS[p.kind] ?? PublisherKind.UNSPECIFIED,
    target: p.target,
    branch: p.branch,
    tag: p.tag,
    creatorId: p.creatorId,
    createTime: timestampFromMs(p.createTime),
  });
}

/** The wire form of a delivery; next_attempt_time only while it is pending. */
export function deliveryToProto(d: DeliveryRecord): Delivery {
  return create(DeliverySchema, {
    id: d.id,
    publisherId: d.publisherId,
    namespace: d.namespace,
    revision: BigInt(d.revision),
    tag: d.tag,
    state: STATES[d.state] ?? DeliveryState.UNSPECIFIED,
    attempts: d.attempts,
    error: d.error,
    nextAttemptTime: d.state === "pending" ? timestampFromMs(d.nextAttemptTime) : undefined,
    createTime: timestampFromMs(d.createTime),
    updateTime: timestampFromMs(d.updateTime),
  });
}
