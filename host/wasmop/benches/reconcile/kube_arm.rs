//! The kube-runtime arm: what a Rust user writes instead of a plugin — an idiomatic
//! `kube::runtime::Controller` per workload with exactly the example plugin's behaviour, server-side
//! apply with a field manager, `Recorder` events, reflector stores for what it reads, and every
//! object requeued (`reconcile_all_on`) for the resync. No wasmop machinery.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio::sync::mpsc;

use crate::child::Resync;
use crate::cli::Workload;

const REPLICATE_TO: &str = "wasmop.io/replicate-to";
const REPLICA_LABEL: &str = "wasmop.io/replica";
const REPLICA_OF: &str = "wasmop.io/replica-of";
const FINALIZER: &str = "configmap-replicator.example.com/cleanup";

/// Shared by every reconcile of one controller.
struct Ctx {
    client: kube::Client,
    recorder: Recorder,
    /// The PodDisruptionBudgets (pdb-guard) or Namespaces (replicator) the reconciles read.
    pdbs: Option<Store<PodDisruptionBudget>>,
    namespaces: Option<Store<Namespace>>,
    /// The controller's own store of primaries (the replicator finds copies there).
    configmaps: Option<Store<ConfigMap>>,
    reconciles: AtomicU64,
}

/// A running controller and how to requeue all its objects.
struct KubeArm {
    ctx: Arc<Ctx>,
    store: StoreLen,
    requeue: mpsc::UnboundedSender<()>,
}

enum StoreLen {
    Deployments(Store<Deployment>),
    ConfigMaps(Store<ConfigMap>),
}

impl StoreLen {
    fn len(&self) -> usize {
        match self {
            StoreLen::Deployments(s) => s.state().len(),
            StoreLen::ConfigMaps(s) => s.state().len(),
        }
    }
}

impl Resync for KubeArm {
    fn summary(&self) -> futures::future::BoxFuture<'_, String> {
        let n = self.ctx.reconciles.load(Ordering::SeqCst);
        Box::pin(async move { format!("{n} reconciles") })
    }

    fn resync(&self) -> futures::future::BoxFuture<'_, anyhow::Result<usize>> {
        Box::pin(async move {
            let before = self.ctx.reconciles.load(Ordering::SeqCst);
            let n = self.store.len();
            self.requeue.send(())?;
            while self.ctx.reconciles.load(Ordering::SeqCst) < before + n as u64 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Ok(n)
        })
    }
}

/// A reflector store of `K`, filled in the background; returns once it has listed.
async fn store<K>(api: Api<K>, config: watcher::Config) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config))
        .default_backoff()
        .touched_objects();
    tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    let _ = reader.wait_until_ready().await;
    reader
}

pub async fn start(client: kube::Client, workload: Workload) -> anyhow::Result<Box<dyn Resync>> {
    let reporter = Reporter {
        controller: workload.plugin().into(),
        instance: None,
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let (requeue, rx) = mpsc::unbounded_channel::<()>();
    let trigger = tokio_stream_from(rx);
    match workload {
        Workload::Pdb => {
            let pdbs = store(
                Api::<PodDisruptionBudget>::all(client.clone()),
                watcher::Config::default(),
            )
            .await;
            let ctx = Arc::new(Ctx {
                client: client.clone(),
                recorder,
                pdbs: Some(pdbs),
                namespaces: None,
                configmaps: None,
                reconciles: AtomicU64::new(0),
            });
            let controller =
                Controller::new(Api::<Deployment>::all(client.clone()), watcher::Config::default())
                    .owns(
                        Api::<PodDisruptionBudget>::all(client),
                        watcher::Config::default(),
                    )
                    .reconcile_all_on(trigger);
            let store = controller.store();
            tokio::spawn(
                controller
                    .run(reconcile_pdb, error_policy, ctx.clone())
                    .for_each(|_| futures::future::ready(())),
            );
            Ok(Box::new(KubeArm {
                ctx,
                store: StoreLen::Deployments(store),
                requeue,
            }))
        }
        Workload::Fanout => {
            let namespaces = store(Api::<Namespace>::all(client.clone()), watcher::Config::default()).await;
            let controller =
                Controller::new(Api::<ConfigMap>::all(client.clone()), watcher::Config::default());
            let configmaps = controller.store();
            let sources = configmaps.clone();
            let controller = controller
                // A copy changed (by hand, or deleted): its source is reconciled, which repairs it.
                .watches(
                    Api::<ConfigMap>::all(client.clone()),
                    watcher::Config::default().labels(&format!("{REPLICA_LABEL}=true")),
                    |copy| {
                        let of = copy.annotations().get(REPLICA_OF)?;
                        let (ns, name) = of.split_once('/')?;
                        Some(ObjectRef::new(name).within(ns))
                    },
                )
                // A namespace came or went: the sources that list it.
                .watches(
                    Api::<Namespace>::all(client.clone()),
                    watcher::Config::default(),
                    move |ns| {
                        let name = ns.name_any();
                        sources
                            .state()
                            .into_iter()
                            .filter(|cm| {
                                let own = cm.namespace().unwrap_or_default();
                                cm.annotations()
                                    .get(REPLICATE_TO)
                                    .is_some_and(|list| wanted(list, &own).contains(&name))
                            })
                            .map(|cm| ObjectRef::from_obj(&*cm))
                            .collect::<Vec<_>>()
                    },
                )
                .reconcile_all_on(trigger);
            let ctx = Arc::new(Ctx {
                client,
                recorder,
                pdbs: None,
                namespaces: Some(namespaces),
                configmaps: Some(configmaps.clone()),
                reconciles: AtomicU64::new(0),
            });
            tokio::spawn(
                controller
                    .run(reconcile_replicator, error_policy, ctx.clone())
                    .for_each(|_| futures::future::ready(())),
            );
            Ok(Box::new(KubeArm {
                ctx,
                store: StoreLen::ConfigMaps(configmaps),
                requeue,
            }))
        }
    }
}

fn tokio_stream_from(
    mut rx: mpsc::UnboundedReceiver<()>,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn error_policy<K, E: std::fmt::Display>(_: Arc<K>, error: &E, _: Arc<Ctx>) -> Action {
    eprintln!("kube-runtime arm: reconcile failed: {error}");
    Action::requeue(Duration::from_secs(1))
}

async fn event(
    ctx: &Ctx,
    on: &impl Resource<DynamicType = ()>,
    type_: EventType,
    reason: &str,
    note: String,
) -> Result<(), kube::Error> {
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    ctx.recorder.publish(&ev, &on.object_ref(&())).await
}

/// pdb-guard: a budget of the same name for 2 replicas or more, none below.
async fn reconcile_pdb(d: Arc<Deployment>, ctx: Arc<Ctx>) -> Result<Action, kube::Error> {
    let ns = d.namespace().unwrap_or_default();
    let name = d.name_any();
    let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), &ns);
    let spec = d.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1);
    let had = ctx
        .pdbs
        .as_ref()
        .and_then(|s| s.get(&ObjectRef::new(&name).within(&ns)))
        .is_some();
    if replicas < 2 {
        if had {
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
            let note = format!("{replicas} replica(s): no PodDisruptionBudget");
            event(&ctx, &*d, EventType::Normal, "DisruptionBudgetRemoved", note).await?;
        }
    } else {
        let pdb = PodDisruptionBudget {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                owner_references: d.controller_owner_ref(&()).map(|o| vec![o]),
                ..Default::default()
            },
            spec: Some(PodDisruptionBudgetSpec {
                selector: Some(spec.selector),
                max_unavailable: Some(IntOrString::Int(1)),
                ..Default::default()
            }),
            status: None,
        };
        api.patch(
            &name,
            &PatchParams::apply("pdb-guard").force(),
            &Patch::Apply(&pdb),
        )
        .await?;
        if !had {
            let note = format!("{replicas} replicas: at most 1 unavailable during disruptions");
            event(&ctx, &*d, EventType::Normal, "DisruptionBudgetCreated", note).await?;
        }
    }
    ctx.reconciles.fetch_add(1, Ordering::SeqCst);
    Ok(Action::requeue(Duration::from_secs(300)))
}

fn wanted(annotation: &str, own: &str) -> BTreeSet<String> {
    annotation
        .split(',')
        .map(str::trim)
        .filter(|ns| !ns.is_empty() && *ns != own)
        .map(String::from)
        .collect()
}

fn join(names: &BTreeSet<String>) -> String {
    names.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// The namespaces holding a copy of `cm` (looked up by name in each namespace of the store).
fn copies(ctx: &Ctx, cm: &ConfigMap) -> BTreeSet<String> {
    let (Some(namespaces), Some(configmaps)) = (&ctx.namespaces, &ctx.configmaps) else {
        return BTreeSet::new();
    };
    let own = cm.namespace().unwrap_or_default();
    let of = format!("{own}/{}", cm.name_any());
    namespaces
        .state()
        .iter()
        .map(|ns| ns.name_any())
        .filter(|ns| *ns != own)
        .filter(|ns| {
            configmaps
                .get(&ObjectRef::new(&cm.name_any()).within(ns))
                .is_some_and(|c| {
                    c.labels().contains_key(REPLICA_LABEL) && c.annotations().get(REPLICA_OF) == Some(&of)
                })
        })
        .collect()
}

async fn delete_copies(ctx: &Ctx, cm: &ConfigMap, namespaces: &BTreeSet<String>) -> Result<(), kube::Error> {
    for ns in namespaces {
        let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
        match api.delete(&cm.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// configmap-replicator: copies of an annotated ConfigMap in the namespaces it lists.
async fn reconcile_replicator(
    cm: Arc<ConfigMap>,
    ctx: Arc<Ctx>,
) -> Result<Action, finalizer::Error<kube::Error>> {
    let result = if cm.labels().contains_key(REPLICA_LABEL) {
        Ok(Action::await_change())
    } else if cm.annotations().contains_key(REPLICATE_TO) || cm.finalizers().iter().any(|f| f == FINALIZER) {
        let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &cm.namespace().unwrap_or_default());
        finalizer(&api, FINALIZER, cm, |event| async {
            match event {
                finalizer::Event::Apply(cm) => replicate(&ctx, &cm).await,
                finalizer::Event::Cleanup(cm) => {
                    stop_replicating(&ctx, &cm, "ReplicasDeleted", "deleting the copies in").await
                }
            }
        })
        .await
    } else {
        stop_replicating(&ctx, &cm, "ReplicaRemoved", "removed the copies in")
            .await
            .map_err(finalizer::Error::ApplyFailed)
    };
    ctx.reconciles.fetch_add(1, Ordering::SeqCst);
    result
}

async fn stop_replicating(
    ctx: &Ctx,
    cm: &ConfigMap,
    reason: &str,
    message: &str,
) -> Result<Action, kube::Error> {
    let current = copies(ctx, cm);
    if !current.is_empty() {
        delete_copies(ctx, cm, &current).await?;
        event(
            ctx,
            cm,
            EventType::Normal,
            reason,
            format!("{message} {}", join(&current)),
        )
        .await?;
    }
    Ok(Action::await_change())
}

async fn replicate(ctx: &Ctx, cm: &ConfigMap) -> Result<Action, kube::Error> {
    if cm.annotations().get(REPLICATE_TO).is_none() {
        // The annotation went: the finalizer stays until the object goes, the copies go now.
        return stop_replicating(ctx, cm, "ReplicaRemoved", "removed the copies in").await;
    }
    let own = cm.namespace().unwrap_or_default();
    let name = cm.name_any();
    let want = wanted(&cm.annotations()[REPLICATE_TO], &own);
    let existing: BTreeSet<String> = ctx
        .namespaces
        .as_ref()
        .map(|s| s.state())
        .unwrap_or_default()
        .iter()
        .filter(|ns| ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating"))
        .map(|ns| ns.name_any())
        .collect();
    let targets: BTreeSet<String> = want.intersection(&existing).cloned().collect();
    let missing: BTreeSet<String> = want.difference(&existing).cloned().collect();
    let current = copies(ctx, cm);
    for ns in &targets {
        let copy = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                labels: Some([(REPLICA_LABEL.to_string(), "true".to_string())].into()),
                annotations: Some([(REPLICA_OF.to_string(), format!("{own}/{name}"))].into()),
                ..Default::default()
            },
            data: cm.data.clone(),
            binary_data: cm.binary_data.clone(),
            ..Default::default()
        };
        let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
        api.patch(
            &name,
            &PatchParams::apply("configmap-replicator").force(),
            &Patch::Apply(&copy),
        )
        .await?;
    }
    let removed: BTreeSet<String> = current.difference(&targets).cloned().collect();
    delete_copies(ctx, cm, &removed).await?;
    if !missing.is_empty() {
        let note = format!("not copied to missing namespaces: {}", join(&missing));
        event(ctx, cm, EventType::Warning, "NamespaceNotFound", note).await?;
    }
    let added: BTreeSet<String> = targets.difference(&current).cloned().collect();
    if !added.is_empty() {
        event(
            ctx,
            cm,
            EventType::Normal,
            "Replicated",
            format!("copied to {}", join(&added)),
        )
        .await?;
    }
    if !removed.is_empty() {
        event(
            ctx,
            cm,
            EventType::Normal,
            "ReplicaRemoved",
            format!("removed the copies in {}", join(&removed)),
        )
        .await?;
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}
