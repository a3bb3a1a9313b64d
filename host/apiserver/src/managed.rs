//! `metadata.managedFields` on every write and server-side apply, on top of
//! [`wasmop_apimachinery::fieldmanager`]: which fields each manager owns, and merging an applied
//! configuration with conflict detection.

use serde_json::{Value, json};
use wasmop_apimachinery::fieldmanager::{
    ApplyError, FieldManager, FieldSet, decode_managed_fields, managed_fields_for_update, set_managed_fields,
};

use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceInfo;

/// Fields a write may not own because the resource's strategy resets them.
fn reset_fields(ri: &ResourceInfo, subresource: Option<&str>) -> FieldSet {
    match subresource {
        Some("status") => FieldSet::from_field_paths(&[&["apiVersion"], &["kind"], &["metadata"], &["spec"]]),
        _ if ri.status => FieldSet::from_field_paths(&[&["status"]]),
        _ => FieldSet::new(),
    }
}

/// Records an Update operation (create, PUT, non-apply PATCH) by `manager` in `new`'s managedFields.
pub fn track_update(
    ri: &ResourceInfo,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
) {
    let api_version = ri.api_version();
    let structure = ri.structure();
    let mut fm = FieldManager::new(&*structure, manager, &api_version, now);
    fm.subresource = subresource;
    fm.reset = reset_fields(ri, subresource);
    let managed = managed_fields_for_update(new, old, subresource.is_some());
    let entries = fm.update(old, new, managed);
    set_managed_fields(new, &entries);
}

/// Server-side apply of the configuration `applied` onto `live` (None: the object is created from it).
/// Returns the merged object with its managedFields.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    ri: &ResourceInfo,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    subresource: Option<&str>,
    force: bool,
    now: &str,
) -> ApiResult<Value> {
    let api_version = ri.api_version();
    let structure = ri.structure();
    let mut fm = FieldManager::new(&*structure, manager, &api_version, now);
    fm.subresource = subresource;
    fm.reset = reset_fields(ri, subresource);
    let managed = match live {
        Some(l) => decode_managed_fields(l).map_err(|e| ApiError::bad_request(e.to_string()))?,
        None => Vec::new(),
    };
    let outcome = fm.apply(live, applied, managed, force).map_err(|e| match &e {
        ApplyError::Conflicts(_) => {
            let mut err = ApiError::new(409, "Conflict", e.to_string());
            err.details = Some(json!({"causes": e.causes()}));
            err
        }
        ApplyError::ManagedFieldsInConfig => ApiError::bad_request(e.to_string()),
        ApplyError::Invalid(_) => ApiError::new(422, "Invalid", e.to_string()),
    })?;
    let mut object = outcome.object;
    set_managed_fields(&mut object, &outcome.managed);
    Ok(object)
}
