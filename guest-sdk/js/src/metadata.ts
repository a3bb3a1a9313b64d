/**
 * What a plugin declares about itself (`Metadata`, with `Lookup`), read once when the host loads
 * it: its name and version, the primary kind, the kinds it owns, its lookups (some triggering
 * reconciles through the plugin's `map`), write permissions, finalizer name, namespaces, resync,
 * concurrency and CRDs. Builders chain: `new Metadata("pdb-guard", "0.1.0", kinds.Deployment)
 * .owns(kinds.PodDisruptionBudget)`.
 */

import { type Gvk, toWitGvk } from "./kinds.js";
import type { WitLookup, WitMetadata, WitVerb } from "./wit.js";

/** What a plugin may do to objects of a kind it does not own. */
export type Verb = WitVerb;

/**
 * A query the host answers from its cache for every reconcile (`snapshot.lookup(kind)`); with
 * `.triggers()`, a change to a matching object is handed to the plugin's `map`, and the primary
 * objects it names are reconciled.
 */
export class Lookup {
  readonly kind: Gvk;
  namespace?: string | undefined;
  labelSelector?: string | undefined;
  triggering = false;

  /** Every object of a kind. */
  constructor(kind: Gvk) {
    this.kind = kind;
  }

  /** Only objects in this namespace. */
  inNamespace(namespace: string): this {
    this.namespace = namespace;
    return this;
  }

  /** Only objects matching this label selector (`app=web,tier in (a,b)`). */
  selector(labelSelector: string): this {
    this.labelSelector = labelSelector;
    return this;
  }

  /** A change to a matching object triggers reconciles of the objects the plugin's `map` names. */
  triggers(): this {
    this.triggering = true;
    return this;
  }

  /** @internal */
  toWit(): WitLookup {
    return {
      kind: toWitGvk(this.kind),
      namespace: this.namespace,
      labelSelector: this.labelSelector,
      triggers: this.triggering,
    };
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** What a plugin declares about itself. */
export class Metadata {
  readonly name: string;
  readonly version: string;
  readonly primary: Gvk;
  readonly ownedKinds: Gvk[] = [];
  readonly lookups: Lookup[] = [];
  readonly writePermissions: { kind: Gvk; verbs: Verb[] }[] = [];
  finalizerName?: string | undefined;
  /** `undefined`: every namespace. */
  onlyNamespaces?: string[] | undefined;
  resync = 0;
  maxConcurrent = 0;
  readonly crdDocuments: string[] = [];

  /**
   * A declaration with a name (a DNS label: the field manager is `wasmop/<name>`), a version and
   * the primary kind; it owns, looks up and writes nothing else, uses the finalizer
   * `wasmop.io/<name>`, watches every namespace and never resyncs.
   */
  constructor(name: string, version: string, primary: Gvk) {
    this.name = name;
    this.version = version;
    this.primary = primary;
  }

  /** Adds an owned kind: children returned in `Desired.apply`, pruned when no longer returned. */
  owns(kind: Gvk): this {
    this.ownedKinds.push(kind);
    return this;
  }

  /** Adds a lookup; its results are `snapshot.lookups[i]` in declaration order. */
  lookup(lookup: Lookup): this {
    this.lookups.push(lookup);
    return this;
  }

  /** Allows patches and/or deletions of a kind the plugin does not own. */
  writes(kind: Gvk, verbs: Verb[]): this {
    this.writePermissions.push({ kind, verbs: [...verbs] });
    return this;
  }

  /** Names the finalizer (a qualified name, `example.com/cleanup`) instead of `wasmop.io/<name>`. */
  finalizer(name: string): this {
    this.finalizerName = name;
    return this;
  }

  /** Limits the plugin to these namespaces. */
  namespaces(namespaces: string[]): this {
    this.onlyNamespaces = [...namespaces];
    return this;
  }

  /** Every object is reconciled again after this many seconds (0: never). */
  resyncSeconds(seconds: number): this {
    this.resync = seconds;
    return this;
  }

  /** At most this many reconciles of this plugin at once (0: the host's default). */
  maxConcurrentReconciles(n: number): this {
    this.maxConcurrent = n;
    return this;
  }

  /** Adds a CustomResourceDefinition (YAML or JSON) of a kind this plugin serves, for `wasmop crd`. */
  crd(document: string): this {
    this.crdDocuments.push(document);
    return this;
  }

  /** Whether a lookup triggers reconciles (then the plugin needs `map`). */
  hasTriggers(): boolean {
    return this.lookups.some((l) => l.triggering);
  }

  /** What the host would refuse in this declaration; empty when it is usable. */
  problems(): string[] {
    const out: string[] = [];
    if (this.name.length > 63 || !DNS_LABEL.test(this.name)) {
      out.push(`name ${JSON.stringify(this.name)} must be a DNS label: lower-case letters, digits and '-', at most 63 characters`);
    }
    if (this.version === "") out.push("version must not be empty");
    const kinds: [string, Gvk][] = [
      ["primary", this.primary],
      ...this.ownedKinds.map((k): [string, Gvk] => ["owns", k]),
      ...this.lookups.map((l): [string, Gvk] => ["lookups", l.kind]),
      ...this.writePermissions.map((w): [string, Gvk] => ["writes", w.kind]),
    ];
    for (const [field, k] of kinds) {
      if (k.version === "" || k.kind === "") out.push(`${field}: kind ${k.group}/${k.version}/${k.kind} needs a version and a kind`);
    }
    return out;
  }

  /** @internal */
  toWit(): WitMetadata {
    return {
      name: this.name,
      version: this.version,
      primary: toWitGvk(this.primary),
      owns: this.ownedKinds.map(toWitGvk),
      lookups: this.lookups.map((l) => l.toWit()),
      writes: this.writePermissions.map((w) => ({ kind: toWitGvk(w.kind), verbs: [...w.verbs] })),
      finalizer: this.finalizerName,
      namespaces: this.onlyNamespaces === undefined ? { tag: "all" } : { tag: "only", val: [...this.onlyNamespaces] },
      resyncSeconds: this.resync,
      maxConcurrentReconciles: this.maxConcurrent,
      crds: [...this.crdDocuments],
    };
  }
}
