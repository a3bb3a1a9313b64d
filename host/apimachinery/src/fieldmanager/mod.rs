//! Server-side apply and `metadata.managedFields` bookkeeping, the way kube-apiserver v1.28 does it
//! (`sigs.k8s.io/structured-merge-diff` v4.2 plus the apiserver's field-manager chain).
//!
//! This module owns:
//! - [`FieldSet`]: a set of field paths, with the exact `fieldsV1` JSON form ([`FieldSet::from_fields_v1`],
//!   [`FieldSet::to_fields_v1`]) and the set algebra ownership needs.
//! - [`ManagedFieldsEntry`]: one `metadata.managedFields` item, decoded and encoded the way the real
//!   server does (validation, time normalisation, the sort order of rule 19, the 10-updater cap).
//! - [`FieldManager::update`]: ownership after a create / PUT / non-apply PATCH.
//! - [`FieldManager::apply`]: server-side apply (merge, pruning of dropped fields, conflicts, force).
//!
//! It knows nothing about HTTP, storage or strategies: the caller decodes `managedFields`
//! ([`managed_fields_for_update`], [`decode_managed_fields`]), calls one of the two operations and writes
//! the result back with [`set_managed_fields`]. How lists merge comes from a
//! [`Structure`](crate::structure::Structure); `metadata` is always `ObjectMeta`, so its lists
//! (`finalizers` a set, `ownerReferences` a map of atomic items keyed by `uid`) are known here
//! whatever the structure says.
//!
//! How the server calls it (`FieldManager { subresource, reset, .. }` per request):
//! - create / PUT / JSON, merge or strategic patch: `update(stored, &final_object,
//!   managed_fields_for_update(&final_object, stored, is_subresource))`, then [`set_managed_fields`]
//!   on the object to store. Pass the object after defaulting and the strategy's resets; on create
//!   `stored` is `None` (or the kind's zero object, for built-ins whose zero value has nested structs).
//! - apply: `apply(stored, &config, decode_managed_fields(stored)?, force)`; map
//!   [`ApplyError::Conflicts`] to a 409 with [`ApplyError::causes`], then reset strategy-owned fields
//!   and [`set_managed_fields`] on [`ApplyOutcome::object`].
//! - `reset`: `status` for the main resource of a kind with a status subresource; for `/status`,
//!   everything the status strategy restores (`apiVersion`, `kind`, `metadata`, `spec` for custom
//!   resources).
//! - A write whose object and managedFields both equal the stored ones is a no-op (rule 21).
//!
//! JSON objects here are `serde_json` maps: with the `preserve_order` feature, `fieldsV1` and entry
//! keys come out in the real server's order; without it, sorted by key (the same except where numeric
//! keys sort differently as text, e.g. `k:{"port":443}` before `k:{"port":80}`).
//!
//! Layout, following structured-merge-diff's packages:
//! - `path.rs`: [`PathElement`] and printed paths (`fieldpath.PathElement`);
//! - `value.rs`: the ordering, equality and printing of JSON values inside paths (`value`);
//! - `set.rs`: [`FieldSet`] and its `fieldsV1` form (`fieldpath.Set`);
//! - `walk.rs`: walking objects with their structure, field sets of objects, comparing objects
//!   (`typed`: `ToFieldSet`, `Compare`);
//! - `merge.rs`: merging a configuration, removing fields, pruning (`typed`: `Merge`, `RemoveItems`);
//! - `managed.rs`: [`ManagedFieldsEntry`] and the `managedFields` list (the apiserver's
//!   `managedfields/internal`);
//! - `manager.rs`: [`FieldManager`], the two operations (`merge.Updater`);
//! - `error.rs`: [`FieldManagerError`], [`ApplyError`] and [`Conflict`].

mod error;
mod managed;
mod manager;
mod merge;
mod path;
mod set;
#[cfg(test)]
mod testdata;
mod value;
mod walk;

pub use error::{ApplyError, Conflict, FieldManagerError};
pub use managed::{
    ManagedFieldsEntry, Operation, decode_managed_fields, encode_managed_fields, managed_fields_for_update,
    set_managed_fields, sort_managed_fields,
};
pub use manager::{ApplyOutcome, FieldManager};
pub use path::{PathElement, path_to_string};
pub use set::FieldSet;
