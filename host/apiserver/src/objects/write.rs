//! The writing verbs: create (with generateName, defaults and admission), update and patch (with
//! status-subresource isolation, generation, optimistic concurrency and no-op detection).

use super::*;

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
pub(super) fn namespace_pending(ri: &ResourceInfo, obj: &Value) -> bool {
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
