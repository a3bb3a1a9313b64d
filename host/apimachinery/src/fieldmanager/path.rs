//! Field paths: [`PathElement`], one step of a path (`f:`, `k:`, `v:`, `i:` in `fieldsV1`), its
//! `fieldsV1` key encoding, structured-merge-diff's ordering of elements, and the printed form the
//! real server uses in conflict messages (`.spec.containers[name="x"].image`). Like
//! structured-merge-diff's `fieldpath.PathElement`.

use std::cmp::Ordering;
use std::fmt::{self, Write as _};

use serde_json::Value;

use super::FieldManagerError;
use super::value::{go_value_string, value_cmp};
use crate::gofmt::{go_json, go_json_string};

/// One step of a field path.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// `f:name`: a field of a struct or a key of a map.
    Field(String),
    /// `k:{"name":"a"}`: a list-map item, by its key fields (sorted by name).
    Key(Vec<(String, Value)>),
    /// `v:"a"`: a set-list item, by value.
    Value(Value),
    /// `i:0`: a list item by position. Never produced here; kept when read from `fieldsV1`.
    Index(i64),
}

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `fieldsV1` key: `f:name`, `k:{"name":"a"}`, `v:"a"`, `i:0`.
    pub fn to_fields_v1_key(&self) -> String {
        let mut s = String::new();
        match self {
            PathElement::Field(name) => {
                s.push_str("f:");
                s.push_str(name);
            }
            PathElement::Key(fields) => {
                s.push_str("k:{");
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str(&go_json_string(name));
                    s.push(':');
                    s.push_str(&go_json(value));
                }
                s.push('}');
            }
            PathElement::Value(value) => {
                s.push_str("v:");
                s.push_str(&go_json(value));
            }
            PathElement::Index(i) => {
                let _ = write!(s, "i:{i}");
            }
        }
        s
    }

    /// Parses a `fieldsV1` key. `Ok(None)` for an unknown element type (`x:...`), which the real
    /// server drops rather than rejects.
    pub fn from_fields_v1_key(key: &str) -> Result<Option<PathElement>, FieldManagerError> {
        let bytes = key.as_bytes();
        if bytes.len() < 2 {
            return Err(FieldManagerError::FieldsV1(format!(
                "key must be 2 characters long: {key:?}"
            )));
        }
        if bytes[1] != b':' {
            return Err(FieldManagerError::FieldsV1(format!("missing colon: {key:?}")));
        }
        // bytes[1] is ':' so bytes[0] is a one-byte character and index 2 is a char boundary.
        let rest = &key[2..];
        let bad = |what: &str| FieldManagerError::FieldsV1(format!("{what} in {key:?}"));
        Ok(Some(match bytes[0] {
            b'f' => PathElement::Field(rest.to_string()),
            b'k' => {
                let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(rest) else {
                    return Err(bad("key is not a JSON object"));
                };
                let mut fields: Vec<(String, Value)> = obj.into_iter().collect();
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                PathElement::Key(fields)
            }
            b'v' => PathElement::Value(serde_json::from_str(rest).map_err(|_| bad("value is not JSON"))?),
            b'i' => PathElement::Index(rest.parse().map_err(|_| bad("index is not an integer"))?),
            _ => return Ok(None),
        }))
    }
}

impl Ord for PathElement {
    /// structured-merge-diff's order: fields, then keys, then values, then indices.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b) {
                    let c = an.cmp(bn).then_with(|| value_cmp(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => value_cmp(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl fmt::Display for PathElement {
    /// The real server's path syntax: `.name`, `[name="a",port=80]`, `[="a"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(n, v)| format!("{n}={}", go_value_string(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", go_value_string(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path as the real server prints it in conflicts: `.spec.containers[name="x"].image`.
pub fn path_to_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}
