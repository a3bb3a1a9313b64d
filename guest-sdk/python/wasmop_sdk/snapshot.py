"""What a reconcile gets (`Snapshot`: the object, its children, the lookups' results, why it runs,
the attempt and the plugin's configuration), what `map` gets (`Trigger`), and status conditions
(`Condition`, kept without a clock: `lastTransitionTime` is carried over from the current status
when a condition keeps its status)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, Iterable, List, Optional

from .metadata import Lookup
from .objects import Gvk, Object, as_object


class Reason(Enum):
    """Why a reconcile runs."""

    CHANGE = "change"
    """The primary object was created or changed."""
    CHILD_CHANGE = "child-change"
    """One of its children changed or was deleted."""
    RESYNC = "resync"
    """The periodic resync."""
    RETRY = "retry"
    """A retry after an error or a failed write, or a requested requeue."""
    DELETION = "deletion"
    """The object is being deleted and carries the plugin's finalizer."""
    TRIGGER = "trigger"
    """An object of a triggering lookup changed and `map` named this object."""


@dataclass
class Condition:
    """One entry of `status.conditions`. `status` is `"True"`, `"False"` or `"Unknown"` (a `bool`
    is turned into the first two)."""

    type: str
    status: Any
    reason: str = ""
    message: str = ""
    observed_generation: Optional[int] = None
    last_transition_time: Optional[str] = None

    def __post_init__(self) -> None:
        if isinstance(self.status, bool):
            self.status = "True" if self.status else "False"
        if self.status not in ("True", "False", "Unknown"):
            raise ValueError(f"condition status {self.status!r}: True, False or Unknown")

    def is_true(self) -> bool:
        return self.status == "True"

    def to_json(self) -> dict:
        out = {"type": self.type, "status": self.status, "reason": self.reason, "message": self.message}
        if self.observed_generation is not None:
            out["observedGeneration"] = self.observed_generation
        if self.last_transition_time is not None:
            out["lastTransitionTime"] = self.last_transition_time
        return out

    @staticmethod
    def from_json(value: Any) -> Optional["Condition"]:
        """A condition from its JSON form; `None` when it does not parse."""
        try:
            return Condition(
                type=value["type"],
                status=value["status"],
                reason=value.get("reason") or "",
                message=value.get("message") or "",
                observed_generation=value.get("observedGeneration"),
                last_transition_time=value.get("lastTransitionTime"),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    @staticmethod
    def carry_over(previous: Iterable["Condition"], new: Iterable["Condition"]) -> List["Condition"]:
        """`new`, with `lastTransitionTime` taken from the previous condition of the same type
        and status where it has none (a plugin has no clock; the time a condition last changed is
        kept as long as it does not)."""
        previous = list(previous)
        out = []
        for c in new:
            if c.last_transition_time is None:
                for p in previous:
                    if p.type == c.type and p.status == c.status:
                        c.last_transition_time = p.last_transition_time
                        break
            out.append(c)
        return out


@dataclass
class LookupResult:
    """The results of one declared lookup."""

    lookup: Lookup
    objects: List[Object] = field(default_factory=list)


def _of_kind(objects: Iterable[Object], kind: Optional[Gvk]) -> List[Object]:
    return [o for o in objects if kind is None or kind.matches(o)]


@dataclass
class Snapshot:
    """Everything one reconcile gets. `object`, `children` and lookup results are `Object`s
    (dicts); `config` is the plugin's configuration (`{}` when none is given)."""

    object: Object
    children: List[Object] = field(default_factory=list)
    lookups: List[LookupResult] = field(default_factory=list)
    reason: Reason = Reason.CHANGE
    attempt: int = 1
    config: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.object = as_object(self.object)
        self.children = [as_object(c) for c in self.children]
        for result in self.lookups:
            result.objects = [as_object(o) for o in result.objects]

    # The primary object.
    @property
    def name(self) -> str:
        return self.object.name

    @property
    def namespace(self) -> Optional[str]:
        return self.object.namespace

    @property
    def uid(self) -> Optional[str]:
        return self.object.uid

    @property
    def generation(self) -> Optional[int]:
        """What `status.observedGeneration` should report."""
        return self.object.generation

    def label(self, key: str) -> Optional[str]:
        return self.object.labels.get(key)

    def annotation(self, key: str) -> Optional[str]:
        return self.object.annotations.get(key)

    def is_deleting(self) -> bool:
        """Reason `DELETION`, or a `deletionTimestamp` is set. A plugin holding its finalizer
        cleans up, then answers without `Desired.finalizer()` to release it."""
        return self.reason == Reason.DELETION or bool(self.object.deletion_timestamp)

    def child_meta(self, name: str) -> dict:
        """Metadata for a child: this name, in the primary object's namespace. (The host adds the
        owner reference and its tracking labels.)"""
        meta = {"name": name}
        if self.namespace:
            meta["namespace"] = self.namespace
        return meta

    # Children and lookups.
    def children_of(self, kind: Gvk) -> List[Object]:
        """The children of a kind (those this object owns, as found by the host)."""
        return _of_kind(self.children, kind)

    def child(self, kind: Gvk, name: str) -> Optional[Object]:
        """The child of a kind with this name (in any namespace), if there is one."""
        return next((c for c in self.children_of(kind) if c.name == name), None)

    def lookup(self, kind: Gvk) -> List[Object]:
        """The objects of a kind from every declared lookup of that kind."""
        return [o for r in self.lookups if r.lookup.kind == kind for o in _of_kind(r.objects, kind)]

    # Status conditions.
    def conditions(self) -> List[Condition]:
        """The current `status.conditions` (entries that do not parse are skipped)."""
        raw = self.object.status.get("conditions") or []
        return [c for c in (Condition.from_json(v) for v in raw) if c is not None]

    def update_conditions(self, new: Iterable[Condition]) -> List[Condition]:
        """The new full set of conditions, with `lastTransitionTime` carried over from the
        current status where a condition kept its status."""
        return Condition.carry_over(self.conditions(), new)


@dataclass
class Trigger:
    """A change to an object of a triggering lookup, handed to `map`: the index of the lookup in
    `Metadata.lookups`, the object (its last known state if it was deleted), whether it was
    deleted."""

    lookup: int
    object: Object
    deleted: bool = False

    def __post_init__(self) -> None:
        self.object = as_object(self.object)

    @property
    def name(self) -> str:
        return self.object.name

    @property
    def namespace(self) -> Optional[str]:
        return self.object.namespace
