//! OpenAPI v3 component schemas of built-in kinds, generated from their `schemars::JsonSchema`
//! implementations (k8s-openapi's, with upstream's descriptions and names such as
//! `io.k8s.api.apps.v1.Deployment`).
//!
//! A reference with siblings becomes `allOf: [{$ref}]` as in upstream's documents, and each kind's
//! root schema carries `x-kubernetes-group-version-kind`, which `kubectl explain` looks for and which
//! the protobuf decoder uses to find a kind's schema.

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

const PREFIX: &str = "#/components/schemas/";

/// Collects the component schemas of several kinds.
pub struct Components {
    generator: SchemaGenerator,
    roots: Vec<(String, Value)>,
}

impl std::fmt::Debug for Components {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Components")
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

impl Default for Components {
    fn default() -> Self {
        Components {
            generator: SchemaSettings::openapi3().into_generator(),
            roots: Vec::new(),
        }
    }
}

impl Components {
    /// Adds the schema of `K` (and everything it references) as the kind `group/version, kind`.
    pub fn add<K: JsonSchema>(&mut self, group: &str, version: &str, kind: &str) {
        let reference = self.generator.subschema_for::<K>();
        let name = reference
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(PREFIX))
            .map_or_else(|| K::schema_name().into_owned(), str::to_string);
        self.roots
            .push((name, json!({"group": group, "version": version, "kind": kind})));
    }

    /// The component schemas, each kind's root with its `x-kubernetes-group-version-kind`.
    pub fn finish(mut self) -> Map<String, Value> {
        let mut schemas = self.generator.take_definitions(true);
        for (name, gvk) in self.roots {
            let Some(Value::Object(schema)) = schemas.get_mut(&name) else {
                continue;
            };
            let gvks = schema
                .entry("x-kubernetes-group-version-kind")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = gvks
                && !list.contains(&gvk)
            {
                list.push(gvk);
            }
        }
        schemas
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;

    #[test]
    fn a_deployment_schema_is_named_and_referenced_as_upstream_does() {
        let mut c = Components::default();
        c.add::<Deployment>("apps", "v1", "Deployment");
        let schemas = c.finish();
        let d = &schemas["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            d["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
        );
        assert_eq!(
            d["properties"]["spec"]["allOf"],
            json!([{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}])
        );
        let replicas = &schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"];
        assert_eq!(replicas["type"], "integer");
        assert!(
            replicas["description"]
                .as_str()
                .unwrap()
                .starts_with("Number of desired pods")
        );
    }
}
