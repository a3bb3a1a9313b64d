//! Write wasmop reconcilers in Rust.
//!
//! A wasmop plugin is a WebAssembly component (`wasm32-wasip2`) implementing the
//! `wasmop:reconciler@0.1.0` world: a pure function from a [`Snapshot`] of one object (and what it
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
//! # What goes where
//!
//! * [`Metadata`]: what the plugin declares once at load (primary kind, owned kinds, lookups,
//!   write permissions, finalizer, namespaces, resync). Builder methods, every field public.
//! * [`Snapshot`]: the object ([`Snapshot::object`], [`Snapshot::object_as`]), its children
//!   ([`Snapshot::children`]), the declared lookups ([`Snapshot::lookup`]), the configuration
//!   ([`Snapshot::config`]), why the reconcile runs ([`Snapshot::reason`]).
//! * [`Desired`]: children to apply (full intent; children not listed are pruned by the host),
//!   patches, status, deletions, events, requeue, finalizer-done. Builder methods.
//! * [`Condition`]: status conditions; [`Snapshot::update_conditions`] keeps `lastTransitionTime`.
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
//! `cargo test`: there, [`log`] writes to stderr and the [`cache`] is empty (`wasmop test`, which
//! runs the component, serves the snapshot's own objects from it).
//! With the `testing` feature, the `testing` module runs a plugin on YAML fixtures exactly as
//! `wasmop test` does.

#![warn(missing_docs)]

mod condition;
mod desired;
mod error;
mod export;
mod snapshot;
mod types;

pub mod cache;
pub mod log;
#[cfg(feature = "testing")]
pub mod testing;

pub use condition::{Condition, ConditionStatus};
pub use desired::{Desired, Event, EventType, Patch, PatchType};
pub use error::{Error, Result};
pub use snapshot::{LookupResult, Reason, Snapshot};
pub use types::{Gvk, Lookup, Metadata, NamespaceScope, ObjectRef, Verb, WritePermission};

pub use k8s_openapi;
pub use serde;
pub use serde_json;

/// What every plugin implements: its declaration and its reconcile function.
///
/// Both are associated functions (no `self`): a plugin keeps no state between reconciles. The host
/// may run several instances, and may start a fresh one at any time.
pub trait Plugin {
    /// The plugin's declaration, read once when the host loads it.
    fn metadata() -> Metadata;

    /// One reconcile of one object: the state the host should make true, or why there is none.
    ///
    /// A panic traps the instance; the host counts it as a failure and retries with backoff.
    fn reconcile(snapshot: Snapshot) -> Result<Desired, Error>;
}

/// The names a plugin usually needs: `use wasmop_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Condition, ConditionStatus, Desired, Error, Event, Gvk, Lookup, Metadata, NamespaceScope, ObjectRef,
        Plugin, Reason, Snapshot, Verb, export_plugin,
    };
}

/// Exports a [`Plugin`] as the component's `metadata` and `reconcile` functions.
///
/// Call it once, at the top level of the plugin's `cdylib` crate:
///
/// ```ignore
/// wasmop_sdk::export_plugin!(MyPlugin);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
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
