"""wasmop_sdk: write wasmop reconcilers (Kubernetes controllers as WebAssembly components) in
Python. A plugin is a `Plugin` subclass: `metadata()` declares what it reconciles, owns and looks
up; `reconcile(snapshot)` answers with the `Desired` state (or raises `RetryError` /
`PermanentError`); `map(trigger)` names the objects a triggering lookup's change concerns.
`wasmop build` turns it into a component of `wasmop:reconciler@0.2.0` with componentize-py."""

from .desired import Desired, Event, EventType, Patch, PatchType
from .errors import PermanentError, ReconcileError, RetryError
from .host import cache, log
from .metadata import Lookup, Metadata, Verb, WritePermission
from .objects import Gvk, Object, ObjectKey, ObjectRef, kinds
from .plugin import Plugin
from .snapshot import Condition, LookupResult, Reason, Snapshot, Trigger

__version__ = "0.2.0"

__all__ = [
    "Condition",
    "Desired",
    "Event",
    "EventType",
    "Gvk",
    "Lookup",
    "LookupResult",
    "Metadata",
    "Object",
    "ObjectKey",
    "ObjectRef",
    "Patch",
    "PatchType",
    "PermanentError",
    "Plugin",
    "Reason",
    "ReconcileError",
    "RetryError",
    "Snapshot",
    "Trigger",
    "Verb",
    "WritePermission",
    "cache",
    "kinds",
    "log",
]
