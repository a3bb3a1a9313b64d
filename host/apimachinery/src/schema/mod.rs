//! Structural `openAPIV3Schema` handling for custom resources: validation, pruning, defaulting, and the
//! list/map structure server-side apply needs.
//!
//! This module owns what the kube-apiserver (v1.28, `apiextensions-apiserver` + `kube-openapi`) does to a
//! custom resource between decoding and storage, given one version's schema as JSON (as written in the
//! CRD):
//! - [`prune`]: drop fields the schema does not know (pruning), plus non-nullable `null`s without a
//!   default; returns the paths the server prints in `unknown field "spec.bogus"` warnings/errors.
//! - [`apply_defaults`]: structural defaulting from `default`.
//! - [`validate`]: OpenAPI value validation, embedded-resource checks and `x-kubernetes-list-type`
//!   uniqueness, as [`FieldError`]s whose `Display` is one bracket item of the server's 422 message.
//! - [`SchemaStructure`]: [`Structure`] from `x-kubernetes-list-type` / `x-kubernetes-map-type`.
//!
//! The root `apiVersion`, `kind` and `metadata` belong to the server (ObjectMeta validation), so they are
//! neither validated nor pruned here.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

use crate::gofmt::{go_float, go_json, go_number, go_quote, go_sharp_v};
use crate::structure::{BuiltinStructure, ListType, Structure};

mod formats;
mod lists;
mod prune;
#[cfg(test)]
mod tests;

use formats::format_ok;
use lists::{embedded_in_object, list_sets_and_maps};
pub use prune::{SchemaStructure, apply_defaults, prune};

/// The root fields the server handles itself (`metaFields` in the pruning algorithm).
const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// `field.ErrorType`: what kind of problem a [`FieldError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldErrorKind {
    /// `FieldValueNotFound`
    NotFound,
    /// `FieldValueRequired`
    Required,
    /// `FieldValueDuplicate`
    Duplicate,
    /// `FieldValueInvalid`
    Invalid,
    /// `FieldValueTypeInvalid`
    TypeInvalid,
    /// `FieldValueNotSupported` (enum)
    NotSupported,
    /// `FieldValueForbidden`
    Forbidden,
    /// `FieldValueTooLong` (maxLength)
    TooLong,
    /// `FieldValueTooMany` (maxItems, maxProperties)
    TooMany,
    /// `InternalError`
    Internal,
}

impl FieldErrorKind {
    /// `ErrorType.String()`: the words that start the message.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldErrorKind::NotFound => "Not found",
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::Invalid | FieldErrorKind::TypeInvalid => "Invalid value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::TooMany => "Too many",
            FieldErrorKind::Internal => "Internal error",
        }
    }

    /// The `details.causes[].reason` of the 422 Status.
    pub fn cause_reason(self) -> &'static str {
        match self {
            FieldErrorKind::NotFound => "FieldValueNotFound",
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::TypeInvalid => "FieldValueTypeInvalid",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::Internal => "InternalError",
        }
    }
}

/// One validation error (`field.Error`). `Display` is `"<field>: <message>"`, one item of the server's
/// `Widget.example.com "x" is invalid: [a, b]` message; [`FieldError::message`] is `causes[].message`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {}", error_body(*.kind, .value, .detail))]
pub struct FieldError {
    /// What went wrong.
    pub kind: FieldErrorKind,
    /// The path as the server prints it (`spec.tags[1]`; `<nil>` for errors not tied to a field).
    pub field: String,
    /// The bad value, printed the way Go's `field.Error` prints it; `None` omits it.
    pub value: Option<Value>,
    /// The explanation after the value.
    pub detail: String,
}

impl FieldError {
    /// `ErrorBody()`: the message without the field (`causes[].message`).
    pub fn message(&self) -> String {
        error_body(self.kind, &self.value, &self.detail)
    }

    /// The `details.causes[].reason` (`FieldValueTypeInvalid`, `FieldValueRequired`...).
    pub fn cause_reason(&self) -> &'static str {
        self.kind.cause_reason()
    }
}

/// `field.Error.ErrorBody`: some kinds never show the value.
fn error_body(kind: FieldErrorKind, value: &Option<Value>, detail: &str) -> String {
    let mut s = match (kind, value) {
        (
            FieldErrorKind::Required
            | FieldErrorKind::Forbidden
            | FieldErrorKind::TooLong
            | FieldErrorKind::Internal,
            _,
        )
        | (_, None) => kind.as_str().to_string(),
        (_, Some(v)) => format!("{}: {}", kind.as_str(), go_bad_value(v)),
    };
    if !detail.is_empty() {
        s.push_str(": ");
        s.push_str(detail);
    }
    s
}

fn error(kind: FieldErrorKind, field: String, value: Option<Value>, detail: String) -> FieldError {
    FieldError {
        kind,
        field,
        value,
        detail,
    }
}

/// The field of an error named by a kube-openapi path: `""` and `"."` mean the nil root path (printed
/// `<nil>`), a leading `.` (required properties of the root) is dropped.
fn openapi_field(name: &str) -> String {
    if name.is_empty() || name == "." {
        "<nil>".to_string()
    } else {
        name.strip_prefix('.').unwrap_or(name).to_string()
    }
}

/// A non-`Validation` kube-openapi error (anyOf/oneOf/allOf/not): `field.Invalid(nil, "", msg)`.
fn composite(detail: String) -> FieldError {
    error(
        FieldErrorKind::Invalid,
        "<nil>".to_string(),
        Some(Value::String(String::new())),
        detail,
    )
}

// ---------------------------------------------------------------------------------------------
// Go value formatting
// ---------------------------------------------------------------------------------------------

/// How `ErrorBody` prints a bad value: strings `%q`, numbers and bools `%v`, nil as `"null"`, the rest
/// `%#v`.
fn go_bad_value(v: &Value) -> String {
    match v {
        Value::Null => go_quote("null"),
        Value::String(s) => go_quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::Array(_) | Value::Object(_) => go_sharp_v(v),
    }
}

// ---------------------------------------------------------------------------------------------
// Schema accessors
// ---------------------------------------------------------------------------------------------

fn flag(s: &Value, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn number_of(s: &Value, key: &str) -> Option<f64> {
    s.get(key).and_then(Value::as_f64)
}

/// An integer keyword (`maxLength`...); a float is truncated as Go's int64 conversion would.
fn int_of(s: &Value, key: &str) -> Option<i64> {
    let v = s.get(key)?;
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

fn properties(s: &Value) -> Option<&Map<String, Value>> {
    s.get("properties").and_then(Value::as_object)
}

fn items_schema(s: &Value) -> Option<&Value> {
    s.get("items").filter(|i| i.is_object())
}

/// `additionalProperties` as a schema (`true`/`false` are handled by the callers that care).
fn additional_schema(s: &Value) -> Option<&Value> {
    s.get("additionalProperties").filter(|a| a.is_object())
}

fn nullable(s: &Value) -> bool {
    flag(s, "nullable")
}

/// The `default`, if any; a JSON `null` default counts as none (`Default.Object == nil`).
fn default_of(s: &Value) -> Option<&Value> {
    s.get("default").filter(|d| !d.is_null())
}

/// The node's types as kube-openapi sees them: `x-kubernetes-int-or-string` becomes `integer,string`.
fn types(s: &Value) -> Vec<&str> {
    if flag(s, "x-kubernetes-int-or-string") {
        return vec!["integer", "string"];
    }
    match s.get("type").and_then(Value::as_str) {
        Some(t) if !t.is_empty() => vec![t],
        _ => Vec::new(),
    }
}

/// String formats a v1.28 server validates; any other format is dropped before validation
/// (`StripUnsupportedFormatsPostProcess`). Names are compared without `-`, as go-openapi does.
const STRING_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "quantity",
];

/// The format after `StripUnsupportedFormatsPostProcess` (empty when unsupported for the type).
fn effective_format<'a>(s: &'a Value, types: &[&str]) -> &'a str {
    let Some(format) = s.get("format").and_then(Value::as_str).filter(|f| !f.is_empty()) else {
        return "";
    };
    let single = if types.len() == 1 { types[0] } else { "" };
    let keep = match single {
        "" | "string" => STRING_FORMATS.contains(&format.replace('-', "").as_str()),
        "integer" => matches!(format, "int32" | "int64"),
        "number" => matches!(format, "float" | "double"),
        _ => false,
    };
    if keep { format } else { "" }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Validates a (pruned, defaulted) custom resource against one version's `openAPIV3Schema`, the way
/// the server's `customResourceStrategy.Validate` does after ObjectMeta validation: first OpenAPI
/// value validation (type, nullable, enum, bounds, lengths, items, properties, required,
/// additionalProperties, anyOf/oneOf/allOf/not, formats), then embedded-resource `apiVersion`/`kind`
/// checks, then `x-kubernetes-list-type` `set`/`map` uniqueness. Properties are visited in sorted
/// order (the server's map order is random; the recordings show sorted). The root `apiVersion`,
/// `kind` and `metadata` are skipped: the server validates them.
pub fn validate(schema: &Value, object: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    validate_node(schema, object, "", true, &mut out);
    if let Some(map) = object.as_object() {
        embedded_in_object(schema, map, "", true, &mut out);
        list_sets_and_maps(schema, map, "", &mut out);
    }
    out
}

/// One `SchemaValidator.Validate`: validators in kube-openapi's order (type, anyOf/oneOf/allOf/not,
/// string, format, number, slice, enum, object); each applies by the *data's* kind, and a type error
/// does not stop the others.
fn validate_node(s: &Value, data: &Value, path: &str, root: bool, out: &mut Vec<FieldError>) {
    let types = types(s);
    let format = effective_format(s, &types);
    if data.is_null() {
        type_check(&types, nullable(s), format, data, path, out);
        enum_check(s, data, path, out);
        return;
    }
    if !types.is_empty() || !format.is_empty() {
        type_check(&types, nullable(s), format, data, path, out);
    }
    schema_props(s, data, path, root, out);
    match data {
        Value::String(text) => {
            string_check(s, text, path, out);
            format_check(format, text, path, out);
        }
        Value::Number(n) => number_check(s, n, path, out),
        Value::Array(items) => slice_check(s, items, path, out),
        _ => {}
    }
    enum_check(s, data, path, out);
    if let Value::Object(map) = data {
        object_check(s, map, path, root, out);
    }
}

fn type_error(path: &str, expected: &str, found: &str) -> FieldError {
    error(
        FieldErrorKind::TypeInvalid,
        openapi_field(path),
        Some(Value::String(found.to_string())),
        format!("{path} in body must be of type {expected}: {}", go_quote(found)),
    )
}

/// swag.IsFloat64AJSONInteger: an integral float within ±2^53.
fn is_json_integer(f: f64) -> bool {
    f.is_finite() && f.abs() <= 9_007_199_254_740_992.0 && f.fract() == 0.0
}

/// A number as the unstructured decoder gives it to Go: int64 when it fits, float64 otherwise.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

fn num(n: &Number) -> Num {
    match n.as_i64() {
        Some(i) => Num::Int(i),
        None => Num::Float(n.as_f64().unwrap_or(f64::NAN)),
    }
}

/// kube-openapi's `typeValidator`.
fn type_check(
    types: &[&str],
    nullable: bool,
    format: &str,
    data: &Value,
    path: &str,
    out: &mut Vec<FieldError>,
) {
    if data.is_null() {
        if !types.is_empty() && !types.contains(&"null") && !nullable {
            out.push(type_error(path, &types.join(","), "null"));
        }
        return;
    }
    let (sch_type, data_format) = match data {
        Value::Bool(_) => ("boolean", ""),
        Value::String(_) => ("string", ""),
        Value::Number(n) => match num(n) {
            Num::Int(_) => ("integer", "int64"),
            Num::Float(_) => ("number", "float64"),
        },
        Value::Array(_) => ("array", ""),
        Value::Object(_) | Value::Null => ("object", ""),
    };
    let is_float_int = matches!(data, Value::Number(n) if matches!(num(n), Num::Float(f) if is_json_integer(f)))
        && types.contains(&"integer");
    let is_int_float = sch_type == "integer" && types.contains(&"number");
    let string_or_array = matches!(data, Value::String(_) | Value::Array(_));
    // A non-string, non-array value must match the format's type when a format is set.
    let format_mismatch = !(string_or_array
        || format.is_empty()
        || types.contains(&sch_type)
        || data_format == format
        || is_float_int
        || is_int_float);
    if format_mismatch {
        out.push(type_error(path, format, data_format));
        return;
    }
    // A string (or array) with a format on a non-numeric type is accepted as is.
    let numeric = types.contains(&"number") || types.contains(&"integer");
    if !(numeric || format.is_empty()) && string_or_array {
        return;
    }
    if !(types.contains(&sch_type) || is_float_int || is_int_float) {
        out.push(type_error(path, &types.join(","), sch_type));
    }
}

/// kube-openapi's `schemaPropsValidator`. kube-openapi keeps the failure of the alternative with the
/// most passed checks; this keeps the first failing alternative.
fn schema_props(s: &Value, data: &Value, path: &str, root: bool, out: &mut Vec<FieldError>) {
    let quoted = go_quote(path);
    let run = |sub: &Value| {
        let mut r = Vec::new();
        validate_node(sub, data, path, root, &mut r);
        r
    };
    if let Some(any_of) = s.get("anyOf").and_then(Value::as_array).filter(|a| !a.is_empty()) {
        let mut best: Option<Vec<FieldError>> = None;
        let mut succeeded = false;
        for sub in any_of {
            let r = run(sub);
            if r.is_empty() {
                succeeded = true;
                best = None;
                break;
            }
            best.get_or_insert(r);
        }
        if !succeeded {
            out.push(composite(format!(
                "{quoted} must validate at least one schema (anyOf)"
            )));
        }
        out.extend(best.unwrap_or_default());
    }
    if let Some(one_of) = s.get("oneOf").and_then(Value::as_array).filter(|a| !a.is_empty()) {
        let mut best: Option<Vec<FieldError>> = None;
        let mut validated = 0;
        for sub in one_of {
            let r = run(sub);
            if r.is_empty() {
                validated += 1;
                best = None;
            } else if validated == 0 && best.is_none() {
                best = Some(r);
            }
        }
        if validated != 1 {
            let additional = if validated == 0 {
                "Found none valid".to_string()
            } else {
                format!("Found {validated} valid alternatives")
            };
            out.push(composite(format!(
                "{quoted} must validate one and only one schema (oneOf). {additional}"
            )));
            out.extend(best.unwrap_or_default());
        }
    }
    if let Some(all_of) = s.get("allOf").and_then(Value::as_array).filter(|a| !a.is_empty()) {
        let mut validated = 0;
        for sub in all_of {
            let r = run(sub);
            if r.is_empty() {
                validated += 1;
            }
            out.extend(r);
        }
        if validated != all_of.len() {
            let additional = if validated == 0 { ". None validated" } else { "" };
            out.push(composite(format!(
                "{quoted} must validate all the schemas (allOf){additional}"
            )));
        }
    }
    if let Some(not) = s.get("not").filter(|n| n.is_object())
        && run(not).is_empty()
    {
        out.push(composite(format!("{quoted} must not validate the schema (not)")));
    }
}

/// kube-openapi's `stringValidator` (first failure only): maxLength, minLength, pattern.
fn string_check(s: &Value, text: &str, path: &str, out: &mut Vec<FieldError>) {
    let len = text.chars().count() as i64;
    if let Some(max) = int_of(s, "maxLength")
        && len > max
    {
        let detail = if max >= 0 {
            format!("may not be longer than {max}")
        } else {
            "value is too long".to_string()
        };
        out.push(error(
            FieldErrorKind::TooLong,
            openapi_field(path),
            Some(Value::String(text.to_string())),
            detail,
        ));
        return;
    }
    if let Some(min) = int_of(s, "minLength")
        && len < min
    {
        out.push(error(
            FieldErrorKind::Invalid,
            openapi_field(path),
            Some(Value::String(text.to_string())),
            format!("{path} in body should be at least {min} chars long"),
        ));
        return;
    }
    if let Some(pattern) = s.get("pattern").and_then(Value::as_str)
        && !pattern_matches(pattern, text)
    {
        out.push(error(
            FieldErrorKind::Invalid,
            openapi_field(path),
            Some(Value::String(text.to_string())),
            format!("{path} in body should match '{pattern}'"),
        ));
    }
}

/// Without the `crd-validation` feature (wasm guests) patterns are not checked.
#[cfg(not(feature = "crd-validation"))]
fn pattern_matches(_pattern: &str, _text: &str) -> bool {
    true
}

/// `validate.Pattern`: an unanchored RE2 search (Go's `regexp`, which the `regex` crate follows); a
/// pattern that does not compile fails every value, as there. Compiled patterns are cached per thread.
#[cfg(feature = "crd-validation")]
fn pattern_matches(pattern: &str, text: &str) -> bool {
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<String, Option<regex::Regex>>> =
            Default::default();
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 1024 {
            c.clear();
        }
        c.entry(pattern.to_string())
            .or_insert_with(|| regex::Regex::new(pattern).ok())
            .as_ref()
            .is_some_and(|re| re.is_match(text))
    })
}

/// kube-openapi's `formatValidator`: only string data, only formats the server keeps.
fn format_check(format: &str, text: &str, path: &str, out: &mut Vec<FieldError>) {
    if format.is_empty() || format_ok(&format.replace('-', ""), text) {
        return;
    }
    out.push(error(
        FieldErrorKind::TypeInvalid,
        openapi_field(path),
        Some(Value::String(text.to_string())),
        format!("{path} in body must be of type {format}: {}", go_quote(text)),
    ));
}

fn number_value(n: Num) -> Value {
    match n {
        Num::Int(i) => Value::from(i),
        Num::Float(f) => Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null),
    }
}

/// kube-openapi's `numberValidator`: multipleOf, minimum, maximum, in that order. Integer data is
/// compared against the bound converted to int64, as Go does.
fn number_check(s: &Value, n: &Number, path: &str, out: &mut Vec<FieldError>) {
    let data = num(n);
    let bad = |detail: String, value: Value| {
        error(FieldErrorKind::Invalid, openapi_field(path), Some(value), detail)
    };
    if let Some(factor) = number_of(s, "multipleOf") {
        match data {
            Num::Int(i) => {
                let factor = factor as i64;
                if factor < 0 {
                    out.push(bad(
                        format!("factor MultipleOf declared for {path} must be positive: {factor}"),
                        Value::from(factor),
                    ));
                } else if factor != 0 && i % factor != 0 {
                    out.push(bad(
                        format!("{path} in body should be a multiple of {factor}"),
                        number_value(data),
                    ));
                }
            }
            Num::Float(f) => {
                if factor < 0.0 {
                    out.push(bad(
                        format!(
                            "factor MultipleOf declared for {path} must be positive: {}",
                            go_float(factor)
                        ),
                        number_value(Num::Float(factor)),
                    ));
                } else {
                    let mult = if factor < 1.0 {
                        1.0 / factor * f
                    } else {
                        f / factor
                    };
                    if !is_json_integer(mult) {
                        out.push(bad(
                            format!("{path} in body should be a multiple of {}", go_float(factor)),
                            number_value(data),
                        ));
                    }
                }
            }
        }
    }
    if let Some(min) = number_of(s, "minimum") {
        let exclusive = flag(s, "exclusiveMinimum");
        let (fails, shown) = match data {
            Num::Int(i) => {
                let m = min as i64;
                ((!exclusive && i < m) || (exclusive && i <= m), m.to_string())
            }
            Num::Float(f) => ((!exclusive && f < min) || (exclusive && f <= min), go_float(min)),
        };
        if fails {
            let op = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            out.push(bad(
                format!("{path} in body should be {op} {shown}"),
                number_value(data),
            ));
        }
    }
    if let Some(max) = number_of(s, "maximum") {
        let exclusive = flag(s, "exclusiveMaximum");
        let (fails, shown) = match data {
            Num::Int(i) => {
                let m = max as i64;
                ((!exclusive && i > m) || (exclusive && i >= m), m.to_string())
            }
            Num::Float(f) => ((!exclusive && f > max) || (exclusive && f >= max), go_float(max)),
        };
        if fails {
            let op = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            out.push(bad(
                format!("{path} in body should be {op} {shown}"),
                number_value(data),
            ));
        }
    }
}

/// `field.TooMany`'s detail.
fn too_many_detail(max: i64) -> String {
    if max >= 0 {
        format!(
            "must have at most {max} {}",
            if max == 1 { "item" } else { "items" }
        )
    } else {
        "has too many items".to_string()
    }
}

/// kube-openapi's `schemaSliceValidator`: items first, then minItems, maxItems, uniqueItems.
fn slice_check(s: &Value, items: &[Value], path: &str, out: &mut Vec<FieldError>) {
    match s.get("items") {
        Some(item @ Value::Object(_)) => {
            for (i, v) in items.iter().enumerate() {
                validate_node(item, v, &format!("{path}[{i}]"), false, out);
            }
        }
        Some(Value::Array(tuple)) => {
            for (i, (sub, v)) in tuple.iter().zip(items).enumerate() {
                validate_node(sub, v, &format!("{path}[{i}]"), false, out);
            }
        }
        _ => {}
    }
    let size = items.len() as i64;
    if let Some(min) = int_of(s, "minItems")
        && size < min
    {
        out.push(error(
            FieldErrorKind::Invalid,
            openapi_field(path),
            Some(Value::from(size)),
            format!("{path} in body should have at least {min} items"),
        ));
    }
    if let Some(max) = int_of(s, "maxItems")
        && size > max
    {
        out.push(error(
            FieldErrorKind::TooMany,
            openapi_field(path),
            Some(Value::from(size)),
            too_many_detail(max),
        ));
    }
    if flag(s, "uniqueItems") && items.iter().enumerate().any(|(i, a)| items[..i].contains(a)) {
        out.push(error(
            FieldErrorKind::Invalid,
            openapi_field(path),
            Some(Value::String(String::new())),
            format!("{path} in body shouldn't contain duplicates"),
        ));
    }
}

/// Whether `data` equals an enum value after Go's `reflect.Value.Convert` to the enum value's type.
fn enum_matches(data: &Value, allowed: &Value) -> bool {
    match (data, allowed) {
        (Value::Number(d), Value::Number(a)) => match (num(d), num(a)) {
            (Num::Int(d), Num::Int(a)) => d == a,
            (Num::Int(d), Num::Float(a)) => d as f64 == a,
            (Num::Float(d), Num::Int(a)) => d as i64 == a,
            (Num::Float(d), Num::Float(a)) => d == a,
        },
        // Go converts an integer to a string as a rune: 97 matches "a".
        (Value::Number(d), Value::String(a)) => match num(d) {
            Num::Int(i) => {
                let c = u32::try_from(i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{fffd}');
                a.chars().eq(std::iter::once(c))
            }
            Num::Float(_) => false,
        },
        (Value::String(d), Value::String(a)) => d == a,
        (Value::Bool(d), Value::Bool(a)) => d == a,
        (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => data == allowed,
        _ => false,
    }
}

/// kube-openapi's `basicCommonValidator` (enum). A null never matches, not even a null enum value.
fn enum_check(s: &Value, data: &Value, path: &str, out: &mut Vec<FieldError>) {
    let Some(allowed) = s.get("enum").and_then(Value::as_array).filter(|e| !e.is_empty()) else {
        return;
    };
    if !data.is_null() && allowed.iter().any(|a| !a.is_null() && enum_matches(data, a)) {
        return;
    }
    let quoted: Vec<String> = allowed
        .iter()
        .map(|a| match a {
            Value::String(s) => go_quote(s),
            other => go_quote(&go_json(other)),
        })
        .collect();
    out.push(error(
        FieldErrorKind::NotSupported,
        openapi_field(path),
        Some(data.clone()),
        format!("supported values: {}", quoted.join(", ")),
    ));
}

fn sorted_keys(map: &Map<String, Value>) -> Vec<&String> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    keys
}

/// kube-openapi's `objectValidator`: min/maxProperties (which end the object's checks),
/// additionalProperties, properties, then required.
fn object_check(s: &Value, map: &Map<String, Value>, path: &str, root: bool, out: &mut Vec<FieldError>) {
    let n = map.len() as i64;
    if let Some(min) = int_of(s, "minProperties")
        && n < min
    {
        out.push(error(
            FieldErrorKind::Invalid,
            openapi_field(path),
            Some(Value::from(n)),
            format!("{path} in body should have at least {min} properties"),
        ));
        return;
    }
    if let Some(max) = int_of(s, "maxProperties")
        && n > max
    {
        out.push(error(
            FieldErrorKind::TooMany,
            openapi_field(path),
            Some(Value::from(n)),
            too_many_detail(max),
        ));
        return;
    }
    let skip = |k: &str| root && META_FIELDS.contains(&k);
    let props = properties(s);
    let known = |k: &str| props.is_some_and(|p| p.contains_key(k));
    if s.get("additionalProperties") == Some(&Value::Bool(false)) {
        for k in sorted_keys(map) {
            if !known(k) && !skip(k) {
                out.push(error(
                    FieldErrorKind::Invalid,
                    openapi_field(path),
                    Some(Value::String(k.clone())),
                    format!("{path}.{k} in body is a forbidden property"),
                ));
            }
        }
    } else if let Some(additional) = additional_schema(s) {
        for k in sorted_keys(map) {
            if !known(k) && !skip(k) {
                validate_node(additional, &map[k.as_str()], &format!("{path}.{k}"), false, out);
            }
        }
    }
    if let Some(props) = props {
        for name in sorted_keys(props) {
            if skip(name) {
                continue;
            }
            if let Some(v) = map.get(name.as_str()) {
                let child = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                validate_node(&props[name.as_str()], v, &child, false, out);
            }
        }
    }
    for k in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !skip(k) && !map.contains_key(k) {
            out.push(error(
                FieldErrorKind::Required,
                openapi_field(&format!("{path}.{k}")),
                None,
                String::new(),
            ));
        }
    }
}

// --- field.Path helpers for the validators that use Go's field paths ----------------------------

fn path_child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn path_key(path: &str, key: &str) -> String {
    format!("{path}[{key}]")
}

fn path_index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}
