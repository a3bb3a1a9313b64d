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
//! small children it describes); the parsed metadata has none, and of the annotations only the
//! host's own (`wasmop.io/...`): the others, `last-applied-configuration` (a second copy of the
//! object) first, are in the text, which is what plugins read.

use std::borrow::Cow;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use kube::Resource;
use kube::api::{ApiResource, DynamicObject};
use kube::core::DynamicResourceScope;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Field managers of the host start with this (`wasmop/<plugin>`).
const HOST_MANAGER_PREFIX: &str = "wasmop/";

/// Annotations the engine reads start with this (`wasmop.io/owner`).
const HOST_ANNOTATION_PREFIX: &str = "wasmop.io/";

/// kubectl's copy of the last applied manifest.
#[cfg(test)]
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

/// An object as a watch or list delivers it, read without building a `serde_json::Value`: its
/// metadata parsed, every other field copied as JSON text (`"spec":{...},"status":{...}`). It
/// becomes a [`CachedObject`] in [`into_cached`](Self::into_cached).
#[derive(Debug, Clone, Default)]
pub struct WatchedObject {
    api_version: Option<String>,
    kind: Option<String>,
    pub metadata: ObjectMeta,
    /// The other fields, comma-separated `"name":value` pairs.
    rest: String,
}

impl WatchedObject {
    /// The object of the kind `resource` as the engine keeps it.
    pub fn into_cached(self, resource: &ApiResource) -> CachedObject {
        let WatchedObject {
            api_version,
            kind,
            mut metadata,
            rest,
        } = self;
        let api_version = api_version.filter(|s| !s.is_empty());
        let kind = kind.filter(|s| !s.is_empty());
        let managed = metadata.managed_fields.take();
        let mut json = String::with_capacity(rest.len() + 512);
        json.push_str("{\"apiVersion\":");
        push_json(&mut json, api_version.as_deref().unwrap_or(&resource.api_version));
        json.push_str(",\"kind\":");
        push_json(&mut json, kind.as_deref().unwrap_or(&resource.kind));
        json.push_str(",\"metadata\":");
        push_json(&mut json, &metadata);
        if !rest.is_empty() {
            json.push(',');
            json.push_str(&rest);
        }
        json.push('}');
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
            .map(|f| {
                let mut text = String::new();
                push_json(&mut text, &f);
                text.into_boxed_str()
            });
        // The engine reads only its own annotations (`wasmop.io/owner`); the text keeps them all.
        if let Some(annotations) = &mut metadata.annotations {
            annotations.retain(|k, _| k.starts_with(HOST_ANNOTATION_PREFIX));
        }
        CachedObject {
            metadata,
            json: json.into_boxed_str(),
            own_fields,
        }
    }
}

impl From<DynamicObject> for WatchedObject {
    fn from(obj: DynamicObject) -> WatchedObject {
        let mut rest = String::new();
        if let Value::Object(fields) = &obj.data {
            for (name, value) in fields {
                if !rest.is_empty() {
                    rest.push(',');
                }
                push_json(&mut rest, name);
                rest.push(':');
                push_json(&mut rest, value);
            }
        }
        WatchedObject {
            api_version: obj.types.as_ref().map(|t| t.api_version.clone()),
            kind: obj.types.map(|t| t.kind),
            metadata: obj.metadata,
            rest,
        }
    }
}

/// Appends `value` as compact JSON (what serde_json writes for API types cannot fail).
fn push_json(out: &mut String, value: &(impl Serialize + ?Sized)) {
    let mut bytes = std::mem::take(out).into_bytes();
    serde_json::to_writer(&mut bytes, value).expect("API objects serialise to JSON");
    *out = String::from_utf8(bytes).expect("serde_json writes UTF-8");
}

impl<'de> Deserialize<'de> for WatchedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = WatchedObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WatchedObject, A::Error> {
        let mut obj = WatchedObject::default();
        let mut rest = Vec::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "apiVersion" => obj.api_version = map.next_value()?,
                "kind" => obj.kind = map.next_value()?,
                "metadata" => obj.metadata = map.next_value()?,
                _ => {
                    if !rest.is_empty() {
                        rest.push(b',');
                    }
                    serde_json::to_writer(&mut rest, &*key).map_err(de::Error::custom)?;
                    rest.push(b':');
                    map.next_value_seed(Transcode(&mut rest))?;
                }
            }
        }
        obj.rest = String::from_utf8(rest).map_err(de::Error::custom)?;
        Ok(obj)
    }
}

/// Writes the value being deserialised as JSON, whatever the deserializer (serde buffers a watch
/// event's object when its `type` comes second), without a tree in between.
struct Transcode<'a>(&'a mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for Transcode<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let mut ser = serde_json::Serializer::new(&mut *self.0);
        serde_transcode::transcode(deserializer, &mut ser).map_err(de::Error::custom)
    }
}

impl CachedObject {
    /// Keeps `obj` of the kind `resource`.
    pub fn new(obj: DynamicObject, resource: &ApiResource) -> CachedObject {
        WatchedObject::from(obj).into_cached(resource)
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

/// `kube::Resource` for a type with `metadata`, whose kind is only known at run time (as for
/// kube's `DynamicObject`).
macro_rules! dynamic_resource {
    ($t:ty) => {
        impl Resource for $t {
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
    };
}

dynamic_resource!(CachedObject);
dynamic_resource!(WatchedObject);

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
        assert!(
            cached.annotations().is_empty(),
            "only the host's annotations are parsed"
        );
        assert_eq!(cached.name_any(), "web");
        assert_eq!(cached.resource_version().as_deref(), Some("7"));
    }

    #[test]
    fn a_watched_object_is_read_without_a_tree_whatever_the_field_order() {
        let object = json!({
            "metadata": {"name": "web", "namespace": "demo", "resourceVersion": "3",
                "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": "\"q\""}]}]}}},
            "status": {"replicas": 2},
        });
        let expected = {
            let mut v = object.clone();
            v["metadata"].as_object_mut().unwrap().remove("managedFields");
            v["apiVersion"] = json!("apps/v1");
            v["kind"] = json!("Deployment");
            v
        };
        // A list item (no apiVersion or kind), read straight from the text.
        let listed: Vec<WatchedObject> = serde_json::from_str(&format!("[{object}]")).unwrap();
        let cached = listed.into_iter().next().unwrap().into_cached(&resource());
        assert_eq!(cached.to_value(), expected);
        assert_eq!(cached.name_any(), "web");
        assert!(cached.managed_fields().is_empty(), "not the host's");
        // A watch event whose object comes before its type: serde buffers the object first.
        let event = format!(r#"{{"object": {object}, "type": "MODIFIED"}}"#);
        let kube::api::WatchEvent::Modified(watched) =
            serde_json::from_str::<kube::api::WatchEvent<WatchedObject>>(&event).unwrap()
        else {
            panic!("a MODIFIED event")
        };
        assert_eq!(watched.into_cached(&resource()).to_value(), expected);
        // An object that says what it is keeps it.
        let mut typed = object.clone();
        typed["apiVersion"] = json!("apps/v1beta1");
        typed["kind"] = json!("Deployment");
        let watched: WatchedObject = serde_json::from_value(typed).unwrap();
        assert_eq!(
            watched.into_cached(&resource()).to_value()["apiVersion"],
            "apps/v1beta1"
        );
    }
}
