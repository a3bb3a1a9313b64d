/**
 * configmap-replicator: a ConfigMap annotated `wasmop.io/replicate-to: ns-a,ns-b` is copied into
 * those namespaces — same name, same `data` and `binaryData`, the label `wasmop.io/replica: "true"`
 * and the annotation `wasmop.io/replica-of: <namespace>/<name>` — and kept in sync. The same
 * plugin as the Rust `example-plugins/configmap-replicator` (whose module comment says the whole
 * behaviour), answering its golden fixtures:
 *
 * - Namespaces that do not exist (or are terminating) are skipped, with a log line and a Warning
 *   event when the source changed; the Namespace lookup triggers, and `map` names the sources that
 *   list a namespace that appeared or went.
 * - The copies are children in other namespaces, tracked by the host's labels and pruned when
 *   their namespace leaves the list.
 * - The plugin holds its finalizer on annotated sources; deleting one (or removing its annotation)
 *   is answered with no children and no finalizer: the host prunes the copies, then releases it.
 * - A copy is a ConfigMap too: its own answer is empty.
 */

import { type ConfigMap, Desired, Event, Lookup, Metadata, type Namespace, type ObjectKey, type Plugin, cache, exportPlugin, kinds, log, objectKey } from "@wasmop/sdk";

/** The annotation listing the namespaces to copy into. */
const REPLICATE_TO = "wasmop.io/replicate-to";
/** The label marking a copy. */
const REPLICA_LABEL = "wasmop.io/replica";
/** The annotation on a copy naming its source. */
const REPLICA_OF = "wasmop.io/replica-of";

/** Sorted, without duplicates (the Rust version's BTreeSet order: by code unit). */
function sorted(names: Iterable<string>): string[] {
  return [...new Set(names)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function join(names: string[]): string {
  return names.join(", ");
}

/** The namespaces a source's annotation names, without its own namespace. */
function wantedNamespaces(annotation: string, ownNamespace: string): string[] {
  return sorted(
    annotation
      .split(",")
      .map((ns) => ns.trim())
      .filter((ns) => ns !== "" && ns !== ownNamespace),
  );
}

/**
 * The answer for a source that no longer replicates (deleted, or its annotation removed): no
 * children, so the host prunes the copies, and no finalizer, so it is released.
 */
function stopReplicating(current: string[], reason: string, message: string): Desired {
  const desired = new Desired();
  if (current.length > 0) desired.event(Event.normal(reason, `${message} ${join(current)}`));
  return desired;
}

const replicator: Plugin<ConfigMap> = {
  metadata: () =>
    new Metadata("configmap-replicator", "0.1.0", kinds.ConfigMap)
      .owns(kinds.ConfigMap)
      .lookup(new Lookup(kinds.Namespace).triggers())
      .resyncSeconds(300),

  reconcile(s) {
    const current = sorted(s.childrenOf<ConfigMap>(kinds.ConfigMap).flatMap((c) => (c.metadata?.namespace ? [c.metadata.namespace] : [])));
    if (s.isDeleting) return stopReplicating(current, "ReplicasDeleted", "deleting the copies in");
    if (s.label(REPLICA_LABEL) !== undefined) return new Desired();
    const annotation = s.annotation(REPLICATE_TO);
    if (annotation === undefined) return stopReplicating(current, "ReplicaRemoved", "removed the copies in");

    const source = s.object;
    const ownNamespace = s.namespace ?? "";
    const wanted = wantedNamespaces(annotation, ownNamespace);
    const existing = new Set(
      s
        .lookup<Namespace>(kinds.Namespace)
        .filter((ns) => ns.status?.phase !== "Terminating")
        .flatMap((ns) => (ns.metadata?.name ? [ns.metadata.name] : [])),
    );
    const targets = wanted.filter((ns) => existing.has(ns));
    const missing = wanted.filter((ns) => !existing.has(ns));

    const desired = new Desired().finalizer();
    for (const ns of targets) {
      const copy: ConfigMap = {
        metadata: {
          name: s.name,
          namespace: ns,
          labels: { [REPLICA_LABEL]: "true" },
          annotations: { [REPLICA_OF]: `${ownNamespace}/${s.name}` },
        },
      };
      if (source.data !== undefined) copy.data = source.data;
      if (source.binaryData !== undefined) copy.binaryData = source.binaryData;
      desired.apply(copy, kinds.ConfigMap);
    }
    if (missing.length > 0) {
      // No polling: the Namespace lookup triggers, so a namespace that appears later maps back to
      // this source.
      log.warn(`${ownNamespace}/${s.name}: no namespace ${join(missing)}`);
      if (s.reason === "change") {
        desired.event(Event.warning("NamespaceNotFound", `not copied to missing namespaces: ${join(missing)}`));
      }
    }
    const added = targets.filter((ns) => !current.includes(ns));
    const removed = current.filter((ns) => !targets.includes(ns));
    if (added.length > 0) desired.event(Event.normal("Replicated", `copied to ${join(added)}`));
    if (removed.length > 0) desired.event(Event.normal("ReplicaRemoved", `removed the copies in ${join(removed)}`));
    return desired;
  },

  /**
   * A Namespace changed (created, changed, deleted): the sources whose annotation names it, in
   * every namespace, from the host's cache.
   */
  map(trigger): ObjectKey[] {
    const namespace = trigger.name;
    return cache
      .list<ConfigMap>(kinds.ConfigMap)
      .filter((cm) => {
        const list = cm.metadata?.annotations?.[REPLICATE_TO];
        return list !== undefined && wantedNamespaces(list, cm.metadata?.namespace ?? "").includes(namespace);
      })
      .flatMap((cm) => (cm.metadata?.name ? [objectKey(cm.metadata.namespace, cm.metadata.name)] : []));
  },
};

export const { metadata, reconcile, map } = exportPlugin(replicator);
