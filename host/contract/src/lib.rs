//! The plugin contract (`wit/reconciler.wit`, `wasmop:reconciler@0.2.0`) as plain Rust types: the
//! one definition shared by the engine, the plugin runtime and the guest SDK (this crate also builds
//! for `wasm32-wasip2`), so that neither host side sees the other's dependencies: the engine never
//! sees wasmtime types, the runtime never sees kube. The runtime and the SDK each convert between
//! these and their own `bindgen!` types, once per side of the boundary.
//!
//! In documents (golden fixtures, `wasmop inspect`) every type is camelCase and kinds are written as
//! `apiVersion` and `kind`. The feature `fixtures` adds what golden fixtures need (a cache serving a
//! snapshot's objects, the `map` fixture format), for `wasmop test` and the SDK's native runner.

mod desired;
#[cfg(feature = "fixtures")]
mod fixtures;
mod kind;
mod metadata;
mod reconciler;
mod snapshot;

pub use desired::{Desired, Event, EventType, Patch, PatchType};
#[cfg(feature = "fixtures")]
pub use fixtures::{MapFixture, SnapshotCache};
pub use kind::{Gvk, ObjectKey, ObjectRef};
pub use metadata::{Lookup, Metadata, MetadataError, NamespaceScope, PolicyRule, Verb, WritePermission};
pub use reconciler::{BoxFuture, CacheReader, EmptyCache, ReconcileFailure, Reconciler};
pub use snapshot::{LookupResult, Reason, Snapshot, SnapshotText, Trigger};
