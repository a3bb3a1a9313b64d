/**
 * The answer of a successful reconcile: `Desired`, the state the host makes true, built by
 * chaining — children to server-side apply (full intent: owned children not listed are pruned),
 * patches, status, deletions, events, requeue, and whether the object holds the plugin's
 * finalizer — and `Event`.
 */

import type { KubeObject } from "./k8s.js";
import { type Gvk, type ObjectRef, apiVersion, toWitRef } from "./kinds.js";
import type { WitDesired, WitEvent } from "./wit.js";

/** A Kubernetes Event to record. */
export interface Event {
  eventType: "Normal" | "Warning";
  /** UpperCamelCase reason (`Provisioned`). */
  reason: string;
  message: string;
  /** The object the event is about; absent: the primary object. */
  regarding?: ObjectRef | undefined;
}

/** Events about the primary object (`.regarding(ref)` is set on the result for another one). */
export const Event = {
  /** Something expected happened. */
  normal(reason: string, message: string, regarding?: ObjectRef): Event {
    return regarding === undefined ? { eventType: "Normal", reason, message } : { eventType: "Normal", reason, message, regarding };
  },
  /** Something went wrong. */
  warning(reason: string, message: string, regarding?: ObjectRef): Event {
    return regarding === undefined ? { eventType: "Warning", reason, message } : { eventType: "Warning", reason, message, regarding };
  },
};

export interface Patch {
  target: ObjectRef;
  patchType: "merge" | "json";
  body: unknown;
}

/** The state a plugin wants; builder methods chain and return the same value. */
export class Desired {
  /** Children to server-side apply. */
  readonly applied: KubeObject[] = [];
  readonly patches: Patch[] = [];
  /** The primary object's new `status`; `undefined` leaves it alone. */
  statusValue?: unknown | undefined;
  readonly deletions: ObjectRef[] = [];
  readonly events: Event[] = [];
  requeueAfter?: number | undefined;
  holdsFinalizer = false;
  /** Problems found while building (a value that is not JSON): the answer becomes a permanent error. */
  readonly errors: string[] = [];

  /**
   * Adds a child. With `kind`, its `apiVersion` and `kind` are set from it; otherwise the object
   * must carry them. Set `metadata.name` (`snapshot.childMeta(name)`); the namespace defaults to
   * the primary object's.
   */
  apply(object: KubeObject, kind?: Gvk): this {
    this.applied.push(kind === undefined ? object : { apiVersion: apiVersion(kind), kind: kind.kind, ...withoutType(object) });
    return this;
  }

  /** Adds several children (of one kind, when `kind` is given). */
  applyAll(objects: Iterable<KubeObject>, kind?: Gvk): this {
    for (const o of objects) this.apply(o, kind);
    return this;
  }

  /** Adds an RFC 7386 merge patch to an object (needs patch permission on its kind). */
  mergePatch(target: ObjectRef, body: unknown): this {
    this.patches.push({ target, patchType: "merge", body });
    return this;
  }

  /** Adds an RFC 6902 JSON patch (a list of operations) to an object. */
  jsonPatch(target: ObjectRef, operations: unknown[]): this {
    this.patches.push({ target, patchType: "json", body: operations });
    return this;
  }

  /** Sets the primary object's new `status`: it replaces what the plugin wrote before, so give all of it. */
  status(status: unknown): this {
    this.statusValue = status;
    return this;
  }

  /** Adds an object to delete (a child, or a kind with delete permission). */
  delete(target: ObjectRef): this {
    this.deletions.push(target);
    return this;
  }

  /** Adds an event. */
  event(event: Event): this {
    this.events.push(event);
    return this;
  }

  /** Asks for another reconcile of this object after `seconds`. */
  requeueAfterSeconds(seconds: number): this {
    this.requeueAfter = seconds;
    return this;
  }

  /**
   * Holds the object with the plugin's finalizer, so that its deletion waits for a `deletion`
   * reconcile. Leaving it out releases the finalizer (during deletion: cleanup is done).
   */
  finalizer(hold = true): this {
    this.holdsFinalizer = hold;
    return this;
  }

  /** What the host would refuse: applied objects without `apiVersion`, `kind` or `metadata.name`, bad numbers. */
  problems(): string[] {
    const out = [...this.errors];
    this.applied.forEach((o, i) => {
      if (typeof o.apiVersion !== "string" || o.apiVersion === "") out.push(`apply[${i}]: apiVersion is missing`);
      if (typeof o.kind !== "string" || o.kind === "") out.push(`apply[${i}]: kind is missing`);
      const name = o.metadata?.name;
      if (typeof name !== "string" || name === "") out.push(`apply[${i}]: metadata.name is missing`);
    });
    const r = this.requeueAfter;
    if (r !== undefined && !(Number.isInteger(r) && r >= 0 && r <= 0xffffffff)) {
      out.push(`requeueAfterSeconds: ${r} is not a whole number of seconds`);
    }
    return out;
  }

  /** @internal: the contract's form (objects as JSON text). Throws on values that are not JSON. */
  toWit(): WitDesired {
    return {
      apply: this.applied.map((o) => json(o, "apply")),
      patches: this.patches.map((p) => ({ target: toWitRef(p.target), patchType: p.patchType, body: json(p.body, "patch") })),
      status: this.statusValue === undefined ? undefined : json(this.statusValue, "status"),
      deletions: this.deletions.map(toWitRef),
      events: this.events.map(
        (e): WitEvent => ({
          eventType: e.eventType === "Warning" ? "warning" : "normal",
          reason: e.reason,
          message: e.message,
          regarding: e.regarding === undefined ? undefined : toWitRef(e.regarding),
        }),
      ),
      requeueAfterSeconds: this.requeueAfter,
      finalizer: this.holdsFinalizer,
    };
  }
}

function withoutType(object: KubeObject): KubeObject {
  const { apiVersion: _a, kind: _k, ...rest } = object;
  return rest;
}

function json(value: unknown, what: string): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`${what}: ${String(value)} is not JSON`);
  return text;
}
