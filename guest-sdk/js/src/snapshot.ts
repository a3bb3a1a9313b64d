/**
 * What a call gets, parsed: `Snapshot` (one reconcile: the primary object, its children, the
 * declared lookups, the configuration and why it runs) and `Trigger` (one `map` call). Objects are
 * parsed from JSON once, when the snapshot is made.
 */

import { type Condition, carryOver, isCondition } from "./condition.js";
import { ReconcileError } from "./errors.js";
import type { KubeObject, ObjectMeta } from "./k8s.js";
import { type Gvk, isKind, sameKind } from "./kinds.js";
import { Lookup } from "./metadata.js";
import type { Reason, WitLookup, WitSnapshot, WitTrigger } from "./wit.js";

function parse(text: string, what: string): KubeObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw ReconcileError.permanent(`cannot read ${what}: ${String(e)}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw ReconcileError.permanent(`cannot read ${what}: not a JSON object`);
  }
  return value as KubeObject;
}

function lookupFromWit(l: WitLookup): Lookup {
  const lookup = new Lookup({ group: l.kind.group, version: l.kind.version, kind: l.kind.kind });
  if (l.namespace !== undefined) lookup.inNamespace(l.namespace);
  if (l.labelSelector !== undefined) lookup.selector(l.labelSelector);
  if (l.triggers) lookup.triggers();
  return lookup;
}

/** The results of one declared lookup. */
export interface LookupResult {
  lookup: Lookup;
  objects: KubeObject[];
}

/** Everything one reconcile gets. */
export class Snapshot<T extends KubeObject = KubeObject> {
  /** The primary object. Its `metadata.generation` is what `status.observedGeneration` reports. */
  readonly object: T;
  /** The objects of the `owns` kinds that this object owns, as found by the host. */
  readonly children: KubeObject[];
  /** The declared lookups' results, in declaration order. */
  readonly lookups: LookupResult[];
  /** Why this reconcile runs. */
  readonly reason: Reason;
  /** 1 for the first attempt; counts up while reconciles of this object fail. */
  readonly attempt: number;
  /** The plugin's configuration (`{}` when none is given). */
  readonly config: Record<string, unknown>;

  constructor(
    object: T,
    fields: { children?: KubeObject[]; lookups?: LookupResult[]; reason?: Reason; attempt?: number; config?: Record<string, unknown> } = {},
  ) {
    this.object = object;
    this.children = fields.children ?? [];
    this.lookups = fields.lookups ?? [];
    this.reason = fields.reason ?? "change";
    this.attempt = fields.attempt ?? 1;
    this.config = fields.config ?? {};
  }

  /** @internal */
  static fromWit(s: WitSnapshot): Snapshot {
    const config = parse(s.config === "" ? "{}" : s.config, "the plugin configuration");
    return new Snapshot(parse(s.object, "the object"), {
      children: s.children.map((c) => parse(c, "a child")),
      lookups: s.lookups.map((l) => ({ lookup: lookupFromWit(l.lookup), objects: l.objects.map((o) => parse(o, "a lookup result")) })),
      reason: s.reason,
      attempt: s.attempt,
      config: config as Record<string, unknown>,
    });
  }

  /** The primary object's `metadata` (empty when absent). */
  get meta(): ObjectMeta {
    return this.object.metadata ?? {};
  }

  /** The primary object's name. */
  get name(): string {
    return this.meta.name ?? "";
  }

  /** The primary object's namespace; `undefined` when cluster-scoped. */
  get namespace(): string | undefined {
    return this.meta.namespace || undefined;
  }

  /** The primary object's uid. */
  get uid(): string | undefined {
    return this.meta.uid;
  }

  /** The primary object's `metadata.generation`: what `status.observedGeneration` should report. */
  get generation(): number | undefined {
    return this.meta.generation;
  }

  /**
   * Whether the object is going away: reason `deletion`, or a `deletionTimestamp` is set. A plugin
   * holding its finalizer cleans up, then answers without `.finalizer()` to release it.
   */
  get isDeleting(): boolean {
    return this.reason === "deletion" || (this.meta.deletionTimestamp ?? null) !== null;
  }

  /** One label of the primary object. */
  label(key: string): string | undefined {
    return this.meta.labels?.[key];
  }

  /** One annotation of the primary object. */
  annotation(key: string): string | undefined {
    return this.meta.annotations?.[key];
  }

  /**
   * Metadata for a child: this name, in the primary object's namespace. (The host adds the owner
   * reference and its tracking labels.)
   */
  childMeta(name: string): ObjectMeta {
    const ns = this.namespace;
    return ns === undefined ? { name } : { name, namespace: ns };
  }

  /** The children of one kind. */
  childrenOf<C extends KubeObject = KubeObject>(kind: Gvk): C[] {
    return this.children.filter((c) => isKind(c, kind)) as C[];
  }

  /** The child of a kind with this name (in any namespace), if there is one. */
  child<C extends KubeObject = KubeObject>(kind: Gvk, name: string): C | undefined {
    return this.children.find((c) => isKind(c, kind) && c.metadata?.name === name) as C | undefined;
  }

  /** The objects of a kind from every declared lookup of that kind. */
  lookup<C extends KubeObject = KubeObject>(kind: Gvk): C[] {
    return this.lookups.filter((l) => sameKind(l.lookup.kind, kind)).flatMap((l) => l.objects) as C[];
  }

  /** The primary object's current `status.conditions` (entries that are not conditions are skipped). */
  conditions(): Condition[] {
    const status = this.object["status"] as { conditions?: unknown } | undefined;
    const list = Array.isArray(status?.conditions) ? status.conditions : [];
    return list.filter(isCondition).map((c) => ({ ...c, reason: c.reason ?? "", message: c.message ?? "" }));
  }

  /**
   * The new full set of conditions with `lastTransitionTime` carried over from the current status
   * where a condition kept its status.
   */
  updateConditions(next: Iterable<Condition>): Condition[] {
    return carryOver(this.conditions(), next);
  }
}

/** A change to an object of a triggering lookup, handed to `map`. */
export class Trigger<T extends KubeObject = KubeObject> {
  /** Index of the lookup in `metadata.lookups`. */
  readonly lookup: number;
  /** The object (its last known state when it was deleted). */
  readonly object: T;
  /** Whether the object was deleted. */
  readonly deleted: boolean;

  constructor(lookup: number, object: T, deleted = false) {
    this.lookup = lookup;
    this.object = object;
    this.deleted = deleted;
  }

  /** @internal */
  static fromWit(t: WitTrigger): Trigger {
    return new Trigger(t.lookup, parse(t.object, "the trigger object"), t.deleted);
  }

  /** The object's name. */
  get name(): string {
    return this.object.metadata?.name ?? "";
  }

  /** The object's namespace; `undefined` when cluster-scoped. */
  get namespace(): string | undefined {
    return this.object.metadata?.namespace || undefined;
  }
}
