//! Deleting: one object (finalizers, propagation policies, preconditions) or a collection.

use super::*;

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
