/**
 * Event types of plans. Subject: the plan id. Every one has the attributes `plan_id` and
 * `owner_id`; no payload (the plan is read with GetPlan).
 */
export const PLAN_CREATED = "plan.created";
export const PLAN_UPDATED = "plan.updated";
export const PLAN_PAUSED = "plan.paused";
export const PLAN_RESUMED = "plan.resumed";
export const PLAN_DELETED = "plan.deleted";

/**
 * A plan fired: its task or pipeline was created. Extra attributes: `scheduled_time` and
 * `fire_time` (RFC 3339), `target_id`, `kind` (task or pipeline), `manual` ("true" for RunPlan).
 * Published once per firing, by the server that created the target.
 */
export const PLAN_FIRED = "plan.fired";
