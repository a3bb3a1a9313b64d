/**
 * The contract `wasmop:reconciler@0.2.0` (`wit/reconciler.wit`) as componentize-js hands it to and
 * takes it from JavaScript: records are objects with camelCase fields, enums are their kebab-case
 * names, variants are `{ tag, val }`, an `option` is the value or `undefined`, and objects cross as
 * JSON text. Plugins do not use these types: the SDK's `Snapshot`, `Desired`, `Metadata`, ...
 * convert to and from them.
 */

export interface WitGvk {
  group: string;
  version: string;
  kind: string;
}

export type WitVerb = "patch" | "delete";

export interface WitWritePermission {
  kind: WitGvk;
  verbs: WitVerb[];
}

export type WitNamespaceScope = { tag: "all" } | { tag: "only"; val: string[] };

export interface WitLookup {
  kind: WitGvk;
  namespace?: string | undefined;
  labelSelector?: string | undefined;
  triggers: boolean;
}

export interface WitMetadata {
  name: string;
  version: string;
  primary: WitGvk;
  owns: WitGvk[];
  lookups: WitLookup[];
  writes: WitWritePermission[];
  finalizer?: string | undefined;
  namespaces: WitNamespaceScope;
  resyncSeconds: number;
  maxConcurrentReconciles: number;
  crds: string[];
}

/** Why a reconcile runs. */
export type Reason = "change" | "child-change" | "resync" | "retry" | "deletion" | "trigger";

export interface WitLookupResult {
  lookup: WitLookup;
  objects: string[];
}

export interface WitSnapshot {
  object: string;
  children: string[];
  lookups: WitLookupResult[];
  reason: Reason;
  attempt: number;
  config: string;
}

export interface WitObjectRef {
  kind: WitGvk;
  namespace?: string | undefined;
  name: string;
}

export interface WitObjectKey {
  namespace?: string | undefined;
  name: string;
}

export interface WitPatch {
  target: WitObjectRef;
  patchType: "merge" | "json";
  body: string;
}

export interface WitEvent {
  eventType: "normal" | "warning";
  reason: string;
  message: string;
  regarding?: WitObjectRef | undefined;
}

export interface WitDesired {
  apply: string[];
  patches: WitPatch[];
  status?: string | undefined;
  deletions: WitObjectRef[];
  events: WitEvent[];
  requeueAfterSeconds?: number | undefined;
  finalizer: boolean;
}

export type WitReconcileError = { tag: "retry"; val: string } | { tag: "permanent"; val: string };

export interface WitTrigger {
  lookup: number;
  object: string;
  deleted: boolean;
}

export type WitLogLevel = "trace" | "debug" | "info" | "warn" | "error";
