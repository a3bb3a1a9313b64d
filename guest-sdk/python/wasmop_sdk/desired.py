"""The answer of a successful reconcile, built step by step: `Desired().apply(child)
.event(Event.normal(...)).finalizer()`. The host makes it true: it server-side applies the
children (with an owner reference) and prunes those no longer listed, writes patches, the status
and deletions, records events, requeues and adds or removes the plugin's finalizer."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, List, Optional, Union

from .objects import Gvk, ObjectRef
from .snapshot import Condition


class EventType(Enum):
    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass
class Event:
    """A Kubernetes Event: an UpperCamelCase `reason` and a message; `regarding=None` is the
    primary object."""

    event_type: EventType
    reason: str
    message: str
    regarding: Optional[ObjectRef] = None

    @staticmethod
    def normal(reason: str, message: str, regarding: Optional[ObjectRef] = None) -> "Event":
        return Event(EventType.NORMAL, reason, message, regarding)

    @staticmethod
    def warning(reason: str, message: str, regarding: Optional[ObjectRef] = None) -> "Event":
        return Event(EventType.WARNING, reason, message, regarding)


class PatchType(Enum):
    MERGE = "merge"
    """RFC 7386 JSON merge patch."""
    JSON = "json"
    """RFC 6902 JSON patch."""


@dataclass
class Patch:
    """A patch to an object the plugin does not own (it needs `patch` permission on the kind)."""

    target: ObjectRef
    patch_type: PatchType
    body: Any


@dataclass
class Desired:
    """The state the host makes true. Every builder method returns the same `Desired`."""

    applies: List[dict] = field(default_factory=list)
    patches: List[Patch] = field(default_factory=list)
    new_status: Optional[dict] = None
    deletions: List[ObjectRef] = field(default_factory=list)
    events: List[Event] = field(default_factory=list)
    requeue_after_seconds: Optional[int] = None
    wants_finalizer: bool = False
    errors: List[str] = field(default_factory=list)

    def apply(self, obj: dict, kind: Optional[Gvk] = None) -> "Desired":
        """Adds a child (full intent: fields left out are removed if this plugin set them
        before). With `kind`, its `apiVersion` and `kind` are set from it. Set `metadata.name`;
        the namespace defaults to the primary object's."""
        if not isinstance(obj, dict):
            self.errors.append(f"apply: a {type(obj).__name__} is not a JSON object")
            return self
        obj = dict(obj)
        if kind is not None:
            obj["apiVersion"] = kind.api_version
            obj["kind"] = kind.kind
        self.applies.append(obj)
        return self

    def apply_all(self, objects, kind: Optional[Gvk] = None) -> "Desired":
        for obj in objects:
            self.apply(obj, kind)
        return self

    def merge_patch(self, target: ObjectRef, body: dict) -> "Desired":
        self.patches.append(Patch(target, PatchType.MERGE, body))
        return self

    def json_patch(self, target: ObjectRef, operations: list) -> "Desired":
        self.patches.append(Patch(target, PatchType.JSON, operations))
        return self

    def status(self, status: dict) -> "Desired":
        """The primary object's new `status` (written through the status subresource)."""
        self.new_status = status
        return self

    def conditions(self, conditions: List[Union[Condition, dict]]) -> "Desired":
        """Sets `status.conditions` (keeping the rest of the status given so far)."""
        status = dict(self.new_status or {})
        status["conditions"] = [c.to_json() if isinstance(c, Condition) else c for c in conditions]
        self.new_status = status
        return self

    def delete(self, target: ObjectRef) -> "Desired":
        """Deletes an object (a child, or a kind with `delete` permission)."""
        self.deletions.append(target)
        return self

    def event(self, event: Event) -> "Desired":
        self.events.append(event)
        return self

    def requeue_after(self, seconds: int) -> "Desired":
        """Reconcile this object again after this many seconds."""
        self.requeue_after_seconds = int(seconds)
        return self

    def finalizer(self, hold: bool = True) -> "Desired":
        """Whether this object should carry the plugin's finalizer: holding it makes the object's
        deletion wait for a `deletion` reconcile; an answer without it releases the finalizer."""
        self.wants_finalizer = hold
        return self

    def problems(self) -> List[str]:
        """What makes this answer unusable (the host would refuse it), in words."""
        out = list(self.errors)
        for i, obj in enumerate(self.applies):
            meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            for value, name in [
                (obj.get("apiVersion"), "apiVersion"),
                (obj.get("kind"), "kind"),
                (meta.get("name"), "metadata.name"),
            ]:
                if not isinstance(value, str) or not value:
                    out.append(f"apply[{i}]: {name} is missing")
        if self.requeue_after_seconds is not None and self.requeue_after_seconds < 0:
            out.append("requeue_after_seconds cannot be negative")
        return out
