//! Decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) into the JSON
//! form the server works with, for the kinds kubectl's typed clients send as protobuf
//! (`kubectl create namespace|configmap|secret|serviceaccount`).
//!
//! The envelope is the `k8s\0` magic followed by a `runtime.Unknown` whose `raw` bytes are the object.
//! Objects are decoded from the wire format with a small field table per message type, so supporting
//! one more kind is one more table here.

use base64::Engine;
use serde_json::{Map, Value};

const MAGIC: &[u8] = b"k8s\x00";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    #[error("the body is not a Kubernetes protobuf envelope (missing the k8s\\0 prefix)")]
    NoMagic,
    #[error("malformed protobuf: {0}")]
    Malformed(&'static str),
    #[error("protobuf bodies of kind {kind} ({api_version}) are not supported; send JSON")]
    UnsupportedKind { api_version: String, kind: String },
}

/// How one field's value is turned into JSON.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    /// `meta.v1.Time` {seconds, nanos} as RFC 3339.
    Time,
    /// `meta.v1.FieldsV1` {raw} holding JSON.
    FieldsV1,
    Msg(&'static [Field]),
    StrMap,
    BytesMap,
}

#[derive(Clone, Copy)]
struct Field {
    tag: u64,
    name: &'static str,
    kind: Kind,
    repeated: bool,
}

const fn f(tag: u64, name: &'static str, kind: Kind) -> Field {
    Field {
        tag,
        name,
        kind,
        repeated: false,
    }
}

const fn r(tag: u64, name: &'static str, kind: Kind) -> Field {
    Field {
        tag,
        name,
        kind,
        repeated: true,
    }
}

const OWNER_REFERENCE: &[Field] = &[
    f(1, "kind", Kind::Str),
    f(3, "name", Kind::Str),
    f(4, "uid", Kind::Str),
    f(5, "apiVersion", Kind::Str),
    f(6, "controller", Kind::Bool),
    f(7, "blockOwnerDeletion", Kind::Bool),
];

const MANAGED_FIELDS_ENTRY: &[Field] = &[
    f(1, "manager", Kind::Str),
    f(2, "operation", Kind::Str),
    f(3, "apiVersion", Kind::Str),
    f(4, "time", Kind::Time),
    f(6, "fieldsType", Kind::Str),
    f(7, "fieldsV1", Kind::FieldsV1),
    f(8, "subresource", Kind::Str),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Kind::Str),
    f(2, "generateName", Kind::Str),
    f(3, "namespace", Kind::Str),
    f(5, "uid", Kind::Str),
    f(6, "resourceVersion", Kind::Str),
    f(7, "generation", Kind::Int),
    f(8, "creationTimestamp", Kind::Time),
    f(9, "deletionTimestamp", Kind::Time),
    f(10, "deletionGracePeriodSeconds", Kind::Int),
    f(11, "labels", Kind::StrMap),
    f(12, "annotations", Kind::StrMap),
    r(13, "ownerReferences", Kind::Msg(OWNER_REFERENCE)),
    r(14, "finalizers", Kind::Str),
    r(17, "managedFields", Kind::Msg(MANAGED_FIELDS_ENTRY)),
];

const NAMESPACE: &[Field] = &[
    f(1, "metadata", Kind::Msg(OBJECT_META)),
    f(2, "spec", Kind::Msg(&[r(1, "finalizers", Kind::Str)])),
    f(3, "status", Kind::Msg(&[f(1, "phase", Kind::Str)])),
];

const CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Kind::Msg(OBJECT_META)),
    f(2, "data", Kind::StrMap),
    f(3, "binaryData", Kind::BytesMap),
    f(4, "immutable", Kind::Bool),
];

const SECRET: &[Field] = &[
    f(1, "metadata", Kind::Msg(OBJECT_META)),
    f(2, "data", Kind::BytesMap),
    f(3, "type", Kind::Str),
    f(4, "stringData", Kind::StrMap),
    f(5, "immutable", Kind::Bool),
];

const OBJECT_REFERENCE: &[Field] = &[
    f(1, "kind", Kind::Str),
    f(2, "namespace", Kind::Str),
    f(3, "name", Kind::Str),
    f(4, "uid", Kind::Str),
    f(5, "apiVersion", Kind::Str),
    f(6, "resourceVersion", Kind::Str),
    f(7, "fieldPath", Kind::Str),
];

const SERVICE_ACCOUNT: &[Field] = &[
    f(1, "metadata", Kind::Msg(OBJECT_META)),
    r(2, "secrets", Kind::Msg(OBJECT_REFERENCE)),
    r(3, "imagePullSecrets", Kind::Msg(&[f(1, "name", Kind::Str)])),
    f(4, "automountServiceAccountToken", Kind::Bool),
];

fn schema_for(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    match (api_version, kind) {
        ("v1", "Namespace") => Some(NAMESPACE),
        ("v1", "ConfigMap") => Some(CONFIG_MAP),
        ("v1", "Secret") => Some(SECRET),
        ("v1", "ServiceAccount") => Some(SERVICE_ACCOUNT),
        _ => None,
    }
}

/// A cursor over protobuf wire-format bytes.
struct Reader<'a> {
    buf: &'a [u8],
}

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or(ProtobufError::Malformed("truncated varint"))?;
            self.buf = rest;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::Malformed("varint too long"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtobufError> {
        if self.buf.len() < n {
            return Err(ProtobufError::Malformed("truncated field"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next (tag, value), or None at the end.
    fn next(&mut self) -> Result<Option<(u64, Wire<'a>)>, ProtobufError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed
            }
            2 => {
                let n = usize::try_from(self.varint()?)
                    .map_err(|_| ProtobufError::Malformed("length overflow"))?;
                Wire::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed
            }
            _ => return Err(ProtobufError::Malformed("unsupported wire type")),
        };
        Ok(Some((key >> 3, value)))
    }
}

fn string(bytes: &[u8]) -> Result<String, ProtobufError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::Malformed("string is not UTF-8"))
}

fn map_entry(bytes: &[u8], bytes_value: bool) -> Result<(String, Value), ProtobufError> {
    let mut r = Reader { buf: bytes };
    let (mut key, mut value) = (String::new(), Value::String(String::new()));
    while let Some((tag, wire)) = r.next()? {
        match (tag, wire) {
            (1, Wire::Bytes(b)) => key = string(b)?,
            (2, Wire::Bytes(b)) if bytes_value => {
                value = Value::String(base64::engine::general_purpose::STANDARD.encode(b));
            }
            (2, Wire::Bytes(b)) => value = Value::String(string(b)?),
            _ => {}
        }
    }
    Ok((key, value))
}

fn time(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let mut r = Reader { buf: bytes };
    let mut seconds = 0i64;
    while let Some((tag, wire)) = r.next()? {
        if let (1, Wire::Varint(v)) = (tag, wire) {
            seconds = v as i64;
        }
    }
    // Years -9999..=9999 cover every real timestamp; anything beyond is a corrupt body.
    let t =
        jiff::Timestamp::from_second(seconds).map_err(|_| ProtobufError::Malformed("time out of range"))?;
    Ok(Value::String(crate::time::format(t)))
}

fn message(bytes: &[u8], schema: &[Field]) -> Result<Value, ProtobufError> {
    let mut out = Map::new();
    let mut r = Reader { buf: bytes };
    while let Some((tag, wire)) = r.next()? {
        let Some(field) = schema.iter().find(|f| f.tag == tag) else {
            continue;
        };
        let value = match (field.kind, wire) {
            (Kind::Str, Wire::Bytes(b)) => Value::String(string(b)?),
            (Kind::Int, Wire::Varint(v)) => Value::from(v as i64),
            (Kind::Bool, Wire::Varint(v)) => Value::Bool(v != 0),
            (Kind::Time, Wire::Bytes(b)) => time(b)?,
            (Kind::FieldsV1, Wire::Bytes(b)) => {
                let mut inner = Reader { buf: b };
                let mut v = Value::Object(Map::new());
                while let Some((1, Wire::Bytes(raw))) = inner.next()? {
                    v = serde_json::from_slice(raw)
                        .map_err(|_| ProtobufError::Malformed("fieldsV1 is not JSON"))?;
                }
                v
            }
            (Kind::Msg(s), Wire::Bytes(b)) => message(b, s)?,
            (Kind::StrMap | Kind::BytesMap, Wire::Bytes(b)) => {
                let (k, v) = map_entry(b, matches!(field.kind, Kind::BytesMap))?;
                let entry = out.entry(field.name).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = entry {
                    m.insert(k, v);
                }
                continue;
            }
            _ => return Err(ProtobufError::Malformed("field has an unexpected wire type")),
        };
        if field.repeated {
            if let Value::Array(items) = out.entry(field.name).or_insert_with(|| Value::Array(Vec::new())) {
                items.push(value);
            }
        } else {
            out.insert(field.name.to_string(), value);
        }
    }
    Ok(Value::Object(out))
}

/// Decodes a protobuf request body into the object's JSON form (with `apiVersion` and `kind`).
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let envelope = body.strip_prefix(MAGIC).ok_or(ProtobufError::NoMagic)?;
    let mut r = Reader { buf: envelope };
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while let Some((tag, wire)) = r.next()? {
        match (tag, wire) {
            (1, Wire::Bytes(b)) => {
                let mut tm = Reader { buf: b };
                while let Some((t, w)) = tm.next()? {
                    match (t, w) {
                        (1, Wire::Bytes(v)) => api_version = string(v)?,
                        (2, Wire::Bytes(v)) => kind = string(v)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let schema = schema_for(&api_version, &kind).ok_or_else(|| ProtobufError::UnsupportedKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let mut obj = message(raw, schema)?;
    if let Value::Object(m) = &mut obj {
        m.insert("apiVersion".into(), Value::String(api_version));
        m.insert("kind".into(), Value::String(kind));
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(tag: u64, b: &[u8], out: &mut Vec<u8>) {
        varint(tag << 3 | 2, out);
        varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }

    #[test]
    fn decodes_a_namespace_as_kubectl_create_sends_it() {
        let mut meta = Vec::new();
        bytes_field(1, b"demo", &mut meta);
        let mut label = Vec::new();
        bytes_field(1, b"team", &mut label);
        bytes_field(2, b"a", &mut label);
        bytes_field(11, &label, &mut meta);
        let mut ts = Vec::new();
        varint(1 << 3, &mut ts);
        varint(1_795_000_000, &mut ts);
        bytes_field(8, &ts, &mut meta);
        let mut ns = Vec::new();
        bytes_field(1, &meta, &mut ns);
        let mut type_meta = Vec::new();
        bytes_field(1, b"v1", &mut type_meta);
        bytes_field(2, b"Namespace", &mut type_meta);
        let mut unknown = Vec::new();
        bytes_field(1, &type_meta, &mut unknown);
        bytes_field(2, &ns, &mut unknown);
        let mut body = MAGIC.to_vec();
        body.extend(unknown);
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo", "labels": {"team": "a"}, "creationTimestamp": "2026-11-18T11:06:40Z"}})
        );
    }

    #[test]
    fn unknown_kinds_and_garbage_are_errors_not_panics() {
        assert_eq!(decode(b"{}"), Err(ProtobufError::NoMagic));
        let mut body = MAGIC.to_vec();
        body.extend([0x0a, 0xff]);
        assert!(matches!(decode(&body), Err(ProtobufError::Malformed(_))));
        let mut type_meta = Vec::new();
        bytes_field(1, b"apps/v1", &mut type_meta);
        bytes_field(2, b"Deployment", &mut type_meta);
        let mut body = MAGIC.to_vec();
        bytes_field(1, &type_meta, &mut body);
        assert!(matches!(
            decode(&body),
            Err(ProtobufError::UnsupportedKind { .. })
        ));
    }
}
