"""The host's imports: the read-only `cache` (exactly what the plugin declared) and `log` (the
host's log, tagged with the plugin's name). Inside a component they call the host; outside one
(unit tests) they call whatever `set_host` installed (see `wasmop_sdk.testing.FakeHost`), and
fail clearly when nothing was."""

from __future__ import annotations

import json
from typing import List, Optional, Protocol

from .objects import Gvk, Object, as_object


class Host(Protocol):
    def get(self, kind: Gvk, namespace: Optional[str], name: str) -> Optional[str]: ...

    def list(self, kind: Gvk, namespace: Optional[str], label_selector: Optional[str]) -> List[str]: ...

    def log(self, level: str, message: str) -> None: ...


class _NoHost:
    def _fail(self, what: str):
        raise RuntimeError(
            f"{what} needs the wasmop host: inside a component it is there; in a unit test, install "
            "one with wasmop_sdk.testing.FakeHost"
        )

    def get(self, kind, namespace, name):
        self._fail("cache.get")

    def list(self, kind, namespace, label_selector):
        self._fail("cache.list")

    def log(self, level, message):
        # Logging outside a host is not worth failing a test over.
        pass


_host: Host = _NoHost()


def set_host(host: Host) -> Host:
    """Installs the host the imports call; returns the previous one."""
    global _host
    previous, _host = _host, host
    return previous


class cache:
    """Read-only access to the host's cache, limited to what the plugin declared."""

    @staticmethod
    def get(kind: Gvk, namespace: Optional[str], name: str) -> Optional[Object]:
        """One object, or `None` when it is not in the cache (or not declared)."""
        text = _host.get(kind, namespace, name)
        return None if text is None else as_object(json.loads(text))

    @staticmethod
    def list(kind: Gvk, namespace: Optional[str] = None, label_selector: Optional[str] = None) -> List[Object]:
        """Objects of a kind, optionally in one namespace and matching a label selector."""
        return [as_object(json.loads(t)) for t in _host.list(kind, namespace, label_selector)]


class log:
    """The host's log, tagged with the plugin's name."""

    @staticmethod
    def trace(message: str) -> None:
        _host.log("trace", message)

    @staticmethod
    def debug(message: str) -> None:
        _host.log("debug", message)

    @staticmethod
    def info(message: str) -> None:
        _host.log("info", message)

    @staticmethod
    def warn(message: str) -> None:
        _host.log("warn", message)

    @staticmethod
    def error(message: str) -> None:
        _host.log("error", message)
