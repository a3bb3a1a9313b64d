//! The verbs on objects — get, list, create, update, patch, delete, deletecollection — with the
//! metadata semantics controllers rely on: uid, creationTimestamp, resourceVersion, generation,
//! generateName, status-subresource isolation, finalizers and propagation policies, optimistic
//! concurrency and no-op detection. HTTP handlers and the built-in controllers both call these, so
//! an internal write is exactly an API write (same events, same revisions).
//!
//! Everything here is synchronous: writes block on the store's fsync, so async callers run them on
//! the blocking pool.

use std::sync::Arc;

use base64::Engine;
use rand::Rng;
use serde_json::{Map, Value, json};
use wasmop_apimachinery::selector::{FieldSelector, LabelSelector};
use wasmop_apimachinery::time;

use crate::Core;
use crate::admission::{
    self, FieldValidation, finalizers, is_terminating, meta, meta_mut, meta_str, name_of,
};
use crate::error::{ApiError, ApiResult, Cause};
use crate::managed;
use crate::patch::{self, PatchType};
use crate::registry::ResourceInfo;
use crate::store::{Key, Mutation, Outcome};

mod delete;
mod write;

pub use delete::{delete, delete_collection};
use write::namespace_pending;
pub use write::{create, patch, update};

/// Options shared by create, update and patch.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `?fieldManager=`, or the User-Agent's product name.
    pub manager: String,
    /// Whether `fieldManager` was given explicitly (server-side apply requires it).
    pub manager_explicit: bool,
    pub dry_run: bool,
    pub validation: FieldValidation,
    /// `?force=` of server-side apply.
    pub force: bool,
}

/// A successful write.
#[derive(Debug, Clone)]
pub struct Written {
    /// 200 or 201.
    pub code: u16,
    pub object: Value,
    /// `Warning` headers (unknown fields dropped).
    pub warnings: Vec<String>,
}

/// `DeleteOptions` from the query or the body.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub propagation: Option<String>,
    pub orphan_dependents: Option<bool>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Fills in what a `DeleteOptions` body says (query parameters already set win).
    pub fn merge_body(&mut self, body: &Value) {
        if self.propagation.is_none() {
            self.propagation = body
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(String::from);
        }
        if self.orphan_dependents.is_none() {
            self.orphan_dependents = body.get("orphanDependents").and_then(Value::as_bool);
        }
        if let Some(p) = body.get("preconditions") {
            self.precondition_uid = p.get("uid").and_then(Value::as_str).map(String::from);
            self.precondition_rv = p.get("resourceVersion").and_then(Value::as_str).map(String::from);
        }
        if body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            self.dry_run = true;
        }
    }
}

/// A successful delete: the object is gone (a `Status` Success) or pending finalizers (the object).
#[derive(Debug, Clone)]
pub struct Deleted {
    pub code: u16,
    pub body: Value,
}

/// `list` parameters.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

/// Label and field selectors, parsed once and checked against what the kind supports.
#[derive(Debug, Default)]
pub struct Selectors {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

impl Selectors {
    pub fn parse(ri: &ResourceInfo, label: Option<&str>, field: Option<&str>) -> ApiResult<Selectors> {
        let labels = match label.filter(|s| !s.is_empty()) {
            Some(s) => Some(LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?),
            None => None,
        };
        let fields = match field.filter(|s| !s.is_empty()) {
            Some(s) => {
                let sel = FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?;
                sel.check_fields(selectable_fields(ri))
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                Some(sel)
            }
            None => None,
        };
        Ok(Selectors { labels, fields })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.labels
            .as_ref()
            .is_none_or(|l| l.matches(meta(obj).and_then(|m| m.get("labels")).and_then(Value::as_object)))
            && self.fields.as_ref().is_none_or(|f| f.matches(obj))
    }
}

/// Field selectors a kind supports beyond `metadata.name`/`metadata.namespace` (None: only those).
fn selectable_fields(ri: &ResourceInfo) -> Option<&'static [&'static str]> {
    const META: [&str; 2] = ["metadata.name", "metadata.namespace"];
    match (ri.group.as_str(), ri.plural.as_str()) {
        ("", "pods") => Some(&[
            META[0],
            META[1],
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ]),
        ("", "events") => Some(&[
            META[0],
            META[1],
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ]),
        ("", "secrets") => Some(&[META[0], META[1], "type"]),
        ("", "namespaces") => Some(&[META[0], META[1], "status.phase"]),
        // `kubectl cordon`/`drain` and kube-rs's node helpers list nodes by schedulability.
        ("", "nodes") => Some(&[META[0], META[1], "spec.unschedulable"]),
        ("", "replicationcontrollers") => Some(&[META[0], META[1], "status.replicas"]),
        _ => None,
    }
}

pub fn key(ri: &ResourceInfo, namespace: &str, name: &str) -> Key {
    Key {
        resource: ri.storage_key(),
        namespace: if ri.namespaced {
            namespace.to_string()
        } else {
            String::new()
        },
        name: name.to_string(),
    }
}

/// The object as served at `ri`'s version (objects are stored once for all versions of a resource).
pub fn present(ri: &ResourceInfo, obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(m) = out.as_object_mut() {
        m.insert("apiVersion".into(), ri.api_version().into());
        m.insert("kind".into(), ri.kind.clone().into());
    }
    out
}

pub fn get(core: &Core, ri: &ResourceInfo, namespace: &str, name: &str) -> ApiResult<Value> {
    core.store
        .get(&key(ri, namespace, name))
        .map(|o| present(ri, &o))
        .ok_or_else(|| ApiError::not_found(ri.resource_ref(), name))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

fn decode_continue(token: &str) -> ApiResult<ContinueToken> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| ApiError::bad_request(format!("invalid continue token: {e}")))?;
    serde_json::from_slice::<ContinueToken>(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid continue token: continue key is not valid: {e}")))
}

fn encode_continue(rv: i64, start: &str) -> String {
    let t = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv,
        start: start.to_string(),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&t).unwrap_or_default())
}

fn sort_key(obj: &Value, all_namespaces: bool) -> String {
    let name = name_of(obj);
    match meta_str(obj, "namespace") {
        Some(ns) if all_namespaces => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// `list`: a `<Kind>List` of the matching objects, paginated with `limit`/`continue`.
pub fn list(core: &Core, ri: &ResourceInfo, namespace: Option<&str>, opts: &ListOptions) -> ApiResult<Value> {
    let selectors = Selectors::parse(ri, opts.label_selector.as_deref(), opts.field_selector.as_deref())?;
    let current = core.store.revision();
    let rv = opts.resource_version.as_deref().unwrap_or("");
    if !rv.is_empty() && rv != "0" {
        let wanted: u64 = rv
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?;
        if opts.resource_version_match.as_deref() == Some("Exact") && wanted != current {
            return Err(ApiError::gone(
                "The resourceVersion for the provided list is too old.",
            ));
        }
        if wanted > current {
            return Err(ApiError::timeout("Timeout: Too large resource version", 1));
        }
    }
    let (revision, items) = core.store.list(
        &ri.storage_key(),
        namespace.filter(|n| !n.is_empty() && ri.namespaced),
    );
    let all_namespaces = namespace.is_none_or(str::is_empty) && ri.namespaced;
    let mut list_rv = revision as i64;
    let mut start = String::new();
    if let Some(token) = opts.continue_token.as_deref().filter(|t| !t.is_empty()) {
        let t = decode_continue(token)?;
        if t.rv >= 0 && (t.rv as u64) < core.store.compacted_revision() {
            let mut e = ApiError::gone(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
            );
            e.continue_token = Some(encode_continue(-1, &t.start));
            return Err(e);
        }
        if t.rv > 0 {
            list_rv = t.rv;
        }
        start = t.start;
    }
    let limit = if rv == "0" {
        None
    } else {
        opts.limit.filter(|l| *l > 0)
    };
    // Items are sorted by (namespace, name); the token's start key is just past the last item returned.
    let after: Option<(String, String)> = (!start.is_empty()).then(|| {
        let key = start.trim_end_matches('\0');
        match key.split_once('/') {
            Some((ns, name)) if all_namespaces => (ns.to_string(), name.to_string()),
            _ => (namespace.unwrap_or("").to_string(), key.to_string()),
        }
    });
    let id = |o: &Value| {
        (
            meta_str(o, "namespace").unwrap_or("").to_string(),
            name_of(o).to_string(),
        )
    };
    let mut selected = items
        .iter()
        .filter(|o| after.as_ref().is_none_or(|a| id(o) > *a))
        .filter(|o| selectors.matches(o));
    let mut page: Vec<Value> = Vec::new();
    let mut last = None;
    let mut more = false;
    for obj in selected.by_ref() {
        if limit.is_some_and(|l| page.len() >= l) {
            more = true;
            break;
        }
        last = Some(obj.clone());
        page.push(list_item(ri, obj));
    }
    let mut metadata = Map::new();
    metadata.insert("resourceVersion".into(), list_rv.to_string().into());
    if let (true, Some(last)) = (more, last) {
        let remaining = 1 + selected.count();
        let token = encode_continue(list_rv, &format!("{}\0", sort_key(&last, all_namespaces)));
        metadata.insert("continue".into(), token.into());
        metadata.insert("remainingItemCount".into(), remaining.into());
    } else if ri.is_custom() {
        metadata.insert("continue".into(), "".into());
    }
    Ok(json!({
        "kind": ri.list_kind,
        "apiVersion": ri.api_version(),
        "metadata": metadata,
        "items": page,
    }))
}

/// Built-in list items omit `kind`/`apiVersion`; custom resource items carry them (reference behaviour 45).
fn list_item(ri: &ResourceInfo, obj: &Value) -> Value {
    let mut item = present(ri, obj);
    if !ri.is_custom()
        && let Some(m) = item.as_object_mut()
    {
        m.remove("kind");
        m.remove("apiVersion");
    }
    item
}
