//! Kinds and object references. In documents (golden fixtures, `wasmop inspect`) a kind is written
//! as Kubernetes writes it, `apiVersion` and `kind`, and references flatten it beside their other
//! fields: `{apiVersion: v1, kind: ConfigMap, namespace: demo, name: settings}`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A Kubernetes kind; `group` is empty for the core group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gvk {
    /// The API group (`apps`, `example.com`); empty for the core group.
    pub group: String,
    /// The version (`v1`).
    pub version: String,
    /// The kind (`Deployment`).
    pub kind: String,
}

impl Gvk {
    /// A kind from its parts: `Gvk::new("example.com", "v1", "Database")`.
    pub fn new(group: impl Into<String>, version: impl Into<String>, kind: impl Into<String>) -> Gvk {
        Gvk {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        }
    }

    /// A kind from an `apiVersion` (`apps/v1`, `v1`) and a kind.
    pub fn from_api_version(api_version: &str, kind: &str) -> Gvk {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        Gvk::new(group, version, kind)
    }

    /// The kind of an object in JSON form, from its `apiVersion` and `kind`.
    pub fn of_object(object: &Value) -> Option<Gvk> {
        let api_version = object.get("apiVersion")?.as_str()?;
        let kind = object.get("kind")?.as_str()?;
        Some(Gvk::from_api_version(api_version, kind))
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether an object in JSON form is of this kind.
    pub fn matches(&self, object: &Value) -> bool {
        object.get("kind").and_then(Value::as_str) == Some(self.kind.as_str())
            && object.get("apiVersion").and_then(Value::as_str) == Some(self.api_version().as_str())
    }
}

impl std::fmt::Display for Gvk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.api_version(), self.kind)
    }
}

/// How a kind is written in documents.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    api_version: String,
    kind: String,
}

impl Serialize for Gvk {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TypeMeta {
            api_version: self.api_version(),
            kind: self.kind.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Gvk {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Gvk, D::Error> {
        let t = TypeMeta::deserialize(d)?;
        Ok(Gvk::from_api_version(&t.api_version, &t.kind))
    }
}

/// Points at one object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    /// The object's kind.
    #[serde(flatten)]
    pub kind: Gvk,
    /// Its namespace; `None` for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl ObjectRef {
    /// A reference from its parts.
    pub fn new(kind: Gvk, namespace: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            kind,
            namespace: namespace.map(String::from),
            name: name.into(),
        }
    }

    /// A reference to an object in JSON form; `None` without `apiVersion`, `kind` or a name.
    pub fn from_json(object: &Value) -> Option<ObjectRef> {
        let kind = Gvk::of_object(object)?;
        let name = object.pointer("/metadata/name")?.as_str()?;
        let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str);
        Some(ObjectRef::new(kind, namespace, name))
    }
}

/// A primary object to reconcile: its namespace (`None` when cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: Option<&str>, name: &str) -> ObjectKey {
        ObjectKey {
            namespace: namespace.filter(|n| !n.is_empty()).map(String::from),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_read_and_write_as_api_version_and_kind() {
        let r = ObjectRef::new(Gvk::new("apps", "v1", "Deployment"), Some("demo"), "web");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "demo", "name": "web"})
        );
        assert_eq!(serde_json::from_value::<ObjectRef>(v).unwrap(), r);
        let core: Gvk = serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap"})).unwrap();
        assert_eq!(core, Gvk::new("", "v1", "ConfigMap"));
        assert!(core.matches(&json!({"apiVersion": "v1", "kind": "ConfigMap"})));
        assert_eq!(ObjectKey::new(Some(""), "n").to_string(), "n");
    }
}
