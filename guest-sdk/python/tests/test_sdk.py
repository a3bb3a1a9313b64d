"""Unit tests of the Python SDK, without building a component: `python3 -m unittest discover -s
guest-sdk/python/tests` (or pytest)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from wasmop_sdk import (  # noqa: E402
    Condition,
    Desired,
    Event,
    Gvk,
    Lookup,
    Metadata,
    ObjectKey,
    ObjectRef,
    PermanentError,
    Plugin,
    Reason,
    RetryError,
    Snapshot,
    cache,
    kinds,
    log,
)
from wasmop_sdk import testing  # noqa: E402
from wasmop_sdk.plugin import run_reconcile  # noqa: E402

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "demo", "uid": "u1", "generation": 4, "labels": {"app": "web"}},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
}
PDB = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web", "namespace": "demo"}}


class KindsAndObjects(unittest.TestCase):
    def test_api_versions_round_trip(self):
        self.assertEqual(Gvk.of("apps/v1", "Deployment"), kinds.DEPLOYMENT)
        self.assertEqual(Gvk.of("v1", "ConfigMap"), Gvk("", "v1", "ConfigMap"))
        self.assertEqual(kinds.CONFIG_MAP.api_version, "v1")
        self.assertEqual(kinds.POD_DISRUPTION_BUDGET.api_version, "policy/v1")
        self.assertTrue(kinds.DEPLOYMENT.matches(DEPLOYMENT))
        self.assertFalse(kinds.STATEFUL_SET.matches(DEPLOYMENT))

    def test_snapshot_reads_the_object_and_its_children(self):
        s = Snapshot(object=DEPLOYMENT, children=[PDB], reason=Reason.RESYNC)
        self.assertEqual((s.name, s.namespace, s.uid, s.generation), ("web", "demo", "u1", 4))
        self.assertEqual(s.label("app"), "web")
        self.assertIsNone(s.annotation("x"))
        self.assertEqual(s.object.at("spec", "replicas"), 3)
        self.assertEqual(s.object.at("spec", "missing", "deep", default=7), 7)
        self.assertEqual(s.child(kinds.POD_DISRUPTION_BUDGET, "web").name, "web")
        self.assertIsNone(s.child(kinds.POD_DISRUPTION_BUDGET, "other"))
        self.assertEqual(s.children_of(kinds.CONFIG_MAP), [])
        self.assertEqual(s.child_meta("x"), {"name": "x", "namespace": "demo"})
        self.assertFalse(s.is_deleting())
        deleting = dict(DEPLOYMENT, metadata=dict(DEPLOYMENT["metadata"], deletionTimestamp="2026-01-01T00:00:00Z"))
        self.assertTrue(Snapshot(object=deleting).is_deleting())
        self.assertTrue(Snapshot(object=DEPLOYMENT, reason=Reason.DELETION).is_deleting())

    def test_lookups_are_found_by_kind(self):
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}
        s = testing.snapshot(
            {
                "object": DEPLOYMENT,
                "lookups": [{"lookup": {"kind": {"group": "", "version": "v1", "kind": "Namespace"}}, "objects": [ns]}],
                "reason": "trigger",
            }
        )
        self.assertEqual(s.reason, Reason.TRIGGER)
        self.assertEqual([o.name for o in s.lookup(kinds.NAMESPACE)], ["a"])
        self.assertEqual(s.lookup(kinds.SECRET), [])


class Metadatas(unittest.TestCase):
    def test_valid_metadata_passes(self):
        m = Metadata("pdb-guard", "0.1.0", kinds.DEPLOYMENT, owns=[kinds.POD_DISRUPTION_BUDGET])
        self.assertIs(m.validate(), m)
        self.assertEqual((m.field_manager, m.finalizer_name), ("wasmop/pdb-guard", "wasmop.io/pdb-guard"))
        self.assertFalse(m.has_triggers())
        self.assertTrue(Metadata("x", "1", kinds.CONFIG_MAP, lookups=[Lookup(kinds.NAMESPACE, triggers=True)]).has_triggers())

    def test_what_the_host_would_refuse_is_reported(self):
        m = Metadata("Bad_Name", "", Gvk("", "", "X"), finalizer="nope", namespaces=[])
        problems = m.problems()
        self.assertEqual(len(problems), 5, problems)
        with self.assertRaises(ValueError):
            m.validate()


class Desireds(unittest.TestCase):
    def test_builders_chain_into_the_form_wasmop_test_prints(self):
        cm = ObjectRef(kinds.CONFIG_MAP, "demo", "x")
        d = (
            Desired()
            .apply({"metadata": {"name": "c"}}, kinds.CONFIG_MAP)
            .merge_patch(cm, {"data": {"a": "b"}})
            .json_patch(cm, [{"op": "remove", "path": "/data/a"}])
            .status({"phase": "Ready"})
            .conditions([Condition("Ready", True, reason="Done", observed_generation=4)])
            .delete(cm)
            .event(Event.warning("Oops", "careful", regarding=cm))
            .requeue_after(30)
            .finalizer()
        )
        self.assertEqual(d.problems(), [])
        out = testing.desired_json(d)
        self.assertEqual(out["apply"], [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}])
        self.assertEqual([p["patchType"] for p in out["patches"]], ["merge", "json"])
        self.assertEqual(out["status"]["phase"], "Ready")
        self.assertEqual(
            out["status"]["conditions"],
            [{"type": "Ready", "status": "True", "reason": "Done", "message": "", "observedGeneration": 4}],
        )
        self.assertEqual(out["deletions"], [{"kind": {"group": "", "version": "v1", "kind": "ConfigMap"}, "namespace": "demo", "name": "x"}])
        self.assertEqual(out["events"][0]["eventType"], "Warning")
        self.assertEqual((out["requeueAfterSeconds"], out["finalizer"]), (30, True))
        self.assertEqual(testing.desired_json(Desired()), {})

    def test_a_child_without_kind_or_name_is_a_problem(self):
        d = Desired().apply({"metadata": {}}).apply("not an object")
        self.assertEqual(
            d.problems(),
            [
                "apply: a str is not a JSON object",
                "apply[0]: apiVersion is missing",
                "apply[0]: kind is missing",
                "apply[0]: metadata.name is missing",
            ],
        )

    def test_conditions_keep_their_transition_time_while_unchanged(self):
        obj = dict(
            DEPLOYMENT,
            status={
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                    {"type": "Degraded", "status": "True", "lastTransitionTime": "2026-01-02T00:00:00Z"},
                    {"nonsense": 1},
                ]
            },
        )
        s = Snapshot(object=obj)
        self.assertEqual([c.type for c in s.conditions()], ["Ready", "Degraded"])
        new = s.update_conditions([Condition("Ready", True), Condition("Degraded", False)])
        self.assertEqual(new[0].last_transition_time, "2026-01-01T00:00:00Z")
        self.assertIsNone(new[1].last_transition_time, "a changed condition gets a new time from the host")
        with self.assertRaises(ValueError):
            Condition("Ready", "yes")


class Guard(Plugin):
    def metadata(self):
        return Metadata("guard", "0.1.0", kinds.DEPLOYMENT, owns=[kinds.POD_DISRUPTION_BUDGET])

    def reconcile(self, s):
        mode = s.config.get("mode")
        if mode == "retry":
            raise RetryError("later")
        if mode == "permanent":
            raise PermanentError("never")
        if mode == "bug":
            return {}["missing"]
        if mode == "nameless":
            return Desired().apply({"metadata": {}}, kinds.POD_DISRUPTION_BUDGET)
        if mode == "cache":
            log.info("reading the cache")
            found = cache.get(kinds.POD_DISRUPTION_BUDGET, "demo", "web")
            listed = cache.list(kinds.POD_DISRUPTION_BUDGET, "demo")
            return Desired().status({"found": found is not None, "listed": len(listed)})
        return Desired().apply({"metadata": s.child_meta(s.name), "spec": {"maxUnavailable": 1}}, kinds.POD_DISRUPTION_BUDGET)


class Running(unittest.TestCase):
    def fixture(self, mode=None, **extra):
        return dict({"object": DEPLOYMENT, "config": {"mode": mode} if mode else {}}, **extra)

    def test_an_answer_is_checked_and_printed_as_wasmop_test_does(self):
        out = testing.reconcile(Guard(), self.fixture())
        self.assertEqual(out["apply"][0]["metadata"], {"name": "web", "namespace": "demo"})
        self.assertEqual(out["apply"][0]["kind"], "PodDisruptionBudget")

    def test_failures_are_retry_or_permanent(self):
        with self.assertRaises(RetryError):
            testing.reconcile(Guard(), self.fixture("retry"))
        with self.assertRaises(PermanentError):
            testing.reconcile(Guard(), self.fixture("permanent"))
        with self.assertRaises(RetryError) as bug:
            testing.reconcile(Guard(), self.fixture("bug"))
        self.assertIn("KeyError", str(bug.exception))
        with self.assertRaises(PermanentError) as invalid:
            testing.reconcile(Guard(), self.fixture("nameless"))
        self.assertIn("metadata.name is missing", str(invalid.exception))

    def test_the_cache_holds_the_snapshot_objects(self):
        out = testing.reconcile(Guard(), self.fixture("cache", children=[PDB]))
        self.assertEqual(out["status"], {"found": True, "listed": 1})
        out = testing.reconcile(Guard(), self.fixture("cache"))
        self.assertEqual(out["status"], {"found": False, "listed": 0})

    def test_the_cache_outside_a_host_fails_clearly(self):
        with self.assertRaises(RuntimeError) as e:
            cache.list(kinds.CONFIG_MAP)
        self.assertIn("FakeHost", str(e.exception))

    def test_fake_host_selects_by_label(self):
        objs = [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n, "namespace": "a", "labels": labels}}
            for n, labels in [("x", {"app": "web"}), ("y", {"app": "db"}), ("z", {})]
        ]
        with testing.FakeHost(objs) as h:
            self.assertEqual([o.name for o in cache.list(kinds.CONFIG_MAP, "a", "app=web")], ["x"])
            self.assertEqual([o.name for o in cache.list(kinds.CONFIG_MAP, None, "app,app!=db")], ["x"])
            self.assertEqual([o.name for o in cache.list(kinds.CONFIG_MAP, None, "!app")], ["z"])
            log.warn("hi")
        self.assertEqual(h.logs, [("warn", "hi")])

    def test_map_answers_keys(self):
        class Mapper(Guard):
            def map(self, trigger):
                return [ObjectKey("demo", trigger.name), ObjectKey(None, "cluster")]

        keys = testing.map_keys(Mapper(), {"lookup": 0, "object": PDB})
        self.assertEqual(keys, [{"namespace": "demo", "name": "web"}, {"name": "cluster"}])
        self.assertEqual(testing.map_keys(Guard(), {"lookup": 0, "object": PDB}), [])

    def test_a_reconcile_must_answer_a_desired(self):
        class Wrong(Guard):
            def reconcile(self, s):
                return {"apply": []}

        with self.assertRaises(PermanentError):
            run_reconcile(Wrong(), Snapshot(object=DEPLOYMENT))


if __name__ == "__main__":
    unittest.main()
