/**
 * Well-shaped Kubernetes objects: the fields plugins commonly read and write, as the API server
 * writes them in JSON. Every object keeps any other field it has (the index signatures), so a
 * plugin can reach fields these types do not list.
 */

/** `metadata` of any object. */
export interface ObjectMeta {
  name?: string | undefined;
  namespace?: string | undefined;
  uid?: string | undefined;
  generation?: number | undefined;
  resourceVersion?: string | undefined;
  labels?: Record<string, string> | undefined;
  annotations?: Record<string, string> | undefined;
  finalizers?: string[] | undefined;
  deletionTimestamp?: string | undefined;
  creationTimestamp?: string | undefined;
  ownerReferences?: OwnerReference[] | undefined;
  [field: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean | undefined;
  blockOwnerDeletion?: boolean | undefined;
}

/** Any Kubernetes object: `apiVersion`, `kind`, `metadata` and whatever else it has. */
export interface KubeObject {
  apiVersion?: string | undefined;
  kind?: string | undefined;
  metadata?: ObjectMeta | undefined;
  [field: string]: unknown;
}

/** An object with a typed `spec` and `status`. */
export interface Resource<Spec = Record<string, unknown>, Status = Record<string, unknown>> extends KubeObject {
  spec?: Spec | undefined;
  status?: Status | undefined;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values?: string[] | undefined;
}

export interface LabelSelector {
  matchLabels?: Record<string, string> | undefined;
  matchExpressions?: LabelSelectorRequirement[] | undefined;
}

/** `apps/v1` Deployment (the fields of its spec plugins usually need). */
export type Deployment = Resource<
  {
    replicas?: number | undefined;
    selector: LabelSelector;
    template: { metadata?: ObjectMeta; spec?: Record<string, unknown> };
    [field: string]: unknown;
  },
  {
    observedGeneration?: number | undefined;
    replicas?: number | undefined;
    readyReplicas?: number | undefined;
    availableReplicas?: number | undefined;
    updatedReplicas?: number | undefined;
    conditions?: Record<string, unknown>[] | undefined;
    [field: string]: unknown;
  }
>;

/** `policy/v1` PodDisruptionBudget. */
export type PodDisruptionBudget = Resource<{
  selector?: LabelSelector | undefined;
  minAvailable?: number | string | undefined;
  maxUnavailable?: number | string | undefined;
  [field: string]: unknown;
}>;

/** `v1` ConfigMap. */
export interface ConfigMap extends KubeObject {
  data?: Record<string, string> | undefined;
  binaryData?: Record<string, string> | undefined;
  immutable?: boolean | undefined;
}

/** `v1` Secret (`data` values are base64). */
export interface Secret extends KubeObject {
  type?: string | undefined;
  data?: Record<string, string> | undefined;
  stringData?: Record<string, string> | undefined;
}

/** `v1` Namespace. */
export type Namespace = Resource<{ finalizers?: string[] }, { phase?: "Active" | "Terminating"; [field: string]: unknown }>;
