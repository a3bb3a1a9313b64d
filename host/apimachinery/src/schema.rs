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

// --- embedded resources (objectmeta.Validate) ---------------------------------------------------

/// Walks an object for nested `x-kubernetes-embedded-resource` nodes. The root is never one here.
fn embedded_in_object(
    s: &Value,
    map: &Map<String, Value>,
    path: &str,
    root: bool,
    out: &mut Vec<FieldError>,
) {
    if !root && flag(s, "x-kubernetes-embedded-resource") {
        embedded_resource(map, path, out);
    }
    let props = properties(s);
    for k in sorted_keys(map) {
        if root && META_FIELDS.contains(&k.as_str()) {
            continue;
        }
        let v = &map[k.as_str()];
        if let Some(p) = props.and_then(|p| p.get(k.as_str())) {
            embedded_in_value(p, v, &path_child(path, k), out);
        } else if let Some(a) = additional_schema(s) {
            embedded_in_value(a, v, &path_key(path, k), out);
        }
    }
}

fn embedded_in_value(s: &Value, v: &Value, path: &str, out: &mut Vec<FieldError>) {
    match v {
        Value::Object(map) => embedded_in_object(s, map, path, false, out),
        Value::Array(items) => {
            if let Some(item) = items_schema(s) {
                for (i, v) in items.iter().enumerate() {
                    embedded_in_value(item, v, &path_index(path, i), out);
                }
            }
        }
        _ => {}
    }
}

/// `validateEmbeddedResource`: `apiVersion` and `kind` are required non-empty strings. The embedded
/// `metadata` is not validated as ObjectMeta here.
fn embedded_resource(map: &Map<String, Value>, path: &str, out: &mut Vec<FieldError>) {
    for field in ["apiVersion", "kind"] {
        if !map.contains_key(field) {
            out.push(error(
                FieldErrorKind::Required,
                path_child(path, field),
                None,
                "must not be empty".into(),
            ));
        }
    }
    for k in sorted_keys(map) {
        let v = &map[k.as_str()];
        let field = path_child(path, k);
        let invalid =
            |value: Value, detail: String| error(FieldErrorKind::Invalid, field.clone(), Some(value), detail);
        match (k.as_str(), v) {
            ("apiVersion" | "kind", Value::String(s)) if s.is_empty() => {
                out.push(invalid(v.clone(), "must not be empty".into()));
            }
            ("apiVersion", Value::String(s)) if s != "/" && s.matches('/').count() > 1 => {
                out.push(invalid(v.clone(), format!("unexpected GroupVersion string: {s}")));
            }
            ("apiVersion" | "kind", Value::String(_)) => {}
            ("apiVersion" | "kind", _) => out.push(invalid(v.clone(), "must be a string".into())),
            _ => {}
        }
    }
}

// --- x-kubernetes-list-type (listtype.ValidateListSetsAndMaps) ----------------------------------

fn list_sets_and_maps(s: &Value, map: &Map<String, Value>, path: &str, out: &mut Vec<FieldError>) {
    if let Some(a) = additional_schema(s) {
        for k in sorted_keys(map) {
            list_sets_and_maps_value(a, &map[k.as_str()], &path_key(path, k), out);
        }
    }
    if let Some(props) = properties(s) {
        for k in sorted_keys(map) {
            if let Some(p) = props.get(k.as_str()) {
                list_sets_and_maps_value(p, &map[k.as_str()], &path_child(path, k), out);
            }
        }
    }
}

fn list_sets_and_maps_value(s: &Value, v: &Value, path: &str, out: &mut Vec<FieldError>) {
    match v {
        Value::Array(items) => {
            match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("set") => {
                    let keys: Vec<SetKey> = items.iter().map(SetKey::of).collect();
                    for i in non_unique(&keys) {
                        out.push(error(
                            FieldErrorKind::Duplicate,
                            path_index(path, i),
                            Some(items[i].clone()),
                            String::new(),
                        ));
                    }
                }
                Some("map") => list_map(s, items, path, out),
                _ => {}
            }
            if let Some(item) = items_schema(s) {
                for (i, v) in items.iter().enumerate() {
                    list_sets_and_maps_value(item, v, &path_index(path, i), out);
                }
            }
        }
        Value::Object(map) => list_sets_and_maps(s, map, path, out),
        _ => {}
    }
}

/// How Go compares set items: scalars by type and value (int64 1 differs from float64 1), compounds by
/// their JSON encoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SetKey {
    Unspecified,
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(String),
    Compound(String),
}

impl SetKey {
    fn of(v: &Value) -> SetKey {
        match v {
            Value::Null => SetKey::Null,
            Value::Bool(b) => SetKey::Bool(*b),
            Value::Number(n) => match num(n) {
                Num::Int(i) => SetKey::Int(i),
                // -0.0 == 0.0 as a Go map key.
                Num::Float(f) => SetKey::Float(if f == 0.0 { 0 } else { f.to_bits() }),
            },
            Value::String(s) => SetKey::Str(s.clone()),
            Value::Array(_) | Value::Object(_) => SetKey::Compound(go_json(v)),
        }
    }
}

/// `validateListSet`: the index of each value's *second* appearance.
fn non_unique(keys: &[SetKey]) -> Vec<usize> {
    let mut seen: HashMap<&SetKey, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let times = seen.entry(k).or_insert(0);
        *times += 1;
        if *times == 2 {
            out.push(i);
        }
    }
    out
}

/// `validateListMap`.
fn list_map(s: &Value, items: &[Value], path: &str, out: &mut Vec<FieldError>) {
    if let Some(i) = items.iter().position(|x| !x.is_null() && !x.is_object()) {
        out.push(error(
            FieldErrorKind::Invalid,
            path_index(path, i),
            Some(items[i].clone()),
            "must be an object for an array of list-type map".into(),
        ));
        return;
    }
    if items.len() <= 1 {
        return;
    }
    let key_fields: Vec<&str> = s
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if let [key_field] = key_fields.as_slice() {
        let values: Vec<Option<&Value>> = items.iter().map(|x| x.get(*key_field)).collect();
        let keys: Vec<SetKey> = values
            .iter()
            .map(|v| v.map_or(SetKey::Unspecified, SetKey::of))
            .collect();
        for i in non_unique(&keys) {
            let mut shown = Map::new();
            if let Some(v) = values[i] {
                shown.insert(key_field.to_string(), v.clone());
            }
            out.push(error(
                FieldErrorKind::Duplicate,
                path_index(path, i),
                Some(Value::Object(shown)),
                String::new(),
            ));
        }
        return;
    }
    let key_maps: Vec<Value> = items
        .iter()
        .map(|x| {
            let mut key = Map::new();
            for f in &key_fields {
                if let Some(v) = x.get(*f) {
                    key.insert(f.to_string(), v.clone());
                }
            }
            Value::Object(key)
        })
        .collect();
    let keys: Vec<SetKey> = key_maps.iter().map(SetKey::of).collect();
    for i in non_unique(&keys) {
        out.push(error(
            FieldErrorKind::Duplicate,
            path_index(path, i),
            Some(key_maps[i].clone()),
            String::new(),
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Pruning and defaulting
// ---------------------------------------------------------------------------------------------

/// Structural pruning as the server's decoder does it: removes every field the schema does not specify,
/// except under `x-kubernetes-preserve-unknown-fields: true` and except `apiVersion`/`kind` (strings) and
/// `metadata` (an object) at the root and in embedded resources; then removes non-nullable `null`s
/// that have no `default` (`PruneNonNullableNullsWithoutDefaults`). Returns the removed unknown
/// fields, sorted, as the server prints them (`spec.bogus`, `spec.items[0].x`); `metadata` contents
/// are the server's business. `additionalProperties: true` keeps its values as they are.
pub fn prune(schema: &Value, object: &mut Value) -> Vec<String> {
    let mut unknown = Vec::new();
    prune_value(object, Some(schema), true, "", &mut unknown);
    prune_nulls(object, Some(schema));
    unknown.sort();
    unknown
}

fn prune_value(x: &mut Value, s: Option<&Value>, root: bool, path: &str, unknown: &mut Vec<String>) {
    if let Some(s) = s
        && flag(s, "x-kubernetes-preserve-unknown-fields")
    {
        skip_prune(x, s, root, path, unknown);
        return;
    }
    match x {
        Value::Object(map) => {
            let Some(s) = s else {
                unknown.extend(map.keys().map(|k| path_child(path, k)));
                map.clear();
                return;
            };
            let embedded = root || flag(s, "x-kubernetes-embedded-resource");
            let props = properties(s);
            let additional = s.get("additionalProperties");
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let Some(v) = map.get_mut(&k) else { continue };
                if embedded {
                    match (k.as_str(), &*v) {
                        ("apiVersion" | "kind", Value::String(_)) | ("metadata", Value::Object(_)) => {
                            continue;
                        }
                        _ => {}
                    }
                }
                if let Some(p) = props.and_then(|p| p.get(&k)) {
                    prune_value(v, Some(p), false, &path_child(path, &k), unknown);
                } else if let Some(a @ Value::Object(_)) = additional {
                    prune_value(v, Some(a), false, &path_child(path, &k), unknown);
                } else if additional == Some(&Value::Bool(true)) {
                    // kept as is: the schema allows anything there
                } else {
                    if !(META_FIELDS.contains(&k.as_str()) && path.is_empty()) {
                        unknown.push(path_child(path, &k));
                    }
                    map.remove(&k);
                }
            }
        }
        Value::Array(items) => {
            let item = s.and_then(items_schema);
            for (i, v) in items.iter_mut().enumerate() {
                prune_value(v, item, false, &path_index(path, i), unknown);
            }
        }
        _ => {}
    }
}

/// Under `x-kubernetes-preserve-unknown-fields`: unknown fields stay, known ones are still pruned.
fn skip_prune(x: &mut Value, s: &Value, root: bool, path: &str, unknown: &mut Vec<String>) {
    match x {
        Value::Object(map) => {
            let embedded = root || flag(s, "x-kubernetes-embedded-resource");
            let props = properties(s);
            for (k, v) in map.iter_mut() {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(p) = props.and_then(|p| p.get(k)) {
                    prune_value(v, Some(p), false, &path_child(path, k), unknown);
                } else if let Some(a) = additional_schema(s) {
                    prune_value(v, Some(a), false, &path_child(path, k), unknown);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = items_schema(s) {
                for (i, v) in items.iter_mut().enumerate() {
                    skip_prune(v, item, false, &path_index(path, i), unknown);
                }
            }
        }
        _ => {}
    }
}

/// The schema of a field: its property, or `additionalProperties`.
fn schema_for_field<'a>(s: Option<&'a Value>, field: &str) -> Option<&'a Value> {
    let s = s?;
    properties(s)
        .and_then(|p| p.get(field))
        .or_else(|| additional_schema(s))
}

/// `PruneNonNullableNullsWithoutDefaults`.
fn prune_nulls(x: &mut Value, s: Option<&Value>) {
    match x {
        Value::Object(map) => {
            map.retain(|k, v| {
                let sch = schema_for_field(s, k);
                !(v.is_null() && sch.is_some_and(|sch| !nullable(sch) && default_of(sch).is_none()))
            });
            for (k, v) in map.iter_mut() {
                prune_nulls(v, schema_for_field(s, k));
            }
        }
        Value::Array(items) => {
            let item = s.and_then(items_schema);
            for v in items {
                prune_nulls(v, item);
            }
        }
        _ => {}
    }
}

/// Structural defaulting (`defaulting.Default`): a property's `default` fills it when missing or a
/// non-nullable `null`; list items and `additionalProperties` values that are non-nullable `null`s get
/// their schema's default. Parents are never created.
pub fn apply_defaults(schema: &Value, object: &mut Value) {
    match object {
        Value::Object(map) => {
            let props = properties(schema);
            if let Some(props) = props {
                for (k, prop) in props {
                    let Some(default) = default_of(prop) else { continue };
                    match map.get(k) {
                        None => {
                            map.insert(k.clone(), default.clone());
                        }
                        Some(Value::Null) if !nullable(prop) => {
                            map.insert(k.clone(), default.clone());
                        }
                        Some(_) => {}
                    }
                }
            }
            let additional = additional_schema(schema);
            for (k, v) in map.iter_mut() {
                if let Some(p) = props.and_then(|p| p.get(k)) {
                    apply_defaults(p, v);
                } else if let Some(a) = additional {
                    if v.is_null()
                        && !nullable(a)
                        && let Some(d) = default_of(a)
                    {
                        *v = d.clone();
                    }
                    apply_defaults(a, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = items_schema(schema) {
                for v in items {
                    if v.is_null()
                        && !nullable(item)
                        && let Some(d) = default_of(item)
                    {
                        *v = d.clone();
                    }
                    apply_defaults(item, v);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Structure for server-side apply
// ---------------------------------------------------------------------------------------------

/// The [`Structure`] of a custom resource, read from its `openAPIV3Schema`: `x-kubernetes-list-type`
/// (`atomic`, `set`, `map` with `x-kubernetes-list-map-keys`; none means atomic) and
/// `x-kubernetes-map-type: atomic`, found by following `properties`, `items` and
/// `additionalProperties`. The root `metadata` is ObjectMeta, whatever the schema says, so it follows
/// [`BuiltinStructure`].
#[derive(Debug, Clone, Copy)]
pub struct SchemaStructure<'a>(pub &'a Value);

impl SchemaStructure<'_> {
    /// The schema node at a path of field names (list items skipped).
    fn node(&self, path: &[&str]) -> Option<&Value> {
        let mut cur = self.0;
        for seg in path {
            // A path skips list items, so descend through (possibly nested) arrays first.
            while let Some(item) = items_schema(cur) {
                cur = item;
            }
            cur = properties(cur)
                .and_then(|p| p.get(*seg))
                .or_else(|| additional_schema(cur))?;
        }
        Some(cur)
    }
}

impl Structure for SchemaStructure<'_> {
    fn list_type(&self, path: &[&str]) -> ListType {
        if path.first() == Some(&"metadata") {
            return BuiltinStructure.list_type(path);
        }
        let Some(node) = self.node(path) else {
            return ListType::Atomic;
        };
        match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map(
                node.get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            ),
            _ => ListType::Atomic,
        }
    }

    fn map_is_atomic(&self, path: &[&str]) -> bool {
        if path.first() == Some(&"metadata") {
            return BuiltinStructure.map_is_atomic(path);
        }
        self.node(path)
            .and_then(|n| n.get("x-kubernetes-map-type"))
            .and_then(Value::as_str)
            == Some("atomic")
    }
}

// ---------------------------------------------------------------------------------------------
// Formats (go-openapi strfmt), checked loosely
// ---------------------------------------------------------------------------------------------

/// Whether `text` is valid for a (normalized, supported) string format. Formats without a check here
/// (`email`, `hostname`, `uri`, `isbn*`, `creditcard`, `ssn`, `duration`, `quantity`, `password`)
/// accept everything.
fn format_ok(format: &str, text: &str) -> bool {
    match format {
        "datetime" => is_date_time(text),
        "date" => is_date(text),
        "uuid" => is_uuid(text, None),
        "uuid3" => is_uuid(text, Some(b'3')),
        "uuid4" => is_uuid(text, Some(b'4')),
        "uuid5" => is_uuid(text, Some(b'5')),
        "ipv4" => text.parse::<std::net::IpAddr>().is_ok() && text.contains('.'),
        "ipv6" => text.parse::<std::net::IpAddr>().is_ok() && text.contains(':'),
        "cidr" => is_cidr(text),
        "mac" => is_mac(text),
        "byte" => is_base64(text),
        "hexcolor" => {
            let h = text.strip_prefix('#').unwrap_or(text);
            matches!(h.len(), 3 | 6) && h.bytes().all(|b| b.is_ascii_hexdigit())
        }
        "bsonobjectid" => text.len() == 24 && text.bytes().all(|b| b.is_ascii_hexdigit()),
        _ => true,
    }
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `time.Parse("2006-01-02", s)`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Some(y), Some(m), Some(d)) = (digits(&s[0..4]), digits(&s[5..7]), digits(&s[8..10])) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// strfmt `IsDateTime`: lowercase, split on `t`, a valid date, then
/// `^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$` with hour ≤ 23, minute
/// and second ≤ 59 (further `t`-separated parts are ignored, as in Go).
fn is_date_time(s: &str) -> bool {
    if s.len() < 4 {
        return false;
    }
    let lower = s.to_lowercase();
    let parts: Vec<&str> = lower.split('t').collect();
    if parts.len() < 2 || !is_date(parts[0]) {
        return false;
    }
    let t = parts[1].as_bytes();
    if t.len() < 9 || t[2] != b':' || t[5] != b':' {
        return false;
    }
    let two = |i: usize| digits(std::str::from_utf8(&t[i..i + 2]).unwrap_or(""));
    let (Some(h), Some(m), Some(sec)) = (two(0), two(3), two(6)) else {
        return false;
    };
    if h > 23 || m > 59 || sec > 59 {
        return false;
    }
    // Bytes 0..8 are ASCII, so 8 is a char boundary.
    let rest = &parts[1][8..];
    let zone_ok = |z: &str| {
        let b = z.as_bytes();
        z == "z"
            || (b.len() == 6
                && matches!(b[0], b'+' | b'-')
                && b[3] == b':'
                && [b[1], b[2], b[4], b[5]].iter().all(u8::is_ascii_digit))
    };
    if zone_ok(rest) {
        return true;
    }
    // `(.[0-9]+)?`: any one character, then digits, then the zone.
    let mut chars = rest.chars();
    if chars.next().is_none() {
        return false;
    }
    let after = chars.as_str();
    let n = after.bytes().take_while(u8::is_ascii_digit).count();
    (1..=n).any(|k| zone_ok(&after[k..]))
}

/// `(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$`; uuid3/4/5 also fix the
/// version digit, uuid4/5 the variant.
fn is_uuid(s: &str, version: Option<u8>) -> bool {
    let mut hex: Vec<u8> = Vec::with_capacity(32);
    let mut last_dash = None;
    for c in s.chars() {
        if c == '-' {
            if !matches!(hex.len(), 8 | 12 | 16 | 20) || last_dash == Some(hex.len()) {
                return false;
            }
            last_dash = Some(hex.len());
        } else if c.is_ascii_hexdigit() {
            hex.push(c.to_ascii_lowercase() as u8);
        } else {
            return false;
        }
    }
    if hex.len() != 32 {
        return false;
    }
    match version {
        None => true,
        Some(b'3') => hex[12] == b'3',
        Some(v) => hex[12] == v && matches!(hex[16], b'8' | b'9' | b'a' | b'b'),
    }
}

/// `net.ParseCIDR`.
fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Some(bits) = digits(bits) else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

/// `net.ParseMAC`: 6, 8 or 20 bytes as `xx:xx:..`, `xx-xx-..` or `xxxx.xxxx...`.
fn is_mac(s: &str) -> bool {
    let hex = |g: &str, n: usize| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit());
    for sep in [':', '-'] {
        let groups: Vec<&str> = s.split(sep).collect();
        if matches!(groups.len(), 6 | 8 | 20) && groups.iter().all(|g| hex(g, 2)) {
            return true;
        }
    }
    let groups: Vec<&str> = s.split('.').collect();
    matches!(groups.len(), 3 | 4 | 10) && groups.iter().all(|g| hex(g, 4))
}

/// `base64.StdEncoding.DecodeString` (which skips `\r` and `\n`).
fn is_base64(s: &str) -> bool {
    let b: Vec<u8> = s.bytes().filter(|b| *b != b'\r' && *b != b'\n').collect();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|c| **c == b'=').count();
    if pad > 2 {
        return false;
    }
    b[..b.len() - pad]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    #[cfg(feature = "crd-validation")]
    fn patterns_are_enforced_with_the_servers_message() {
        let s = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "x": {"type": "string", "pattern": "^[a-z]+$"},
            "y": {"type": "string", "pattern": "b", "minLength": 3}
        }}}});
        assert!(validate(&s, &json!({"spec": {"x": "abc", "y": "abc"}})).is_empty());
        let errs: Vec<String> = validate(&s, &json!({"spec": {"x": "ABC", "y": "aaa"}}))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                r#"spec.x: Invalid value: "ABC": spec.x in body should match '^[a-z]+$'"#,
                r#"spec.y: Invalid value: "aaa": spec.y in body should match 'b'"#,
            ]
        );
        // First failure only: a too short value is not also checked against the pattern.
        assert_eq!(validate(&s, &json!({"spec": {"y": "a"}})).len(), 1);
    }

    /// The Widget schema of `04-crd-status/01-crd-create-response.http`.
    fn widget_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "color": {"type": "string"},
                        "size": {"type": "integer", "minimum": 0},
                        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}
                    }
                },
                "status": {
                    "type": "object",
                    "properties": {
                        "conditions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["type", "status"],
                                "properties": {
                                    "lastTransitionTime": {"type": "string", "format": "date-time"},
                                    "message": {"type": "string"},
                                    "reason": {"type": "string"},
                                    "status": {"type": "string"},
                                    "type": {"type": "string"}
                                }
                            },
                            "x-kubernetes-list-map-keys": ["type"],
                            "x-kubernetes-list-type": "map"
                        },
                        "observedGeneration": {"type": "integer"},
                        "phase": {"type": "string"}
                    }
                }
            }
        })
    }

    fn widget(name: &str, spec: Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec})
    }

    /// The server's 422 message body after `is invalid: `.
    fn joined(errors: &[FieldError]) -> String {
        match errors {
            [] => String::new(),
            [one] => one.to_string(),
            many => format!(
                "[{}]",
                many.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn causes(errors: &[FieldError]) -> Vec<(String, String, String)> {
        errors
            .iter()
            .map(|e| (e.cause_reason().to_string(), e.message(), e.field.clone()))
            .collect()
    }

    #[test]
    fn bad_values_print_like_error_body() {
        assert_eq!(go_bad_value(&Value::Null), "\"null\"");
    }

    #[test]
    fn recorded_type_invalid() {
        // 05-errors/422-invalid-crd-schema-type.http
        let errors = validate(&widget_schema(), &widget("bad1", json!({"size": "big"})));
        assert_eq!(
            joined(&errors),
            "spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\""
        );
        assert_eq!(
            causes(&errors),
            [(
                "FieldValueTypeInvalid".into(),
                "Invalid value: \"string\": spec.size in body must be of type integer: \"string\"".into(),
                "spec.size".into()
            )]
        );
    }

    #[test]
    fn recorded_missing_required() {
        // 05-errors/422-invalid-crd-missing-required.http
        let errors = validate(&widget_schema(), &widget("bad2", json!({"color": "red"})));
        assert_eq!(joined(&errors), "spec.size: Required value");
        assert_eq!(
            causes(&errors),
            [(
                "FieldValueRequired".into(),
                "Required value".into(),
                "spec.size".into()
            )]
        );
    }

    #[test]
    fn recorded_multiple_errors() {
        // 05-errors/422-invalid-crd-multiple-errors.http
        let errors = validate(
            &widget_schema(),
            &widget("bad3", json!({"size": -1, "color": 5, "tags": ["a", "a"]})),
        );
        assert_eq!(
            joined(&errors),
            "[spec.color: Invalid value: \"integer\": spec.color in body must be of type string: \"integer\", spec.size: Invalid value: -1: spec.size in body should be greater than or equal to 0, spec.tags[1]: Duplicate value: \"a\"]"
        );
        assert_eq!(
            causes(&errors),
            [
                (
                    "FieldValueTypeInvalid".into(),
                    "Invalid value: \"integer\": spec.color in body must be of type string: \"integer\""
                        .into(),
                    "spec.color".into()
                ),
                (
                    "FieldValueInvalid".into(),
                    "Invalid value: -1: spec.size in body should be greater than or equal to 0".into(),
                    "spec.size".into()
                ),
                (
                    "FieldValueDuplicate".into(),
                    "Duplicate value: \"a\"".into(),
                    "spec.tags[1]".into()
                ),
            ]
        );
    }

    #[test]
    fn recorded_objects_that_are_valid() {
        let schema = widget_schema();
        assert!(
            validate(
                &schema,
                &widget("w", json!({"size": 0, "color": "", "tags": ["a", "b"]}))
            )
            .is_empty()
        );
        let status = json!({
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": 1},
            "status": {"phase": "Ready", "observedGeneration": 2, "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-22T07:16:02Z"},
                {"type": "Synced", "status": "False", "reason": "x", "message": "y"}
            ]}
        });
        assert!(validate(&schema, &status).is_empty());
    }

    #[test]
    fn recorded_unknown_fields_are_pruned() {
        let schema = widget_schema();
        // 05-errors/201-default-no-field-validation-unknown-field-crd.http
        let mut warn = widget("warn2", json!({"size": 1, "bogus": 1}));
        assert_eq!(prune(&schema, &mut warn), ["spec.bogus"]);
        assert_eq!(warn, widget("warn2", json!({"size": 1})));
        // 05-errors/400-strict-field-validation-unknown-field-crd-object.http
        let mut strict = widget("strict2", json!({"size": 1, "bogus": 1}));
        strict["extra"] = json!(1);
        assert_eq!(prune(&schema, &mut strict), ["extra", "spec.bogus"]);
        assert_eq!(strict, widget("strict2", json!({"size": 1})));
    }

    #[test]
    fn pruning_details() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                             "properties": {"known": {"type": "object", "properties": {"k": {"type": "string"}}}}},
                    "labels": {"type": "object", "additionalProperties": {"type": "object", "properties": {"v": {"type": "string"}}}},
                    "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                                 "properties": {"spec": {"type": "object"}}},
                    "opt": {"type": "string"},
                    "nul": {"type": "string", "nullable": true},
                    "def": {"type": "string", "default": "d"}
                }}
            }
        });
        let mut obj = json!({
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"a": "b"}},
            "spec": {
                "items": [{"a": "x", "b": 1}, {"c": 2}],
                "free": {"anything": {"deep": true}, "known": {"k": "v", "drop": 1}},
                "labels": {"x": {"v": "1", "w": "2"}},
                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}, "status": {}},
                "opt": null, "nul": null, "def": null
            }
        });
        let pruned = prune(&schema, &mut obj);
        assert_eq!(
            pruned,
            [
                "spec.free.known.drop",
                "spec.items[0].b",
                "spec.items[1].c",
                "spec.labels.x.w",
                "spec.template.spec.x",
                "spec.template.status"
            ]
        );
        assert_eq!(
            obj,
            json!({
                "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"a": "b"}},
                "spec": {
                    "items": [{"a": "x"}, {}],
                    "free": {"anything": {"deep": true}, "known": {"k": "v"}},
                    "labels": {"x": {"v": "1"}},
                    "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}},
                    "nul": null, "def": null
                }
            })
        );
        apply_defaults(&schema, &mut obj);
        assert_eq!(obj["spec"]["def"], "d");
        assert_eq!(obj["spec"]["nul"], Value::Null);
    }

    #[test]
    fn defaults_fill_missing_fields_but_never_create_parents() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "replicas": {"type": "integer", "default": 1},
                    "mode": {"type": "string", "default": "auto"},
                    "nested": {"type": "object", "properties": {"x": {"type": "integer", "default": 5}}},
                    "ports": {"type": "array", "items": {"type": "object", "properties": {
                        "protocol": {"type": "string", "default": "TCP"}}}},
                    "map": {"type": "object", "additionalProperties": {"type": "object", "default": {"on": true}}}
                }}
            }
        });
        let mut obj =
            json!({"spec": {"mode": "manual", "ports": [{}, {"protocol": "UDP"}], "map": {"a": null}}});
        apply_defaults(&schema, &mut obj);
        assert_eq!(
            obj,
            json!({"spec": {"replicas": 1, "mode": "manual", "ports": [{"protocol": "TCP"}, {"protocol": "UDP"}],
                            "map": {"a": {"on": true}}}})
        );
        let mut none = json!({});
        apply_defaults(&schema, &mut none);
        assert_eq!(none, json!({}));
    }

    #[test]
    fn value_validations_print_like_the_server() {
        let schema = json!({
            "type": "object",
            "properties": {"spec": {"type": "object", "properties": {
                "name": {"type": "string", "maxLength": 5, "minLength": 2},
                "color": {"type": "string", "enum": ["red", "green"]},
                "level": {"type": "integer", "enum": [1, 2]},
                "ratio": {"type": "number", "maximum": 1.5, "exclusiveMinimum": true, "minimum": 0},
                "step": {"type": "integer", "multipleOf": 3, "maximum": 10},
                "tags": {"type": "array", "maxItems": 2, "minItems": 1, "items": {"type": "string"}},
                "uniq": {"type": "array", "uniqueItems": true, "items": {"type": "integer"}},
                "port": {"x-kubernetes-int-or-string": true},
                "when": {"type": "string", "format": "date-time"},
                "id": {"type": "string", "format": "uuid"},
                "count": {"type": "integer", "format": "int32"},
                "opt": {"type": "string", "nullable": true},
                "labels": {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}},
                "few": {"type": "object", "minProperties": 2, "additionalProperties": {"type": "string"}}
            }}}
        });
        let check = |spec: Value| joined(&validate(&schema, &json!({"spec": spec})));
        assert_eq!(
            check(json!({"name": "abcdef"})),
            "spec.name: Too long: may not be longer than 5"
        );
        assert_eq!(
            check(json!({"name": "a"})),
            "spec.name: Invalid value: \"a\": spec.name in body should be at least 2 chars long"
        );
        assert_eq!(
            check(json!({"color": "blue"})),
            "spec.color: Unsupported value: \"blue\": supported values: \"red\", \"green\""
        );
        assert_eq!(
            check(json!({"level": 3})),
            "spec.level: Unsupported value: 3: supported values: \"1\", \"2\""
        );
        assert_eq!(check(json!({"level": 2.0})), "");
        assert_eq!(
            check(json!({"ratio": 0})),
            "spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0"
        );
        assert_eq!(
            check(json!({"ratio": 2.25})),
            "spec.ratio: Invalid value: 2.25: spec.ratio in body should be less than or equal to 1.5"
        );
        assert_eq!(
            check(json!({"step": 13})),
            "[spec.step: Invalid value: 13: spec.step in body should be a multiple of 3, spec.step: Invalid value: 13: spec.step in body should be less than or equal to 10]"
        );
        assert_eq!(
            check(json!({"tags": ["a", "b", "c"]})),
            "spec.tags: Too many: 3: must have at most 2 items"
        );
        assert_eq!(
            check(json!({"tags": []})),
            "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"
        );
        assert_eq!(
            check(json!({"tags": ["a", 1]})),
            "spec.tags[1]: Invalid value: \"integer\": spec.tags[1] in body must be of type string: \"integer\""
        );
        assert_eq!(
            check(json!({"uniq": [1, 1]})),
            "spec.uniq: Invalid value: \"\": spec.uniq in body shouldn't contain duplicates"
        );
        assert_eq!(check(json!({"port": 80})), "");
        assert_eq!(check(json!({"port": "http"})), "");
        assert_eq!(
            check(json!({"port": true})),
            "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\""
        );
        assert_eq!(check(json!({"when": "2026-11-22T07:16:02Z"})), "");
        assert_eq!(check(json!({"when": "2026-11-22t07:16:02.123+01:00"})), "");
        assert_eq!(
            check(json!({"when": "yesterday"})),
            "spec.when: Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\""
        );
        assert_eq!(check(json!({"id": "7cfed4e2-1de2-4279-a4ae-4c6821fd2faf"})), "");
        assert!(check(json!({"id": "nope"})).contains("must be of type uuid"));
        assert_eq!(check(json!({"count": 5})), "");
        assert_eq!(
            check(json!({"count": 1.5})),
            "spec.count: Invalid value: \"float64\": spec.count in body must be of type int32: \"float64\""
        );
        assert_eq!(check(json!({"opt": null})), "");
        assert_eq!(
            check(json!({"name": null})),
            "spec.name: Invalid value: \"null\": spec.name in body must be of type string: \"null\""
        );
        assert_eq!(
            check(json!({"labels": {"a": "1", "b": "2"}})),
            "spec.labels: Too many: 2: must have at most 1 item"
        );
        assert_eq!(
            check(json!({"labels": {"a": 1}})),
            "spec.labels.a: Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\""
        );
        assert_eq!(
            check(json!({"few": {"a": "1"}})),
            "spec.few: Invalid value: 1: spec.few in body should have at least 2 properties"
        );
        assert_eq!(
            check(json!([])),
            "spec: Invalid value: \"array\": spec in body must be of type object: \"array\""
        );
        assert_eq!(
            joined(&validate(&schema, &json!({"spec": "x"}))),
            "spec: Invalid value: \"string\": spec in body must be of type object: \"string\""
        );
    }

    #[test]
    fn composition_and_forbidden_properties() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "closed": {"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}},
            "not5": {"type": "integer", "not": {"enum": [5]}}
        }}}});
        let errors = validate(&schema, &json!({"spec": {"port": 1.5}}));
        assert_eq!(
            joined(&errors),
            "[spec.port: Invalid value: \"number\": spec.port in body must be of type integer,string: \"number\", <nil>: Invalid value: \"\": \"spec.port\" must validate at least one schema (anyOf), spec.port: Invalid value: \"number\": spec.port in body must be of type integer: \"number\"]"
        );
        assert!(validate(&schema, &json!({"spec": {"port": "http"}})).is_empty());
        assert_eq!(
            joined(&validate(
                &schema,
                &json!({"spec": {"closed": {"a": "x", "b": 1}}})
            )),
            "spec.closed: Invalid value: \"b\": spec.closed.b in body is a forbidden property"
        );
        assert_eq!(
            joined(&validate(&schema, &json!({"spec": {"not5": 5}}))),
            "<nil>: Invalid value: \"\": \"spec.not5\" must not validate the schema (not)"
        );
    }

    #[test]
    fn list_types_report_duplicates() {
        let schema = widget_schema();
        let obj = json!({"spec": {"size": 1, "tags": ["a", "b", "a", "a", "b"]}, "status": {"conditions": [
            {"type": "Ready", "status": "True"}, {"type": "Ready", "status": "False"}, {"status": "x"}, {"status": "y"},
            "bad"
        ]}});
        let errors = validate(&schema, &obj);
        assert_eq!(
            joined(&errors),
            "[status.conditions[2].type: Required value, status.conditions[3].type: Required value, status.conditions[4]: Invalid value: \"string\": status.conditions[4] in body must be of type object: \"string\", spec.tags[2]: Duplicate value: \"a\", spec.tags[4]: Duplicate value: \"b\", status.conditions[4]: Invalid value: \"bad\": must be an object for an array of list-type map]"
        );
        let obj = json!({"status": {"conditions": [
            {"type": "Ready", "status": "True"}, {"type": "Ready", "status": "False"}, {"status": "x"}, {"status": "y"}
        ]}});
        let dups: Vec<String> = validate(&schema, &obj)
            .iter()
            .filter(|e| e.kind == FieldErrorKind::Duplicate)
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            dups,
            [
                "status.conditions[1]: Duplicate value: map[string]interface {}{\"type\":\"Ready\"}",
                "status.conditions[3]: Duplicate value: map[string]interface {}{}"
            ]
        );
        let multi = json!({"type": "object", "properties": {"ports": {"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["port", "protocol"], "items": {"type": "object"}}}});
        let errors = validate(
            &multi,
            &json!({"ports": [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "TCP"}, {"port": 80}]}),
        );
        assert_eq!(
            joined(&errors),
            "ports[1]: Duplicate value: map[string]interface {}{\"port\":80, \"protocol\":\"TCP\"}"
        );
    }

    #[test]
    fn embedded_resources_need_apiversion_and_kind() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}
        }}}});
        assert_eq!(
            joined(&validate(
                &schema,
                &json!({"spec": {"template": {"metadata": {}}}})
            )),
            "[spec.template.apiVersion: Required value: must not be empty, spec.template.kind: Required value: must not be empty]"
        );
        assert_eq!(
            joined(&validate(
                &schema,
                &json!({"spec": {"template": {"apiVersion": "a/b/c", "kind": 1}}})
            )),
            "[spec.template.apiVersion: Invalid value: \"a/b/c\": unexpected GroupVersion string: a/b/c, spec.template.kind: Invalid value: 1: must be a string]"
        );
        assert!(
            validate(
                &schema,
                &json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod"}}})
            )
            .is_empty()
        );
    }

    #[test]
    fn root_meta_fields_are_left_to_the_server() {
        let schema = json!({"type": "object", "required": ["metadata", "spec"], "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 3}}},
            "spec": {"type": "object"}
        }});
        let obj = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "toolong"}});
        assert_eq!(joined(&validate(&schema, &obj)), "spec: Required value");
    }

    #[test]
    fn schema_structure_reads_list_and_map_types() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "plain": {"type": "array", "items": {"type": "string"}},
                "selector": {"type": "object", "x-kubernetes-map-type": "atomic"},
                "servers": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {
                        "ports": {"type": "array", "x-kubernetes-list-type": "map",
                                  "x-kubernetes-list-map-keys": ["port", "protocol"], "items": {"type": "object"}}}}},
                "byName": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                    "hosts": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}}},
                "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "object", "properties": {
                    "cells": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "integer"}}}}}}
            }},
            "status": {"type": "object", "properties": {"conditions": {"type": "array",
                "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"], "items": {"type": "object"}}}}
        }});
        let s = SchemaStructure(&schema);
        let map = |keys: &[&str]| ListType::Map(keys.iter().map(|k| k.to_string()).collect());
        assert_eq!(s.list_type(&["spec", "tags"]), ListType::Set);
        assert_eq!(s.list_type(&["spec", "plain"]), ListType::Atomic);
        assert_eq!(s.list_type(&["spec", "servers"]), map(&["name"]));
        assert_eq!(
            s.list_type(&["spec", "servers", "ports"]),
            map(&["port", "protocol"])
        );
        assert_eq!(s.list_type(&["spec", "byName", "web", "hosts"]), ListType::Set);
        assert_eq!(s.list_type(&["spec", "matrix", "cells"]), ListType::Set);
        assert_eq!(s.list_type(&["status", "conditions"]), map(&["type"]));
        assert_eq!(s.list_type(&["spec", "unknown"]), ListType::Atomic);
        assert_eq!(s.list_type(&["metadata", "finalizers"]), ListType::Set);
        assert_eq!(s.list_type(&["metadata", "ownerReferences"]), map(&["uid"]));
        assert!(s.map_is_atomic(&["spec", "selector"]));
        assert!(!s.map_is_atomic(&["spec"]));
        assert_eq!(
            SchemaStructure(&widget_schema()).list_type(&["spec", "tags"]),
            ListType::Set
        );
    }

    #[test]
    fn formats() {
        assert!(
            is_date("2024-02-29") && !is_date("2023-02-29") && !is_date("2024-13-01") && !is_date("24-01-01")
        );
        assert!(is_date_time("2026-11-22T07:16:02Z") && !is_date_time("2026-11-22 07:16:02Z"));
        assert!(is_date_time("2026-11-22T07:16:02.5-07:00") && !is_date_time("2026-11-22T24:00:00Z"));
        assert!(is_uuid("7CFED4E21DE24279A4AE4C6821FD2FAF", None) && !is_uuid("7cfed4e2--1de2", None));
        assert!(is_uuid("7cfed4e2-1de2-4279-a4ae-4c6821fd2faf", Some(b'4')));
        assert!(!is_uuid("7cfed4e2-1de2-3279-a4ae-4c6821fd2faf", Some(b'4')));
        assert!(format_ok("ipv4", "10.0.0.1") && !format_ok("ipv4", "::1") && format_ok("ipv6", "::1"));
        assert!(is_cidr("10.0.0.0/8") && !is_cidr("10.0.0.0/33") && !is_cidr("10.0.0.0"));
        assert!(is_mac("00:1a:2B:3c:4d:5e") && is_mac("001a.2b3c.4d5e") && !is_mac("00:1a"));
        assert!(is_base64("aGVsbG8=") && !is_base64("aGVsbG8") && !is_base64("a==="));
        assert!(format_ok("hexcolor", "#fff") && !format_ok("hexcolor", "#ffff"));
        assert!(format_ok("email", "anything"));
    }

    #[test]
    fn malformed_input_never_panics() {
        let weird = [
            json!(null),
            json!(1),
            json!("x"),
            json!([]),
            json!({"type": 5, "properties": 1, "items": "x",
            "required": [1, "a"], "enum": [], "minimum": "x", "maxLength": -1, "additionalProperties": "y",
            "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": 7, "anyOf": [1], "not": true}),
        ];
        let objects = [
            json!(null),
            json!(1.5),
            json!("s"),
            json!([null, {}, [1]]),
            json!({"a": [1, 1], "b": {"c": null}}),
        ];
        for s in &weird {
            for o in &objects {
                let _ = validate(s, o);
                let mut o2 = o.clone();
                let _ = prune(s, &mut o2);
                apply_defaults(s, &mut o2);
                let st = SchemaStructure(s);
                let _ = st.list_type(&["a", "b"]);
                let _ = st.map_is_atomic(&[]);
            }
        }
    }
}
