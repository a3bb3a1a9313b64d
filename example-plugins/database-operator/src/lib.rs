//! database-operator: runs a `Database` (example.com/v1) as a StatefulSet with a headless Service
//! and a ConfigMap of connection details.
//!
//! * The custom resource is declared here as Rust types ([`DatabaseSpec`], [`DatabaseStatus`]) with
//!   kube's `CustomResource` derive; its CRD is generated from them, declared in `metadata.crds`
//!   (`wasmop crd database-operator.wasm` prints it) and kept in `crd.yaml` beside this crate (a
//!   test fails when the two drift; `WASMOP_BLESS=1` rewrites the file).
//! * Children, named after the Database `<db>`: StatefulSet `<db>` (replicas, image, one
//!   volumeClaimTemplate `data` of `spec.storage`), headless Service `<db>`, ConfigMap `<db>` with
//!   the connection details (`host`, `port`, `primary`, `replicas`), and from the first time it is
//!   Ready a ConfigMap `<db>-backup` recording the spec it became Ready with (kept unchanged).
//! * `status.phase`: `Pending` (the StatefulSet does not exist yet), `Provisioning` (fewer ready
//!   replicas than `spec.replicas`), `Ready` (`status.readyReplicas == spec.replicas`), `Failed`
//!   (invalid spec, or a failing StatefulSet); conditions `SpecValid` and `Ready`;
//!   `observedGeneration`.
//! * A failing StatefulSet is one with a `ReplicaFailure` condition of status `True` (the condition
//!   type apps/v1 workloads use for pods that cannot be run; `wasmop dev`'s workload simulator sets
//!   it on a StatefulSet annotated `simulate.wasmop.io/fail`): the phase becomes `Failed`, the
//!   `Ready` condition says `WorkloadFailed` with the StatefulSet's message, and a Warning event
//!   `WorkloadFailed` is recorded once. The children stay as they are, so when the condition goes
//!   the Database provisions again.
//! * An invalid spec (replicas < 1, an empty image, a storage size that is not a quantity) is not an
//!   error: the phase becomes `Failed` with a Warning event, and nothing is retried until the spec
//!   changes. The running workload is left as it was: its children are re-derived from the live
//!   StatefulSet (if any), so a typo does not tear the database down.
//! * Finalizer: every Database holds the plugin's finalizer (it needs cleanup); on deletion the
//!   backup ConfigMap is deleted explicitly and the answer leaves the finalizer out, releasing it.

use std::collections::BTreeMap;

use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use wasmop_sdk::k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use wasmop_sdk::k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerPort, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec,
    PodTemplateSpec, Service, ServicePort, ServiceSpec, VolumeMount, VolumeResourceRequirements,
};
use wasmop_sdk::k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use wasmop_sdk::k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use wasmop_sdk::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use wasmop_sdk::prelude::*;

/// The port the database listens on.
const PORT: i32 = 5432;

/// The operator.
struct DatabaseOperator;

/// `Database.spec`: what to run. `replicas` deliberately has no minimum in the schema: the plugin
/// validates the spec and reports an invalid one as phase `Failed` (a production CRD would also
/// say `minimum: 1`). Schema descriptions are the `description` attributes, not these comments.
#[derive(CustomResource, Deserialize, Serialize, JsonSchema, Clone, Debug, Default, PartialEq)]
// Several `printcolumn(..)`s repeat `type_ = "string"`: not a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "example.com",
    version = "v1",
    kind = "Database",
    namespaced,
    status = "DatabaseStatus",
    shortname = "db",
    doc = "A replicated database run as a StatefulSet.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Image", type_ = "string", json_path = ".spec.image"),
    printcolumn(
        name = "Storage",
        type_ = "string",
        json_path = ".spec.storage",
        priority = "1"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    crates(
        k8s_openapi = "::wasmop_sdk::k8s_openapi",
        serde_json = "::wasmop_sdk::serde_json"
    )
)]
#[schemars(description = "The database to run.")]
pub struct DatabaseSpec {
    /// How many database pods to run (at least 1).
    pub replicas: i64,
    /// The container image of the database server.
    pub image: String,
    /// The size of each pod's data volume, a quantity such as 10Gi.
    pub storage: String,
}

/// `Database.status`. Fields default, so that a status written by an older version still reads.
#[derive(Deserialize, Serialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(default, rename_all = "camelCase")]
#[schemars(description = "What the operator observed.")]
pub struct DatabaseStatus {
    /// Pending, Provisioning, Ready or Failed (invalid spec or failing workload).
    pub phase: Phase,
    /// The metadata.generation the status reflects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// SpecValid and Ready.
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// `Database.status.phase`.
#[derive(Deserialize, Serialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// The StatefulSet does not exist yet.
    #[default]
    Pending,
    /// Fewer ready replicas than `spec.replicas`.
    Provisioning,
    /// Every replica is ready.
    Ready,
    /// The spec is invalid, or the StatefulSet reports a failure.
    Failed,
}

/// The schema of `status.conditions`: `metav1.Condition`s, a list keyed by `type`.
fn conditions_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "description": "SpecValid and Ready.",
        "items": {
            "type": "object",
            "required": ["type", "status"],
            "properties": {
                "type": {"type": "string"},
                "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                "reason": {"type": "string"},
                "message": {"type": "string"},
                "observedGeneration": {"type": "integer", "format": "int64"},
                "lastTransitionTime": {"type": "string", "format": "date-time"}
            }
        },
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"]
    })
}

/// The CRD of [`Database`], as declared in `metadata.crds` (JSON).
fn crd_json() -> String {
    wasmop_sdk::serde_json::to_string(&Database::crd()).expect("a CRD serialises")
}

impl DatabaseSpec {
    /// Why the spec cannot be run, if it cannot.
    fn problem(&self) -> Option<String> {
        if self.replicas < 1 || self.replicas > i64::from(i32::MAX) {
            Some(format!("spec.replicas must be at least 1, not {}", self.replicas))
        } else if self.image.trim().is_empty() {
            Some("spec.image must not be empty".into())
        } else if !is_quantity(&self.storage) {
            Some(format!(
                "spec.storage {:?} is not a size such as 10Gi",
                self.storage
            ))
        } else {
            None
        }
    }

    /// The spec the live StatefulSet was built from.
    fn of_statefulset(sts: &StatefulSet) -> Option<DatabaseSpec> {
        let spec = sts.spec.as_ref()?;
        let image = spec.template.spec.as_ref()?.containers.first()?.image.clone()?;
        let storage = spec
            .volume_claim_templates
            .as_ref()?
            .first()?
            .spec
            .as_ref()?
            .resources
            .as_ref()?
            .requests
            .as_ref()?
            .get("storage")?
            .0
            .clone();
        Some(DatabaseSpec {
            replicas: i64::from(spec.replicas.unwrap_or(1)),
            image,
            storage,
        })
    }
}

/// The message of the StatefulSet's `ReplicaFailure` condition, when it is `True`.
fn workload_failure(sts: &StatefulSet) -> Option<String> {
    sts.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
        .map(|c| {
            let why = c.message.as_deref().or(c.reason.as_deref()).unwrap_or("");
            format!(
                "StatefulSet {}: {why}",
                sts.metadata.name.as_deref().unwrap_or("")
            )
        })
}

/// A Kubernetes quantity in its common forms: digits with an optional fraction and suffix.
fn is_quantity(s: &str) -> bool {
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    let valid_number = !number.is_empty() && number.parse::<f64>().is_ok_and(|n| n > 0.0);
    let suffixes = [
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E",
    ];
    valid_number && suffixes.contains(&suffix)
}

fn labels(db: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "database".to_string()),
        ("app.kubernetes.io/instance".to_string(), db.to_string()),
        ("app.kubernetes.io/managed-by".to_string(), "wasmop".to_string()),
    ])
}

fn selector(db: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "database".to_string()),
        ("app.kubernetes.io/instance".to_string(), db.to_string()),
    ])
}

fn meta(s: &Snapshot, name: String) -> ObjectMeta {
    ObjectMeta {
        labels: Some(labels(s.name())),
        ..s.child_meta(name)
    }
}

fn statefulset(s: &Snapshot, spec: &DatabaseSpec) -> StatefulSet {
    let db = s.name();
    StatefulSet {
        metadata: meta(s, db.to_string()),
        spec: Some(StatefulSetSpec {
            replicas: Some(i32::try_from(spec.replicas).unwrap_or(1)),
            service_name: Some(db.to_string()),
            selector: LabelSelector {
                match_labels: Some(selector(db)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(selector(db)),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "database".into(),
                        image: Some(spec.image.clone()),
                        ports: Some(vec![ContainerPort {
                            name: Some("db".into()),
                            container_port: PORT,
                            ..Default::default()
                        }]),
                        volume_mounts: Some(vec![VolumeMount {
                            name: "data".into(),
                            mount_path: "/var/lib/database".into(),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some("data".into()),
                    ..Default::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".into()]),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_string(),
                            Quantity(spec.storage.clone()),
                        )])),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

fn headless_service(s: &Snapshot) -> Service {
    Service {
        metadata: meta(s, s.name().to_string()),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(selector(s.name())),
            ports: Some(vec![ServicePort {
                name: Some("db".into()),
                port: PORT,
                target_port: Some(IntOrString::Int(PORT)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

fn namespace(s: &Snapshot) -> &str {
    s.namespace().unwrap_or("default")
}

fn connection_configmap(s: &Snapshot, spec: &DatabaseSpec) -> ConfigMap {
    let (db, ns) = (s.name(), namespace(s));
    ConfigMap {
        metadata: meta(s, db.to_string()),
        data: Some(BTreeMap::from([
            ("host".to_string(), format!("{db}.{ns}.svc")),
            ("port".to_string(), PORT.to_string()),
            ("primary".to_string(), format!("{db}-0.{db}.{ns}.svc")),
            ("replicas".to_string(), spec.replicas.to_string()),
        ])),
        ..Default::default()
    }
}

fn backup_name(s: &Snapshot) -> String {
    format!("{}-backup", s.name())
}

/// The backup ConfigMap: the existing one unchanged, or a new record of `spec`.
fn backup_configmap(s: &Snapshot, existing: Option<ConfigMap>, spec: &DatabaseSpec) -> ConfigMap {
    let data = existing.and_then(|cm| cm.data).unwrap_or_else(|| {
        BTreeMap::from([
            ("database".to_string(), s.name().to_string()),
            ("image".to_string(), spec.image.clone()),
            ("replicas".to_string(), spec.replicas.to_string()),
            ("storage".to_string(), spec.storage.clone()),
        ])
    });
    ConfigMap {
        metadata: meta(s, backup_name(s)),
        data: Some(data),
        ..Default::default()
    }
}

/// Deletion: remove the backup, and leave the finalizer out to let it go. (The other children are
/// pruned by the host and garbage-collected through their owner references anyway.)
fn clean_up(s: &Snapshot) -> Result<Desired, Error> {
    let backup = backup_name(s);
    let mut desired = Desired::new().delete(ObjectRef::of::<ConfigMap>(s.namespace(), &backup));
    if s.child::<ConfigMap>(&backup)?.is_some() {
        desired = desired.event(Event::normal(
            "BackupDeleted",
            format!("deleted ConfigMap {backup}"),
        ));
    }
    Ok(desired)
}

impl Plugin for DatabaseOperator {
    fn metadata() -> Metadata {
        use kube::Resource as _;
        let kind = Gvk::new(Database::group(&()), Database::version(&()), Database::kind(&()));
        Metadata::new("database-operator", env!("CARGO_PKG_VERSION"), kind)
            .owns(Gvk::of::<StatefulSet>())
            .owns(Gvk::of::<Service>())
            .owns(Gvk::of::<ConfigMap>())
            .crd(crd_json())
    }

    fn reconcile(s: Snapshot) -> Result<Desired, Error> {
        if s.is_deleting() {
            return clean_up(&s);
        }
        let db: Database = s.object_as()?;
        let generation = s.generation();
        let previous_phase = db.status.as_ref().map(|st| st.phase);
        let sts = s.child::<StatefulSet>(s.name())?;
        let backup = s.child::<ConfigMap>(&backup_name(&s))?;
        // Every live Database holds the finalizer: its deletion waits for the backup's cleanup.
        let mut desired = Desired::new().finalizer();

        if let Some(problem) = db.spec.problem() {
            wasmop_sdk::warn!("{}: {problem}", s.name());
            // Keep what runs: the children as the live StatefulSet says they were.
            if let Some(last) = sts.as_ref().and_then(DatabaseSpec::of_statefulset) {
                desired = desired
                    .apply(statefulset(&s, &last))
                    .apply(headless_service(&s))
                    .apply(connection_configmap(&s, &last));
                if backup.is_some() {
                    desired = desired.apply(backup_configmap(&s, backup, &last));
                }
            }
            let observed = db.status.as_ref().and_then(|st| st.observed_generation);
            if previous_phase != Some(Phase::Failed) || observed != generation {
                desired = desired.event(Event::warning("InvalidSpec", problem.clone()));
            }
            let conditions = s.update_conditions([
                Condition::new("SpecValid", false)
                    .reason("InvalidSpec")
                    .message(problem.clone())
                    .observed_generation(generation),
                Condition::new("Ready", false)
                    .reason("InvalidSpec")
                    .message(problem)
                    .observed_generation(generation),
            ]);
            return Ok(desired.status(DatabaseStatus {
                phase: Phase::Failed,
                observed_generation: generation,
                conditions,
            }));
        }

        let spec = &db.spec;
        let ready_replicas = sts
            .as_ref()
            .and_then(|x| x.status.as_ref())
            .and_then(|st| st.ready_replicas)
            .unwrap_or(0);
        let failure = sts.as_ref().and_then(workload_failure);
        let (phase, ready) = match (&sts, &failure) {
            (Some(_), Some(message)) => (
                Phase::Failed,
                Condition::new("Ready", false)
                    .reason("WorkloadFailed")
                    .message(message.clone()),
            ),
            (None, _) => (
                Phase::Pending,
                Condition::new("Ready", false)
                    .reason("StatefulSetPending")
                    .message(format!("waiting for StatefulSet {}", s.name())),
            ),
            (Some(_), None) if i64::from(ready_replicas) == spec.replicas => (
                Phase::Ready,
                Condition::new("Ready", true)
                    .reason("AllReplicasReady")
                    .message(format!("{ready_replicas}/{} replicas ready", spec.replicas)),
            ),
            (Some(_), None) => (
                Phase::Provisioning,
                Condition::new("Ready", false)
                    .reason("ReplicasNotReady")
                    .message(format!("{ready_replicas}/{} replicas ready", spec.replicas)),
            ),
        };

        desired = desired
            .apply(statefulset(&s, spec))
            .apply(headless_service(&s))
            .apply(connection_configmap(&s, spec));
        if backup.is_some() || phase == Phase::Ready {
            if backup.is_none() {
                desired = desired.event(Event::normal(
                    "BackupCreated",
                    format!("recorded the spec in ConfigMap {}", backup_name(&s)),
                ));
            }
            desired = desired.apply(backup_configmap(&s, backup, spec));
        }
        if let Some(message) = failure
            && previous_phase != Some(Phase::Failed)
        {
            desired = desired.event(Event::warning("WorkloadFailed", message));
        }
        if phase == Phase::Ready && previous_phase != Some(Phase::Ready) {
            desired = desired.event(Event::normal(
                "Provisioned",
                format!("{} replicas ready", spec.replicas),
            ));
        }
        let conditions = s.update_conditions([
            Condition::new("SpecValid", true)
                .reason("Valid")
                .observed_generation(generation),
            ready.observed_generation(generation),
        ]);
        Ok(desired.status(DatabaseStatus {
            phase,
            observed_generation: generation,
            conditions,
        }))
    }
}

wasmop_sdk::export_plugin!(DatabaseOperator);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        wasmop_sdk::testing::check_fixtures::<DatabaseOperator>(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests"
        ));
    }

    #[test]
    fn metadata_is_valid_and_declares_the_crd() {
        let m = DatabaseOperator::metadata();
        m.validate().unwrap();
        assert_eq!(m.primary, Gvk::new("example.com", "v1", "Database"));
        assert_eq!(m.crds, vec![crd_json()]);
    }

    /// `crd.yaml` is the CRD generated from the types (`WASMOP_BLESS=1` rewrites it).
    #[test]
    fn crd_yaml_is_the_generated_crd() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crd.yaml");
        let generated = serde_yaml::to_string(&Database::crd()).unwrap();
        if std::env::var_os("WASMOP_BLESS").is_some_and(|v| v == "1") {
            let header = "# The Database custom resource reconciled by the database-operator plugin, generated from\n\
                          # its Rust types (src/lib.rs; `wasmop crd database-operator.wasm` prints the same).\n\
                          # Do not edit: `WASMOP_BLESS=1 cargo test` rewrites it.\n";
            std::fs::write(path, format!("{header}{generated}")).unwrap();
            return;
        }
        let on_disk: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let generated: serde_yaml::Value = serde_yaml::from_str(&generated).unwrap();
        assert!(
            on_disk == generated,
            "crd.yaml differs from the CRD generated from the types; run WASMOP_BLESS=1 cargo test"
        );
        let declared: serde_yaml::Value = serde_yaml::from_str(&crd_json()).unwrap();
        assert_eq!(declared, generated);
    }

    #[test]
    fn quantities() {
        for ok in ["1Gi", "500Mi", "10G", "1.5Gi", "100"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Gi", "0", "1 Gi", "1gb", "-1Gi"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn the_live_statefulset_gives_back_its_spec() {
        let s = Snapshot::new(wasmop_sdk::serde_json::json!({
            "apiVersion": "example.com/v1", "kind": "Database",
            "metadata": {"name": "db", "namespace": "ns"}
        }));
        let spec = DatabaseSpec {
            replicas: 2,
            image: "postgres:16".into(),
            storage: "5Gi".into(),
        };
        assert_eq!(DatabaseSpec::of_statefulset(&statefulset(&s, &spec)), Some(spec));
    }
}
