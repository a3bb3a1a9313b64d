//! Write wasmop reconcilers in Rust.
//!
//! A wasmop plugin is a WebAssembly component (`wasm32-wasip2`) implementing the
//! `wasmop:reconciler@0.2.0` world: a pure function from a [`Snapshot`] of one object (and what it
//! owns) to the [`Desired`] state. The host does every write — server-side apply of children,
//! pruning, patches, status, deletions, events, finalizers — with retries and backoff. A plugin has
//! no network, filesystem, environment or clock; it can only read the host's [`cache`] and [`log`].
//!
//! With this crate a plugin implements one trait, [`Plugin`], and calls one macro,
//! [`export_plugin!`]. Objects are plain [`k8s_openapi`] structs (re-exported here) or any serde
//! type for custom resources.
//!
//! # Hello, world
//!
//! ```no_run
//! use wasmop_sdk::k8s_openapi::api::core::v1::ConfigMap;
//! use wasmop_sdk::prelude::*;
//!
//! /// Greets every new or changed ConfigMap with an Event.
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn metadata() -> Metadata {
//!         Metadata::new("hello", "0.1.0", Gvk::of::<ConfigMap>())
//!     }
//!
//!     fn reconcile(snapshot: Snapshot) -> Result<Desired, Error> {
//!         let cm: ConfigMap = snapshot.object()?;
//!         let keys = cm.data.map_or(0, |d| d.len());
//!         wasmop_sdk::info!("hello, {} ({keys} keys)", snapshot.name());
//!         if snapshot.reason() != Reason::Change {
//!             return Ok(Desired::new());
//!         }
//!         let greeting = format!("Hello, {}! You hold {keys} keys.", snapshot.name());
//!         Ok(Desired::new().event(Event::normal("Greeted", greeting)))
//!     }
//! }
//!
//! wasmop_sdk::export_plugin!(Hello);
//! ```
//!
//! Build it as a `cdylib` with `cargo build --release --target wasm32-wasip2`; the `.wasm` file in
//! `target/wasm32-wasip2/release/` is the component the host loads.
//!
//! # One set of types
//!
//! The contract's types are those of `wasmop-contract`, the crate the host uses too, re-exported
//! here: [`Metadata`], [`Lookup`], [`Snapshot`], [`Desired`], [`Event`], [`Trigger`],
//! [`ObjectKey`], ... Their plain builder methods are their own (`Metadata::new(..).owns(..)`,
//! `Desired::new().status(..).finalizer()`, `Snapshot::new(object)`); what needs k8s-openapi types
//! comes from this crate's extension traits, all in the [`prelude`]:
//!
//! * [`GvkExt`]: `Gvk::of::<Deployment>()`; [`ObjectRefExt`]: `ObjectRef::of::<ConfigMap>(ns,
//!   name)`, `ObjectRef::from_object(&cm)`.
//! * [`DesiredExt`]: `.apply(typed_object)` (sets `apiVersion` and `kind`), `.apply_all(..)`.
//! * [`SnapshotExt`]: the object ([`SnapshotExt::object`], [`SnapshotExt::object_as`]), its
//!   children ([`SnapshotExt::children`], [`SnapshotExt::child`]), the declared lookups
//!   ([`SnapshotExt::lookup`]), the configuration ([`SnapshotExt::config`]), names, labels,
//!   conditions, and why the reconcile runs ([`SnapshotExt::reason`]).
//! * [`LookupResultExt`], [`TriggerExt`]: typed objects of a lookup result and of a trigger.
//!
//! # What goes where
//!
//! * [`Metadata`]: what the plugin declares once at load (primary kind, owned kinds, lookups —
//!   some [triggering](Lookup::triggers) reconciles through [`Plugin::map`] —, write permissions,
//!   finalizer name, namespaces, resync, CRDs).
//! * [`Desired`]: children to apply (full intent; children not listed are pruned by the host),
//!   patches, status, deletions, events, requeue, and whether the object holds the plugin's
//!   finalizer ([`Desired::finalizer`]: ask for it on every answer while the object needs cleanup;
//!   leave it out to release it).
//! * [`Condition`]: status conditions; [`SnapshotExt::update_conditions`] keeps
//!   `lastTransitionTime`.
//! * [`Error`]: [`Error::retry`] (transient, retried with backoff) or [`Error::permanent`] (not
//!   retried until the object changes). `?` on a [`serde_json::Error`] gives a permanent error.
//! * [`cache`]: read-only `get`/`list` of declared kinds from the host's cache.
//! * [`log`] and the macros [`trace!`], [`debug!`], [`info!`], [`warn!`], [`error!`].
//!
//! # Time
//!
//! Plugins have no clock. [`Condition`]s carry `lastTransitionTime` as an opaque string that the
//! SDK copies from the previous condition of the same type when its status did not change (see
//! [`Condition::carry_over`]); a new condition, or one whose status changed, has none, and the host
//! stamps the time of its status write (a CRD schema must therefore not require it).
//!
//! # Native builds and tests
//!
//! The crate also compiles for the build machine, so plugin logic can be unit-tested with
//! `cargo test`: there, [`log`] writes to stderr and the [`cache`] is empty, except while the
//! `testing` module (feature `testing`) runs a plugin on YAML fixtures: then, as in `wasmop test`,
//! the cache holds the fixture's own objects.
//!
//! With the feature `native`, `native::Native` registers a natively compiled plugin with the host
//! through the same `Reconciler` trait as a component (for the benchmark that measures what the
//! WebAssembly boundary costs).

#![warn(missing_docs)]

mod condition;
mod desired;
mod error;
mod export;
mod kinds;
mod snapshot;

pub mod cache;
pub mod log;
#[cfg(all(feature = "native", not(target_arch = "wasm32")))]
pub mod native;
#[cfg(feature = "testing")]
pub mod testing;

pub use condition::{Condition, ConditionStatus};
pub use desired::DesiredExt;
pub use error::{Error, Result};
pub use kinds::{GvkExt, ObjectRefExt};
pub use snapshot::{LookupResultExt, SnapshotExt, TriggerExt};
pub use wasmop_contract::{
    Desired, Event, EventType, Gvk, Lookup, LookupResult, Metadata, NamespaceScope, ObjectKey, ObjectRef,
    Patch, PatchType, Reason, Snapshot, Trigger, Verb, WritePermission,
};

pub use k8s_openapi;
pub use serde;
pub use serde_json;
pub use wasmop_contract;

/// What every plugin implements: its declaration, its reconcile function and, for plugins with
/// triggering lookups, its map function.
///
/// All are associated functions (no `self`): a plugin keeps no state between calls. The host may
/// run several instances, and may start a fresh one at any time.
pub trait Plugin {
    /// The plugin's declaration, read once when the host loads it.
    fn metadata() -> Metadata;

    /// One reconcile of one object: the state the host should make true, or why there is none.
    ///
    /// A panic traps the instance; the host counts it as a failure and retries with backoff.
    fn reconcile(snapshot: Snapshot) -> Result<Desired, Error>;

    /// Which primary objects a change to an object of a [triggering](Lookup::triggers) lookup
    /// concerns (`trigger.lookup` is the lookup's index in [`Metadata::lookups`]); the host
    /// reconciles each with reason [`Reason::Trigger`]. It may read the [`cache`]. The default
    /// answers none, which is right for plugins without triggering lookups.
    fn map(trigger: Trigger) -> Result<Vec<ObjectKey>, Error> {
        let _ = trigger;
        Ok(Vec::new())
    }
}

/// The names a plugin usually needs: `use wasmop_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Condition, ConditionStatus, Desired, DesiredExt, Error, Event, Gvk, GvkExt, Lookup, LookupResultExt,
        Metadata, NamespaceScope, ObjectKey, ObjectRef, ObjectRefExt, Plugin, Reason, Snapshot, SnapshotExt,
        Trigger, TriggerExt, Verb, export_plugin,
    };
}

/// Exports a [`Plugin`] as the component's `metadata`, `reconcile` and `map` functions.
///
/// Call it once, at the top level of the plugin's `cdylib` crate:
///
/// ```ignore
/// wasmop_sdk::export_plugin!(MyPlugin);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        // Only a WebAssembly build exports the component's functions: natively (unit tests, the
        // `native` feature) a crate may link several plugins, whose export symbols would clash.
        #[cfg(target_family = "wasm")]
        const _: () = {
            type __WasmopExport = $crate::__private::Exporter<$plugin>;
    $crate::__bindings::__export_reconciler!(__WasmopExport with_types_in $crate::__bindings);
        };
    };
}

/// The generated bindings of `wit/reconciler.wit` (one module for the whole world). Not part of the
/// API: use the SDK's types.
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "reconciler",
        pub_export_macro: true,
        export_macro_name: "__export_reconciler",
        default_bindings_module: "wasmop_sdk::__bindings",
    });
}

/// Used by [`export_plugin!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::Exporter;
}

#[cfg(test)]
mod tests;
