/**
 * pdb-guard: every Deployment with `spec.replicas >= 2` gets a PodDisruptionBudget of the same
 * name, selecting the Deployment's pods, with `maxUnavailable: 1`. When the Deployment scales below
 * 2 the budget is no longer returned and the host prunes it; when the Deployment is deleted the
 * budget goes with it (owner reference). The same plugin as the Rust `example-plugins/pdb-guard`,
 * answering its golden fixtures.
 */

import { type Deployment, Desired, Event, Metadata, type Plugin, type PodDisruptionBudget, exportPlugin, kinds } from "@wasmop/sdk";

const pdbGuard: Plugin<Deployment> = {
  metadata: () => new Metadata("pdb-guard", "0.1.0", kinds.Deployment).owns(kinds.PodDisruptionBudget),

  reconcile(s) {
    const deployment = s.object;
    // An unset replicas field means 1.
    const replicas = deployment.spec?.replicas ?? 1;
    const hadBudget = s.child(kinds.PodDisruptionBudget, s.name) !== undefined;
    if (replicas < 2) {
      const desired = new Desired();
      if (hadBudget) {
        desired.event(Event.normal("DisruptionBudgetRemoved", `${replicas} replica(s): no PodDisruptionBudget`));
      }
      return desired;
    }
    const budget: PodDisruptionBudget = {
      metadata: s.childMeta(s.name),
      spec: { selector: deployment.spec?.selector, maxUnavailable: 1 },
    };
    const desired = new Desired().apply(budget, kinds.PodDisruptionBudget);
    if (!hadBudget) {
      desired.event(Event.normal("DisruptionBudgetCreated", `${replicas} replicas: at most 1 unavailable during disruptions`));
    }
    return desired;
  },
};

export const { metadata, reconcile, map } = exportPlugin(pdbGuard);
