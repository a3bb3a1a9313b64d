"""{{name}}: a wasmop plugin. Every new or changed ConfigMap gets a `Greeted` event naming how
many keys it holds.

Build: `wasmop build` (a component of the `wasmop:reconciler@0.2.0` world, made by componentize-py).
Test: `wasmop test {{name}}.wasm --snapshot tests/greet.snapshot.yaml` prints what
`tests/greet.expected.yaml` holds.
"""

from wasmop_sdk import Desired, Event, Metadata, Plugin, Reason, Snapshot, kinds


class Greeter(Plugin):
    """Greets every new or changed ConfigMap."""

    def metadata(self) -> Metadata:
        return Metadata(name="{{name}}", version="0.1.0", primary=kinds.CONFIG_MAP)

    def reconcile(self, snapshot: Snapshot) -> Desired:
        keys = len(snapshot.object.get("data") or {})
        # Only a change is news; resyncs and deletions are not greeted.
        if snapshot.reason != Reason.CHANGE:
            return Desired()
        greeting = f"Hello, {snapshot.name}! You hold {keys} keys."
        return Desired().event(Event.normal("Greeted", greeting))
