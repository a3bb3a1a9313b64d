//! Reading a decoded k8s-pb message back as a tree.
//!
//! k8s-pb's messages are plain prost structs: no serde, no descriptors, no reflection. The one
//! generic view prost gives of every message is its derived `Debug`, which has a small fixed
//! grammar (std's `debug_struct`/`debug_list`/`debug_map`, `Some(..)`/`None`, string and number
//! literals). This module parses exactly that grammar into a [`Node`] tree; `json.rs` turns the tree
//! into Kubernetes JSON.

/// One value of a decoded message.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A message: its Rust type name and its fields (prost's snake_case names, `r#` stripped).
    Struct(String, Vec<(String, Node)>),
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
    /// An optional field that is not set.
    Absent,
    Str(String),
    /// A number as written (integers, and floats in Rust's `Debug` form).
    Num(String),
    Bool(bool),
}

/// The text is not in the grammar of prost's derived `Debug` (a bug, never a client error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected message text at byte {at}: {what}")]
pub struct ParseError {
    pub at: usize,
    pub what: &'static str,
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, what: &'static str) -> ParseError {
        ParseError { at: self.pos, what }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str, what: &'static str) -> Result<(), ParseError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    fn ident(&mut self) -> &'a str {
        let rest = self.rest();
        let n = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '#'))
            .unwrap_or(rest.len());
        self.pos += n;
        &rest[..n]
    }

    fn value(&mut self) -> Result<Node, ParseError> {
        let rest = self.rest();
        let first = rest.chars().next().ok_or_else(|| self.err("end of text"))?;
        match first {
            '"' => self.string().map(Node::Str),
            '[' => {
                self.pos += 1;
                let mut items = Vec::new();
                while !self.eat("]") {
                    if !items.is_empty() {
                        self.expect(", ", "list separator")?;
                    }
                    items.push(self.value()?);
                }
                Ok(Node::List(items))
            }
            '{' => {
                self.pos += 1;
                let mut entries = Vec::new();
                while !self.eat("}") {
                    if !entries.is_empty() {
                        self.expect(", ", "map separator")?;
                    }
                    let k = self.value()?;
                    self.expect(": ", "map key separator")?;
                    entries.push((k, self.value()?));
                }
                Ok(Node::Map(entries))
            }
            '-' | '0'..='9' => {
                let n = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.')))
                    .unwrap_or(rest.len());
                self.pos += n;
                Ok(Node::Num(rest[..n].to_string()))
            }
            _ => {
                let name = self.ident();
                match name {
                    "" => Err(self.err("a value")),
                    "None" => Ok(Node::Absent),
                    "true" => Ok(Node::Bool(true)),
                    "false" => Ok(Node::Bool(false)),
                    "inf" | "NaN" => Ok(Node::Num(name.to_string())),
                    "Some" => {
                        self.expect("(", "Some(")?;
                        let v = self.value()?;
                        self.expect(")", "closing ) of Some")?;
                        Ok(v)
                    }
                    _ => self.message(name),
                }
            }
        }
    }

    fn message(&mut self, name: &str) -> Result<Node, ParseError> {
        let mut fields = Vec::new();
        // A message with no fields prints as its bare name.
        if self.eat(" { ") {
            loop {
                let field = self.ident();
                if field.is_empty() {
                    return Err(self.err("a field name"));
                }
                let field = field.strip_prefix("r#").unwrap_or(field).to_string();
                self.expect(": ", "field separator")?;
                fields.push((field, self.value()?));
                if self.eat(" }") {
                    break;
                }
                self.expect(", ", "field list separator")?;
            }
        }
        Ok(Node::Struct(name.to_string(), fields))
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.expect("\"", "opening quote")?;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => {
                    let (_, e) = chars.next().ok_or_else(|| self.err("escape at the end"))?;
                    match e {
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        '0' => out.push('\0'),
                        '\\' | '"' | '\'' => out.push(e),
                        'u' => {
                            let mut hex = String::new();
                            chars
                                .next()
                                .filter(|(_, c)| *c == '{')
                                .ok_or_else(|| self.err("\\u{"))?;
                            for (_, h) in chars.by_ref() {
                                if h == '}' {
                                    break;
                                }
                                hex.push(h);
                            }
                            let c = u32::from_str_radix(&hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.err("a unicode escape"))?;
                            out.push(c);
                        }
                        _ => return Err(self.err("an escape")),
                    }
                }
                c => out.push(c),
            }
        }
        Err(self.err("closing quote"))
    }
}

/// Parses the `{:?}` text of a prost message.
pub fn parse(text: &str) -> Result<Node, ParseError> {
    let mut p = Parser { s: text, pos: 0 };
    let v = p.value()?;
    if p.pos != text.len() {
        return Err(p.err("trailing text"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_structs_options_lists_maps_and_escapes() {
        let text = r#"Outer { name: Some("a \"b\"\n\u{7f}"), r#type: None, n: Some(-5), items: [Inner { x: true }, Empty], labels: {"k": "v"}, raw: Some([1, 2]) }"#;
        let Node::Struct(name, fields) = parse(text).unwrap() else {
            panic!("not a struct")
        };
        assert_eq!(name, "Outer");
        assert_eq!(fields[0], ("name".into(), Node::Str("a \"b\"\n\u{7f}".into())));
        assert_eq!(fields[1], ("type".into(), Node::Absent));
        assert_eq!(fields[2], ("n".into(), Node::Num("-5".into())));
        assert_eq!(
            fields[3].1,
            Node::List(vec![
                Node::Struct("Inner".into(), vec![("x".into(), Node::Bool(true))]),
                Node::Struct("Empty".into(), vec![]),
            ])
        );
        assert_eq!(
            fields[4].1,
            Node::Map(vec![(Node::Str("k".into()), Node::Str("v".into()))])
        );
        assert_eq!(
            fields[5].1,
            Node::List(vec![Node::Num("1".into()), Node::Num("2".into())])
        );
    }

    #[test]
    fn rejects_text_outside_the_grammar() {
        assert!(parse("Outer { name: ").is_err());
        assert!(parse("\"open").is_err());
        assert!(parse("Some(1) extra").is_err());
    }
}
