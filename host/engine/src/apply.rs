//! Making a plugin's desired state true: server-side apply of children (with the owner reference and
//! tracking labels the host sets), pruning of children no longer desired, patches, deletions, the
//! status subresource and events. Every write is checked against the plugin's declaration first (an
//! undeclared kind or namespace refuses the whole answer, nothing is sent), skipped when the cache
//! already shows its result, and paced by the global token bucket.

use std::collections::HashSet;
use std::sync::Arc;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use wasmop_apimachinery::fieldmanager::FieldSet;
use wasmop_apimachinery::structure::BuiltinStructure;
use wasmop_contract::{Desired, Gvk, Metadata, ObjectRef, PatchType, Verb};

use crate::cache::{Caches, KindWatch};
use crate::ratelimit::TokenBucket;

/// Label on every child: the plugin that owns it.
pub const PLUGIN_LABEL: &str = "wasmop.io/plugin";
/// Label on every child: the owner's uid (children in other namespaces are found by it).
pub const OWNER_UID_LABEL: &str = "wasmop.io/owner-uid";
/// Annotation on every child: `namespace/name` of the owner (maps a child's events to its owner).
pub const OWNER_ANNOTATION: &str = "wasmop.io/owner";

/// Why applying a desired state failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The plugin asked for writes it did not declare; nothing was sent.
    #[error("refused undeclared writes: {}", .0.join("; "))]
    Refused(Vec<String>),
    /// The API server asked us to slow down.
    #[error("the API server answered 429; retry after {0:?}")]
    RetryAfter(std::time::Duration),
    /// Optimistic concurrency lost: retry with the fresh cached object.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Anything else: retried with backoff.
    #[error("{0}")]
    Failed(String),
}

impl From<kube::Error> for WriteError {
    fn from(e: kube::Error) -> Self {
        match &e {
            kube::Error::Api(s) if s.code == 429 => {
                let secs = s
                    .details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .filter(|s| *s > 0)
                    .unwrap_or(1);
                WriteError::RetryAfter(std::time::Duration::from_secs(u64::from(secs)))
            }
            kube::Error::Api(s) if s.code == 409 => WriteError::Conflict(s.message.clone()),
            _ => WriteError::Failed(e.to_string()),
        }
    }
}

fn gvk_of(obj: &Value) -> Option<Gvk> {
    let api_version = obj.get("apiVersion")?.as_str()?;
    let kind = obj.get("kind")?.as_str()?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    Some(Gvk::new(group, version, kind))
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

/// What one reconcile's writes work with.
pub struct Target<'a> {
    pub client: &'a Client,
    pub caches: &'a Caches,
    pub limiter: &'a TokenBucket,
    pub meta: &'a Metadata,
    pub primary: &'a KindWatch,
    pub object: &'a DynamicObject,
}

/// A child to apply, resolved and checked.
struct Child {
    watch: Arc<KindWatch>,
    namespace: Option<String>,
    name: String,
    body: Value,
}

/// Counts of what [`execute`] sent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub writes: u64,
    pub skipped: u64,
}

impl Target<'_> {
    fn primary_namespace(&self) -> Option<String> {
        self.object.namespace()
    }

    fn uid(&self) -> String {
        self.object.uid().unwrap_or_default()
    }

    fn manager(&self) -> String {
        self.meta.field_manager()
    }

    /// The children of this object currently in the cache, per owned kind.
    pub fn children(&self) -> Vec<(Arc<KindWatch>, Arc<DynamicObject>)> {
        let uid = self.uid();
        let mut out = Vec::new();
        for g in &self.meta.owns {
            let Some(w) = self.caches.get(g) else { continue };
            for o in w.list(None, None) {
                let by_label = o.labels().get(OWNER_UID_LABEL) == Some(&uid);
                let by_ref = o.owner_references().iter().any(|r| r.uid == uid);
                if by_label || by_ref {
                    out.push((w.clone(), o));
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

    fn resolve_ref(&self, r: &ObjectRef, verb: Verb, errors: &mut Vec<String>) -> Option<Arc<KindWatch>> {
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
        let w = self.caches.get(&r.kind);
        if w.is_none() {
            errors.push(format!("{what}: kind {} is not watched", r.kind));
        }
        w
    }

    /// The children to apply with the host's metadata, or the list of refused writes.
    fn plan_children(&self, desired: &Desired, errors: &mut Vec<String>) -> Vec<Child> {
        let mut children = Vec::new();
        for (i, obj) in desired.apply.iter().enumerate() {
            let Some(gvk) = gvk_of(obj) else {
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
            let Some(watch) = self.caches.get(&gvk) else {
                errors.push(format!("{what}: kind {gvk} is not watched"));
                continue;
            };
            let namespace = if watch.namespaced {
                obj.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(String::from)
                    .or(self.primary_namespace())
            } else {
                None
            };
            if watch.namespaced && namespace.is_none() {
                errors.push(format!(
                    "{what}: a namespaced child of a cluster-scoped object needs metadata.namespace"
                ));
                continue;
            }
            self.check_scope(&what, namespace.as_deref(), errors);
            let body = self.child_body(obj, namespace.as_deref());
            children.push(Child {
                watch,
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
            self.primary_namespace().unwrap_or_default(),
            self.object.name_any()
        );
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        annotations[OWNER_ANNOTATION] = json!(owner);
        // Owner references may only point within the namespace, or at a cluster-scoped owner.
        let same_scope = !self.primary.namespaced || namespace == self.primary_namespace().as_deref();
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
        let Some(cached) = child.watch.get(child.namespace.as_deref(), &child.name) else {
            return false;
        };
        let cached_json = child.watch.to_json(&cached);
        if !is_subset(&child.body, &cached_json) {
            return false;
        }
        let manager = self.manager();
        let owned = cached
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .find(|m| m.manager.as_deref() == Some(&manager) && m.operation.as_deref() == Some("Apply"))
            .and_then(|m| m.fields_v1.as_ref())
            .and_then(|f| FieldSet::from_fields_v1(&f.0).ok());
        let Some(owned) = owned else { return false };
        let Ok(wanted) = FieldSet::from_value(&child.body, &BuiltinStructure) else {
            return false;
        };
        owned.difference(&wanted).is_empty()
    }

    fn api_for(watch: &KindWatch, client: &Client, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) if watch.namespaced => Api::namespaced_with(client.clone(), ns, &watch.resource),
            _ => Api::all_with(client.clone(), &watch.resource),
        }
    }
}

/// Applies a desired state (see the module docs). Status and events are about the primary object.
pub async fn execute(t: &Target<'_>, desired: &Desired) -> Result<Sent, WriteError> {
    let mut errors = Vec::new();
    let children = t.plan_children(desired, &mut errors);
    let patches: Vec<_> = desired
        .patches
        .iter()
        .map(|p| (p, t.resolve_ref(&p.target, Verb::Patch, &mut errors)))
        .collect();
    let deletions: Vec<_> = desired
        .deletions
        .iter()
        .map(|d| (d, t.resolve_ref(d, Verb::Delete, &mut errors)))
        .collect();
    if !errors.is_empty() {
        return Err(WriteError::Refused(errors));
    }
    let mut sent = Sent::default();
    let manager = t.manager();
    let apply_params = PatchParams::apply(&manager).force();

    let mut wanted: HashSet<(Gvk, Option<String>, String)> = HashSet::new();
    for child in &children {
        wanted.insert((
            child.watch.gvk.clone(),
            child.namespace.clone(),
            child.name.clone(),
        ));
        if t.child_unchanged(child) {
            sent.skipped += 1;
            continue;
        }
        t.limiter.acquire().await;
        Target::api_for(&child.watch, t.client, child.namespace.as_deref())
            .patch(&child.name, &apply_params, &Patch::Apply(&child.body))
            .await?;
        sent.writes += 1;
    }

    // Pruning: children this object owned that are no longer desired.
    for (watch, obj) in t.children() {
        let key = (watch.gvk.clone(), obj.namespace(), obj.name_any());
        if wanted.contains(&key) || obj.metadata.deletion_timestamp.is_some() {
            continue;
        }
        t.limiter.acquire().await;
        match Target::api_for(&watch, t.client, obj.namespace().as_deref())
            .delete(&obj.name_any(), &DeleteParams::background())
            .await
        {
            Ok(_) => sent.writes += 1,
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }

    for (p, watch) in patches {
        let watch = watch.expect("checked above");
        let ns = p.target.namespace.as_deref();
        if let Some(cached) = watch.get(ns, &p.target.name) {
            let mut doc = watch.to_json(&cached);
            let before = doc.clone();
            let applied = match p.patch_type {
                PatchType::Merge => {
                    json_patch::merge(&mut doc, &p.body);
                    true
                }
                PatchType::Json => serde_json::from_value::<json_patch::Patch>(p.body.clone())
                    .ok()
                    .is_some_and(|ops| json_patch::patch(&mut doc, &ops).is_ok()),
            };
            if applied && doc == before {
                sent.skipped += 1;
                continue;
            }
        }
        t.limiter.acquire().await;
        let api = Target::api_for(&watch, t.client, ns);
        let params = PatchParams {
            field_manager: Some(manager.clone()),
            ..Default::default()
        };
        match p.patch_type {
            PatchType::Merge => api.patch(&p.target.name, &params, &Patch::Merge(&p.body)).await?,
            PatchType::Json => {
                let ops: json_patch::Patch = serde_json::from_value(p.body.clone()).map_err(|e| {
                    WriteError::Failed(format!("invalid JSON patch for {}: {e}", p.target.name))
                })?;
                api.patch(&p.target.name, &params, &Patch::<()>::Json(ops))
                    .await?
            }
        };
        sent.writes += 1;
    }

    for (d, watch) in deletions {
        let watch = watch.expect("checked above");
        let ns = d.namespace.as_deref();
        match watch.get(ns, &d.name) {
            None => {
                sent.skipped += 1;
                continue;
            }
            Some(o) if o.metadata.deletion_timestamp.is_some() => {
                sent.skipped += 1;
                continue;
            }
            Some(_) => {}
        }
        t.limiter.acquire().await;
        match Target::api_for(&watch, t.client, ns)
            .delete(&d.name, &DeleteParams::background())
            .await
        {
            Ok(_) => sent.writes += 1,
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }

    if let Some(status) = &desired.status {
        let current = t.primary.to_json(t.object);
        let mut status = status.clone();
        stamp_conditions(&mut status, current.get("status"), &now());
        let status = &status;
        let unchanged = current.get("status").is_some_and(|s| is_subset(status, s));
        if unchanged {
            sent.skipped += 1;
        } else {
            let body = json!({
                "apiVersion": t.primary.resource.api_version,
                "kind": t.primary.resource.kind,
                "metadata": {"name": t.object.name_any()},
                "status": status,
            });
            t.limiter.acquire().await;
            Target::api_for(t.primary, t.client, t.primary_namespace().as_deref())
                .patch_status(&t.object.name_any(), &apply_params, &Patch::Apply(&body))
                .await?;
            sent.writes += 1;
        }
    }
    Ok(sent)
}

/// Now, as Kubernetes prints timestamps (plugins have no clock; the host stamps times).
fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
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

/// Adds (or removes) the plugin's finalizer on the primary object, guarded by its resourceVersion.
pub async fn set_finalizer(t: &Target<'_>, present: bool) -> Result<(), WriteError> {
    let name = t.meta.finalizer_name();
    let mut finalizers: Vec<String> = t.object.finalizers().to_vec();
    let has = finalizers.contains(&name);
    if has == present {
        return Ok(());
    }
    if present {
        finalizers.push(name);
    } else {
        finalizers.retain(|f| *f != name);
    }
    let patch =
        json!({"metadata": {"finalizers": finalizers, "resourceVersion": t.object.resource_version()}});
    t.limiter.acquire().await;
    let params = PatchParams {
        field_manager: Some(t.manager()),
        ..Default::default()
    };
    match Target::api_for(t.primary, t.client, t.primary_namespace().as_deref())
        .patch(&t.object.name_any(), &params, &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn write_errors_classify_api_answers() {
        let status = |code: u16| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                message: "m".into(),
                details: Some(serde_json::from_value(json!({"retryAfterSeconds": 7})).unwrap()),
                ..Default::default()
            }))
        };
        assert!(matches!(WriteError::from(status(429)), WriteError::RetryAfter(d) if d.as_secs() == 7));
        assert!(matches!(WriteError::from(status(409)), WriteError::Conflict(_)));
        assert!(matches!(WriteError::from(status(500)), WriteError::Failed(_)));
    }
}
