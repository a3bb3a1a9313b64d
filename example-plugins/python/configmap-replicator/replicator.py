"""configmap-replicator: a ConfigMap annotated `wasmop.io/replicate-to: ns-a,ns-b` is copied into
those namespaces — same name, same `data` and `binaryData`, the label `wasmop.io/replica: "true"`
and the annotation `wasmop.io/replica-of: <namespace>/<name>` — and kept in sync. The Python twin
of `example-plugins/configmap-replicator`, answering its golden files.

* Namespaces that do not exist (or are terminating) are skipped, with a log line and a Warning
  event when the source changed; the source's own namespace is skipped. The Namespace lookup
  triggers: when a namespace appears (or goes), `map` names the sources that list it, read from
  the host's cache, and they are reconciled again.
* The copies are children in other namespaces: the host tracks them by its labels and prunes a
  copy whose namespace left the list.
* Deleting the source deletes the copies: the plugin holds its finalizer on annotated ConfigMaps
  only, and answers a deletion with no children and without the finalizer, so the host prunes the
  copies and then releases the source. A source whose annotation is removed is answered the same
  way.
* The copies are ConfigMaps too, so they are reconciled as primary objects: a copy has nothing to
  replicate, and its answer is empty, as is that of any ConfigMap without the annotation.
"""

from typing import List, Set

from wasmop_sdk import (
    Desired,
    Event,
    Lookup,
    Metadata,
    ObjectKey,
    Plugin,
    Reason,
    Snapshot,
    Trigger,
    cache,
    kinds,
    log,
)

REPLICATE_TO = "wasmop.io/replicate-to"
"""The annotation listing the namespaces to copy into."""
REPLICA_LABEL = "wasmop.io/replica"
"""The label marking a copy."""
REPLICA_OF = "wasmop.io/replica-of"
"""The annotation on a copy naming its source."""


def join(names: Set[str]) -> str:
    return ", ".join(sorted(names))


def wanted_namespaces(annotation: str, own_namespace: str) -> Set[str]:
    """The namespaces a source's annotation names, without its own namespace."""
    return {ns.strip() for ns in annotation.split(",") if ns.strip() and ns.strip() != own_namespace}


def stop_replicating(current: Set[str], reason: str, message: str) -> Desired:
    """The answer for a source that no longer replicates (deleted, or its annotation removed): no
    children, so the host prunes the copies, and no finalizer, so it is released."""
    if not current:
        return Desired()
    return Desired().event(Event.normal(reason, f"{message} {join(current)}"))


class Replicator(Plugin):
    def metadata(self) -> Metadata:
        return Metadata(
            name="configmap-replicator",
            version="0.1.0",
            primary=kinds.CONFIG_MAP,
            owns=[kinds.CONFIG_MAP],
            lookups=[Lookup(kinds.NAMESPACE, triggers=True)],
            resync_seconds=300,
        )

    def reconcile(self, s: Snapshot) -> Desired:
        current = {c.namespace for c in s.children_of(kinds.CONFIG_MAP) if c.namespace}
        if s.is_deleting():
            return stop_replicating(current, "ReplicasDeleted", "deleting the copies in")
        if s.label(REPLICA_LABEL) is not None:
            return Desired()
        annotation = s.annotation(REPLICATE_TO)
        if annotation is None:
            return stop_replicating(current, "ReplicaRemoved", "removed the copies in")
        own_namespace = s.namespace or ""
        wanted = wanted_namespaces(annotation, own_namespace)
        existing = {
            ns.name
            for ns in s.lookup(kinds.NAMESPACE)
            if ns.status.get("phase") != "Terminating" and ns.name
        }
        targets = wanted & existing
        missing = wanted - existing

        desired = Desired().finalizer()
        for ns in sorted(targets):
            copy = {
                "metadata": {
                    "name": s.name,
                    "namespace": ns,
                    "labels": {REPLICA_LABEL: "true"},
                    "annotations": {REPLICA_OF: f"{own_namespace}/{s.name}"},
                },
            }
            for field in ("data", "binaryData"):
                if s.object.get(field) is not None:
                    copy[field] = s.object[field]
            desired.apply(copy, kinds.CONFIG_MAP)
        if missing:
            # No polling: the Namespace lookup triggers, so a namespace that appears later maps
            # back to this source.
            log.warn(f"{own_namespace}/{s.name}: no namespace {join(missing)}")
            if s.reason == Reason.CHANGE:
                desired.event(
                    Event.warning("NamespaceNotFound", f"not copied to missing namespaces: {join(missing)}")
                )
        added = targets - current
        removed = current - targets
        if added:
            desired.event(Event.normal("Replicated", f"copied to {join(added)}"))
        if removed:
            desired.event(Event.normal("ReplicaRemoved", f"removed the copies in {join(removed)}"))
        return desired

    def map(self, trigger: Trigger) -> List[ObjectKey]:
        """A Namespace changed (created, changed, deleted): the sources whose annotation names it,
        in every namespace, from the host's cache."""
        namespace = trigger.name
        return [
            ObjectKey(cm.namespace, cm.name)
            for cm in cache.list(kinds.CONFIG_MAP)
            if cm.name and namespace in wanted_namespaces(cm.annotations.get(REPLICATE_TO, ""), cm.namespace or "")
        ]
