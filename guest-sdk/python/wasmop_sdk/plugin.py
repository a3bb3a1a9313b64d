"""`Plugin`, the class a plugin subclasses, and how its answers are checked: `run_reconcile` and
`run_map` are what the component's exports (and `wasmop_sdk.testing`) call. An answer the host
could not use becomes a permanent error; an unexpected exception a retry, with its type."""

from __future__ import annotations

from typing import List

from .desired import Desired
from .errors import PermanentError, ReconcileError, RetryError
from .metadata import Metadata
from .objects import ObjectKey
from .snapshot import Snapshot, Trigger


class Plugin:
    """A reconciler: subclass it, implement `metadata` and `reconcile` (and `map` when a lookup
    triggers), and name the class in `pyproject.toml` under `[tool.wasmop] plugin =
    "module:Class"`. One instance is made when the component is built (its state is in the
    pre-initialised snapshot), and every reconcile runs in a fresh copy of it: keep no state
    between calls."""

    def metadata(self) -> Metadata:
        raise NotImplementedError("a plugin declares its metadata")

    def reconcile(self, snapshot: Snapshot) -> Desired:
        raise NotImplementedError("a plugin reconciles")

    def map(self, trigger: Trigger) -> List[ObjectKey]:
        """Which primary objects a change to an object of a triggering lookup concerns. Plugins
        without triggering lookups need not implement it."""
        return []


def _unexpected(e: Exception) -> RetryError:
    return RetryError(f"{type(e).__name__}: {e}")


def run_reconcile(plugin: Plugin, snapshot: Snapshot) -> Desired:
    """One reconcile: the plugin's answer, checked; raises a `ReconcileError` otherwise."""
    try:
        desired = plugin.reconcile(snapshot)
    except ReconcileError:
        raise
    except Exception as e:  # noqa: BLE001 - any bug in a plugin is a failed reconcile
        raise _unexpected(e) from e
    if not isinstance(desired, Desired):
        raise PermanentError(f"reconcile answered a {type(desired).__name__}, not a Desired")
    problems = desired.problems()
    if problems:
        raise PermanentError("invalid desired state: " + "; ".join(problems))
    return desired


def run_map(plugin: Plugin, trigger: Trigger) -> List[ObjectKey]:
    """One `map` call: the keys, checked; raises a `ReconcileError` otherwise."""
    try:
        keys = list(plugin.map(trigger))
    except ReconcileError:
        raise
    except Exception as e:  # noqa: BLE001
        raise _unexpected(e) from e
    for key in keys:
        if not isinstance(key, ObjectKey):
            raise PermanentError(f"map answered a {type(key).__name__}, not an ObjectKey")
    return keys
