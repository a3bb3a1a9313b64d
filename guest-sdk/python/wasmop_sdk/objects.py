"""Kinds and objects: `Gvk` names a Kubernetes kind, `Object` is a JSON object (a `dict`) with
read helpers for the fields every object has, and `kinds` holds the built-in kinds plugins use
most. Objects cross the plugin boundary as JSON in the API server's form, so a plain `dict`
(what `json.loads` gives) is the natural type; `Object` only adds accessors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class Gvk:
    """A Kubernetes kind. `group` is empty for the core group (`Gvk("", "v1", "ConfigMap")`)."""

    group: str
    version: str
    kind: str

    @staticmethod
    def of(api_version: str, kind: str) -> "Gvk":
        """From an `apiVersion` (`apps/v1`, `v1`) and a kind."""
        group, _, version = api_version.rpartition("/")
        return Gvk(group, version, kind)

    @property
    def api_version(self) -> str:
        """`group/version`, or `version` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def matches(self, obj: dict) -> bool:
        """Whether a JSON object is of this kind (by `apiVersion` and `kind`)."""
        return obj.get("apiVersion") == self.api_version and obj.get("kind") == self.kind

    def __str__(self) -> str:
        return f"{self.api_version}/{self.kind}" if self.group else f"{self.version}/{self.kind}"


class kinds:
    """Built-in kinds, as `Gvk`s."""

    CONFIG_MAP = Gvk("", "v1", "ConfigMap")
    SECRET = Gvk("", "v1", "Secret")
    SERVICE = Gvk("", "v1", "Service")
    NAMESPACE = Gvk("", "v1", "Namespace")
    POD = Gvk("", "v1", "Pod")
    SERVICE_ACCOUNT = Gvk("", "v1", "ServiceAccount")
    PERSISTENT_VOLUME_CLAIM = Gvk("", "v1", "PersistentVolumeClaim")
    DEPLOYMENT = Gvk("apps", "v1", "Deployment")
    STATEFUL_SET = Gvk("apps", "v1", "StatefulSet")
    DAEMON_SET = Gvk("apps", "v1", "DaemonSet")
    JOB = Gvk("batch", "v1", "Job")
    CRON_JOB = Gvk("batch", "v1", "CronJob")
    POD_DISRUPTION_BUDGET = Gvk("policy", "v1", "PodDisruptionBudget")
    INGRESS = Gvk("networking.k8s.io", "v1", "Ingress")
    NETWORK_POLICY = Gvk("networking.k8s.io", "v1", "NetworkPolicy")
    ROLE = Gvk("rbac.authorization.k8s.io", "v1", "Role")
    ROLE_BINDING = Gvk("rbac.authorization.k8s.io", "v1", "RoleBinding")


_MISSING = object()


class Object(dict):
    """A Kubernetes object as JSON: a `dict`, with accessors for the common fields. Absent fields
    read as `None` (or empty mappings), never as errors."""

    @property
    def api_version(self) -> str:
        return self.get("apiVersion") or ""

    @property
    def kind(self) -> str:
        return self.get("kind") or ""

    @property
    def gvk(self) -> Gvk:
        return Gvk.of(self.api_version, self.kind)

    @property
    def metadata(self) -> dict:
        return self.get("metadata") or {}

    @property
    def name(self) -> str:
        return self.metadata.get("name") or ""

    @property
    def namespace(self) -> Optional[str]:
        return self.metadata.get("namespace") or None

    @property
    def uid(self) -> Optional[str]:
        return self.metadata.get("uid")

    @property
    def generation(self) -> Optional[int]:
        return self.metadata.get("generation")

    @property
    def labels(self) -> dict:
        return self.metadata.get("labels") or {}

    @property
    def annotations(self) -> dict:
        return self.metadata.get("annotations") or {}

    @property
    def deletion_timestamp(self) -> Optional[str]:
        return self.metadata.get("deletionTimestamp")

    @property
    def spec(self) -> dict:
        return self.get("spec") or {}

    @property
    def status(self) -> dict:
        return self.get("status") or {}

    def at(self, *path: Any, default: Any = None) -> Any:
        """The value at a path of keys (and list indexes), or `default` where it stops:
        `obj.at("spec", "replicas", default=1)`."""
        value: Any = self
        for step in path:
            try:
                value = value[step]
            except (KeyError, IndexError, TypeError):
                return default
            if value is None:
                return default
        return value


def as_object(value: Any) -> Object:
    """Wraps a JSON object (a `dict`) as an `Object`; anything else is refused."""
    if isinstance(value, Object):
        return value
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return Object(value)


@dataclass(frozen=True)
class ObjectRef:
    """Points at one object. `namespace` is `None` for cluster-scoped objects."""

    kind: Gvk
    namespace: Optional[str]
    name: str

    @staticmethod
    def to(obj: dict) -> "ObjectRef":
        """Points at a JSON object (by its `apiVersion`, `kind` and metadata)."""
        o = as_object(obj)
        return ObjectRef(o.gvk, o.namespace, o.name)


@dataclass(frozen=True)
class ObjectKey:
    """A primary object to reconcile, as `map` names it. `namespace` is `None` for a
    cluster-scoped primary kind."""

    namespace: Optional[str]
    name: str
