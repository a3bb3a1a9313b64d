//! The wire form of `Status` bodies (errors, DELETE successes, eviction answers): kube-apiserver's
//! Go field order (`kind`, `apiVersion`, `metadata`, `status`, `message`, `reason`, `details`,
//! `code`; details `name`, `group`, `kind`, `uid`, `causes`, `retryAfterSeconds`; causes `reason`,
//! `message`, `field`), watch events with `type` before `object`, and every other API object with
//! `kind`, `apiVersion` and `metadata` first (Go's TypeMeta and ObjectMeta lead every struct; clients
//! such as kube-rs quote the byte offsets of `kind` in their errors). `serde_json::Value` sorts keys,
//! so these values are re-emitted through the types here before they are written (see
//! `http::json_bytes`).

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListMetaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    self_link: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_version: Option<&'a Value>,
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    continue_: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining_item_count: Option<&'a Value>,
}

#[derive(Serialize)]
struct CauseOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DetailsOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    causes: Option<Vec<CauseOut<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_seconds: Option<&'a Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusOut<'a> {
    kind: &'a Value,
    api_version: &'a Value,
    metadata: ListMetaOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<DetailsOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a Value>,
}

/// Whether `value` is a `meta/v1 Status` (the only kind re-ordered here).
pub fn is_status(value: &Value) -> bool {
    value.get("kind").and_then(Value::as_str) == Some("Status")
        && value.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

fn ordered(value: &Value) -> Option<StatusOut<'_>> {
    if !is_status(value) {
        return None;
    }
    // A Status carrying fields this module does not know is left as it is rather than trimmed.
    const KNOWN: [&str; 8] = [
        "kind",
        "apiVersion",
        "metadata",
        "status",
        "message",
        "reason",
        "details",
        "code",
    ];
    let obj = value.as_object()?;
    if obj.keys().any(|k| !KNOWN.contains(&k.as_str())) {
        return None;
    }
    let meta = obj.get("metadata").and_then(Value::as_object);
    let m = |k: &str| meta.and_then(|m| m.get(k));
    let details = match obj.get("details") {
        None | Some(Value::Null) => None,
        Some(Value::Object(d)) => {
            const DETAIL_KEYS: [&str; 6] = ["name", "group", "kind", "uid", "causes", "retryAfterSeconds"];
            if d.keys().any(|k| !DETAIL_KEYS.contains(&k.as_str())) {
                return None;
            }
            let causes = match d.get("causes") {
                None => None,
                Some(Value::Array(items)) => Some(
                    items
                        .iter()
                        .map(|c| CauseOut {
                            reason: c.get("reason"),
                            message: c.get("message"),
                            field: c.get("field"),
                        })
                        .collect(),
                ),
                Some(_) => return None,
            };
            Some(DetailsOut {
                name: d.get("name"),
                group: d.get("group"),
                kind: d.get("kind"),
                uid: d.get("uid"),
                causes,
                retry_after_seconds: d.get("retryAfterSeconds"),
            })
        }
        Some(_) => return None,
    };
    Some(StatusOut {
        kind: obj.get("kind")?,
        api_version: obj.get("apiVersion")?,
        metadata: ListMetaOut {
            self_link: m("selfLink"),
            resource_version: m("resourceVersion"),
            continue_: m("continue"),
            remaining_item_count: m("remainingItemCount"),
        },
        status: obj.get("status"),
        message: obj.get("message"),
        reason: obj.get("reason"),
        details,
        code: obj.get("code"),
    })
}

/// The keys Go writes first in every API object.
const LEAD: [&str; 3] = ["kind", "apiVersion", "metadata"];

/// An API object (or list) with `kind`, `apiVersion` and `metadata` first, the rest in key order.
struct ObjectOut<'a>(&'a Map<String, Value>);

impl Serialize for ObjectOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for k in LEAD {
            if let Some(v) = self.0.get(k) {
                m.serialize_entry(k, v)?;
            }
        }
        for (k, v) in self.0.iter().filter(|(k, _)| !LEAD.contains(&k.as_str())) {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

fn api_object(value: &Value) -> Option<ObjectOut<'_>> {
    let obj = value.as_object()?;
    (obj.get("kind").is_some_and(Value::is_string) && obj.contains_key("apiVersion"))
        .then_some(ObjectOut(obj))
}

/// A watch event's object: a `Status` in Go order, an API object with its type first, anything
/// else as it is.
#[derive(Serialize)]
#[serde(untagged)]
enum EventObject<'a> {
    Status(StatusOut<'a>),
    Object(ObjectOut<'a>),
    Plain(&'a Value),
}

/// `{"type", "object"}` in the order a real server writes watch events.
#[derive(Serialize)]
struct EventOut<'a> {
    #[serde(rename = "type")]
    type_: &'a Value,
    object: EventObject<'a>,
}

fn watch_event(value: &Value) -> Option<EventOut<'_>> {
    let obj = value.as_object()?;
    if obj.len() != 2 {
        return None;
    }
    let type_ = obj.get("type").filter(|t| t.is_string())?;
    let object = obj.get("object")?;
    Some(EventOut {
        type_,
        object: match (ordered(object), api_object(object)) {
            (Some(status), _) => EventObject::Status(status),
            (None, Some(o)) => EventObject::Object(o),
            (None, None) => EventObject::Plain(object),
        },
    })
}

fn write<T: Serialize>(out: &T, pretty: bool) -> Option<Vec<u8>> {
    if pretty {
        serde_json::to_vec_pretty(out).ok()
    } else {
        serde_json::to_vec(out).ok()
    }
}

/// The JSON of a `Status` in kube-apiserver's field order, of a watch event (`type` first, its
/// object in order), or of an API object (`kind`, `apiVersion`, `metadata` first); None for
/// anything else.
pub fn to_vec(value: &Value, pretty: bool) -> Option<Vec<u8>> {
    if let Some(out) = ordered(value) {
        return write(&out, pretty);
    }
    if let Some(event) = watch_event(value) {
        return write(&event, pretty);
    }
    write(&api_object(value)?, pretty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_objects_lead_with_their_type_and_metadata() {
        let cm = serde_json::json!({"apiVersion": "v1", "data": {"b": "1", "a": "2"}, "kind": "ConfigMap", "metadata": {"name": "x"}});
        assert_eq!(
            String::from_utf8(to_vec(&cm, false).unwrap()).unwrap(),
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x"},"data":{"a":"2","b":"1"}}"#
        );
        let event = serde_json::json!({"object": cm, "type": "ADDED"});
        assert!(
            String::from_utf8(to_vec(&event, false).unwrap())
                .unwrap()
                .starts_with(r#"{"type":"ADDED","object":{"kind":"ConfigMap","apiVersion":"v1""#)
        );
        assert!(to_vec(&serde_json::json!({"paths": []}), false).is_none());
    }
    use crate::error::{ApiError, ResourceRef};
    use serde_json::json;

    #[test]
    fn errors_come_out_in_go_field_order() {
        let e = ApiError::not_found(
            ResourceRef {
                group: "",
                plural: "configmaps",
            },
            "nope",
        );
        let bytes = to_vec(&e.to_status(), false).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"configmaps"},"code":404}"#
        );
    }

    #[test]
    fn delete_success_and_causes_keep_their_order() {
        let v = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"uid": "u", "kind": "widgets", "group": "example.com", "name": "w",
                "causes": [{"field": "f", "message": "m", "reason": "r"}]}});
        assert_eq!(
            String::from_utf8(to_vec(&v, false).unwrap()).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{"name":"w","group":"example.com","kind":"widgets","uid":"u","causes":[{"reason":"r","message":"m","field":"f"}]}}"#
        );
    }

    #[test]
    fn watch_events_put_type_first() {
        let e = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": "too old resource version: 1 (388)", "reason": "Expired", "code": 410}});
        assert_eq!(
            String::from_utf8(to_vec(&e, false).unwrap()).unwrap(),
            r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (388)","reason":"Expired","code":410}}"#
        );
        let added = json!({"type": "ADDED", "object": {"b": 1, "a": 2}});
        assert_eq!(
            String::from_utf8(to_vec(&added, false).unwrap()).unwrap(),
            r#"{"type":"ADDED","object":{"a":2,"b":1}}"#
        );
    }

    #[test]
    fn unknown_fields_are_kept_and_non_objects_left_alone() {
        // A Status with a field this module does not know is written as any object: nothing lost.
        assert_eq!(
            String::from_utf8(
                to_vec(&json!({"kind": "Status", "apiVersion": "v1", "extra": 1}), false).unwrap()
            )
            .unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","extra":1}"#
        );
        assert!(to_vec(&json!({"kind": 1, "apiVersion": "v1"}), false).is_none());
        assert!(to_vec(&json!([1, 2]), false).is_none());
    }
}
