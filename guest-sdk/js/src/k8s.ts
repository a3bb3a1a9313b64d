/**
 * Well-shaped Kubernetes objects: the fields plugins commonly read and write, as the API server
 * writes them in JSON. Every object keeps any other field it has (the index signatures), so a
 * plugin can reach fields these types do not list.
 */

/** `metadata` of any object. */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  deletionTimestamp?: string;
  creationTimestamp?: string;
  ownerReferences?: OwnerReference[];
  [field: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** Any Kubernetes object: `apiVersion`, `kind`, `metadata` and whatever else it has. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [field: string]: unknown;
}

/** An object with a typed `spec` and `status`. */
export interface Resource<Spec = Record<string, unknown>, Status = Record<string, unknown>> extends KubeObject {
  spec?: Spec;
  status?: Status;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** `apps/v1` Deployment (the fields of its spec plugins usually need). */
export type Deployment = Resource<
  {
    replicas?: number;
    selector: LabelSelector;
    template: { metadata?: ObjectMeta; spec?: Record<string, unknown> };
    [field: string]: unknown;
  },
  {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    updatedReplicas?: number;
    conditions?: Record<string, unknown>[];
    [field: string]: unknown;
  }
>;

/** `policy/v1` PodDisruptionBudget. */
export type PodDisruptionBudget = Resource<{
  selector?: LabelSelector;
  minAvailable?: number | string;
  maxUnavailable?: number | string;
  [field: string]: unknown;
}>;

/** `v1` ConfigMap. */
export interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
  immutable?: boolean;
}

/** `v1` Secret (`data` values are base64). */
export interface Secret extends KubeObject {
  type?: string;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

/** `v1` Namespace. */
export type Namespace = Resource<{ finalizers?: string[] }, { phase?: "Active" | "Terminating"; [field: string]: unknown }>;
