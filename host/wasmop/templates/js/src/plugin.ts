/**
 * {{name}}: a wasmop plugin. Every new or changed ConfigMap gets a `Greeted` event naming how many
 * keys it holds.
 *
 * Build: `wasmop build` (a component of the `wasmop:reconciler@0.2.0` world, `{{name}}.wasm`).
 * Test: `npm test` runs every fixture in `tests/` through `wasmop test` and compares what it prints
 * with `<case>.expected.yaml` (`wasmop test {{name}}.wasm --snapshot tests/greet.snapshot.yaml`
 * prints one answer).
 */

import { type ConfigMap, Desired, Event, Metadata, type Plugin, exportPlugin, kinds } from "@wasmop/sdk";

const greeter: Plugin<ConfigMap> = {
  metadata: () => new Metadata("{{name}}", "0.1.0", kinds.ConfigMap),

  reconcile(s) {
    const cm = s.object;
    const keys = Object.keys(cm.data ?? {}).length;
    // Only a change is news; resyncs and deletions are not greeted.
    if (s.reason !== "change") return new Desired();
    return new Desired().event(Event.normal("Greeted", `Hello, ${s.name}! You hold ${keys} keys.`));
  },
};

// The component's exports, found by name by componentize-js.
export const { metadata, reconcile, map } = exportPlugin(greeter);
