//! One cached object, kept small: its metadata parsed (what the engine reads — names, labels, owner
//! references, finalizers, versions, the host's own `managedFields` entry), and the whole object
//! once, as compact JSON text (what plugins are given).
//!
//! A `serde_json::Value` tree costs several times its JSON text (every map is a B-tree node, every
//! string its own allocation): about 9 bytes per byte of a 4 KB Deployment with a long container
//! env. The text costs one, so a cache of thousands of objects stays close to the size of what it
//! caches. The text carries `apiVersion` and `kind` (which list items may lack) and no
//! `managedFields`, which plugins never get. Of those only the host's own entries are kept
//! (planning reads them), as text too (a parsed `fieldsV1` is a tree several times the size of the
//! small children it describes); the parsed metadata has none, nor the `last-applied-configuration`
//! annotation, a second copy of the object that nothing in the engine reads.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use kube::Resource;
use kube::api::{ApiResource, DynamicObject};
use kube::core::DynamicResourceScope;
use serde::Serialize;
use serde_json::Value;

/// Field managers of the host start with this (`wasmop/<plugin>`).
const HOST_MANAGER_PREFIX: &str = "wasmop/";

/// kubectl's copy of the last applied manifest.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// See the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedObject {
    /// Without `managedFields` (see [`managed_fields`](Self::managed_fields)).
    pub metadata: ObjectMeta,
    json: Box<str>,
    /// The host's own `managedFields` entries, as JSON text.
    own_fields: Option<Box<str>>,
}

/// The object as it is written to text.
#[derive(Serialize)]
struct Text<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    metadata: &'a ObjectMeta,
    #[serde(flatten)]
    data: &'a Value,
}

impl CachedObject {
    /// Keeps `obj` of the kind `resource`.
    pub fn new(obj: DynamicObject, resource: &ApiResource) -> CachedObject {
        let DynamicObject {
            types,
            mut metadata,
            data,
        } = obj;
        let managed = metadata.managed_fields.take();
        let (api_version, kind) = match &types {
            Some(t) if !t.api_version.is_empty() && !t.kind.is_empty() => {
                (t.api_version.as_str(), t.kind.as_str())
            }
            _ => (resource.api_version.as_str(), resource.kind.as_str()),
        };
        let data = match data {
            Value::Object(m) => Value::Object(m),
            _ => Value::Object(Default::default()),
        };
        let json = serde_json::to_string(&Text {
            api_version,
            kind,
            metadata: &metadata,
            data: &data,
        })
        .expect("an object read as JSON writes as JSON");
        let own_fields = managed
            .map(|mut fields| {
                fields.retain(|m| {
                    m.manager
                        .as_deref()
                        .is_some_and(|m| m.starts_with(HOST_MANAGER_PREFIX))
                });
                fields
            })
            .filter(|f| !f.is_empty())
            .and_then(|f| serde_json::to_string(&f).ok())
            .map(String::into_boxed_str);
        if let Some(annotations) = &mut metadata.annotations {
            annotations.remove(LAST_APPLIED);
        }
        CachedObject {
            metadata,
            json: json.into_boxed_str(),
            own_fields,
        }
    }

    /// The `managedFields` entries of the host's own field managers (`wasmop/...`).
    pub fn managed_fields(&self) -> Vec<ManagedFieldsEntry> {
        self.own_fields
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default()
    }

    /// The object as JSON text, with `apiVersion` and `kind`, without `managedFields`.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The object as a JSON value (parsed from [`json`](Self::json)).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.json).expect("the cached text is JSON")
    }
}

impl Resource for CachedObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;
    use serde_json::json;

    fn resource() -> ApiResource {
        ApiResource {
            group: "apps".into(),
            version: "v1".into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
        }
    }

    #[test]
    fn plugins_get_the_object_without_managed_fields_and_the_engine_its_own_entry() {
        let obj: DynamicObject = serde_json::from_value(json!({
            "metadata": {
                "name": "web", "namespace": "demo", "resourceVersion": "7",
                "annotations": {LAST_APPLIED: "{\"big\": true}", "keep": "me"},
                "managedFields": [
                    {"manager": "kubectl-client-side-apply", "operation": "Update"},
                    {"manager": "wasmop/pdb-guard", "operation": "Apply"},
                ],
            },
            "spec": {"replicas": 3},
        }))
        .unwrap();
        let cached = CachedObject::new(obj, &resource());
        let v = cached.to_value();
        assert_eq!(v["apiVersion"], "apps/v1", "list items lack apiVersion and kind");
        assert_eq!(v["kind"], "Deployment");
        assert_eq!(v["spec"]["replicas"], 3);
        assert!(v["metadata"].get("managedFields").is_none());
        assert_eq!(
            v["metadata"]["annotations"][LAST_APPLIED], "{\"big\": true}",
            "plugins see it"
        );
        assert!(cached.metadata.managed_fields.is_none());
        let fields = cached.managed_fields();
        let managers: Vec<_> = fields.iter().filter_map(|m| m.manager.as_deref()).collect();
        assert_eq!(managers, ["wasmop/pdb-guard"]);
        assert!(!cached.annotations().contains_key(LAST_APPLIED));
        assert_eq!(cached.name_any(), "web");
        assert_eq!(cached.resource_version().as_deref(), Some("7"));
    }
}
