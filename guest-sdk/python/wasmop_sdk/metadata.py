"""What a plugin declares about itself (`Plugin.metadata`, read once when the host loads it): its
name and version, the kind it reconciles, the kinds it owns, its lookups, the other kinds it may
write, its finalizer, namespaces, resync period, concurrency and CRDs. `validate()` checks what the
host would refuse, so a mistake shows in a unit test rather than at load."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import List, Optional

from .objects import Gvk


class Verb(Enum):
    """What a plugin may do to objects of a kind it does not own."""

    PATCH = "patch"
    DELETE = "delete"


@dataclass(frozen=True)
class WritePermission:
    kind: Gvk
    verbs: tuple = (Verb.PATCH,)


@dataclass(frozen=True)
class Lookup:
    """A query answered from the host's cache in every snapshot. `namespace=None` is every
    namespace; `label_selector=None` selects everything; with `triggers=True` a change to a
    matching object is handed to `Plugin.map`."""

    kind: Gvk
    namespace: Optional[str] = None
    label_selector: Optional[str] = None
    triggers: bool = False


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


@dataclass
class Metadata:
    """A plugin's declaration. `namespaces=None` is every namespace (and cluster-scoped
    objects); a list limits the plugin to those namespaces."""

    name: str
    version: str
    primary: Gvk
    owns: List[Gvk] = field(default_factory=list)
    lookups: List[Lookup] = field(default_factory=list)
    writes: List[WritePermission] = field(default_factory=list)
    finalizer: Optional[str] = None
    namespaces: Optional[List[str]] = None
    resync_seconds: int = 0
    max_concurrent_reconciles: int = 0
    crds: List[str] = field(default_factory=list)

    @property
    def field_manager(self) -> str:
        return f"wasmop/{self.name}"

    @property
    def finalizer_name(self) -> str:
        return self.finalizer or f"wasmop.io/{self.name}"

    def has_triggers(self) -> bool:
        return any(lookup.triggers for lookup in self.lookups)

    def problems(self) -> List[str]:
        """What the host would refuse at load, in words (empty when valid)."""
        out = []
        if len(self.name) > 63 or not _DNS_LABEL.match(self.name):
            out.append(f"name {self.name!r} is not a DNS label")
        if not self.version:
            out.append("version is empty")
        for label, kind in [("primary", self.primary), *(("owns", k) for k in self.owns)]:
            if not kind.version or not kind.kind:
                out.append(f"{label} kind {kind} needs a version and a kind")
        for lookup in self.lookups:
            if not lookup.kind.version or not lookup.kind.kind:
                out.append(f"lookup kind {lookup.kind} needs a version and a kind")
        if self.finalizer is not None and not _QUALIFIED.match(self.finalizer):
            out.append(f"finalizer {self.finalizer!r} is not a qualified name (example.com/cleanup)")
        if self.namespaces is not None and not self.namespaces:
            out.append("namespaces is an empty list (None means every namespace)")
        for n in self.namespaces or []:
            if not _DNS_LABEL.match(n):
                out.append(f"namespace {n!r} is not a DNS label")
        if self.resync_seconds < 0 or self.max_concurrent_reconciles < 0:
            out.append("resync_seconds and max_concurrent_reconciles cannot be negative")
        return out

    def validate(self) -> "Metadata":
        """Raises `ValueError` listing every problem; returns the metadata when valid."""
        problems = self.problems()
        if problems:
            raise ValueError("invalid plugin metadata: " + "; ".join(problems))
        return self
