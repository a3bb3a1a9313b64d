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

/// Checks `kind`/`apiVersion` of a body against the resource it was sent to, and fills them in.
fn check_identity(ri: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {})",
            ri.kind
        )));
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let group = crate::registry::split_api_version(api_version).0;
    if (!kind.is_empty() && kind != ri.kind) || (!api_version.is_empty() && group != ri.group) {
        let v = crate::registry::split_api_version(api_version).1;
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {}: converting ({v}.{kind}) to ({}.{}): unknown conversion",
            ri.kind,
            if ri.group.is_empty() { "core" } else { &ri.group },
            ri.kind
        )));
    }
    let m = obj.as_object_mut().expect("checked above");
    m.insert("apiVersion".into(), ri.api_version().into());
    m.insert("kind".into(), ri.kind.clone().into());
    Ok(())
}

const SYSTEM_FIELDS: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
];

fn random_suffix() -> String {
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Namespaced creates need an existing namespace that is not terminating.
fn check_namespace(core: &Core, ri: &ResourceInfo, namespace: &str, name: &str) -> ApiResult<()> {
    if !ri.namespaced {
        return Ok(());
    }
    let ns = core.store.get(&Key {
        resource: "/namespaces".into(),
        namespace: String::new(),
        name: namespace.into(),
    });
    match ns {
        None => Err(ApiError::not_found(
            crate::error::ResourceRef {
                group: "",
                plural: "namespaces",
            },
            namespace,
        )),
        Some(ns) if is_terminating(&ns) => {
            let mut e = ApiError::forbidden(
                ri.resource_ref(),
                format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                    ri.resource_ref().qualified()
                ),
            );
            if let Some(Value::Object(d)) = e.details.as_mut() {
                d.insert("name".into(), name.into());
                d.insert(
                    "causes".into(),
                    json!([{"reason": "NamespaceTerminating", "message": format!("namespace {namespace} is being terminated"), "field": "metadata.namespace"}]),
                );
            }
            Err(e)
        }
        Some(_) => Ok(()),
    }
}

/// Defaults the server itself fills in for a few built-in kinds.
fn builtin_defaults(ri: &ResourceInfo, obj: &mut Value) {
    if ri.group.is_empty() && ri.plural == "secrets" && obj.get("type").is_none_or(Value::is_null) {
        obj["type"] = json!("Opaque");
    }
    if ri.group.is_empty() && ri.plural == "namespaces" {
        if obj.pointer("/spec/finalizers").is_none() {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
        }
        if obj.pointer("/status/phase").is_none() {
            obj["status"] = json!({"phase": "Active"});
        }
    }
    crate::defaults::apply(ri, obj);
}

/// Everything a create checks and sets, shared by POST and create-by-apply.
fn admit_create(
    ri: &ResourceInfo,
    namespace: &str,
    mut obj: Value,
    opts: &WriteOptions,
    now: &str,
) -> ApiResult<(Value, Vec<String>)> {
    check_identity(ri, &mut obj)?;
    let m = meta_mut(&mut obj);
    for f in SYSTEM_FIELDS {
        m.remove(*f);
    }
    let name_empty = m.get("name").and_then(Value::as_str).is_none_or(str::is_empty);
    if name_empty
        && let Some(prefix) = m
            .get("generateName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    {
        let name = format!("{prefix}{}", random_suffix());
        m.insert("name".into(), name.into());
    }
    if ri.namespaced {
        match m.get("namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && ns != namespace => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                m.insert("namespace".into(), namespace.into());
            }
        }
    } else {
        m.remove("namespace");
    }
    if ri.status && ri.is_custom() {
        obj.as_object_mut().map(|o| o.remove("status"));
    }
    builtin_defaults(ri, &mut obj);
    let normalized = admission::normalize(ri, obj, opts.validation)?;
    let mut obj = normalized.object;
    if ri.group == "apiextensions.k8s.io" && ri.plural == "customresourcedefinitions" {
        crate::controllers::crd::initial_status(&mut obj);
    }
    let causes = admission::validate_metadata(ri, &obj);
    if !causes.is_empty() {
        return Err(ApiError::invalid(&ri.kind, &ri.group, name_of(&obj), causes));
    }
    let generation = ri.generation;
    let m = meta_mut(&mut obj);
    m.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
    m.insert("creationTimestamp".into(), now.into());
    if generation {
        m.insert("generation".into(), 1.into());
    }
    Ok((obj, admission::unknown_field_warnings(&normalized.unknown)))
}

/// POST: creates a new object (409 AlreadyExists when the name is taken).
pub fn create(
    core: &Core,
    ri: &ResourceInfo,
    namespace: &str,
    body: Value,
    opts: &WriteOptions,
) -> ApiResult<Written> {
    let now = time::now();
    let (mut obj, warnings) = admit_create(ri, namespace, body, opts, &now)?;
    let name = name_of(&obj).to_string();
    check_namespace(core, ri, namespace, &name)?;
    managed::track_update(ri, None, &mut obj, &opts.manager, None, &now);
    if opts.dry_run {
        crate::defaults::on_create(core, ri, &mut obj)?;
        return Ok(Written {
            code: 201,
            object: present(ri, &obj),
            warnings,
        });
    }
    let outcome = core.store.mutate(&key(ri, namespace, &name), |current, _| {
        if current.is_some() {
            return Err(ApiError::already_exists(ri.resource_ref(), &name));
        }
        let mut obj = obj;
        crate::defaults::on_create(core, ri, &mut obj)?;
        Ok(Mutation::Put(obj))
    })?;
    Ok(Written {
        code: 201,
        object: present(ri, &outcome_object(outcome)),
        warnings,
    })
}

fn outcome_object(outcome: Outcome) -> Arc<Value> {
    match outcome {
        Outcome::Created(o) | Outcome::Updated(o) | Outcome::Deleted(o) | Outcome::Unchanged(Some(o)) => o,
        Outcome::Unchanged(None) => Arc::new(Value::Null),
    }
}

/// Status isolation: a `/status` write changes only `status`; a main write keeps `status` when the
/// resource has a status subresource.
fn isolate_subresource(ri: &ResourceInfo, subresource: Option<&str>, old: &Value, mut new: Value) -> Value {
    match subresource {
        Some("status") => {
            let mut out = old.clone();
            match new.as_object_mut().and_then(|o| o.remove("status")) {
                Some(status) => out["status"] = status,
                None => {
                    out.as_object_mut().map(|o| o.remove("status"));
                }
            }
            // Metadata the client sees as its own (resourceVersion precondition) travels along.
            if let Some(rv) = meta_str(&new, "resourceVersion") {
                meta_mut(&mut out).insert("resourceVersion".into(), rv.into());
            }
            out
        }
        _ if ri.status => {
            match old.get("status") {
                Some(status) => new["status"] = status.clone(),
                None => {
                    new.as_object_mut().map(|o| o.remove("status"));
                }
            }
            new
        }
        _ => new,
    }
}

/// Spec-like content: everything but metadata and status (what bumps `generation`).
fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    o
}

/// How an update's managedFields are computed.
enum Tracking<'a> {
    /// An Update operation by this manager.
    Update(&'a str),
    /// Already computed (server-side apply).
    Done,
}

/// The common tail of update, patch and apply: checks, system fields, generation, managedFields,
/// finalizer rules, and no-op detection.
fn finish_update(
    ri: &ResourceInfo,
    old: &Value,
    new: Value,
    subresource: Option<&str>,
    validation: FieldValidation,
    tracking: Tracking<'_>,
    now: &str,
) -> ApiResult<(Mutation, Vec<String>)> {
    let mut new = new;
    check_identity(ri, &mut new)?;
    let old_rv = meta_str(old, "resourceVersion").unwrap_or("");
    if let Some(rv) = meta_str(&new, "resourceVersion").filter(|rv| !rv.is_empty())
        && rv != old_rv
    {
        return Err(ApiError::conflict(ri.resource_ref(), name_of(old)));
    }
    {
        let old_meta = meta(old).cloned().unwrap_or_default();
        let m = meta_mut(&mut new);
        for f in SYSTEM_FIELDS.iter().chain(&["name", "namespace", "generateName"]) {
            match old_meta.get(*f) {
                Some(v) => m.insert((*f).into(), v.clone()),
                None => m.remove(*f),
            };
        }
    }
    builtin_defaults(ri, &mut new);
    crate::defaults::on_update(ri, old, &mut new);
    let normalized = admission::normalize_update(ri, new, Some(old), validation)?;
    let mut new = normalized.object;
    let causes = admission::validate_metadata(ri, &new);
    if !causes.is_empty() {
        return Err(ApiError::invalid(&ri.kind, &ri.group, name_of(&new), causes));
    }
    if is_terminating(old) {
        let old_f = finalizers(old);
        let added: Vec<String> = finalizers(&new)
            .into_iter()
            .filter(|f| !old_f.contains(f))
            .collect();
        if !added.is_empty() {
            let list = added
                .iter()
                .map(|f| format!("{f:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            let cause = Cause {
                reason: "FieldValueForbidden".into(),
                message: format!(
                    "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{list}}}"
                ),
                field: "metadata.finalizers".into(),
            };
            return Err(ApiError::invalid(&ri.kind, &ri.group, name_of(old), vec![cause]));
        }
    }
    if ri.generation && spec_part(old) != spec_part(&new) {
        let g = meta(old)
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta_mut(&mut new).insert("generation".into(), (g + 1).into());
    }
    if let Tracking::Update(manager) = tracking {
        managed::track_update(ri, Some(old), &mut new, manager, subresource, now);
    }
    let warnings = admission::unknown_field_warnings(&normalized.unknown);
    // Removing the last finalizer of a terminating object deletes it; the DELETED event carries the
    // object as it was, finalizers included (reference behaviour 41).
    if is_terminating(old) && finalizers(&new).is_empty() && !namespace_pending(ri, &new) {
        return Ok((Mutation::Delete(old.clone()), warnings));
    }
    if new == *old {
        return Ok((Mutation::Unchanged, warnings));
    }
    Ok((Mutation::Put(new), warnings))
}

/// A namespace is also held by its `spec.finalizers` (the namespace controller's `kubernetes`).
fn namespace_pending(ri: &ResourceInfo, obj: &Value) -> bool {
    ri.group.is_empty()
        && ri.plural == "namespaces"
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
}

fn written(
    ri: &ResourceInfo,
    outcome: Outcome,
    dry_run_object: Option<Value>,
    warnings: Vec<String>,
    code: u16,
) -> Written {
    let object = match dry_run_object {
        Some(o) => o,
        None => (*outcome_object(outcome)).clone(),
    };
    Written {
        code,
        object: present(ri, &object),
        warnings,
    }
}

/// Runs an update-like write, or computes it without storing when `dry_run`.
fn run_update<F>(
    core: &Core,
    ri: &ResourceInfo,
    namespace: &str,
    name: &str,
    dry_run: bool,
    f: F,
) -> ApiResult<Written>
where
    F: FnOnce(Option<Arc<Value>>) -> ApiResult<(Mutation, Vec<String>, u16)>,
{
    let k = key(ri, namespace, name);
    if dry_run {
        let (mutation, warnings, code) = f(core.store.get(&k))?;
        let obj = match mutation {
            Mutation::Put(o) | Mutation::Delete(o) => o,
            Mutation::Unchanged => (*core.store.get(&k).unwrap_or_default()).clone(),
        };
        return Ok(Written {
            code,
            object: present(ri, &obj),
            warnings,
        });
    }
    let mut extra = (Vec::new(), 200);
    let outcome = core.store.mutate(&k, |current, _| {
        let (mutation, warnings, code) = f(current)?;
        extra = (warnings, code);
        Ok(mutation)
    })?;
    Ok(written(ri, outcome, None, extra.0, extra.1))
}

/// PUT: replaces an object (optimistic concurrency on `metadata.resourceVersion`).
pub fn update(
    core: &Core,
    ri: &ResourceInfo,
    namespace: &str,
    name: &str,
    subresource: Option<&str>,
    mut body: Value,
    opts: &WriteOptions,
) -> ApiResult<Written> {
    check_identity(ri, &mut body)?;
    if let Some(body_name) = meta_str(&body, "name")
        && body_name != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if ri.namespaced
        && let Some(ns) = meta_str(&body, "namespace").filter(|n| !n.is_empty())
        && ns != namespace
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if ri.is_custom() && meta_str(&body, "resourceVersion").is_none_or(str::is_empty) {
        return Err(ApiError::invalid(
            &ri.plural,
            &ri.group,
            name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: 0x0: must be specified for an update".into(),
                field: "metadata.resourceVersion".into(),
            }],
        ));
    }
    let now = time::now();
    run_update(core, ri, namespace, name, opts.dry_run, |current| {
        let old = current.ok_or_else(|| ApiError::not_found(ri.resource_ref(), name))?;
        let new = isolate_subresource(ri, subresource, &old, body);
        let (m, w) = finish_update(
            ri,
            &old,
            new,
            subresource,
            opts.validation,
            Tracking::Update(&opts.manager),
            &now,
        )?;
        Ok((m, w, 200))
    })
}

/// PATCH: JSON patch, merge patch, strategic merge patch or server-side apply.
#[allow(clippy::too_many_arguments)]
pub fn patch(
    core: &Core,
    ri: &ResourceInfo,
    namespace: &str,
    name: &str,
    subresource: Option<&str>,
    patch_type: PatchType,
    body: &[u8],
    opts: &WriteOptions,
) -> ApiResult<Written> {
    let parsed = patch::parse(ri, patch_type, body)?;
    if patch_type == PatchType::Apply && !opts.manager_explicit {
        return Err(ApiError::invalid(
            &ri.kind,
            &ri.group,
            name,
            vec![Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: is required for apply patch".into(),
                field: "fieldManager".into(),
            }],
        ));
    }
    let now = time::now();
    if patch_type == PatchType::Apply {
        check_namespace_for_apply(core, ri, namespace, name)?;
    }
    run_update(core, ri, namespace, name, opts.dry_run, |current| {
        let Some(old) = current else {
            if patch_type != PatchType::Apply {
                return Err(ApiError::not_found(ri.resource_ref(), name));
            }
            // Server-side apply creates a missing object (reference 08-patch/18).
            let mut applied = parsed.clone();
            meta_mut(&mut applied).insert("name".into(), name.into());
            let obj = managed::apply(ri, None, &applied, &opts.manager, subresource, opts.force, &now)?;
            let (mut obj, warnings) = admit_create(ri, namespace, obj, opts, &now)?;
            crate::defaults::on_create(core, ri, &mut obj)?;
            return Ok((Mutation::Put(obj), warnings, 201));
        };
        let presented = present(ri, &old);
        let (new, tracking) = match patch_type {
            PatchType::Apply => {
                let merged = managed::apply(
                    ri,
                    Some(&presented),
                    &parsed,
                    &opts.manager,
                    subresource,
                    opts.force,
                    &now,
                )?;
                (merged, Tracking::Done)
            }
            _ => (
                patch::apply_with(ri, patch_type, &presented, &parsed, opts.validation)?,
                Tracking::Update(&opts.manager),
            ),
        };
        let new = isolate_subresource(ri, subresource, &old, new);
        let (m, mut w) = finish_update(ri, &old, new, subresource, opts.validation, tracking, &now)?;
        w.splice(0..0, patch::warnings(patch_type, &parsed, opts.validation));
        Ok((m, w, 200))
    })
}

fn check_namespace_for_apply(core: &Core, ri: &ResourceInfo, namespace: &str, name: &str) -> ApiResult<()> {
    if core.store.get(&key(ri, namespace, name)).is_some() {
        return Ok(());
    }
    check_namespace(core, ri, namespace, name)
}

/// DELETE: removes the object, or marks it terminating while finalizers (including the ones a
/// propagation policy adds) hold it.
pub fn delete(
    core: &Core,
    ri: &ResourceInfo,
    namespace: &str,
    name: &str,
    opts: &DeleteOptions,
) -> ApiResult<Deleted> {
    let k = key(ri, namespace, name);
    let now = time::now();
    let decide = |current: Option<Arc<Value>>| -> ApiResult<Mutation> {
        let old = current.ok_or_else(|| ApiError::not_found(ri.resource_ref(), name))?;
        let uid = meta_str(&old, "uid").unwrap_or("");
        if let Some(p) = opts.precondition_uid.as_deref().filter(|p| *p != uid) {
            return Err(ApiError::conflict_msg(
                ri.resource_ref(),
                name,
                &format!(
                    "the UID in the precondition ({p}) does not match the UID in record ({uid}). The object might have been deleted and then recreated"
                ),
            ));
        }
        let rv = meta_str(&old, "resourceVersion").unwrap_or("");
        if let Some(p) = opts.precondition_rv.as_deref().filter(|p| *p != rv) {
            return Err(ApiError::conflict_msg(
                ri.resource_ref(),
                name,
                &format!(
                    "the ResourceVersion in the precondition ({p}) does not match the ResourceVersion in record ({rv}). The object might have been modified"
                ),
            ));
        }
        if is_terminating(&old) {
            return Ok(Mutation::Unchanged);
        }
        let mut new = (*old).clone();
        let mut fins = finalizers(&new);
        let policy = opts.propagation.as_deref().or(match opts.orphan_dependents {
            Some(true) => Some("Orphan"),
            _ => None,
        });
        let extra = match policy {
            Some("Foreground") => Some("foregroundDeletion"),
            Some("Orphan") => Some("orphan"),
            Some("Background") | None => None,
            Some(other) => {
                return Err(ApiError::invalid(
                    &ri.kind,
                    &ri.group,
                    name,
                    vec![Cause {
                        reason: "FieldValueNotSupported".into(),
                        message: format!(
                            "Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                        ),
                        field: "propagationPolicy".into(),
                    }],
                ));
            }
        };
        let is_namespace = ri.group.is_empty() && ri.plural == "namespaces";
        let is_crd = ri.group == "apiextensions.k8s.io" && ri.plural == "customresourcedefinitions";
        for f in extra
            .into_iter()
            .chain(is_crd.then_some("customresourcecleanup.apiextensions.k8s.io"))
        {
            if !fins.iter().any(|x| x == f) {
                fins.push(f.to_string());
            }
        }
        if fins.is_empty() && !(is_namespace && namespace_pending(ri, &new)) {
            return Ok(Mutation::Delete((*old).clone()));
        }
        let m = meta_mut(&mut new);
        m.insert("deletionTimestamp".into(), now.clone().into());
        if !fins.is_empty() {
            m.insert("finalizers".into(), json!(fins));
        }
        if is_namespace {
            new["status"]["phase"] = "Terminating".into();
        } else {
            meta_mut(&mut new).insert("deletionGracePeriodSeconds".into(), 0.into());
        }
        Ok(Mutation::Put(new))
    };
    let success = |obj: &Value| {
        if crate::defaults::returns_deleted_object(ri) {
            return present(ri, obj);
        }
        let mut details = Map::new();
        details.insert("name".into(), name.into());
        if !ri.group.is_empty() {
            details.insert("group".into(), ri.group.clone().into());
        }
        details.insert("kind".into(), ri.plural.clone().into());
        details.insert("uid".into(), meta_str(obj, "uid").unwrap_or("").into());
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
    };
    let pending_code = if opts.orphan_dependents == Some(false) {
        202
    } else {
        200
    };
    if opts.dry_run {
        let current = core.store.get(&k);
        return match decide(current.clone())? {
            Mutation::Delete(o) => Ok(Deleted {
                code: 200,
                body: success(&o),
            }),
            Mutation::Put(o) => Ok(Deleted {
                code: pending_code,
                body: present(ri, &o),
            }),
            Mutation::Unchanged => Ok(Deleted {
                code: 200,
                body: present(ri, &current.unwrap_or_default()),
            }),
        };
    }
    match core.store.mutate(&k, |current, _| decide(current))? {
        Outcome::Deleted(o) => Ok(Deleted {
            code: 200,
            body: success(&o),
        }),
        Outcome::Updated(o) | Outcome::Created(o) => Ok(Deleted {
            code: pending_code,
            body: present(ri, &o),
        }),
        Outcome::Unchanged(o) => Ok(Deleted {
            code: 200,
            body: present(ri, &o.unwrap_or_default()),
        }),
    }
}

/// DELETE on a collection: deletes every matching object and returns them as a list.
pub fn delete_collection(
    core: &Core,
    ri: &ResourceInfo,
    namespace: Option<&str>,
    list_opts: &ListOptions,
    opts: &DeleteOptions,
) -> ApiResult<Value> {
    let selectors = Selectors::parse(
        ri,
        list_opts.label_selector.as_deref(),
        list_opts.field_selector.as_deref(),
    )?;
    let (_, items) = core.store.list(
        &ri.storage_key(),
        namespace.filter(|n| !n.is_empty() && ri.namespaced),
    );
    let mut deleted = Vec::new();
    for obj in items.iter().filter(|o| selectors.matches(o)) {
        let ns = meta_str(obj, "namespace").unwrap_or("");
        match delete(core, ri, ns, name_of(obj), opts) {
            Ok(d) if d.body.get("kind").and_then(Value::as_str) == Some("Status") => {
                deleted.push(list_item(ri, obj))
            }
            Ok(d) => deleted.push(list_item(ri, &d.body)),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json!({
        "kind": ri.list_kind,
        "apiVersion": ri.api_version(),
        "metadata": {"resourceVersion": core.store.revision().to_string()},
        "items": deleted,
    }))
}
