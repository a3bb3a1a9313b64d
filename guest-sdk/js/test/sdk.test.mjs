// The SDK under node, through its exports in the contract's form (what componentize-js binds),
// with the stand-in host of fake-host.mjs.
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { host } from "./fake-host.mjs";
import {
  Desired,
  Event,
  Lookup,
  Metadata,
  ReconcileError,
  Snapshot,
  cache,
  carryOver,
  condition,
  exportPlugin,
  gvk,
  kinds,
  log,
  objectKey,
  objectRef,
  permanent,
  refOf,
  retry,
} from "../dist/index.js";

const widget = gvk("example.com/v1", "Widget");

function witSnapshot(object, fields = {}) {
  return {
    object: JSON.stringify(object),
    children: (fields.children ?? []).map((c) => JSON.stringify(c)),
    lookups: fields.lookups ?? [],
    reason: fields.reason ?? "change",
    attempt: fields.attempt ?? 1,
    config: fields.config ?? "{}",
  };
}

const w = {
  apiVersion: "example.com/v1",
  kind: "Widget",
  metadata: { name: "w", namespace: "demo", generation: 3, labels: { app: "w" }, annotations: { note: "x" } },
  status: {
    conditions: [
      { type: "Ready", status: "False", reason: "Waiting", message: "", lastTransitionTime: "2026-01-01T00:00:00Z" },
      { type: "Synced", status: "True", lastTransitionTime: "2026-01-02T00:00:00Z" },
      { type: 7 },
    ],
  },
};

beforeEach(() => {
  host.objects.length = 0;
  host.logs.length = 0;
});

test("metadata is declared in the contract's form", () => {
  const exports = exportPlugin({
    metadata: () =>
      new Metadata("widgets", "1.2.3", widget)
        .owns(kinds.ConfigMap)
        .lookup(new Lookup(kinds.Namespace).triggers())
        .lookup(new Lookup(kinds.Secret).inNamespace("prod").selector("team=a"))
        .writes(kinds.Service, ["patch", "delete"])
        .finalizer("example.com/cleanup")
        .namespaces(["demo"])
        .resyncSeconds(60)
        .maxConcurrentReconciles(2)
        .crd("kind: CustomResourceDefinition"),
    reconcile: () => new Desired(),
  });
  assert.deepEqual(exports.metadata(), {
    name: "widgets",
    version: "1.2.3",
    primary: { group: "example.com", version: "v1", kind: "Widget" },
    owns: [{ group: "", version: "v1", kind: "ConfigMap" }],
    lookups: [
      { kind: { group: "", version: "v1", kind: "Namespace" }, namespace: undefined, labelSelector: undefined, triggers: true },
      { kind: { group: "", version: "v1", kind: "Secret" }, namespace: "prod", labelSelector: "team=a", triggers: false },
    ],
    writes: [{ kind: { group: "", version: "v1", kind: "Service" }, verbs: ["patch", "delete"] }],
    finalizer: "example.com/cleanup",
    namespaces: { tag: "only", val: ["demo"] },
    resyncSeconds: 60,
    maxConcurrentReconciles: 2,
    crds: ["kind: CustomResourceDefinition"],
  });
  const plain = exportPlugin({ metadata: () => new Metadata("p", "0.1.0", kinds.Deployment), reconcile: () => new Desired() });
  assert.deepEqual(plain.metadata().namespaces, { tag: "all" });
  assert.equal(plain.metadata().finalizer, undefined);
});

test("invalid metadata is refused when the plugin is exported", () => {
  assert.throws(
    () => exportPlugin({ metadata: () => new Metadata("Not_A_Label", "", gvk("v1", "")), reconcile: () => new Desired() }),
    /DNS label.*version must not be empty.*needs a version and a kind/,
  );
});

test("a reconcile's answer is written in the contract's form", () => {
  const cm = objectRef(kinds.ConfigMap, "demo", "other");
  const { reconcile } = exportPlugin({
    metadata: () => new Metadata("widgets", "0.1.0", widget),
    reconcile: (s) =>
      new Desired()
        .apply({ metadata: s.childMeta(`${s.name}-config`), data: { a: "1" } }, kinds.ConfigMap)
        .apply({ apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "other" } })
        .mergePatch(cm, { data: { b: "2" } })
        .jsonPatch(cm, [{ op: "remove", path: "/data/b" }])
        .status({ phase: "Ready", observedGeneration: s.generation })
        .delete(objectRef(kinds.Namespace, undefined, "old"))
        .event(Event.normal("Configured", "done"))
        .event(Event.warning("Odd", "look", cm))
        .requeueAfterSeconds(30)
        .finalizer(),
  });
  const d = reconcile(witSnapshot(w));
  assert.deepEqual(JSON.parse(d.apply[0]), {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "w-config", namespace: "demo" },
    data: { a: "1" },
  });
  assert.equal(JSON.parse(d.apply[1]).kind, "Secret");
  const witCm = { kind: { group: "", version: "v1", kind: "ConfigMap" }, namespace: "demo", name: "other" };
  assert.deepEqual(d.patches, [
    { target: witCm, patchType: "merge", body: '{"data":{"b":"2"}}' },
    { target: witCm, patchType: "json", body: '[{"op":"remove","path":"/data/b"}]' },
  ]);
  assert.deepEqual(JSON.parse(d.status), { phase: "Ready", observedGeneration: 3 });
  assert.deepEqual(d.deletions, [{ kind: { group: "", version: "v1", kind: "Namespace" }, namespace: undefined, name: "old" }]);
  assert.deepEqual(d.events, [
    { eventType: "normal", reason: "Configured", message: "done", regarding: undefined },
    { eventType: "warning", reason: "Odd", message: "look", regarding: witCm },
  ]);
  assert.equal(d.requeueAfterSeconds, 30);
  assert.equal(d.finalizer, true);

});

test("nothing to do is an empty answer without the finalizer", () => {
  const { reconcile } = exportPlugin({ metadata: () => new Metadata("n", "0.1.0", widget), reconcile: () => new Desired() });
  assert.deepEqual(reconcile(witSnapshot(w)), {
    apply: [],
    patches: [],
    status: undefined,
    deletions: [],
    events: [],
    requeueAfterSeconds: undefined,
    finalizer: false,
  });
});

/** The `err` payload componentize-js would return for what `call` throws. */
function payload(call) {
  try {
    call();
  } catch (e) {
    return e.payload;
  }
  assert.fail("expected the call to throw");
}

test("errors are retry or permanent; anything else thrown is a logged retry", () => {
  const plugin = (body) => exportPlugin({ metadata: () => new Metadata("e", "0.1.0", widget), reconcile: body });
  assert.deepEqual(payload(() => plugin(() => { throw retry("backend not ready"); }).reconcile(witSnapshot(w))), {
    tag: "retry",
    val: "backend not ready",
  });
  assert.deepEqual(payload(() => plugin(() => { throw permanent("bad spec").context("w"); }).reconcile(witSnapshot(w))), {
    tag: "permanent",
    val: "w: bad spec",
  });
  const boom = payload(() => plugin((s) => s.object.spec.missing.field).reconcile(witSnapshot(w)));
  assert.equal(boom.tag, "retry");
  assert.match(boom.val, /^TypeError: /);
  assert.equal(host.logs.length, 1);
  assert.equal(host.logs[0].level, "error");
  assert.match(host.logs[0].message, /^reconcile: .*\n.*at /s);

  // An answer the host would refuse is a permanent error before it leaves the plugin.
  const unnamed = payload(() => plugin(() => new Desired().apply({ metadata: {} }, kinds.ConfigMap)).reconcile(witSnapshot(w)));
  assert.deepEqual(unnamed, { tag: "permanent", val: "the desired state is unusable: apply[0]: metadata.name is missing" });
  const notJson = payload(() => plugin(() => new Desired().status({ n: 1n })).reconcile(witSnapshot(w)));
  assert.equal(notJson.tag, "permanent");
  assert.match(notJson.val, /not JSON/);
  const notDesired = payload(() => plugin(() => ({ apply: [] })).reconcile(witSnapshot(w)));
  assert.equal(notDesired.tag, "permanent");
  assert.ok(new ReconcileError("retry", "x").isRetry);
});

test("a reconcile may be async", async () => {
  const { reconcile } = exportPlugin({
    metadata: () => new Metadata("a", "0.1.0", widget),
    reconcile: async (s) => new Desired().status({ name: s.name }),
  });
  assert.deepEqual(JSON.parse((await reconcile(witSnapshot(w))).status), { name: "w" });
  const failing = exportPlugin({
    metadata: () => new Metadata("a", "0.1.0", widget),
    reconcile: async () => {
      throw permanent("later");
    },
  });
  await assert.rejects(failing.reconcile(witSnapshot(w)), (e) => e.payload.tag === "permanent" && e.payload.val === "later");
});

test("the snapshot gives the object, children, lookups, config and conditions", () => {
  const pdb = { apiVersion: "policy/v1", kind: "PodDisruptionBudget", metadata: { name: "w", namespace: "demo" } };
  const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "w", namespace: "elsewhere" } };
  const ns = (name) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
  let seen;
  const { reconcile } = exportPlugin({
    metadata: () => new Metadata("s", "0.1.0", widget),
    reconcile: (s) => {
      seen = s;
      return new Desired();
    },
  });
  reconcile(
    witSnapshot(w, {
      children: [pdb, cm],
      lookups: [
        { lookup: { kind: { group: "", version: "v1", kind: "Namespace" }, triggers: true }, objects: [JSON.stringify(ns("a"))] },
        { lookup: { kind: { group: "", version: "v1", kind: "Secret" }, namespace: "prod", triggers: false }, objects: [] },
        { lookup: { kind: { group: "", version: "v1", kind: "Namespace" }, labelSelector: "x=y", triggers: false }, objects: [JSON.stringify(ns("b"))] },
      ],
      reason: "child-change",
      attempt: 2,
      config: '{"greeting":"hi"}',
    }),
  );
  const s = seen;
  assert.ok(s instanceof Snapshot);
  assert.equal(s.reason, "child-change");
  assert.equal(s.attempt, 2);
  assert.deepEqual([s.name, s.namespace, s.generation], ["w", "demo", 3]);
  assert.equal(s.label("app"), "w");
  assert.equal(s.annotation("note"), "x");
  assert.equal(s.annotation("absent"), undefined);
  assert.equal(s.isDeleting, false);
  assert.deepEqual(s.child(kinds.PodDisruptionBudget, "w"), pdb);
  assert.equal(s.child(kinds.PodDisruptionBudget, "other"), undefined);
  assert.deepEqual(s.childrenOf(kinds.ConfigMap), [cm]);
  assert.deepEqual(s.lookup(kinds.Namespace).map((n) => n.metadata.name), ["a", "b"]);
  assert.equal(s.lookups[1].lookup.namespace, "prod");
  assert.ok(s.lookups[0].lookup.triggering);
  assert.deepEqual(s.config, { greeting: "hi" });
  assert.deepEqual(
    s.conditions().map((c) => [c.type, c.status, c.reason]),
    [
      ["Ready", "False", "Waiting"],
      ["Synced", "True", ""],
    ],
  );
  // Ready changed status: no time (the host stamps it); Synced kept it: its time is carried over.
  const next = s.updateConditions([
    condition("Ready", true, { reason: "Done", observedGeneration: s.generation }),
    condition("Synced", "True"),
  ]);
  assert.deepEqual(next, [
    { type: "Ready", status: "True", reason: "Done", message: "", observedGeneration: 3 },
    { type: "Synced", status: "True", reason: "", message: "", lastTransitionTime: "2026-01-02T00:00:00Z" },
  ]);
  assert.deepEqual(carryOver([], [{ ...condition("X", false), lastTransitionTime: "t" }])[0].lastTransitionTime, "t");

  const deleting = new Snapshot({ ...w, metadata: { ...w.metadata, deletionTimestamp: "2026-01-01T00:00:00Z" } });
  assert.equal(deleting.isDeleting, true);
  assert.equal(new Snapshot(w, { reason: "deletion" }).isDeleting, true);
  assert.deepEqual(new Snapshot({ kind: "Namespace", metadata: { name: "n" } }).childMeta("c"), { name: "c" });
});

test("an object that is not JSON is a permanent error", () => {
  const { reconcile } = exportPlugin({ metadata: () => new Metadata("j", "0.1.0", widget), reconcile: () => new Desired() });
  const p = payload(() => reconcile({ ...witSnapshot(w), object: "{not json" }));
  assert.equal(p.tag, "permanent");
  assert.match(p.val, /cannot read the object/);
});

test("map reads the cache and names primary objects", () => {
  host.objects.push(
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", namespace: "demo", labels: { team: "x" } } },
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "b", namespace: "prod" } },
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "demo" } },
  );
  assert.equal(cache.get(kinds.ConfigMap, "demo", "a").metadata.labels.team, "x");
  assert.equal(cache.get(kinds.ConfigMap, "demo", "b"), undefined);
  assert.deepEqual(cache.list(kinds.ConfigMap).map((o) => o.metadata.name), ["a", "b"]);
  assert.deepEqual(cache.list(kinds.ConfigMap, { namespace: "prod" }).map((o) => o.metadata.name), ["b"]);
  assert.deepEqual(cache.list(kinds.ConfigMap, { labelSelector: "team=x" }).map((o) => o.metadata.name), ["a"]);

  const { map } = exportPlugin({
    metadata: () => new Metadata("m", "0.1.0", kinds.ConfigMap).lookup(new Lookup(kinds.Namespace).triggers()),
    reconcile: () => new Desired(),
    map: (t) => {
      log.info("namespace", t.name, { deleted: t.deleted });
      return cache
        .list(kinds.ConfigMap)
        .filter((cm) => cm.metadata.namespace === t.name)
        .map((cm) => objectKey(cm.metadata.namespace, cm.metadata.name));
    },
  });
  const trigger = { lookup: 0, object: JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: "demo" } }), deleted: true };
  assert.deepEqual(map(trigger), [{ namespace: "demo", name: "a" }]);
  assert.deepEqual(host.logs, [{ level: "info", message: 'namespace demo {"deleted":true}' }]);
  const cluster = exportPlugin({ metadata: () => new Metadata("c", "0.1.0", kinds.Namespace), reconcile: () => new Desired(), map: () => [objectKey(undefined, "n")] });
  assert.deepEqual(cluster.map(trigger), [{ namespace: undefined, name: "n" }]);
  const none = exportPlugin({ metadata: () => new Metadata("c", "0.1.0", kinds.Namespace), reconcile: () => new Desired() });
  assert.deepEqual(none.map(trigger), []);
  assert.deepEqual(payload(() => exportPlugin({ metadata: () => new Metadata("c", "0.1.0", kinds.Namespace), reconcile: () => new Desired(), map: () => { throw retry("cache cold"); } }).map(trigger)), { tag: "retry", val: "cache cold" });
});

test("references come from objects", () => {
  assert.deepEqual(refOf({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "demo" } }), {
    kind: kinds.Deployment,
    namespace: "demo",
    name: "web",
  });
  assert.equal(refOf({ kind: "Deployment", metadata: { name: "web" } }), undefined);
  assert.deepEqual(gvk("v1", "Pod"), { group: "", version: "v1", kind: "Pod" });
});
