//! Integration tests: real clients (kube-rs, kubectl) and real compiled plugins against the embedded
//! API server over HTTP(S). One binary, one module per topic; `support` starts servers and hosts.

mod latency;
mod support;

mod apiserver_cel;
mod apiserver_core;
mod apiserver_crd;
mod apiserver_crud;
mod apiserver_deletion;
mod apiserver_faults;
mod apiserver_kubectl;
mod apiserver_metadata;
mod apiserver_metrics;
mod apiserver_patch;
mod apiserver_persistence;
mod apiserver_rbac;
mod apiserver_security;
mod apiserver_ssa;
mod apiserver_subresources;
mod apiserver_watch;
mod compile_cache;
mod deploy;
mod dev_lifecycle;
mod engine_containment;
mod engine_contract;
mod engine_examples;
mod engine_faults;
mod engine_write_faults;
mod golden;
mod host_production;
mod host_rbac;
mod langs;
mod plugin_faults;
mod reload;
mod runtime_plugins;
mod scaffold;
mod sdk_languages;
mod soak;
