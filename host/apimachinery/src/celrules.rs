//! `x-kubernetes-validations`: the CEL rules of CRD schemas, checked when a CRD is written
//! ([`check_schema`]: a rule or `messageExpression` that does not compile is a 422 on the CRD) and
//! enforced on every create and update of a custom resource ([`validate`]), as kube-apiserver v1.28
//! does: `self` is the node the rule is declared on (at the root, `metadata` shows only `name` and
//! `generateName`), rules referring to `oldSelf` are transition rules that run only on updates where
//! the node existed before (correlated through object properties and `map` list keys), and a failure
//! becomes the rule's `reason` (default `FieldValueInvalid`) at its `fieldPath` (default the node) with
//! `messageExpression`, `message` or `failed rule: <rule>` as the detail.
//!
//! CEL is the `cel` crate with its standard library, the strings, lists and math extensions, and
//! the Kubernetes lists (`isSorted`, `sum`, `min`, `max`) and regex (`find`, `findAll`) functions.
//! Not done as upstream: static type checking (a rule with a type error fails when it runs, not at
//! CRD create), cost limits, and the `url` library.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use ::cel::objects::{Key, Map as CelMap};
use ::cel::{Context, Env, Program, Value as Cel};
use serde_json::{Map, Value};

use crate::schema::{FieldError, FieldErrorKind};

thread_local! {
    static ENV: Arc<Env> = Arc::new(build_env());
    static PROGRAMS: RefCell<HashMap<String, Rc<Result<Program, String>>>> = RefCell::new(HashMap::new());
}

fn build_env() -> Env {
    let mut env = Env::stdlib();
    // The extensions only add overloads; a name clash would be a bug in the crate, so it is ignored.
    let _ = env.add_extension(::cel::extensions::strings);
    let _ = env.add_extension(::cel::extensions::lists);
    let _ = env.add_extension(::cel::extensions::math);
    env
}

/// Compiles (once per thread) a CEL expression; the error is cel-go's `ERROR: <input>:1:5: ...` text.
fn compile(source: &str) -> Rc<Result<Program, String>> {
    PROGRAMS.with(|cache| {
        if let Some(p) = cache.borrow().get(source) {
            return p.clone();
        }
        let compiled = Rc::new(ENV.with(|env| env.compile(source)).map_err(|e| e.to_string()));
        let mut cache = cache.borrow_mut();
        if cache.len() > 4096 {
            cache.clear();
        }
        cache.insert(source.to_string(), compiled.clone());
        compiled
    })
}

fn rules(s: &Value) -> &[Value] {
    s.get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn str_field<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn go_string(s: &str) -> String {
    crate::gofmt::go_quote(s)
}

/// `%#v` of an `apiextensions.ValidationRule`, the bad value of a rule that does not compile.
fn go_rule(rule: &Value) -> String {
    let reason = match rule.get("reason").and_then(Value::as_str) {
        Some(r) => format!("(*apiextensions.FieldValueErrorReason)({})", go_string(r)),
        None => "(*apiextensions.FieldValueErrorReason)(nil)".to_string(),
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{reason}, FieldPath:{}}}",
        go_string(str_field(rule, "rule")),
        go_string(str_field(rule, "message")),
        go_string(str_field(rule, "messageExpression")),
        go_string(str_field(rule, "fieldPath")),
    )
}

/// Compiles every rule of an `openAPIV3Schema`; the errors' fields are relative to the schema
/// (`properties[spec].x-kubernetes-validations[0].rule`), for the caller to prefix.
pub fn check_schema(schema: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    check_node(schema, "", &mut out);
    out
}

fn join(path: &str, child: &str) -> String {
    if path.is_empty() {
        child.to_string()
    } else if child.starts_with('[') {
        format!("{path}{child}")
    } else {
        format!("{path}.{child}")
    }
}

fn check_node(s: &Value, path: &str, out: &mut Vec<FieldError>) {
    for (i, rule) in rules(s).iter().enumerate() {
        let at = join(path, &format!("x-kubernetes-validations[{i}]"));
        if let Err(e) = compile(str_field(rule, "rule")).as_ref() {
            out.push(FieldError {
                kind: FieldErrorKind::Invalid,
                field: join(&at, "rule"),
                value: None,
                detail: format!("{}: compilation failed: {e}", go_rule(rule)),
            });
        }
        let me = str_field(rule, "messageExpression");
        if !me.is_empty()
            && let Err(e) = compile(me).as_ref()
        {
            out.push(FieldError {
                kind: FieldErrorKind::Invalid,
                field: join(&at, "messageExpression"),
                value: Some(Value::String(me.to_string())),
                detail: format!("messageExpression compilation failed: {e}"),
            });
        }
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        let mut keys: Vec<&String> = props.keys().collect();
        keys.sort();
        for k in keys {
            check_node(&props[k.as_str()], &join(path, &format!("properties[{k}]")), out);
        }
    }
    if let Some(items) = s.get("items").filter(|i| i.is_object()) {
        check_node(items, &join(path, "items"), out);
    }
    if let Some(add) = s.get("additionalProperties").filter(|a| a.is_object()) {
        check_node(add, &join(path, "additionalProperties"), out);
    }
}

/// Whether one of `errors` keeps CEL rules from running (`hasBlockingErr` of the server).
fn blocking(errors: &[FieldError]) -> bool {
    errors.iter().any(|e| {
        matches!(
            e.kind,
            FieldErrorKind::NotSupported
                | FieldErrorKind::Required
                | FieldErrorKind::TooLong
                | FieldErrorKind::TooMany
                | FieldErrorKind::TypeInvalid
        )
    })
}

/// Runs every rule of `schema` on `object` (and `old` for transition rules, on updates).
/// `schema_errors` are the errors OpenAPI validation already found: a type error, unsupported value,
/// missing required field or exceeded bound stops the rules with the server's one notice.
pub fn validate(
    schema: &Value,
    object: &Value,
    old: Option<&Value>,
    schema_errors: &[FieldError],
) -> Vec<FieldError> {
    let mut out = Vec::new();
    if blocking(schema_errors) {
        out.push(FieldError {
            kind: FieldErrorKind::Invalid,
            field: "<nil>".into(),
            value: Some(Value::Null),
            detail: "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation".into(),
        });
        return out;
    }
    walk(schema, object, old, "", true, &mut out);
    out
}

fn schema_type(s: &Value) -> &str {
    s.get("type").and_then(Value::as_str).unwrap_or("")
}

fn walk(s: &Value, data: &Value, old: Option<&Value>, path: &str, root: bool, out: &mut Vec<FieldError>) {
    if data.is_null() {
        return;
    }
    if !rules(s).is_empty() {
        run_rules(s, data, old, path, root, out);
    }
    match data {
        Value::Object(map) => {
            let props = s.get("properties").and_then(Value::as_object);
            let additional = s.get("additionalProperties").filter(|a| a.is_object());
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for k in keys {
                if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let old_child = old.and_then(|o| o.get(k.as_str()));
                if let Some(sub) = props.and_then(|p| p.get(k.as_str())) {
                    walk(sub, &map[k.as_str()], old_child, &join(path, k), false, out);
                } else if let Some(sub) = additional {
                    walk(
                        sub,
                        &map[k.as_str()],
                        old_child,
                        &format!("{path}[{k}]"),
                        false,
                        out,
                    );
                }
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = s.get("items").filter(|i| i.is_object()) else {
                return;
            };
            let old_items = old.and_then(Value::as_array);
            let map_keys: Vec<&str> =
                if s.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
                    s.get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|k| k.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
            for (i, item) in items.iter().enumerate() {
                // Only `map` lists correlate items with the old list (by their keys).
                let old_item = old_items.filter(|_| !map_keys.is_empty()).and_then(|olds| {
                    olds.iter()
                        .find(|o| map_keys.iter().all(|k| o.get(*k) == item.get(*k)))
                });
                walk(item_schema, item, old_item, &format!("{path}[{i}]"), false, out);
            }
        }
        _ => {}
    }
}

/// A JSON value as CEL sees it under its schema: `number` fields are doubles even when written as
/// integers; at the root, `metadata` has only `name` and `generateName`.
fn to_cel(s: Option<&Value>, v: &Value, root: bool) -> Cel {
    match v {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => {
            if s.map(schema_type) == Some("number") {
                Cel::Float(n.as_f64().unwrap_or(0.0))
            } else if let Some(i) = n.as_i64() {
                Cel::Int(i)
            } else if let Some(u) = n.as_u64() {
                Cel::UInt(u)
            } else {
                Cel::Float(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(text) => Cel::String(Arc::new(text.clone())),
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.get("items"));
            Cel::List(Arc::new(
                items.iter().map(|i| to_cel(item_schema, i, false)).collect(),
            ))
        }
        Value::Object(map) => {
            let props = s.and_then(|s| s.get("properties")).and_then(Value::as_object);
            let additional = s
                .and_then(|s| s.get("additionalProperties"))
                .filter(|a| a.is_object());
            let mut out: HashMap<Key, Cel> = HashMap::new();
            for (k, val) in map {
                let cel = if root && k == "metadata" {
                    let kept: Map<String, Value> = val
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .filter(|(k, _)| matches!(k.as_str(), "name" | "generateName"))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect()
                        })
                        .unwrap_or_default();
                    to_cel(None, &Value::Object(kept), false)
                } else {
                    let sub = props.and_then(|p| p.get(k)).or(additional);
                    to_cel(sub, val, false)
                };
                out.insert(Key::String(Arc::new(k.clone())), cel);
            }
            Cel::Map(CelMap { map: Arc::new(out) })
        }
    }
}

/// A runtime error in cel-go's words, where the message decides how the server reports it.
fn eval_error(e: &::cel::ExecutionError) -> String {
    use ::cel::ExecutionError as E;
    match e {
        E::NoSuchKey(k) => format!("no such key: {k}"),
        E::DivisionByZero(_) => "division by zero".into(),
        E::RemainderByZero(_) => "modulus by zero".into(),
        E::IndexOutOfBounds(Cel::Int(i)) => format!("index out of bounds: {i}"),
        E::Overflow(..) => "integer overflow".into(),
        other => other.to_string(),
    }
}

/// `field.Path` of a rule's `fieldPath` (`.spec.x`, `.spec['a.b']`, `.list[0]`) under the node.
fn field_path(base: &str, field_path: &str) -> String {
    let mut path = base.to_string();
    let mut rest = field_path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']").unwrap_or(r.len());
            path = join(&path, &r[..end]);
            rest = r.get(end + 2..).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').unwrap_or(r.len());
            path = format!("{path}[{}]", &r[..end]);
            rest = r.get(end + 1..).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            path = join(&path, &r[..end]);
            rest = &r[end..];
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            path = join(&path, &rest[..end]);
            rest = &rest[end..];
        }
    }
    path
}

fn run_rules(
    s: &Value,
    data: &Value,
    old: Option<&Value>,
    path: &str,
    root: bool,
    out: &mut Vec<FieldError>,
) {
    let type_name = Value::String(schema_type(s).to_string());
    let self_value = to_cel(Some(s), data, root);
    let old_value = old.filter(|o| !o.is_null()).map(|o| to_cel(Some(s), o, root));
    for rule in rules(s) {
        let source = str_field(rule, "rule");
        let program = compile(source);
        let Ok(program) = program.as_ref() else { continue };
        let transition = program.references().has_variable("oldSelf");
        if transition && old_value.is_none() {
            continue;
        }
        let mut ctx = Context::with_env(ENV.with(Arc::clone));
        kubernetes_library(&mut ctx);
        ctx.add_variable_from_value("self", self_value.clone());
        if let Some(o) = &old_value {
            ctx.add_variable_from_value("oldSelf", o.clone());
        }
        let shown = source.trim();
        let at = field_path(path, str_field(rule, "fieldPath"));
        let field = if at.is_empty() { "<nil>".to_string() } else { at };
        let detail = match program.execute(&ctx) {
            Ok(Cel::Bool(true)) => continue,
            Ok(Cel::Bool(false)) => failure_message(rule, &ctx, shown),
            Ok(_) => format!("rule did not evaluate to a bool for rule: {shown}"),
            Err(e) => {
                let msg = eval_error(&e);
                if matches!(
                    e,
                    ::cel::ExecutionError::NoSuchOverload(..)
                        | ::cel::ExecutionError::UnsupportedBinaryOperator(..)
                ) {
                    format!(
                        "'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {shown}"
                    )
                } else {
                    format!("{msg} evaluating rule: {shown}")
                }
            }
        };
        let (kind, value) = match rule.get("reason").and_then(Value::as_str) {
            Some("FieldValueForbidden") => (FieldErrorKind::Forbidden, None),
            Some("FieldValueRequired") => (FieldErrorKind::Required, None),
            Some("FieldValueDuplicate") => (FieldErrorKind::Duplicate, Some(type_name.clone())),
            _ => (FieldErrorKind::Invalid, Some(type_name.clone())),
        };
        let detail = if kind == FieldErrorKind::Duplicate {
            String::new()
        } else {
            detail
        };
        out.push(FieldError {
            kind,
            field,
            value,
            detail,
        });
    }
}

/// What the Kubernetes CEL libraries of v1.28 add that the crate's extensions lack: the lists
/// library's `isSorted`, `sum`, `min`, `max` and the regex library's `find`, `findAll`.
fn kubernetes_library(ctx: &mut Context) {
    use ::cel::ExecutionError;
    use ::cel::extractors::This;
    fn ordered(list: &[Cel]) -> Result<(), ExecutionError> {
        if list.windows(2).all(|w| w[0].partial_cmp(&w[1]).is_some()) {
            Ok(())
        } else {
            Err(ExecutionError::function_error(
                "isSorted",
                "list elements must have the same type",
            ))
        }
    }
    let _ = ctx.add_function(
        "isSorted",
        |This(list): This<Arc<Vec<Cel>>>| -> Result<bool, ExecutionError> {
            ordered(&list)?;
            Ok(list.windows(2).all(|w| w[0] <= w[1]))
        },
    );
    let _ = ctx.add_function(
        "sum",
        |This(list): This<Arc<Vec<Cel>>>| -> Result<Cel, ExecutionError> {
            let mut ints: i64 = 0;
            let mut floats: f64 = 0.0;
            let mut any_float = false;
            for v in list.iter() {
                match v {
                    Cel::Int(i) => {
                        ints = ints
                            .checked_add(*i)
                            .ok_or_else(|| ExecutionError::function_error("sum", "integer overflow"))?
                    }
                    Cel::UInt(u) => ints = ints.saturating_add(i64::try_from(*u).unwrap_or(i64::MAX)),
                    Cel::Float(f) => {
                        any_float = true;
                        floats += f;
                    }
                    _ => return Err(ExecutionError::function_error("sum", "no such overload")),
                }
            }
            Ok(if any_float {
                Cel::Float(floats + ints as f64)
            } else {
                Cel::Int(ints)
            })
        },
    );
    fn extreme(name: &str, list: &[Cel], pick_less: bool) -> Result<Cel, ExecutionError> {
        ordered(list)?;
        let mut it = list.iter();
        let first = it
            .next()
            .ok_or_else(|| ExecutionError::function_error(name, format!("{name} called on empty list")))?;
        Ok(it
            .fold(first, |best, v| {
                if (v < best) == pick_less && v != best {
                    v
                } else {
                    best
                }
            })
            .clone())
    }
    let _ = ctx.add_function("min", |This(list): This<Arc<Vec<Cel>>>| {
        extreme("min", &list, true)
    });
    let _ = ctx.add_function("max", |This(list): This<Arc<Vec<Cel>>>| {
        extreme("max", &list, false)
    });
    let _ = ctx.add_function(
        "find",
        |This(s): This<Arc<String>>, re: Arc<String>| -> Result<Cel, ExecutionError> {
            let re =
                regex::Regex::new(&re).map_err(|e| ExecutionError::function_error("find", e.to_string()))?;
            Ok(Cel::String(Arc::new(
                re.find(&s).map(|m| m.as_str().to_string()).unwrap_or_default(),
            )))
        },
    );
    let _ = ctx.add_function(
        "findAll",
        |This(s): This<Arc<String>>, re: Arc<String>| -> Result<Cel, ExecutionError> {
            let re = regex::Regex::new(&re)
                .map_err(|e| ExecutionError::function_error("findAll", e.to_string()))?;
            let all: Vec<Cel> = re
                .find_iter(&s)
                .map(|m| Cel::String(Arc::new(m.as_str().to_string())))
                .collect();
            Ok(Cel::List(Arc::new(all)))
        },
    );
}

/// `messageExpression` (when it gives a non-blank single-line string), else `message`, else
/// `failed rule: <rule>`.
fn failure_message(rule: &Value, ctx: &Context, shown: &str) -> String {
    let me = str_field(rule, "messageExpression");
    if !me.is_empty()
        && let Ok(p) = compile(me).as_ref()
        && let Ok(Cel::String(text)) = p.execute(ctx)
        && !text.trim().is_empty()
        && !text.contains('\n')
    {
        return text.trim().to_string();
    }
    let message = str_field(rule, "message").trim();
    if !message.is_empty() {
        return message.to_string();
    }
    format!("failed rule: {shown}")
}

#[cfg(test)]
#[path = "celrules_tests.rs"]
mod tests;
