//! What one reconcile gets ([`Snapshot`]) and what a triggering change hands to `map` ([`Trigger`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::metadata::Lookup;

/// Why a reconcile runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The primary object was created or changed.
    Change,
    /// One of its children changed or was deleted.
    ChildChange,
    /// The periodic resync.
    Resync,
    /// A retry after an error or a failed write, or a requested requeue.
    Retry,
    /// The object is being deleted and carries the plugin's finalizer.
    Deletion,
    /// An object of a triggering lookup changed and the plugin's `map` named this object.
    Trigger,
}

/// The results of one declared lookup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookupResult {
    pub lookup: Lookup,
    /// Matching objects, as JSON.
    #[serde(default)]
    pub objects: Vec<Value>,
}

/// Everything one reconcile gets. Objects are JSON values here; the runtime serialises them to text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The primary object.
    pub object: Value,
    /// The objects of owned kinds this object owns.
    #[serde(default)]
    pub children: Vec<Value>,
    /// The declared lookups' results, in declaration order.
    #[serde(default)]
    pub lookups: Vec<LookupResult>,
    pub reason: Reason,
    /// 1 for the first attempt; counts up while reconciles of this object fail.
    #[serde(default = "one")]
    pub attempt: u32,
    /// The plugin's configuration (`{}` when none is given).
    #[serde(default = "empty_object")]
    pub config: Value,
}

/// Builder methods, for plugin unit tests (the host builds the real snapshots).
impl Snapshot {
    /// A snapshot of one object: reason `change`, first attempt, no children, no lookups,
    /// configuration `{}`.
    pub fn new(object: Value) -> Snapshot {
        Snapshot {
            object,
            children: Vec::new(),
            lookups: Vec::new(),
            reason: Reason::Change,
            attempt: 1,
            config: empty_object(),
        }
    }

    /// The same snapshot with another reason.
    pub fn with_reason(mut self, reason: Reason) -> Snapshot {
        self.reason = reason;
        self
    }

    /// The same snapshot with another attempt number.
    pub fn with_attempt(mut self, attempt: u32) -> Snapshot {
        self.attempt = attempt;
        self
    }

    /// The same snapshot with one more child.
    pub fn with_child(mut self, child: Value) -> Snapshot {
        self.children.push(child);
        self
    }

    /// The same snapshot with one more lookup result.
    pub fn with_lookup(mut self, lookup: Lookup, objects: Vec<Value>) -> Snapshot {
        self.lookups.push(LookupResult { lookup, objects });
        self
    }

    /// The same snapshot with this configuration.
    pub fn with_config(mut self, config: Value) -> Snapshot {
        self.config = config;
        self
    }
}

/// A [`Snapshot`] whose objects are JSON text, as the engine keeps them in its cache. A reconciler
/// that hands them on as text (a WebAssembly plugin, which receives strings) takes this form
/// ([`Reconciler::takes_text`](crate::Reconciler::takes_text)), so that nothing is parsed and
/// serialised again on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotText {
    pub object: String,
    pub children: Vec<String>,
    /// Each declared lookup with its matching objects, in declaration order.
    pub lookups: Vec<(Lookup, Vec<String>)>,
    pub reason: Reason,
    pub attempt: u32,
    pub config: String,
}

impl SnapshotText {
    /// The same snapshot with its objects parsed.
    pub fn parse(&self) -> Result<Snapshot, serde_json::Error> {
        let values = |texts: &[String]| -> Result<Vec<Value>, serde_json::Error> {
            texts.iter().map(|t| serde_json::from_str(t)).collect()
        };
        Ok(Snapshot {
            object: serde_json::from_str(&self.object)?,
            children: values(&self.children)?,
            lookups: self
                .lookups
                .iter()
                .map(|(lookup, objects)| {
                    Ok(LookupResult {
                        lookup: lookup.clone(),
                        objects: values(objects)?,
                    })
                })
                .collect::<Result<_, serde_json::Error>>()?,
            reason: self.reason,
            attempt: self.attempt,
            config: serde_json::from_str(&self.config)?,
        })
    }
}

fn one() -> u32 {
    1
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// A change to an object of a triggering lookup, handed to the plugin's `map`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// Index of the lookup in the plugin's `lookups`.
    pub lookup: u32,
    /// The object (its last known state when it was deleted).
    pub object: Value,
    /// Whether it was deleted.
    #[serde(default)]
    pub deleted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_read_from_yaml_like_fixtures() {
        let s: Snapshot = serde_json::from_value(
            serde_json::json!({"object": {"kind": "Deployment"}, "reason": "child-change"}),
        )
        .unwrap();
        assert_eq!(
            (s.reason, s.attempt, s.config.clone()),
            (Reason::ChildChange, 1, serde_json::json!({}))
        );
        let built = Snapshot::new(serde_json::json!({"kind": "Deployment"})).with_reason(Reason::ChildChange);
        assert_eq!(built, s);
    }

    #[test]
    fn a_text_snapshot_parses_into_the_same_snapshot() {
        let lookup = Lookup::new(crate::Gvk::new("", "v1", "Secret"));
        let text = SnapshotText {
            object: r#"{"kind":"Deployment"}"#.into(),
            children: vec![r#"{"kind":"Service"}"#.into()],
            lookups: vec![(lookup.clone(), vec![r#"{"kind":"Secret"}"#.into()])],
            reason: Reason::Resync,
            attempt: 2,
            config: r#"{"a":1}"#.into(),
        };
        let expected = Snapshot::new(serde_json::json!({"kind": "Deployment"}))
            .with_child(serde_json::json!({"kind": "Service"}))
            .with_lookup(lookup, vec![serde_json::json!({"kind": "Secret"})])
            .with_reason(Reason::Resync)
            .with_attempt(2)
            .with_config(serde_json::json!({"a": 1}));
        assert_eq!(text.parse().unwrap(), expected);
        let broken = SnapshotText {
            object: "{".into(),
            ..text
        };
        assert!(broken.parse().is_err());
    }
}
