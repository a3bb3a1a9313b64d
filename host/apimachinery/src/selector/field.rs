//! Field selectors: `k8s.io/apimachinery/pkg/fields.ParseSelector`, matching against dotted paths
//! of a JSON object, and the per-kind field check the server runs before listing.

use super::*;

/// The only fields custom resources (and built-in kinds without their own conversion) can select on.
pub const METADATA_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldRequirement {
    field: String,
    value: String,
    negated: bool,
}

/// A field selector: terms that must all hold. An empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// `fields.ParseSelector`: comma-separated `f=v`, `f==v`, `f!=v` with `\\`, `\,`, `\=` escapes in
    /// values. Terms are sorted first, so the first bad term in sort order is the one reported.
    pub fn parse(selector: &str) -> Result<FieldSelector, SelectorError> {
        let mut terms = split_terms(selector);
        terms.sort();
        let mut requirements = Vec::new();
        for term in terms {
            if term.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(term) else {
                return Err(SelectorError::FieldTerm {
                    selector: selector.to_string(),
                    term: term.to_string(),
                });
            };
            let value = unescape_value(rhs)?;
            requirements.push(FieldRequirement {
                field: lhs.to_string(),
                value,
                negated: op == "!=",
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// The field names this selector uses, in (sorted) term order, repeats included.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.requirements.iter().map(|r| r.field.as_str())
    }

    /// Whether this selector matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The field-label conversion the server runs before listing. `kind_fields: None` is the default
    /// conversion (custom resources, ConfigMaps...): only [`METADATA_FIELDS`], error
    /// [`SelectorError::UnknownField`]. `Some(fields)` is a kind with its own conversion function (Pods,
    /// Events...): exactly those fields (list the metadata ones too), error
    /// [`SelectorError::UnsupportedField`].
    pub fn check_fields(&self, kind_fields: Option<&[&str]>) -> Result<(), SelectorError> {
        for field in self.fields() {
            match kind_fields {
                None if !METADATA_FIELDS.contains(&field) => {
                    return Err(SelectorError::UnknownField(field.to_string()));
                }
                Some(allowed) if !allowed.contains(&field) => {
                    return Err(SelectorError::UnsupportedField(field.to_string()));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether `object` is selected: each field is a dotted path into the object; a missing field (or a
    /// null, object or array) compares as the empty string, numbers and booleans as their JSON text.
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements
            .iter()
            .all(|r| (field_value(object, &r.field) == r.value) != r.negated)
    }
}

impl fmt::Display for FieldSelector {
    /// `fields.Selector.String`: terms joined by `,`, values escaped again.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if r.negated { "!=" } else { "=" };
            let escaped = r
                .value
                .replace('\\', "\\\\")
                .replace(',', "\\,")
                .replace('=', "\\=");
            write!(f, "{}{op}{escaped}", r.field)?;
        }
        Ok(())
    }
}

/// The string a field selector compares against.
fn field_value(object: &Value, path: &str) -> String {
    let mut cur = object;
    for part in path.split('.') {
        match cur.get(part) {
            Some(v) => cur = v,
            // Go prints an unset bool field as `false` (`fmt.Sprint(node.Spec.Unschedulable)`).
            None if BOOL_FIELDS.contains(&path) => return "false".into(),
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null | Value::Array(_) | Value::Object(_) => String::new(),
    }
}

/// Selectable fields that are Go bools (not pointers): absent means `false`.
const BOOL_FIELDS: [&str; 2] = ["spec.unschedulable", "spec.hostNetwork"];

/// `fields.splitTerms`: split on commas not preceded by an unescaped backslash.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// `fields.splitTerm`: the first position where `!=`, `==` or `=` starts (in that precedence).
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if rest.starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

/// `fields.UnescapeValue`.
fn unescape_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => return Err(SelectorError::InvalidEscape(format!("\\{other}"))),
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(SelectorError::UnescapedCharacter(c as u32)),
            other => out.push(other),
        }
    }
    if in_slash {
        return Err(SelectorError::InvalidEscape("\\".to_string()));
    }
    Ok(out)
}
