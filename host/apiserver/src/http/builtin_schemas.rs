//! The OpenAPI v3 component schemas of the built-in kinds, generated once from the registry's
//! built-ins (each adds its k8s-openapi `JsonSchema`, see `registry::Schema::Builtin`). They are what
//! `/openapi/v3/{api,apis/g}/{v}` serves for `kubectl explain`, and what protobuf request bodies are
//! decoded with (JSON names and formats of each field).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use serde_json::{Map, Value};
use wasmop_apimachinery::openapi::Components;

use crate::registry::{Schema, builtins};

static SCHEMAS: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    let mut components = Components::default();
    for r in builtins() {
        if let Schema::Builtin { openapi, .. } = r.schema {
            openapi(&mut components);
        }
    }
    components.finish()
});

/// Every built-in component schema, by upstream name (`io.k8s.api.apps.v1.Deployment`).
pub fn all() -> &'static Map<String, Value> {
    &SCHEMAS
}

fn has_gvk(schema: &Value, group: &str, version: &str) -> bool {
    schema
        .get("x-kubernetes-group-version-kind")
        .and_then(Value::as_array)
        .is_some_and(|gvks| {
            gvks.iter().any(|g| {
                g.get("group").and_then(Value::as_str) == Some(group)
                    && g.get("version").and_then(Value::as_str) == Some(version)
            })
        })
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.rsplit('/').next() {
                            out.push(name.to_string());
                        }
                    }
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}

/// The schemas of one group-version's kinds and everything they reference, as upstream's
/// per-group-version documents hold them.
pub fn for_group_version(group: &str, version: &str) -> Map<String, Value> {
    let schemas = all();
    let mut pending: Vec<String> = schemas
        .iter()
        .filter(|(_, s)| has_gvk(s, group, version))
        .map(|(n, _)| n.clone())
        .collect();
    let mut seen = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(s) = schemas.get(&name) {
            collect_refs(s, &mut pending);
        }
    }
    seen.into_iter()
        .filter_map(|n| schemas.get(&n).map(|s| (n, s.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_kind_has_a_schema_and_a_protobuf_message() {
        for r in builtins() {
            let api_version = r.api_version();
            assert!(
                wasmop_apimachinery::protobuf::root_schema(all(), &api_version, &r.kind).is_some(),
                "no OpenAPI schema for {api_version} {}",
                r.kind
            );
            assert!(
                wasmop_apimachinery::protobuf::supports(&api_version, &r.kind),
                "no k8s-pb message for {api_version} {}",
                r.kind
            );
        }
    }

    #[test]
    fn apps_v1_holds_deployments_and_what_they_reference() {
        let apps = for_group_version("apps", "v1");
        assert!(apps.contains_key("io.k8s.api.apps.v1.Deployment"));
        assert!(apps.contains_key("io.k8s.api.core.v1.PodSpec"));
        assert!(apps.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
        assert!(!apps.contains_key("io.k8s.api.core.v1.Namespace"));
        let core = for_group_version("", "v1");
        assert!(core.contains_key("io.k8s.api.core.v1.ConfigMap"));
        assert!(!core.contains_key("io.k8s.api.apps.v1.Deployment"));
    }
}
