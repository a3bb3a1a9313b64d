//! RFC 6902 JSON patch exactly as kube-apiserver v1.28 applies it: the semantics of
//! `evanphx/json-patch` v4.12 behind `application/json-patch+json`, quirks included.
//!
//! What differs from the RFC, and what clients depend on:
//! - `test` of a missing (or `null`) member with `"value": null` succeeds (kube-rs' `finalizer()` sends
//!   `test /metadata/finalizers null` before adding the list);
//! - `replace` of a missing object member adds it; `add` under a missing parent, `remove` of a missing
//!   member, indices out of range and unknown ops fail;
//! - negative array indices count from the end (`-1` is the last element, or the end for `add`);
//! - `copy` from a missing member adds `null`; a path without a leading `/` names its last segment
//!   in the root;
//! - `test` compares scalars as bytes: the stored value encoded as Go's `encoding/json` does (`3.0` of
//!   a custom resource is `3`, `<` is `\u003c`) against the patch's value as written, so `3` and `3.0`
//!   differ; `{}` and `[]` equal `null`.
//!
//! Inputs the Go code panics on (a `test` without `value` of a missing member, `null` elements in
//! compared arrays, `replace`/`test` of the whole document without `value`) are [`Error::Panic`]: the
//! server answers 500. Every other failure is [`Error::Failed`], the 422 of the server.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::gofmt::go_json;

/// The most operations one patch may carry (`maxJSONPatchOperations` of the server).
pub const MAX_OPERATIONS: usize = 10_000;

/// Why a patch could not be decoded or applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The body is not a JSON patch: the server's 400 message.
    #[error("{0}")]
    Decode(String),
    /// More than [`MAX_OPERATIONS`] operations: the server's 413 message.
    #[error("The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {0}")]
    TooManyOperations(usize),
    /// An operation does not apply (the json-patch error text; the server answers a generic 422).
    #[error("{0}")]
    Failed(String),
    /// The Go implementation panics on this input (the server answers 500).
    #[error("panic: {0}")]
    Panic(String),
}

impl Error {
    /// The HTTP status code kube-apiserver answers with.
    pub fn status_code(&self) -> u16 {
        match self {
            Error::Decode(_) => 400,
            Error::TooManyOperations(_) => 413,
            Error::Failed(_) => 422,
            Error::Panic(_) => 500,
        }
    }
}

/// One decoded operation: Go's `map[string]*json.RawMessage` (`None` for a `null` element), and the
/// text of its `value` as the client wrote it when the patch came as text (`test` compares it).
#[derive(Debug, Clone, PartialEq)]
pub struct Operation(Option<Map<String, Value>>, Option<String>);

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Decodes a patch body. `strict` is the server's pre-check against its `jsonPatchOp` struct, done
/// unless `fieldValidation=Ignore`; its errors carry the `error decoding patch: ` prefix.
pub fn decode(patch: &Value, strict: bool) -> Result<Vec<Operation>, Error> {
    if strict {
        let fail = |m: String| Error::Decode(format!("error decoding patch: json: {m}"));
        match patch {
            Value::Null => {}
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Null => {}
                        Value::Object(fields) => {
                            for f in ["op", "path", "from"] {
                                if let Some(v) = fields.get(f).filter(|v| !v.is_null() && !v.is_string()) {
                                    return Err(fail(format!(
                                        "cannot unmarshal {} into Go struct field jsonPatchOp.{f} of type string",
                                        json_type(v)
                                    )));
                                }
                            }
                        }
                        other => {
                            return Err(fail(format!(
                                "cannot unmarshal {} into Go value of type handlers.jsonPatchOp",
                                json_type(other)
                            )));
                        }
                    }
                }
            }
            other => {
                return Err(fail(format!(
                    "cannot unmarshal {} into Go value of type []handlers.jsonPatchOp",
                    json_type(other)
                )));
            }
        }
    }
    let ops = match patch {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Null => Ok(Operation(None, None)),
                Value::Object(m) => Ok(Operation(Some(m.clone()), None)),
                other => Err(Error::Decode(format!(
                    "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                    json_type(other)
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        other => {
            return Err(Error::Decode(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                json_type(other)
            )));
        }
    };
    if ops.len() > MAX_OPERATIONS {
        return Err(Error::TooManyOperations(ops.len()));
    }
    Ok(ops)
}

/// The server's strict-decoding notes on a patch's operations (sent as `Warning`s with the default
/// `fieldValidation=Warn`): members other than `op`, `path`, `from` and `value`, as
/// `json patch unknown field "[0].extra"`.
pub fn unknown_field_warnings(patch: &Value) -> Vec<String> {
    let Some(items) = patch.as_array() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(fields) = item.as_object() else { continue };
        for k in fields.keys() {
            if !matches!(k.as_str(), "op" | "path" | "from" | "value") {
                out.push(format!("json patch unknown field \"[{i}].{k}\""));
            }
        }
    }
    out
}

impl Operation {
    fn field(&self, name: &str) -> Option<&Value> {
        self.0.as_ref().and_then(|m| m.get(name))
    }

    fn kind(&self) -> String {
        match self.field("op") {
            Some(Value::String(s)) => s.clone(),
            _ => "unknown".to_string(),
        }
    }

    /// `path` or `from`: a string; missing, `null` or another type is an error.
    fn pointer(&self, name: &str) -> Result<String, Error> {
        match self.field(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Null) | None => Err(Error::Failed(format!(
                "operation missing {name} field: missing value"
            ))),
            Some(v) => Err(Error::Failed(format!(
                "json: cannot unmarshal {} into Go value of type string",
                json_type(v)
            ))),
        }
    }

    /// `Some(value)` when the field is present (`null` included), as Go's `op.value()`.
    fn value(&self) -> Option<&Value> {
        self.field("value")
    }

    /// The value a `test` compares: the client's text when known.
    fn want(&self) -> Option<Want<'_>> {
        match (&self.1, self.value()) {
            (Some(raw), Some(_)) => Some(Want::Raw(raw)),
            (_, v) => v.map(Want::Value),
        }
    }
}

/// [`decode`] of a patch body as sent: each operation keeps the raw text of its `value`.
pub fn decode_text(body: &str, strict: bool) -> Result<Vec<Operation>, Error> {
    let patch: Value =
        serde_json::from_str(body).map_err(|e| Error::Decode(format!("error decoding patch: {e}")))?;
    let mut ops = decode(&patch, strict)?;
    if let Ok(raws) = serde_json::from_str::<Vec<Option<BTreeMap<String, &RawValue>>>>(body) {
        for (op, raw) in ops.iter_mut().zip(raws) {
            op.1 = raw.and_then(|m| m.get("value").map(|v| v.get().to_string()));
        }
    }
    Ok(ops)
}

/// Decodes and applies a patch body (its text, so `test` compares values as the client wrote them).
pub fn apply_text(doc: &Value, body: &str, strict: bool) -> Result<Value, Error> {
    let ops = decode_text(body, strict)?;
    apply_ops(doc, &ops)
}

/// Decodes and applies `patch` to `doc` (a copy; `doc` is untouched on error). Without the patch's
/// text, `test` compares against the values re-encoded as JSON.
pub fn apply(doc: &Value, patch: &Value, strict: bool) -> Result<Value, Error> {
    let ops = decode(patch, strict)?;
    apply_ops(doc, &ops)
}

/// Applies decoded operations in order; all or nothing.
pub fn apply_ops(doc: &Value, ops: &[Operation]) -> Result<Value, Error> {
    let mut doc = doc.clone();
    for op in ops {
        match op.kind().as_str() {
            "add" => add(&mut doc, op)?,
            "remove" => remove(&mut doc, op)?,
            "replace" => replace(&mut doc, op)?,
            "move" => move_op(&mut doc, op)?,
            "test" => test(&mut doc, op)?,
            "copy" => copy(&mut doc, op)?,
            other => return Err(Error::Failed(format!("Unexpected kind: {other}"))),
        }
    }
    Ok(doc)
}

/// RFC 6901 unescaping of one segment (`~1` is `/`, `~0` is `~`).
fn decode_key(k: &str) -> String {
    let mut out = String::with_capacity(k.len());
    let mut chars = k.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.peek() {
                Some('1') => {
                    chars.next();
                    out.push('/');
                    continue;
                }
                Some('0') => {
                    chars.next();
                    out.push('~');
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

/// Go's `strconv.Atoi`.
fn atoi(key: &str) -> Result<i64, Error> {
    key.parse::<i64>()
        .map_err(|_| Error::Failed(format!("strconv.Atoi: parsing {key:?}: invalid syntax")))
}

fn invalid_index(idx: i64) -> Error {
    Error::Failed(format!(
        "Unable to access invalid index: {idx}: invalid index referenced"
    ))
}

/// The container (object or array) holding the last segment of `path`, and that segment decoded.
fn find_object<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
    let split: Vec<&str> = path.split('/').collect();
    if split.len() < 2 {
        return None;
    }
    let mut cur = doc;
    for part in &split[1..split.len() - 1] {
        let key = decode_key(part);
        let next = match cur {
            Value::Object(m) => m.get_mut(&key),
            Value::Array(a) => {
                let i = array_index(a.len(), &key).ok()?;
                a.get_mut(i)
            }
            _ => None,
        }?;
        if !(next.is_object() || next.is_array()) {
            return None;
        }
        cur = next;
    }
    Some((cur, decode_key(split[split.len() - 1])))
}

/// The index `get`, `set` and `remove` use: negative counts from the end; out of range fails.
fn array_index(len: usize, key: &str) -> Result<usize, Error> {
    let mut idx = atoi(key)?;
    let n = len as i64;
    if idx < 0 {
        if idx < -n {
            return Err(invalid_index(idx));
        }
        idx += n;
    }
    if idx >= n {
        return Err(invalid_index(idx));
    }
    Ok(idx as usize)
}

/// `get`: `Ok(None)` for a missing object member or a `null`.
fn get<'a>(con: &'a Value, key: &str) -> Result<Option<&'a Value>, Error> {
    let v = match con {
        Value::Object(m) => m.get(key),
        Value::Array(a) => Some(&a[array_index(a.len(), key)?]),
        _ => None,
    };
    Ok(v.filter(|v| !v.is_null()))
}

fn add_at(con: &mut Value, key: &str, val: Value) -> Result<(), Error> {
    match con {
        Value::Object(m) => {
            m.insert(key.to_string(), val);
            Ok(())
        }
        Value::Array(a) => {
            if key == "-" {
                a.push(val);
                return Ok(());
            }
            let mut idx = atoi(key)
                .map_err(|e| Error::Failed(format!("value was not a proper array index: '{key}': {e}")))?;
            let size = a.len() as i64 + 1;
            if idx >= size || idx < -size {
                return Err(invalid_index(idx));
            }
            if idx < 0 {
                idx += size;
            }
            a.insert(idx as usize, val);
            Ok(())
        }
        _ => Err(Error::Failed("invalid state detected".into())),
    }
}

fn remove_at(con: &mut Value, key: &str) -> Result<Value, Error> {
    match con {
        Value::Object(m) => m
            .remove(key)
            .ok_or_else(|| Error::Failed(format!("Unable to remove nonexistent key: {key}: missing value"))),
        Value::Array(a) => {
            let i = array_index(a.len(), key)?;
            Ok(a.remove(i))
        }
        _ => Err(Error::Failed("invalid state detected".into())),
    }
}

fn add(doc: &mut Value, op: &Operation) -> Result<(), Error> {
    let path = op
        .pointer("path")
        .map_err(|_| Error::Failed("add operation failed to decode path: missing value".into()))?;
    let (con, key) = find_object(doc, &path).ok_or_else(|| {
        Error::Failed(format!(
            "add operation does not apply: doc is missing path: {path:?}: missing value"
        ))
    })?;
    add_at(con, &key, op.value().cloned().unwrap_or(Value::Null))
        .map_err(|e| Error::Failed(format!("error in add for path: '{path}': {e}")))
}

fn remove(doc: &mut Value, op: &Operation) -> Result<(), Error> {
    let path = op
        .pointer("path")
        .map_err(|_| Error::Failed("remove operation failed to decode path: missing value".into()))?;
    let (con, key) = find_object(doc, &path).ok_or_else(|| {
        Error::Failed(format!(
            "remove operation does not apply: doc is missing path: {path:?}: missing value"
        ))
    })?;
    remove_at(con, &key)
        .map(drop)
        .map_err(|e| Error::Failed(format!("error in remove for path: '{path}': {e}")))
}

fn replace(doc: &mut Value, op: &Operation) -> Result<(), Error> {
    let path = op.pointer("path")?;
    if path.is_empty() {
        // The whole document: an object or array replaces it, a scalar is ignored (Go wraps a nil
        // error, so the operation succeeds without effect).
        match op.value() {
            None => return Err(Error::Panic("replace of the document without a value".into())),
            Some(v @ (Value::Object(_) | Value::Array(_))) => *doc = v.clone(),
            Some(Value::Null) => *doc = Value::Object(Map::new()),
            Some(_) => {}
        }
        return Ok(());
    }
    let (con, key) = find_object(doc, &path).ok_or_else(|| {
        Error::Failed(format!(
            "replace operation does not apply: doc is missing path: {path}: missing value"
        ))
    })?;
    let val = op.value().cloned().unwrap_or(Value::Null);
    match con {
        Value::Object(m) => {
            m.insert(key, val);
        }
        Value::Array(a) => {
            let i = array_index(a.len(), &key).map_err(|_| {
                Error::Failed(format!(
                    "replace operation does not apply: doc is missing key: {path}: missing value"
                ))
            })?;
            a[i] = val;
        }
        _ => return Err(Error::Failed("invalid state detected".into())),
    }
    Ok(())
}

fn move_op(doc: &mut Value, op: &Operation) -> Result<(), Error> {
    let from = op.pointer("from")?;
    let (con, key) = find_object(doc, &from).ok_or_else(|| {
        Error::Failed(format!(
            "move operation does not apply: doc is missing from path: {from}: missing value"
        ))
    })?;
    get(con, &key).map_err(|e| Error::Failed(format!("error in move for path: '{key}': {e}")))?;
    let val =
        remove_at(con, &key).map_err(|e| Error::Failed(format!("error in move for path: '{key}': {e}")))?;
    let path = op.pointer("path")?;
    let (con, key) = find_object(doc, &path).ok_or_else(|| {
        Error::Failed(format!(
            "move operation does not apply: doc is missing destination path: {path}: missing value"
        ))
    })?;
    add_at(con, &key, val).map_err(|e| Error::Failed(format!("error in move for path: '{path}': {e}")))
}

fn copy(doc: &mut Value, op: &Operation) -> Result<(), Error> {
    let from = op.pointer("from")?;
    let (con, key) = find_object(doc, &from).ok_or_else(|| {
        Error::Failed(format!(
            "copy operation does not apply: doc is missing from path: {from}: missing value"
        ))
    })?;
    let val = get(con, &key)
        .map_err(|e| Error::Failed(format!("error in copy for from: '{from}': {e}")))?
        .cloned()
        .unwrap_or(Value::Null);
    let path = op
        .pointer("path")
        .map_err(|_| Error::Failed("copy operation failed to decode path: missing value".into()))?;
    let (con, key) = find_object(doc, &path).ok_or_else(|| {
        Error::Failed(format!(
            "copy operation does not apply: doc is missing destination path: {path}: missing value"
        ))
    })?;
    add_at(con, &key, val).map_err(|e| Error::Failed(format!("error while adding value during copy: {e}")))
}

fn test(doc: &mut Value, op: &Operation) -> Result<(), Error> {
    let path = op.pointer("path")?;
    let failed = || Error::Failed(format!("testing value {path} failed: test failed"));
    if path.is_empty() {
        let Some(want) = op.want() else {
            return Err(Error::Panic("test of the document without a value".into()));
        };
        return if go_equal(doc, want)? {
            Ok(())
        } else {
            Err(failed())
        };
    }
    let (con, key) = find_object(doc, &path).ok_or_else(|| {
        Error::Failed(format!(
            "test operation does not apply: is missing path: {path}: missing value"
        ))
    })?;
    let got = get(con, &key).map_err(|e| Error::Failed(format!("error in test for path: '{path}': {e}")))?;
    match (got, op.want()) {
        (None, None) => Err(Error::Panic(format!("test of missing {path} without a value"))),
        (None, Some(w)) if w.is_null() => Ok(()),
        (None, Some(_)) | (Some(_), None) => Err(failed()),
        (Some(v), Some(want)) => {
            if go_equal(v, want)? {
                Ok(())
            } else {
                Err(failed())
            }
        }
    }
}

/// A patch value a `test` compares with: the client's JSON text, or (without it) a decoded value.
#[derive(Debug, Clone, Copy)]
enum Want<'a> {
    Raw(&'a str),
    Value(&'a Value),
}

/// A [`Want`] taken apart one level, as Go's `tryDoc`/`tryAry` do.
enum Shape<'a> {
    Null,
    Object(BTreeMap<String, Want<'a>>),
    Array(Vec<Want<'a>>),
    /// The compact JSON text of a scalar.
    Scalar(String),
}

impl<'a> Want<'a> {
    fn is_null(&self) -> bool {
        match self {
            Want::Raw(r) => r.trim() == "null",
            Want::Value(v) => v.is_null(),
        }
    }

    fn shape(self) -> Shape<'a> {
        match self {
            Want::Value(Value::Null) => Shape::Null,
            Want::Value(Value::Object(m)) => {
                Shape::Object(m.iter().map(|(k, v)| (k.clone(), Want::Value(v))).collect())
            }
            Want::Value(Value::Array(a)) => Shape::Array(a.iter().map(Want::Value).collect()),
            Want::Value(v) => Shape::Scalar(serde_json::to_string(v).unwrap_or_default()),
            Want::Raw(r) => {
                let t = r.trim();
                if t == "null" {
                    return Shape::Null;
                }
                if t.starts_with('{')
                    && let Ok(m) = serde_json::from_str::<BTreeMap<String, &'a RawValue>>(t)
                {
                    return Shape::Object(m.into_iter().map(|(k, v)| (k, Want::Raw(v.get()))).collect());
                }
                if t.starts_with('[')
                    && let Ok(a) = serde_json::from_str::<Vec<&'a RawValue>>(t)
                {
                    return Shape::Array(a.into_iter().map(|v| Want::Raw(v.get())).collect());
                }
                Shape::Scalar(t.to_string())
            }
        }
    }
}

/// `lazyNode.equal`: `stored` (a document value) against `want` (a patch value). Scalars compare as
/// bytes: Go's encoding of the stored value against the patch's own text.
fn go_equal(stored: &Value, want: Want<'_>) -> Result<bool, Error> {
    match stored {
        Value::Object(m) => {
            let other = match want.shape() {
                Shape::Object(o) => o,
                // `null` decodes into an empty map.
                Shape::Null => return Ok(m.is_empty()),
                _ => return Ok(false),
            };
            if m.len() != other.len() {
                return Ok(false);
            }
            for (k, v) in m {
                let Some(ov) = other.get(k) else { return Ok(false) };
                match (v.is_null(), ov.is_null()) {
                    (true, true) => continue,
                    (true, false) | (false, true) => return Ok(false),
                    (false, false) => {
                        if !go_equal(v, *ov)? {
                            return Ok(false);
                        }
                    }
                }
            }
            Ok(true)
        }
        Value::Array(a) => {
            let other = match want.shape() {
                Shape::Array(o) => o,
                Shape::Null => return Ok(a.is_empty()),
                _ => return Ok(false),
            };
            if a.len() != other.len() {
                return Ok(false);
            }
            for (x, y) in a.iter().zip(other) {
                if x.is_null() || y.is_null() {
                    return Err(Error::Panic("nil element in a compared array".into()));
                }
                if !go_equal(x, y)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        scalar => Ok(match want.shape() {
            Shape::Scalar(text) => go_json(scalar) == text,
            _ => false,
        }),
    }
}

#[cfg(test)]
#[path = "jsonpatch_tests.rs"]
mod tests;
