//! From a plugin's desired state to the writes that make it true, without sending anything: every
//! write is checked against the declaration first (an undeclared kind or namespace refuses the whole
//! answer), children get the owner reference and tracking metadata the host sets, children no longer
//! desired are pruned, and each write is skipped when the cache already shows its result. The order
//! is the finalizer protocol's: the finalizer is added before any child exists, and removed only
//! after everything else is written.

use std::collections::HashSet;
use std::sync::Arc;

use kube::ResourceExt;
use serde_json::{Value, json};
use wasmop_apimachinery::fieldmanager::FieldSet;
use wasmop_apimachinery::structure::BuiltinStructure;
use wasmop_contract::{Desired, Gvk, Metadata, ObjectRef, PatchType, Verb};

use crate::cache::Cache;
use crate::object::CachedObject;
use crate::store::{KindStore, OWNER_UID_LABEL};
use crate::writer::{Write, WriteError, WriteTarget};

/// Label on every child: the plugin that owns it.
pub const PLUGIN_LABEL: &str = "wasmop.io/plugin";
/// Annotation on every child: `namespace/name` of the owner (maps a child's events to its owner).
pub const OWNER_ANNOTATION: &str = "wasmop.io/owner";

/// What a plan works from: the declaration, the caches and the primary object.
pub struct Context<'a> {
    pub meta: &'a Metadata,
    pub cache: &'a dyn Cache,
    pub primary: &'a KindStore,
    pub object: &'a CachedObject,
}

/// The writes to send, in order, and how many were found already done.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub writes: Vec<Write>,
    pub skipped: u64,
}

/// A child to apply, resolved and checked.
struct Child {
    store: Arc<KindStore>,
    namespace: Option<String>,
    name: String,
    body: Value,
}

/// `a` is contained in `b`: every field of `a` has the same value in `b` (lists element-wise).
pub fn is_subset(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.iter().all(|(k, v)| y.get(k).is_some_and(|w| is_subset(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| is_subset(v, w))
        }
        _ => a == b,
    }
}

fn target(store: &KindStore, namespace: Option<String>, name: String) -> WriteTarget {
    WriteTarget {
        resource: store.resource.clone(),
        namespace: namespace.filter(|_| store.namespaced),
        name,
    }
}

impl Context<'_> {
    fn uid(&self) -> String {
        self.object.uid().unwrap_or_default()
    }

    fn primary_target(&self) -> WriteTarget {
        target(self.primary, self.object.namespace(), self.object.name_any())
    }

    /// The children of this object in the cache, over every owned kind: O(children).
    pub fn children(&self) -> Vec<(Arc<KindStore>, Arc<CachedObject>)> {
        let uid = self.uid();
        if uid.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for g in &self.meta.owns {
            let Some(store) = self.cache.get(g) else { continue };
            for o in store.owned_by(&uid) {
                // A label alone counts only when this plugin set it (another plugin's child of the
                // same owner is not ours to prune).
                let by_ref = o.owner_references().iter().any(|r| r.uid == uid);
                let ours = o.labels().get(PLUGIN_LABEL) == Some(&self.meta.name);
                if by_ref || ours {
                    out.push((store.clone(), o));
                }
            }
        }
        out
    }

    fn check_scope(&self, what: &str, namespace: Option<&str>, errors: &mut Vec<String>) {
        if !self.meta.namespaces.allows(namespace) {
            errors.push(format!(
                "{what}: namespace {} is outside the plugin's namespaces",
                namespace.unwrap_or("")
            ));
        }
    }

    fn resolve_ref(&self, r: &ObjectRef, verb: Verb, errors: &mut Vec<String>) -> Option<Arc<KindStore>> {
        let what = format!(
            "{} {} {}",
            match verb {
                Verb::Patch => "patch of",
                Verb::Delete => "deletion of",
            },
            r.kind,
            r.name
        );
        if !self.meta.may(verb, &r.kind) {
            errors.push(format!("{what}: kind {} is not declared for this", r.kind));
            return None;
        }
        self.check_scope(&what, r.namespace.as_deref(), errors);
        let store = self.cache.get(&r.kind);
        if store.is_none() {
            errors.push(format!("{what}: kind {} is not watched", r.kind));
        }
        store
    }

    fn plan_children(&self, desired: &Desired, errors: &mut Vec<String>) -> Vec<Child> {
        let mut children = Vec::new();
        for (i, obj) in desired.apply.iter().enumerate() {
            let Some(gvk) = Gvk::of_object(obj) else {
                errors.push(format!("apply[{i}]: an object needs apiVersion and kind"));
                continue;
            };
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let what = format!("apply of {gvk} {name}");
            if name.is_empty() {
                errors.push(format!("{what}: metadata.name is required"));
                continue;
            }
            if !self.meta.owns.contains(&gvk) {
                errors.push(format!("{what}: kind {gvk} is not in the plugin's owns"));
                continue;
            }
            let Some(store) = self.cache.get(&gvk) else {
                errors.push(format!("{what}: kind {gvk} is not watched"));
                continue;
            };
            let namespace = if store.namespaced {
                obj.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(String::from)
                    .or(self.object.namespace())
            } else {
                None
            };
            if store.namespaced && namespace.is_none() {
                errors.push(format!(
                    "{what}: a namespaced child of a cluster-scoped object needs metadata.namespace"
                ));
                continue;
            }
            self.check_scope(&what, namespace.as_deref(), errors);
            let body = self.child_body(obj, namespace.as_deref());
            children.push(Child {
                store,
                namespace,
                name,
                body,
            });
        }
        children
    }

    /// Adds the owner reference (where Kubernetes allows one) and the tracking labels.
    fn child_body(&self, obj: &Value, namespace: Option<&str>) -> Value {
        let mut body = obj.clone();
        if body.get("metadata").is_none_or(|m| !m.is_object()) {
            body["metadata"] = json!({});
        }
        let meta = body["metadata"].as_object_mut().expect("metadata is an object");
        for f in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            meta.remove(f);
        }
        match namespace {
            Some(ns) => meta.insert("namespace".into(), ns.into()),
            None => meta.remove("namespace"),
        };
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        labels[PLUGIN_LABEL] = json!(self.meta.name);
        labels[OWNER_UID_LABEL] = json!(self.uid());
        let owner = format!(
            "{}/{}",
            self.object.namespace().unwrap_or_default(),
            self.object.name_any()
        );
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        annotations[OWNER_ANNOTATION] = json!(owner);
        // Owner references may only point within the namespace, or at a cluster-scoped owner.
        let same_scope = !self.primary.namespaced || namespace == self.object.namespace().as_deref();
        if same_scope {
            meta.insert(
                "ownerReferences".into(),
                json!([{
                    "apiVersion": self.primary.resource.api_version,
                    "kind": self.primary.resource.kind,
                    "name": self.object.name_any(),
                    "uid": self.uid(),
                    "controller": true,
                    "blockOwnerDeletion": true,
                }]),
            );
        }
        body
    }

    /// Whether the cached child already shows the applied configuration, and this manager owns no
    /// field the configuration dropped.
    fn child_unchanged(&self, child: &Child) -> bool {
        let Some(cached) = child.store.get(child.namespace.as_deref(), &child.name) else {
            return false;
        };
        if !is_subset(&child.body, &cached.to_value()) {
            return false;
        }
        let manager = self.meta.field_manager();
        let owned = cached
            .managed_fields()
            .into_iter()
            .find(|m| m.manager.as_deref() == Some(&manager) && m.operation.as_deref() == Some("Apply"))
            .and_then(|m| m.fields_v1)
            .and_then(|f| FieldSet::from_fields_v1(&f.0).ok());
        let Some(owned) = owned else { return false };
        let Ok(wanted) = FieldSet::from_value(&child.body, &BuiltinStructure) else {
            return false;
        };
        owned.difference(&wanted).is_empty()
    }

    /// Whether a patch would change nothing in the cached object.
    fn patch_is_noop(cached: &CachedObject, patch_type: PatchType, body: &Value) -> bool {
        let mut doc = cached.to_value();
        let before = doc.clone();
        let applied = match patch_type {
            PatchType::Merge => {
                json_patch::merge(&mut doc, body);
                true
            }
            PatchType::Json => serde_json::from_value::<json_patch::Patch>(body.clone())
                .ok()
                .is_some_and(|ops| json_patch::patch(&mut doc, &ops).is_ok()),
        };
        applied && doc == before
    }
}

/// Plans a desired state (see the module docs). `now` stamps new status conditions.
pub fn plan(cx: &Context<'_>, desired: &Desired, now: &str) -> Result<Plan, WriteError> {
    let mut errors = Vec::new();
    let children = cx.plan_children(desired, &mut errors);
    let patches: Vec<_> = desired
        .patches
        .iter()
        .map(|p| (p, cx.resolve_ref(&p.target, Verb::Patch, &mut errors)))
        .collect();
    let deletions: Vec<_> = desired
        .deletions
        .iter()
        .map(|d| (d, cx.resolve_ref(d, Verb::Delete, &mut errors)))
        .collect();
    if !errors.is_empty() {
        return Err(WriteError::Refused(errors));
    }
    let mut plan = Plan::default();
    let finalizer = cx.meta.finalizer_name();
    let holds = cx.object.finalizers().contains(&finalizer);
    let deleting = cx.object.metadata.deletion_timestamp.is_some();

    // The finalizer first: a child must never exist while its owner could go without cleanup.
    if desired.finalizer && !holds && !deleting {
        let mut finalizers = cx.object.finalizers().to_vec();
        finalizers.push(finalizer.clone());
        plan.writes.push(Write::AddFinalizer {
            target: cx.primary_target(),
            finalizers,
            resource_version: cx.object.resource_version(),
        });
    }

    let mut wanted: HashSet<(Gvk, Option<String>, String)> = HashSet::new();
    for child in children {
        wanted.insert((
            child.store.gvk.clone(),
            child.namespace.clone(),
            child.name.clone(),
        ));
        if cx.child_unchanged(&child) {
            plan.skipped += 1;
            continue;
        }
        plan.writes.push(Write::Apply {
            target: target(&child.store, child.namespace, child.name),
            body: child.body,
        });
    }

    // Pruning: children this object owned that are no longer desired.
    for (store, obj) in cx.children() {
        let key = (store.gvk.clone(), obj.namespace(), obj.name_any());
        if wanted.contains(&key) || obj.metadata.deletion_timestamp.is_some() {
            continue;
        }
        plan.writes.push(Write::Delete {
            target: target(&store, obj.namespace(), obj.name_any()),
        });
    }

    for (p, store) in patches {
        let store = store.expect("checked above");
        let ns = p.target.namespace.as_deref();
        if let Some(cached) = store.get(ns, &p.target.name)
            && Context::patch_is_noop(&cached, p.patch_type, &p.body)
        {
            plan.skipped += 1;
            continue;
        }
        if p.patch_type == PatchType::Json
            && let Err(e) = serde_json::from_value::<json_patch::Patch>(p.body.clone())
        {
            return Err(WriteError::Invalid {
                what: format!("patch of {} {}", p.target.kind, p.target.name),
                reason: format!("not a JSON patch: {e}"),
            });
        }
        plan.writes.push(Write::Patch {
            target: target(&store, p.target.namespace.clone(), p.target.name.clone()),
            patch_type: p.patch_type,
            body: p.body.clone(),
        });
    }

    for (d, store) in deletions {
        let store = store.expect("checked above");
        match store.get(d.namespace.as_deref(), &d.name) {
            Some(o) if o.metadata.deletion_timestamp.is_none() => plan.writes.push(Write::Delete {
                target: target(&store, d.namespace.clone(), d.name.clone()),
            }),
            _ => plan.skipped += 1,
        }
    }

    if let Some(status) = &desired.status {
        let current = cx.object.to_value();
        let mut status = status.clone();
        stamp_conditions(&mut status, current.get("status"), now);
        if current.get("status").is_some_and(|s| is_subset(&status, s)) {
            plan.skipped += 1;
        } else {
            plan.writes.push(Write::Status {
                target: cx.primary_target(),
                body: json!({
                    "apiVersion": cx.primary.resource.api_version,
                    "kind": cx.primary.resource.kind,
                    "metadata": {"name": cx.object.name_any()},
                    "status": status,
                }),
            });
        }
    }

    // The finalizer last: released only once everything else is written.
    if !desired.finalizer
        && let Some(index) = cx.object.finalizers().iter().position(|f| *f == finalizer)
    {
        plan.writes.push(Write::RemoveFinalizer {
            target: cx.primary_target(),
            index,
            name: finalizer,
        });
    }
    Ok(plan)
}

/// Gives status conditions without a `lastTransitionTime` the time of their last transition: the
/// cached condition's time while its status is unchanged, `now` when it changed or is new.
pub fn stamp_conditions(status: &mut Value, cached: Option<&Value>, now: &str) {
    let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) else {
        return;
    };
    let old = cached.and_then(|c| c.get("conditions")).and_then(Value::as_array);
    for c in conditions.iter_mut().filter_map(Value::as_object_mut) {
        if c.get("lastTransitionTime").is_some_and(|t| !t.is_null()) {
            continue;
        }
        let previous = old.and_then(|o| o.iter().find(|p| p.get("type") == c.get("type")));
        let time = match previous {
            Some(p) if p.get("status") == c.get("status") && p.get("lastTransitionTime").is_some() => {
                p["lastTransitionTime"].clone()
            }
            _ => json!(now),
        };
        c.insert("lastTransitionTime".into(), time);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::MemoryCache;

    #[test]
    fn condition_times_follow_transitions() {
        let cached = json!({"conditions": [
            {"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Synced", "status": "True", "lastTransitionTime": "2026-01-02T00:00:00Z"},
        ]});
        let mut status = json!({"conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "Synced", "status": "True"},
            {"type": "New", "status": "True"},
        ]});
        stamp_conditions(&mut status, Some(&cached), "2026-11-23T00:00:00Z");
        let times: Vec<&str> = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["lastTransitionTime"].as_str().unwrap())
            .collect();
        assert_eq!(
            times,
            vec![
                "2026-11-23T00:00:00Z",
                "2026-01-02T00:00:00Z",
                "2026-11-23T00:00:00Z"
            ]
        );
    }

    #[test]
    fn subset_compares_fields_and_lists() {
        let cached = json!({"a": 1, "b": {"c": [1, {"d": 2, "e": 3}]}, "f": "x"});
        assert!(is_subset(&json!({"b": {"c": [1, {"d": 2}]}}), &cached));
        assert!(
            !is_subset(&json!({"b": {"c": [1]}}), &cached),
            "lists must have the same length"
        );
        assert!(!is_subset(&json!({"a": 2}), &cached));
        assert!(!is_subset(&json!({"g": null}), &cached));
    }

    fn setup(
        finalizers: Value,
        deleting: bool,
    ) -> (MemoryCache, Arc<KindStore>, Arc<CachedObject>, Metadata) {
        let cm = Gvk::new("", "v1", "ConfigMap");
        let cache = MemoryCache::default();
        let store = Arc::new(KindStore::for_kind(&cm, true));
        let mut v = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"namespace": "a", "name": "src", "uid": "u1", "resourceVersion": "5", "finalizers": finalizers}});
        if deleting {
            v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        store.apply(serde_json::from_value::<kube::api::DynamicObject>(v).unwrap());
        cache.add(store.clone());
        let obj = store.get(Some("a"), "src").unwrap();
        let meta = Metadata::new("rep", "1", cm.clone()).owns(cm);
        (cache, store, obj, meta)
    }

    #[test]
    fn the_finalizer_comes_first_and_goes_last() {
        let (cache, store, obj, meta) = setup(json!(["other/x"]), false);
        let cx = Context {
            meta: &meta,
            cache: &cache,
            primary: &store,
            object: &obj,
        };
        let child =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "copy", "namespace": "b"}});
        let desired = Desired {
            apply: vec![child.clone()],
            finalizer: true,
            ..Default::default()
        };
        let p = plan(&cx, &desired, "now").unwrap();
        assert!(
            matches!(&p.writes[0], Write::AddFinalizer { finalizers, resource_version, .. }
            if finalizers == &["other/x", "wasmop.io/rep"] && resource_version.as_deref() == Some("5"))
        );
        assert!(matches!(&p.writes[1], Write::Apply { target, .. } if target.name == "copy"));
        assert_eq!(p.writes.len(), 2);

        let (cache, store, obj, meta) = setup(json!(["other/x", "wasmop.io/rep"]), true);
        let cx = Context {
            meta: &meta,
            cache: &cache,
            primary: &store,
            object: &obj,
        };
        let p = plan(
            &cx,
            &Desired {
                status: Some(json!({"phase": "Gone"})),
                ..Default::default()
            },
            "now",
        )
        .unwrap();
        assert!(matches!(&p.writes[0], Write::Status { .. }));
        assert!(
            matches!(&p.writes[1], Write::RemoveFinalizer { index: 1, name, .. } if name == "wasmop.io/rep")
        );
        // Held during deletion: nothing to do.
        let p = plan(
            &cx,
            &Desired {
                finalizer: true,
                ..Default::default()
            },
            "now",
        )
        .unwrap();
        assert!(p.writes.is_empty());
        // Not asked for and not held: no finalizer write at all.
        let (cache, store, obj, meta) = setup(json!([]), false);
        let cx = Context {
            meta: &meta,
            cache: &cache,
            primary: &store,
            object: &obj,
        };
        assert!(plan(&cx, &Desired::default(), "now").unwrap().writes.is_empty());
    }

    #[test]
    fn undeclared_writes_refuse_the_whole_answer() {
        let (cache, store, obj, meta) = setup(json!([]), false);
        let cx = Context {
            meta: &meta,
            cache: &cache,
            primary: &store,
            object: &obj,
        };
        let desired = Desired {
            apply: vec![
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fine"}}),
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "no"}}),
            ],
            deletions: vec![ObjectRef::new(Gvk::new("", "v1", "Pod"), Some("a"), "p")],
            ..Default::default()
        };
        let Err(WriteError::Refused(reasons)) = plan(&cx, &desired, "now") else {
            panic!("refused")
        };
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0].contains("Secret"), "{reasons:?}");
    }
}
