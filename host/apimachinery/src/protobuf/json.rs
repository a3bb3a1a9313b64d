//! Turning a decoded message tree into the object's Kubernetes JSON, guided by the kind's OpenAPI v3
//! component schemas (the same ones `/openapi/v3` serves).
//!
//! prost names fields in snake_case (`pod_ip`, `cluster_ips`), which loses the JSON spelling
//! (`podIP`, `clusterIPs`); the schema's property names restore it (compared without case and
//! underscores). The schema also says which lists are `bytes` (base64 in JSON). The apimachinery
//! wrapper messages become their JSON forms: Time and MicroTime (RFC 3339, a zero time is absent),
//! IntOrString, Quantity, Duration, and FieldsV1 and RawExtension (their raw JSON).
//!
//! Unset fields, empty lists and maps and empty strings are left out (Go's `omitempty`); zero numbers
//! and `false` are kept, since pointer fields like `replicas: 0` mean them. Fields the schema does not
//! know are dropped, as a server of that version would not know them either.

use base64::Engine;
use serde_json::{Map, Value};

use super::debug::Node;

/// Seconds of Go's zero `time.Time` (0001-01-01), which is how a zero Time travels in protobuf.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// The component schemas, by name.
pub type Schemas = Map<String, Value>;

fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Follows `$ref` and single-element `allOf` to the schema that has the structure.
fn resolve<'a>(mut schema: &'a Value, schemas: &'a Schemas) -> &'a Value {
    for _ in 0..16 {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            match r.rsplit('/').next().and_then(|name| schemas.get(name)) {
                Some(s) => schema = s,
                None => return schema,
            }
        } else if let Some([one]) = schema.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            schema = one;
        } else {
            break;
        }
    }
    schema
}

/// The root schema of a kind: the component carrying its `x-kubernetes-group-version-kind`.
pub fn root_schema<'a>(schemas: &'a Schemas, api_version: &str, kind: &str) -> Option<&'a Value> {
    root_schema_name(schemas, api_version, kind).and_then(|n| schemas.get(&n))
}

/// The name of a kind's root schema (`io.k8s.api.apps.v1.Deployment`).
pub fn root_schema_name(schemas: &Schemas, api_version: &str, kind: &str) -> Option<String> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    schemas
        .iter()
        .find(|(_, s)| {
            s.get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
                .is_some_and(|gvks| {
                    gvks.iter().any(|g| {
                        g.get("group").and_then(Value::as_str) == Some(group)
                            && g.get("version").and_then(Value::as_str) == Some(version)
                            && g.get("kind").and_then(Value::as_str) == Some(kind)
                    })
                })
        })
        .map(|(n, _)| n.clone())
}

fn field<'a>(fields: &'a [(String, Node)], name: &str) -> Option<&'a Node> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn int(node: Option<&Node>) -> i64 {
    match node {
        Some(Node::Num(n)) => n.parse().unwrap_or(0),
        _ => 0,
    }
}

fn bytes(node: Option<&Node>) -> Vec<u8> {
    match node {
        Some(Node::List(items)) => items
            .iter()
            .filter_map(|n| match n {
                Node::Num(n) => n.parse().ok(),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn time(fields: &[(String, Node)], micro: bool) -> Option<Value> {
    let seconds = int(field(fields, "seconds"));
    let nanos = int(field(fields, "nanos"));
    if seconds == GO_ZERO_TIME_SECONDS
        || (seconds == 0 && nanos == 0 && fields.iter().all(|(_, v)| *v == Node::Absent))
    {
        return None;
    }
    let t = jiff::Timestamp::new(seconds, i32::try_from(nanos).unwrap_or(0)).ok()?;
    let seconds = crate::time::format(t);
    Some(Value::String(if micro {
        // MicroTime: `2026-11-22T07:14:17.123456Z`.
        format!("{}.{:06}Z", seconds.trim_end_matches('Z'), t.subsec_microsecond())
    } else {
        seconds
    }))
}

/// Go's `time.Duration.String()` for whole units of the kind Kubernetes stores (`1h2m3s`, `500ms`).
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n < 1_000_000_000 {
        return match n {
            n if n % 1_000_000 == 0 => format!("{sign}{}ms", n / 1_000_000),
            n if n % 1_000 == 0 => format!("{sign}{}µs", n / 1_000),
            n => format!("{sign}{n}ns"),
        };
    }
    let (h, rest) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
    let (m, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let (s, frac) = (rest / 1_000_000_000, rest % 1_000_000_000);
    let secs = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{}", format!("{frac:09}").trim_end_matches('0')) + "s"
    };
    match (h, m) {
        (0, 0) => format!("{sign}{secs}"),
        (0, m) => format!("{sign}{m}m{secs}"),
        (h, m) => format!("{sign}{h}h{m}m{secs}"),
    }
}

fn raw_json(fields: &[(String, Node)]) -> Option<Value> {
    let raw = bytes(field(fields, "raw"));
    if raw.is_empty() {
        return None;
    }
    // RawExtension normally holds JSON; anything else is carried as a base64 string.
    Some(
        serde_json::from_slice(&raw)
            .unwrap_or_else(|_| Value::String(base64::engine::general_purpose::STANDARD.encode(&raw))),
    )
}

/// The JSON of one value, or None when it is absent (or empty, as Go's `omitempty` leaves it out).
pub fn to_json(node: &Node, schema: Option<&Value>, schemas: &Schemas) -> Option<Value> {
    let schema = schema.map(|s| resolve(s, schemas));
    match node {
        Node::Absent => None,
        Node::Bool(b) => Some(Value::Bool(*b)),
        Node::Str(s) => Some(Value::String(s.clone())),
        Node::Num(n) => n.parse::<i64>().map(Value::from).ok().or_else(|| {
            n.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
        }),
        Node::List(items) => {
            let is_bytes = schema.and_then(|s| s.get("format")).and_then(Value::as_str) == Some("byte");
            if is_bytes {
                let b = bytes(Some(node));
                return Some(Value::String(base64::engine::general_purpose::STANDARD.encode(b)));
            }
            let item_schema = schema.and_then(|s| s.get("items"));
            let out: Vec<Value> = items
                .iter()
                .map(|i| to_json(i, item_schema, schemas).unwrap_or(Value::Null))
                .collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        Node::Map(entries) => {
            let value_schema = schema.and_then(|s| s.get("additionalProperties"));
            let mut out = Map::new();
            for (k, v) in entries {
                let key = match k {
                    Node::Str(s) => s.clone(),
                    Node::Num(n) => n.clone(),
                    _ => continue,
                };
                // A map value keeps even an empty string: `data: {key: ""}` means it.
                let value = match v {
                    Node::Str(s) => Some(Value::String(s.clone())),
                    v => to_json(v, value_schema, schemas),
                };
                out.insert(key, value.unwrap_or(Value::Null));
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Node::Struct(name, fields) => match name.as_str() {
            "Time" => time(fields, false),
            "MicroTime" => time(fields, true),
            "IntOrString" => match int(field(fields, "type")) {
                1 => match field(fields, "str_val") {
                    Some(Node::Str(s)) => Some(Value::String(s.clone())),
                    _ => Some(Value::String(String::new())),
                },
                _ => Some(Value::from(int(field(fields, "int_val")))),
            },
            "Quantity" => match field(fields, "string") {
                Some(Node::Str(s)) if !s.is_empty() => Some(Value::String(s.clone())),
                _ => None,
            },
            "Duration" => Some(Value::String(go_duration(int(field(fields, "duration"))))),
            "FieldsV1" | "RawExtension" => raw_json(fields),
            _ => Some(Value::Object(object(fields, schema, schemas))),
        },
    }
}

fn object(fields: &[(String, Node)], schema: Option<&Value>, schemas: &Schemas) -> Map<String, Value> {
    let properties = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object);
    let mut out = Map::new();
    for (name, node) in fields {
        let (json_name, prop) = match properties {
            Some(props) => {
                let wanted = normalize(name);
                match props.iter().find(|(p, _)| normalize(p) == wanted) {
                    Some((p, s)) => (p.clone(), Some(s)),
                    None => continue,
                }
            }
            None => (camel(name), None),
        };
        if matches!(node, Node::Str(s) if s.is_empty()) {
            continue;
        }
        if let Some(v) = to_json(node, prop, schemas) {
            out.insert(json_name, v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
    }

    #[test]
    fn names_come_from_the_schema_and_fall_back_to_camel_case() {
        let schemas = Schemas::new();
        let schema =
            serde_json::json!({"properties": {"podIP": {"type": "string"}, "clusterIPs": {"type": "array"}}});
        let node = Node::Struct(
            "S".into(),
            vec![
                ("pod_ip".into(), Node::Str("10.0.0.1".into())),
                ("cluster_ips".into(), Node::List(vec![Node::Str("a".into())])),
                ("not_in_schema".into(), Node::Bool(true)),
                ("empty".into(), Node::Str(String::new())),
            ],
        );
        assert_eq!(
            to_json(&node, Some(&schema), &schemas).unwrap(),
            serde_json::json!({"podIP": "10.0.0.1", "clusterIPs": ["a"]})
        );
        let node = Node::Struct(
            "S".into(),
            vec![("min_ready_seconds".into(), Node::Num("0".into()))],
        );
        assert_eq!(
            to_json(&node, None, &schemas).unwrap(),
            serde_json::json!({"minReadySeconds": 0})
        );
    }
}
