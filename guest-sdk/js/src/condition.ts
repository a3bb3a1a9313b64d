/**
 * Status conditions without a clock, in the form of `metav1.Condition`. Plugins have no clock:
 * build conditions without `lastTransitionTime` and pass them through
 * `snapshot.updateConditions(...)` (or `carryOver`), which copies it from the previous condition
 * of the same type when its status did not change; a new condition, or one whose status changed,
 * goes out without it and the host stamps the time of its status write.
 */

export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number | undefined;
  lastTransitionTime?: string | undefined;
}

/**
 * A condition of a type with a status (`true`, `false` or a `ConditionStatus`):
 * `condition("Ready", true, { reason: "AllReplicasReady", observedGeneration: s.generation })`.
 */
export function condition(
  type: string,
  status: boolean | ConditionStatus,
  fields: { reason?: string; message?: string; observedGeneration?: number } = {},
): Condition {
  const c: Condition = {
    type,
    status: typeof status === "boolean" ? (status ? "True" : "False") : status,
    reason: fields.reason ?? "",
    message: fields.message ?? "",
  };
  if (fields.observedGeneration !== undefined) c.observedGeneration = fields.observedGeneration;
  return c;
}

/**
 * The new conditions, in their order, each with the `lastTransitionTime` of the previous condition
 * of the same type if that one had the same status (a time set on a new condition is kept).
 * Previous conditions not in `next` are dropped: `next` is the full set.
 */
export function carryOver(previous: readonly Condition[], next: Iterable<Condition>): Condition[] {
  return Array.from(next, (c) => {
    if (c.lastTransitionTime !== undefined) return { ...c };
    const old = previous.find((p) => p.type === c.type && p.status === c.status);
    return old?.lastTransitionTime === undefined ? { ...c } : { ...c, lastTransitionTime: old.lastTransitionTime };
  });
}

/** Whether a value read from `status.conditions` is a condition. @internal */
export function isCondition(value: unknown): value is Condition {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  const status = v["status"];
  return typeof v["type"] === "string" && (status === "True" || status === "False" || status === "Unknown");
}
