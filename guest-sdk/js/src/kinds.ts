/**
 * Kinds and object references: `Gvk` (`{ group, version, kind }`, the group empty for the core
 * group), the common kinds as constants, and `ObjectRef` / `ObjectKey`.
 */

import type { KubeObject } from "./k8s.js";
import type { WitGvk, WitObjectKey, WitObjectRef } from "./wit.js";

/** A Kubernetes kind; `group` is `""` for the core group. */
export interface Gvk {
  group: string;
  version: string;
  kind: string;
}

/** A kind from an `apiVersion` (`apps/v1`, `v1`) and a kind name. */
export function gvk(apiVersion: string, kind: string): Gvk {
  const slash = apiVersion.indexOf("/");
  return slash < 0
    ? { group: "", version: apiVersion, kind }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1), kind };
}

/** `v1` or `apps/v1`. */
export function apiVersion(kind: Gvk): string {
  return kind.group === "" ? kind.version : `${kind.group}/${kind.version}`;
}

/** The kind of an object, from its `apiVersion` and `kind`; `undefined` without them. */
export function kindOf(object: KubeObject): Gvk | undefined {
  if (typeof object.apiVersion !== "string" || typeof object.kind !== "string") return undefined;
  return gvk(object.apiVersion, object.kind);
}

/** Whether `object` is of `kind` (same `apiVersion` and `kind`). */
export function isKind(object: KubeObject, kind: Gvk): boolean {
  return object.kind === kind.kind && object.apiVersion === apiVersion(kind);
}

/** Whether two kinds are the same. */
export function sameKind(a: Gvk, b: Gvk): boolean {
  return a.group === b.group && a.version === b.version && a.kind === b.kind;
}

/** The common built-in kinds. */
export const kinds = {
  ConfigMap: gvk("v1", "ConfigMap"),
  Secret: gvk("v1", "Secret"),
  Namespace: gvk("v1", "Namespace"),
  Pod: gvk("v1", "Pod"),
  Service: gvk("v1", "Service"),
  ServiceAccount: gvk("v1", "ServiceAccount"),
  PersistentVolumeClaim: gvk("v1", "PersistentVolumeClaim"),
  Deployment: gvk("apps/v1", "Deployment"),
  StatefulSet: gvk("apps/v1", "StatefulSet"),
  DaemonSet: gvk("apps/v1", "DaemonSet"),
  ReplicaSet: gvk("apps/v1", "ReplicaSet"),
  Job: gvk("batch/v1", "Job"),
  CronJob: gvk("batch/v1", "CronJob"),
  PodDisruptionBudget: gvk("policy/v1", "PodDisruptionBudget"),
  Ingress: gvk("networking.k8s.io/v1", "Ingress"),
  NetworkPolicy: gvk("networking.k8s.io/v1", "NetworkPolicy"),
} as const;

/** Points at one object; `namespace` is absent for cluster-scoped objects. */
export interface ObjectRef {
  kind: Gvk;
  namespace?: string | undefined;
  name: string;
}

/** A reference from its parts. */
export function objectRef(kind: Gvk, namespace: string | undefined, name: string): ObjectRef {
  return namespace === undefined ? { kind, name } : { kind, namespace, name };
}

/** A reference to an object (it needs `apiVersion`, `kind` and `metadata.name`). */
export function refOf(object: KubeObject): ObjectRef | undefined {
  const kind = kindOf(object);
  const name = object.metadata?.name;
  if (kind === undefined || typeof name !== "string") return undefined;
  return objectRef(kind, object.metadata?.namespace, name);
}

/** A primary object to reconcile, named by `map`; `namespace` is absent for cluster-scoped ones. */
export interface ObjectKey {
  namespace?: string | undefined;
  name: string;
}

/** A key from its parts. */
export function objectKey(namespace: string | undefined, name: string): ObjectKey {
  return namespace === undefined ? { name } : { namespace, name };
}

/** @internal */
export function toWitGvk(kind: Gvk): WitGvk {
  return { group: kind.group, version: kind.version, kind: kind.kind };
}

/** @internal */
export function toWitRef(ref: ObjectRef): WitObjectRef {
  return { kind: toWitGvk(ref.kind), namespace: ref.namespace || undefined, name: ref.name };
}

/** @internal */
export function toWitKey(key: ObjectKey): WitObjectKey {
  return { namespace: key.namespace || undefined, name: key.name };
}
