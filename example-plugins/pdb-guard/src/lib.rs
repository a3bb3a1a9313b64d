//! pdb-guard: every Deployment with `spec.replicas >= 2` gets a PodDisruptionBudget of the same
//! name, selecting the Deployment's pods, with `maxUnavailable: 1`. When the Deployment scales
//! below 2 the budget is no longer returned and the host prunes it; when the Deployment is deleted
//! the budget goes with it (owner reference).

use wasmop_sdk::k8s_openapi::api::apps::v1::Deployment;
use wasmop_sdk::k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use wasmop_sdk::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use wasmop_sdk::prelude::*;

/// The guard.
pub struct PdbGuard;

impl Plugin for PdbGuard {
    fn metadata() -> Metadata {
        Metadata::new("pdb-guard", env!("CARGO_PKG_VERSION"), Gvk::of::<Deployment>())
            .owns(Gvk::of::<PodDisruptionBudget>())
    }

    fn reconcile(s: Snapshot) -> Result<Desired, Error> {
        let deployment: Deployment = s.object()?;
        let spec = deployment.spec.unwrap_or_default();
        // An unset replicas field means 1.
        let replicas = spec.replicas.unwrap_or(1);
        let had_budget = s.child::<PodDisruptionBudget>(s.name())?.is_some();
        if replicas < 2 {
            let mut desired = Desired::new();
            if had_budget {
                desired = desired.event(Event::normal(
                    "DisruptionBudgetRemoved",
                    format!("{replicas} replica(s): no PodDisruptionBudget"),
                ));
            }
            return Ok(desired);
        }
        let budget = PodDisruptionBudget {
            metadata: s.child_meta(s.name()),
            spec: Some(PodDisruptionBudgetSpec {
                selector: Some(spec.selector),
                max_unavailable: Some(IntOrString::Int(1)),
                ..Default::default()
            }),
            status: None,
        };
        let mut desired = Desired::new().apply(budget);
        if !had_budget {
            desired = desired.event(Event::normal(
                "DisruptionBudgetCreated",
                format!("{replicas} replicas: at most 1 unavailable during disruptions"),
            ));
        }
        Ok(desired)
    }
}

wasmop_sdk::export_plugin!(PdbGuard);

#[cfg(test)]
mod tests {
    #[test]
    fn golden() {
        wasmop_sdk::testing::check_fixtures::<super::PdbGuard>(concat!(env!("CARGO_MANIFEST_DIR"), "/tests"));
    }

    #[test]
    fn metadata_is_valid() {
        use wasmop_sdk::Plugin;
        super::PdbGuard::metadata().validate().unwrap();
    }
}
