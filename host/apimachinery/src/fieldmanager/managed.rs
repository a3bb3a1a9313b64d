//! `metadata.managedFields`: [`ManagedFieldsEntry`] decoded and encoded the way the real server does
//! (validation, time normalisation, the sort order of rule 19), the manager identity entries are
//! keyed by, the choice of the list an Update starts from, and the 10-updater cap
//! (`ancient-changes`). Like the apiserver's `managedfields/internal` package.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::{FieldManagerError, FieldSet};
use crate::gofmt::go_json_string;
use crate::time;

/// Update managers beyond this many are merged, oldest first, into `ancient-changes` buckets.
const MAX_UPDATE_MANAGERS: usize = 10;
/// Manager name of the bucket that holds merged old updates.
const ANCIENT_CHANGES: &str = "ancient-changes";

/// How a manager came to own its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Server-side apply (`application/apply-patch+yaml`).
    Apply,
    /// Create, update, or a non-apply patch.
    Update,
}

impl Operation {
    /// `"Apply"` or `"Update"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One item of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    /// The field manager (`?fieldManager=` or the User-Agent's product).
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The API version the fields were written in.
    pub api_version: String,
    /// When the manager last changed the object (RFC 3339, `Z`). An applier whose first apply changed
    /// nothing has none, like on the real server.
    pub time: Option<String>,
    /// The owned fields.
    pub fields: FieldSet,
    /// `status` for writes through `/status`.
    pub subresource: Option<String>,
}

/// What makes two entries the same manager (the apiserver's manager identifier): Update entries
/// differ per apiVersion, Apply entries do not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Identity {
    manager: String,
    operation: Operation,
    api_version: Option<String>,
    subresource: Option<String>,
}

impl Identity {
    pub(super) fn new(
        manager: &str,
        operation: Operation,
        api_version: &str,
        subresource: Option<&str>,
    ) -> Self {
        Identity {
            manager: manager.to_string(),
            operation,
            api_version: (operation == Operation::Update && !api_version.is_empty())
                .then(|| api_version.to_string()),
            subresource: subresource.filter(|s| !s.is_empty()).map(str::to_string),
        }
    }

    /// `{"manager":"editor","operation":"Update","apiVersion":"v1"}`: what the real server sorts
    /// conflict groups and capped updaters by.
    pub(super) fn json(&self) -> String {
        let mut s = String::from("{");
        if !self.manager.is_empty() {
            s.push_str("\"manager\":");
            s.push_str(&go_json_string(&self.manager));
            s.push(',');
        }
        let _ = write!(s, "\"operation\":\"{}\"", self.operation.as_str());
        if let Some(v) = &self.api_version {
            s.push_str(",\"apiVersion\":");
            s.push_str(&go_json_string(v));
        }
        if let Some(sub) = &self.subresource {
            s.push_str(",\"subresource\":");
            s.push_str(&go_json_string(sub));
        }
        s.push('}');
        s
    }
}

impl ManagedFieldsEntry {
    pub(super) fn identity(&self) -> Identity {
        Identity::new(
            &self.manager,
            self.operation,
            &self.api_version,
            self.subresource.as_deref(),
        )
    }

    fn time_secs(&self) -> i64 {
        self.time
            .as_deref()
            .and_then(time::parse)
            .map_or(0, Timestamp::as_second)
    }

    /// Decodes one `managedFields` item, validating it like the real server (operation `Apply` or
    /// `Update`, non-empty `apiVersion`, `fieldsType: FieldsV1`, RFC 3339 `time`). The time is
    /// normalised to UTC seconds, as re-encoding `metav1.Time` does.
    pub fn from_json(value: &Value) -> Result<ManagedFieldsEntry, FieldManagerError> {
        let err = |m: String| FieldManagerError::ManagedFields(m);
        let Value::Object(obj) = value else {
            return Err(err("a managedFields entry must be an object".into()));
        };
        let string = |key: &str| -> Result<Option<&str>, FieldManagerError> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(err(format!("{key} must be a string"))),
            }
        };
        let manager = string("manager")?.unwrap_or_default().to_string();
        let operation = match string("operation")? {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            _ => return Err(err("operation must be `Apply` or `Update`".into())),
        };
        let api_version = match string("apiVersion")? {
            Some(v) if !v.is_empty() => v.to_string(),
            _ => return Err(err("apiVersion must not be empty".into())),
        };
        match string("fieldsType")? {
            Some("FieldsV1") => {}
            None | Some("") => return Err(err("missing fieldsType in managed fields entry".into())),
            Some(other) => {
                return Err(err(format!(
                    "invalid fieldsType {other:?} in managed fields entry"
                )));
            }
        }
        let time = match string("time")? {
            None => None,
            Some(t) => Some(time::format(
                time::parse(t).ok_or_else(|| err(format!("invalid time {t:?}")))?,
            )),
        };
        let fields = FieldSet::from_fields_v1(obj.get("fieldsV1").unwrap_or(&Value::Null))?;
        let subresource = string("subresource")?
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        Ok(ManagedFieldsEntry {
            manager,
            operation,
            api_version,
            time,
            fields,
            subresource,
        })
    }

    /// Encodes the entry: `manager, operation, apiVersion, time, fieldsType, fieldsV1, subresource`
    /// (empty ones omitted, as Go does).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if !self.manager.is_empty() {
            m.insert("manager".into(), Value::String(self.manager.clone()));
        }
        m.insert("operation".into(), Value::String(self.operation.as_str().into()));
        m.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(t) = &self.time {
            m.insert("time".into(), Value::String(t.clone()));
        }
        m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(sub) = &self.subresource {
            m.insert("subresource".into(), Value::String(sub.clone()));
        }
        Value::Object(m)
    }
}

/// Sorts entries like the real server (rule 19): Apply before Update, then by time (none first),
/// manager, apiVersion, subresource.
pub fn sort_managed_fields(entries: &mut [ManagedFieldsEntry]) {
    entries.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| p.time_secs().cmp(&q.time_secs()))
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| {
                p.subresource
                    .as_deref()
                    .unwrap_or("")
                    .cmp(q.subresource.as_deref().unwrap_or(""))
            })
    });
}

/// Decodes `metadata.managedFields` of an object (absent or null: none). Entries naming the same
/// manager collapse into the last one, as the real server's map does.
pub fn decode_managed_fields(obj: &Value) -> Result<Vec<ManagedFieldsEntry>, FieldManagerError> {
    match obj.pointer("/metadata/managedFields") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(dedupe(
            items
                .iter()
                .map(ManagedFieldsEntry::from_json)
                .collect::<Result<_, _>>()?,
        )),
        Some(_) => Err(FieldManagerError::ManagedFields(
            "managedFields must be a list".into(),
        )),
    }
}

/// The `metadata.managedFields` JSON array, sorted (rule 19).
pub fn encode_managed_fields(entries: &[ManagedFieldsEntry]) -> Value {
    let mut sorted = entries.to_vec();
    sort_managed_fields(&mut sorted);
    Value::Array(sorted.iter().map(ManagedFieldsEntry::to_json).collect())
}

/// Writes `metadata.managedFields`, or removes the key when no manager owns anything (rule 20).
pub fn set_managed_fields(obj: &mut Value, entries: &[ManagedFieldsEntry]) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    if entries.is_empty() {
        if let Some(Value::Object(meta)) = root.get_mut("metadata") {
            meta.remove("managedFields");
        }
        return;
    }
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(meta) = meta {
        meta.insert("managedFields".into(), encode_managed_fields(entries));
    }
}

/// The managers an Update starts from, chosen like the real server (`decodeLiveOrNew`):
/// - a `/status` (any subresource) write: the live object's;
/// - `managedFields: [{}]` (only empty entries): none, which is how clients clear the list;
/// - the new object's, when it has a valid non-empty list (clients may edit managedFields);
/// - otherwise the live object's (clients that drop the field do not wipe it); undecodable: none.
pub fn managed_fields_for_update(
    new: &Value,
    live: Option<&Value>,
    subresource: bool,
) -> Vec<ManagedFieldsEntry> {
    let from_live = || {
        live.and_then(|l| decode_managed_fields(l).ok())
            .unwrap_or_default()
    };
    if subresource {
        return from_live();
    }
    if let Some(Value::Array(items)) = new.pointer("/metadata/managedFields")
        && !items.is_empty()
        && items
            .iter()
            .all(|i| i.as_object().is_some_and(|o| o.values().all(is_zero_json)))
    {
        return Vec::new();
    }
    match decode_managed_fields(new) {
        Ok(entries) if !entries.is_empty() => entries,
        _ => from_live(),
    }
}

/// Whether a JSON value decodes to Go's zero value (what `reflect.DeepEqual(entry, {})` tests).
fn is_zero_json(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Later entries with the same identity replace earlier ones (the real server keeps a map).
pub(super) fn dedupe(entries: Vec<ManagedFieldsEntry>) -> Vec<ManagedFieldsEntry> {
    let mut out: Vec<ManagedFieldsEntry> = Vec::with_capacity(entries.len());
    for e in entries {
        match out.iter().position(|o| o.identity() == e.identity()) {
            Some(i) => out[i] = e,
            None => out.push(e),
        }
    }
    out
}

/// The apiserver's `capManagersManager`: with more than 10 Update entries, the oldest are merged
/// into one `ancient-changes` entry per apiVersion.
pub(super) fn cap_update_managers(entries: &mut Vec<ManagedFieldsEntry>) {
    let mut updaters: Vec<(i64, String, Identity)> = entries
        .iter()
        .filter(|e| e.operation == Operation::Update)
        .map(|e| (e.time_secs(), e.identity().json(), e.identity()))
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let find =
        |entries: &[ManagedFieldsEntry], id: &Identity| entries.iter().position(|e| e.identity() == *id);
    let mut first_of_version: BTreeMap<String, Identity> = BTreeMap::new();
    let mut length = updaters.len();
    for (_, _, id) in updaters {
        if length <= MAX_UPDATE_MANAGERS {
            break;
        }
        let Some(index) = find(entries, &id) else {
            continue;
        };
        let entry = entries[index].clone();
        let version = entry.api_version.clone();
        let Some(first) = first_of_version.get(&version) else {
            first_of_version.insert(version, id);
            continue;
        };
        let bucket = Identity::new(ANCIENT_CHANGES, Operation::Update, &version, None);
        if find(entries, &bucket).is_none()
            && let Some(first_index) = find(entries, first)
        {
            let moved = &mut entries[first_index];
            moved.manager = ANCIENT_CHANGES.into();
            moved.subresource = None;
        }
        let merged_fields = match find(entries, &bucket) {
            Some(b) => entry.fields.union(&entries[b].fields),
            None => entry.fields.clone(),
        };
        // As in the real code, the merged entry goes away after its fields joined the bucket.
        if let Some(i) = find(entries, &id) {
            entries.remove(i);
        }
        length -= 1;
        let bucket_entry = ManagedFieldsEntry {
            manager: ANCIENT_CHANGES.into(),
            operation: Operation::Update,
            api_version: version,
            time: entry.time.clone(),
            fields: merged_fields,
            subresource: None,
        };
        match find(entries, &bucket) {
            Some(b) => entries[b] = bucket_entry,
            None if id != bucket => entries.push(bucket_entry),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fieldmanager::FieldManager;
    use crate::fieldmanager::testdata::*;
    use crate::structure::BuiltinStructure;

    #[test]
    fn malformed_fields_v1_and_managed_fields_are_errors() {
        for bad in [
            r#"{"f:a":1}"#,
            r#"{"q":{}}"#,
            r#"{"k:[1]":{}}"#,
            r#"{"v:nope":{}}"#,
            r#"{"i:x":{}}"#,
            "[]",
        ] {
            assert!(FieldSet::from_fields_v1(&j(bad)).is_err(), "{bad}");
        }
        let entry = |e: Value| decode_managed_fields(&json!({"metadata": {"managedFields": [e]}}));
        let ok = json!({"manager":"m","operation":"Update","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{}});
        assert!(entry(ok.clone()).is_ok());
        for (key, value) in [
            ("operation", json!("Patch")),
            ("apiVersion", json!("")),
            ("fieldsType", json!("FieldsV2")),
            ("fieldsType", Value::Null),
            ("time", json!("yesterday")),
            ("manager", json!(5)),
            ("fieldsV1", json!({"f:a": "x"})),
        ] {
            let mut e = ok.clone();
            e[key] = value;
            assert!(entry(e).is_err(), "{key}");
        }
        assert!(decode_managed_fields(&json!({"metadata": {"managedFields": {}}})).is_err());
        assert!(decode_managed_fields(&json!({"metadata": {"managedFields": [7]}})).is_err());
    }

    #[test]
    fn times_are_normalised_to_utc_seconds() {
        let e = ManagedFieldsEntry::from_json(&json!({
            "manager": "m", "operation": "Update", "apiVersion": "v1",
            "time": "2026-11-22T08:14:17.123+01:00", "fieldsType": "FieldsV1"
        }))
        .unwrap();
        assert_eq!(e.time.as_deref(), Some("2026-11-22T07:14:17Z"));
        assert_eq!(
            time::format(time::parse("2024-02-29T23:59:59Z").unwrap()),
            "2024-02-29T23:59:59Z"
        );
        assert_eq!(time::parse("1970-01-01T00:00:00Z"), Some(Timestamp::UNIX_EPOCH));
        assert_eq!(time::parse("2023-02-29T00:00:00Z"), None);
        assert_eq!(time::parse("2023-01-01 00:00:00Z"), None);
    }

    #[test]
    fn managed_fields_source_for_updates() {
        let live = json!({"metadata": {"managedFields": j(CM01)}});
        let live_entries = decode_managed_fields(&live).unwrap();
        // Absent, empty or malformed in the body: the live list.
        assert_eq!(
            managed_fields_for_update(&json!({}), Some(&live), false),
            live_entries
        );
        assert_eq!(
            managed_fields_for_update(&json!({"metadata": {"managedFields": []}}), Some(&live), false),
            live_entries
        );
        let bad = json!({"metadata": {"managedFields": [{"operation": "Nope"}]}});
        assert_eq!(managed_fields_for_update(&bad, Some(&live), false), live_entries);
        // [{}] clears the list.
        assert!(
            managed_fields_for_update(&json!({"metadata": {"managedFields": [{}]}}), Some(&live), false)
                .is_empty()
        );
        // A valid list in the body wins, except on a subresource.
        let other = json!({"metadata": {"managedFields": j(CM07)}});
        assert_eq!(
            managed_fields_for_update(&other, Some(&live), false),
            decode_managed_fields(&other).unwrap()
        );
        assert_eq!(managed_fields_for_update(&other, Some(&live), true), live_entries);
    }

    #[test]
    fn more_than_ten_updaters_are_capped_into_ancient_changes() {
        let s = BuiltinStructure;
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}});
        let mut managed = Vec::new();
        for i in 0..11 {
            let before = obj.clone();
            obj["data"][format!("k{i}")] = json!("v");
            let now = format!("2026-01-01T00:00:{i:02}Z");
            let manager = format!("m{i:02}");
            managed = FieldManager::new(&s, &manager, "v1", &now).update(Some(&before), &obj, managed);
        }
        assert_eq!(managed.len(), 10);
        let ancient = managed.iter().find(|e| e.manager == ANCIENT_CHANGES).unwrap();
        assert_eq!(ancient.time.as_deref(), Some("2026-01-01T00:00:01Z"));
        // `data: {}` existed before, so nobody owns the map itself.
        assert_eq!(
            ancient.fields.to_fields_v1(),
            json!({"f:data": {"f:k0": {}, "f:k1": {}}})
        );
        assert!(managed.iter().all(|e| e.manager != "m00" && e.manager != "m01"));
    }
}
