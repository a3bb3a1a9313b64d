//! Pure Kubernetes API machinery, shared by the embedded API server, the host engine and the
//! plugin contract (it builds for `wasm32-wasip2` too).
//!
//! Nothing in this crate does I/O: every function takes JSON values in and gives JSON values or typed
//! errors out, so each piece is unit-tested on its own and the server only wires them to HTTP.
//!
//! - [`selector`]: label selectors (equality and set-based) and field selectors.
//! - [`schema`]: structural `openAPIV3Schema` validation and pruning for custom resources.
//! - [`celrules`]: the CEL `x-kubernetes-validations` rules of CRD schemas (feature `crd-validation`).
//! - [`strategic`]: strategic merge patch for built-in kinds.
//! - [`jsonpatch`]: RFC 6902 JSON patch with kube-apiserver's (evanphx/json-patch v4) semantics.
//! - [`fieldmanager`]: server-side apply and `managedFields` bookkeeping.
//! - [`protobuf`]: decoding the protobuf request bodies kubectl sends for built-in kinds (k8s-pb;
//!   feature `protobuf`).
//! - [`openapi`]: OpenAPI v3 component schemas of built-in kinds (from `schemars`; feature `openapi`).
//! - [`structure`]: how lists merge (atomic, set, map keyed by fields), the one fact SMP and SSA share.
//! - [`time`]: Kubernetes timestamps (RFC 3339 seconds, UTC) and kubectl's ages, on `jiff`.
//! - [`validation`]: name rules (RFC 1123 labels and subdomains, qualified names).

#[cfg(feature = "crd-validation")]
pub mod celrules;
pub mod fieldmanager;
pub mod gofmt;
pub mod jsonpatch;
#[cfg(feature = "openapi")]
pub mod openapi;
#[cfg(feature = "protobuf")]
pub mod protobuf;
pub mod schema;
pub mod selector;
pub mod strategic;
pub mod structure;
pub mod time;
pub mod validation;
