"""Running a plugin natively, without building a component: `FakeHost` stands in for the host's
cache (the objects you give it) and log (kept in `logs`), and `reconcile` / `map_keys` call the
plugin as the component's exports do and answer in the form `wasmop test` prints (so a golden
`*.expected.yaml`, parsed, compares equal). The component itself is tested with `wasmop test`."""

from __future__ import annotations

import json
from typing import Any, Iterable, List, Optional, Tuple

from . import host
from .desired import Desired
from .metadata import Lookup
from .objects import Gvk, ObjectKey, ObjectRef, as_object
from .plugin import Plugin, run_map, run_reconcile
from .snapshot import LookupResult, Reason, Snapshot, Trigger


def _selects(selector: Optional[str], labels: dict) -> bool:
    """Equality-based label selectors (`a=b,c!=d,e`), enough for tests."""
    for term in filter(None, (s.strip() for s in (selector or "").split(","))):
        if "!=" in term:
            key, value = (x.strip() for x in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (x.strip() for x in term.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class FakeHost:
    """The host's imports over a list of objects; `with FakeHost(objects) as h:` installs it."""

    def __init__(self, objects: Iterable[dict] = ()):
        self.objects = [as_object(o) for o in objects]
        self.logs: List[Tuple[str, str]] = []
        self._previous = None

    def get(self, kind: Gvk, namespace: Optional[str], name: str) -> Optional[str]:
        for o in self.objects:
            if kind.matches(o) and o.namespace == namespace and o.name == name:
                return json.dumps(o)
        return None

    def list(self, kind: Gvk, namespace: Optional[str], label_selector: Optional[str]) -> List[str]:
        return [
            json.dumps(o)
            for o in self.objects
            if kind.matches(o) and (namespace is None or o.namespace == namespace) and _selects(label_selector, o.labels)
        ]

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    def __enter__(self) -> "FakeHost":
        self._previous = host.set_host(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        host.set_host(self._previous)


def _ref_json(r: ObjectRef) -> dict:
    out: dict = {"kind": {"group": r.kind.group, "version": r.kind.version, "kind": r.kind.kind}, "name": r.name}
    if r.namespace is not None:
        out["namespace"] = r.namespace
    return out


def desired_json(d: Desired) -> dict:
    """A desired state as `wasmop test` prints it (empty parts left out)."""
    out: dict = {}
    if d.applies:
        out["apply"] = d.applies
    if d.patches:
        out["patches"] = [
            {"target": _ref_json(p.target), "patchType": p.patch_type.value, "body": p.body} for p in d.patches
        ]
    if d.new_status is not None:
        out["status"] = d.new_status
    if d.deletions:
        out["deletions"] = [_ref_json(r) for r in d.deletions]
    if d.events:
        events = []
        for e in d.events:
            event = {"eventType": e.event_type.value, "reason": e.reason, "message": e.message}
            if e.regarding is not None:
                event["regarding"] = _ref_json(e.regarding)
            events.append(event)
        out["events"] = events
    if d.requeue_after_seconds is not None:
        out["requeueAfterSeconds"] = d.requeue_after_seconds
    if d.wants_finalizer:
        out["finalizer"] = True
    return out


def snapshot(fixture: dict) -> Snapshot:
    """A snapshot from a `wasmop test` snapshot fixture (parsed): `object`, and optionally
    `children`, `lookups` (each `{lookup: {kind: {group, version, kind}, ...}, objects: [...]}`),
    `reason`, `attempt`, `config`."""
    lookups = []
    for r in fixture.get("lookups") or []:
        lk = r.get("lookup") or {}
        kind = lk.get("kind") or {}
        lookups.append(
            LookupResult(
                Lookup(
                    Gvk(kind.get("group", ""), kind.get("version", ""), kind.get("kind", "")),
                    lk.get("namespace"),
                    lk.get("labelSelector"),
                    bool(lk.get("triggers")),
                ),
                list(r.get("objects") or []),
            )
        )
    return Snapshot(
        object=fixture["object"],
        children=list(fixture.get("children") or []),
        lookups=lookups,
        reason=Reason(fixture.get("reason", "change")),
        attempt=fixture.get("attempt", 1),
        config=fixture.get("config") or {},
    )


def reconcile(plugin: Plugin, fixture: dict) -> dict:
    """One reconcile on a snapshot fixture, with a cache of exactly the snapshot's objects (as
    `wasmop test` gives); the answer as `wasmop test` prints it. Failures raise."""
    s = snapshot(fixture)
    objects = [s.object, *s.children, *(o for r in s.lookups for o in r.objects)]
    with FakeHost(objects):
        return desired_json(run_reconcile(plugin, s))


def map_keys(plugin: Plugin, fixture: dict) -> List[dict]:
    """One `map` call on a trigger fixture (`lookup`, `object`, `deleted`, `cache`); the keys as
    `wasmop test --trigger` prints them."""
    trigger = Trigger(fixture.get("lookup", 0), fixture["object"], bool(fixture.get("deleted")))
    with FakeHost(fixture.get("cache") or []):
        keys: List[ObjectKey] = run_map(plugin, trigger)
    return [{"namespace": k.namespace, "name": k.name} if k.namespace is not None else {"name": k.name} for k in keys]
