//! What golden fixtures need (feature `fixtures`), shared by `wasmop test` and the guest SDK's
//! native runner so that a plugin answers a fixture the same way in both: [`SnapshotCache`], the
//! cache a plugin reads during a fixture (the snapshot's own objects), and [`MapFixture`], the
//! input of a `map` fixture.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wasmop_apimachinery::selector::LabelSelector;

use crate::kind::Gvk;
use crate::reconciler::CacheReader;
use crate::snapshot::{Snapshot, Trigger};

/// A cache holding given objects, answering as the host's cache would: for a reconcile fixture,
/// the snapshot's primary object, children and lookup results.
#[derive(Debug, Default, Clone)]
pub struct SnapshotCache {
    objects: Vec<Value>,
}

impl SnapshotCache {
    /// The snapshot's objects: the primary object, its children and the lookups' results.
    pub fn new(snapshot: &Snapshot) -> SnapshotCache {
        let all = std::iter::once(&snapshot.object)
            .chain(&snapshot.children)
            .chain(snapshot.lookups.iter().flat_map(|l| &l.objects));
        SnapshotCache::from_objects(all.cloned())
    }

    /// These objects (the first of several with the same kind, namespace and name wins).
    pub fn from_objects(objects: impl IntoIterator<Item = Value>) -> SnapshotCache {
        let mut kept: Vec<Value> = Vec::new();
        for o in objects {
            let same = |v: &Value| {
                Gvk::of_object(v) == Gvk::of_object(&o)
                    && namespace(v) == namespace(&o)
                    && name(v) == name(&o)
            };
            if !kept.iter().any(same) {
                kept.push(o);
            }
        }
        SnapshotCache { objects: kept }
    }
}

fn namespace(o: &Value) -> Option<&str> {
    o.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn name(o: &Value) -> Option<&str> {
    o.pointer("/metadata/name").and_then(Value::as_str)
}

impl CacheReader for SnapshotCache {
    fn get(&self, kind: &Gvk, ns: Option<&str>, n: &str) -> Option<Value> {
        self.objects
            .iter()
            .find(|o| kind.matches(o) && namespace(o) == ns && name(o) == Some(n))
            .cloned()
    }

    /// An invalid label selector matches nothing.
    fn list(&self, kind: &Gvk, ns: Option<&str>, label_selector: Option<&str>) -> Vec<Value> {
        let selector = match label_selector.map(LabelSelector::parse).transpose() {
            Ok(s) => s.unwrap_or_else(LabelSelector::everything),
            Err(_) => return Vec::new(),
        };
        self.objects
            .iter()
            .filter(|o| kind.matches(o) && (ns.is_none() || namespace(o) == ns))
            .filter(|o| selector.matches(o.pointer("/metadata/labels").and_then(Value::as_object)))
            .cloned()
            .collect()
    }
}

/// A `map` fixture (`<case>.trigger.yaml`): the trigger's fields (`lookup`, `object`, `deleted`)
/// and the objects the plugin's cache holds while it maps (`cache`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapFixture {
    #[serde(flatten)]
    pub trigger: Trigger,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache: Vec<Value>,
}

impl MapFixture {
    /// The cache the plugin reads while it maps.
    pub fn cache(&self) -> SnapshotCache {
        SnapshotCache::from_objects(self.cache.iter().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_snapshot_cache_answers_from_the_snapshot() {
        let snapshot: Snapshot = serde_json::from_value(json!({
            "object": {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "demo"}},
            "children": [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w-config", "namespace": "demo", "labels": {"app": "w"}}},
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other", "namespace": "demo"}}
            ],
            "lookups": [{
                "lookup": {"apiVersion": "v1", "kind": "Secret"},
                "objects": [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "prod"}}]
            }],
            "reason": "change"
        }))
        .unwrap();
        let cache = SnapshotCache::new(&snapshot);
        let cm = Gvk::new("", "v1", "ConfigMap");
        assert_eq!(
            cache.get(&cm, Some("demo"), "w-config").unwrap()["metadata"]["labels"],
            json!({"app": "w"})
        );
        assert!(cache.get(&cm, None, "w-config").is_none());
        assert!(
            cache
                .get(&Gvk::new("example.com", "v1", "Widget"), Some("demo"), "w")
                .is_some()
        );
        assert_eq!(cache.list(&cm, Some("demo"), None).len(), 2);
        assert_eq!(cache.list(&cm, None, Some("app=w")).len(), 1);
        assert_eq!(cache.list(&cm, Some("prod"), None).len(), 0);
        assert_eq!(cache.list(&Gvk::new("", "v1", "Secret"), None, None).len(), 1);
        assert!(cache.list(&cm, None, Some("app in (")).is_empty());
    }

    #[test]
    fn map_fixtures_read_as_a_trigger_and_a_cache() {
        let f: MapFixture = serde_json::from_value(json!({
            "lookup": 0,
            "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns-a"}},
            "cache": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "demo"}}]
        }))
        .unwrap();
        assert_eq!((f.trigger.lookup, f.trigger.deleted), (0, false));
        assert_eq!(
            f.cache().list(&Gvk::new("", "v1", "ConfigMap"), None, None).len(),
            1
        );
    }
}
