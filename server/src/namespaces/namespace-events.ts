/**
 * Event type published every time a tag of a namespace moves: a publish (upload, remove, task
 * artefacts, clone) moving its tag to the new revision, SetTag, or a rollback. Subject: the
 * namespace name. Attributes: `namespace`, `tag`, `revision` (decimal) and `previous` (the
 * revision the tag pointed at before, "0" when it is new). Delivery publishers subscribe to it.
 */
export const NAMESPACE_TAG_MOVED = "namespace.tag_moved";

/** Event type of a removed tag (DeleteTag); attributes `namespace`, `tag`, `revision`. */
export const NAMESPACE_TAG_DELETED = "namespace.tag_deleted";

/** Event type of a removed namespace; attribute `namespace`. */
export const NAMESPACE_DELETED = "namespace.deleted";

/**
 * Event type of a task whose artefacts could not be published to its `tag_namespace` (missing
 * namespace, no write right, …). Subject: the task id. Attributes: `namespace`, `task_id`, `error`.
 */
export const NAMESPACE_PUBLISH_FAILED = "namespace.publish_failed";

/** Event type of a new namespace; attributes `namespace`, `owner_id`, `visibility`. */
export const NAMESPACE_CREATED = "namespace.created";

/**
 * Event type of a committed revision (any publish: upload, remove, task artefacts, clone),
 * appended right before the tag_moved of its tag. Subject: the namespace name. Attributes:
 * `namespace`, `owner_id`, `revision`, `tag`, `creator_id`, `message`.
 */
export const NAMESPACE_PUBLISHED = "namespace.published";
