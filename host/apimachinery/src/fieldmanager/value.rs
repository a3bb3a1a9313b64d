//! JSON values the way structured-merge-diff sees them: its total order (which sorts set items and
//! list-map keys), its equality (`1` equals `1.0`), and its printing of values inside paths. Like
//! structured-merge-diff's `value` package, over `serde_json` values.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use serde_json::Value;

use crate::gofmt::{go_float, go_quote};

fn is_float(n: &serde_json::Number) -> bool {
    n.is_f64()
}

fn num_f64(n: &serde_json::Number) -> f64 {
    n.as_f64().unwrap_or(0.0)
}

/// Numbers (compared numerically) < strings < booleans < lists < maps < null.
pub(super) fn value_cmp(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if is_float(x) || is_float(y) {
                num_f64(x).partial_cmp(&num_f64(y)).unwrap_or(Ordering::Equal)
            } else if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x.cmp(&y)
            } else {
                // u64 beyond i64: compare as unsigned (both non-negative) or by sign.
                match (x.as_u64(), y.as_u64()) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    (Some(_), None) => Ordering::Greater,
                    (None, Some(_)) => Ordering::Less,
                    (None, None) => Ordering::Equal,
                }
            }
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let c = value_cmp(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (None, _) => return Ordering::Greater,
                    (_, None) => return Ordering::Less,
                    (Some(p), Some(q)) => {
                        let c = value_cmp(p, q);
                        if c != Ordering::Equal {
                            return c;
                        }
                    }
                }
            }
            Ordering::Equal
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => rank(a).cmp(&rank(b)),
    }
}

/// structured-merge-diff equality: like JSON equality, but `1` equals `1.0`.
pub(super) fn value_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => value_cmp(a, b) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| value_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| value_eq(v, w)))
        }
        _ => a == b,
    }
}

/// structured-merge-diff's `value.ToString`, used in printed paths (`[name="a"]`, `[=80]`).
pub(super) fn go_value_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if is_float(n) => go_float(num_f64(n)),
        Value::Number(n) => n.to_string(),
        Value::String(s) => go_quote(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_value_string).collect::<Vec<_>>().join(",")
        ),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", go_value_string(v)))
            .collect(),
    }
}
