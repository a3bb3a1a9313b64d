"""pdb-guard: every Deployment with `spec.replicas >= 2` gets a PodDisruptionBudget of the same
name, selecting the Deployment's pods, with `maxUnavailable: 1`. When the Deployment scales below
2 the budget is no longer returned and the host prunes it; when the Deployment is deleted the
budget goes with it (owner reference). The Python twin of `example-plugins/pdb-guard`, answering
its golden files."""

from wasmop_sdk import Desired, Event, Metadata, Plugin, Snapshot, kinds


class PdbGuard(Plugin):
    def metadata(self) -> Metadata:
        return Metadata(
            name="pdb-guard",
            version="0.1.0",
            primary=kinds.DEPLOYMENT,
            owns=[kinds.POD_DISRUPTION_BUDGET],
        )

    def reconcile(self, s: Snapshot) -> Desired:
        # An unset replicas field means 1.
        replicas = s.object.at("spec", "replicas", default=1)
        had_budget = s.child(kinds.POD_DISRUPTION_BUDGET, s.name) is not None
        if replicas < 2:
            desired = Desired()
            if had_budget:
                desired.event(
                    Event.normal("DisruptionBudgetRemoved", f"{replicas} replica(s): no PodDisruptionBudget")
                )
            return desired
        budget = {
            "metadata": s.child_meta(s.name),
            "spec": {"selector": s.object.at("spec", "selector", default={}), "maxUnavailable": 1},
        }
        desired = Desired().apply(budget, kinds.POD_DISRUPTION_BUDGET)
        if not had_budget:
            desired.event(
                Event.normal(
                    "DisruptionBudgetCreated",
                    f"{replicas} replicas: at most 1 unavailable during disruptions",
                )
            )
        return desired
