//! `{"Match": [input, "operator", output?]}`: datalogia's operators (docs/design/
//! synopsys-queries.md §3.1) and the comparisons it lacks (`!=`, `<`, `<=`, `>`, `>=`, on
//! `[left, right]`). An operator gives a list of outputs; a type it does not take gives none.

use std::cmp::Ordering;

use serde_json::Value;

use super::query::{MatchInput, Term};
use super::reference::Reference;
use super::value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Same,
    NotSame,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Like,
    Includes,
    Concat,
    Words,
    Lines,
    Upper,
    Lower,
    Trim,
    TrimStart,
    TrimEnd,
    Length,
    Type,
    Refer,
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
    Power,
    Absolute,
}

use Operator::*;

const TABLE: &[(&str, Operator)] = &[
    ("==", Same),
    ("!=", NotSame),
    ("<", Less),
    ("<=", LessOrEqual),
    (">", Greater),
    (">=", GreaterOrEqual),
    ("text/like", Like),
    ("text/includes", Includes),
    ("text/concat", Concat),
    ("text/words", Words),
    ("text/lines", Lines),
    ("text/case/upper", Upper),
    ("text/case/lower", Lower),
    ("text/trim", Trim),
    ("text/trim/start", TrimStart),
    ("text/trim/end", TrimEnd),
    ("text/length", Length),
    ("data/type", Type),
    ("data/refer", Refer),
    ("+", Add),
    ("-", Subtract),
    ("*", Multiply),
    ("/", Divide),
    ("%", Modulo),
    ("**", Power),
    ("math/absolute", Absolute),
];

/// A resolved input: unbound variables are `None`.
pub enum Input {
    One(Option<Value>),
    Tuple(Vec<Option<Value>>),
    Object(Vec<(String, Option<Value>)>),
}

impl Operator {
    pub const NAMES: [&'static str; 26] = {
        let mut names = [""; 26];
        let mut i = 0;
        while i < TABLE.len() {
            names[i] = TABLE[i].0;
            i += 1;
        }
        names
    };

    pub fn parse(name: &str) -> Option<Operator> {
        TABLE.iter().find(|(n, _)| *n == name).map(|(_, op)| *op)
    }

    /// Refuses an input shape the operator cannot read, when the query is read.
    pub fn check_input(self, input: &MatchInput) -> Result<(), String> {
        let fields = |names: &[&str]| -> Result<(), String> {
            match input {
                MatchInput::Object(entries)
                    if entries.iter().all(|(k, _)| names.contains(&k.as_str()))
                        && names.iter().all(|n| entries.iter().any(|(k, _)| k == n)) =>
                {
                    Ok(())
                }
                _ => Err(format!("takes {{{}}}", names.join(", "))),
            }
        };
        match self {
            Same | Words | Lines | Upper | Lower | Trim | TrimStart | TrimEnd | Length | Type
            | Refer | Absolute => match input {
                MatchInput::Term(_) => Ok(()),
                _ => Err("takes one term".into()),
            },
            NotSame | Less | LessOrEqual | Greater | GreaterOrEqual => match input {
                MatchInput::Tuple(terms) if terms.len() == 2 => Ok(()),
                _ => Err("takes [left, right]".into()),
            },
            Concat | Add | Subtract | Multiply | Divide => match input {
                MatchInput::Tuple(_) => Ok(()),
                _ => Err("takes an array of terms".into()),
            },
            Like => fields(&["text", "pattern"]),
            Includes => fields(&["text", "slice"]),
            Modulo => fields(&["n", "by"]),
            Power => fields(&["base", "exponent"]),
        }
    }

    /// The outputs for one frame's input.
    pub fn apply(self, input: &Input) -> Vec<Value> {
        let one = match input {
            Input::One(Some(v)) => Some(v),
            _ => None,
        };
        let text = one.and_then(Value::as_str);
        let field = |name: &str| match input {
            Input::Object(entries) => entries
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.as_ref()),
            _ => None,
        };
        let pair = || match input {
            Input::Tuple(items) => match items.as_slice() {
                [Some(l), Some(r)] => Some((l, r)),
                _ => None,
            },
            _ => None,
        };
        let numbers = || -> Option<Vec<f64>> {
            match input {
                Input::Tuple(items) => items
                    .iter()
                    .map(|v| v.as_ref().and_then(Value::as_f64))
                    .collect(),
                _ => None,
            }
        };
        let string = |s: String| vec![Value::String(s)];
        let compare = |keep: fn(Ordering) -> bool| -> Vec<Value> {
            match pair().and_then(|(l, r)| order(l, r).map(|o| (l, o))) {
                Some((l, o)) if keep(o) => vec![l.clone()],
                _ => Vec::new(),
            }
        };
        match self {
            Same => one.cloned().into_iter().collect(),
            NotSame => match pair() {
                Some((l, r)) if l != r => vec![l.clone()],
                _ => Vec::new(),
            },
            Less => compare(|o| o == Ordering::Less),
            LessOrEqual => compare(|o| o != Ordering::Greater),
            Greater => compare(|o| o == Ordering::Greater),
            GreaterOrEqual => compare(|o| o != Ordering::Less),
            Like => match (
                field("text").and_then(Value::as_str),
                field("pattern").and_then(Value::as_str),
            ) {
                (Some(t), Some(p)) if glob(p, t) => string(t.to_owned()),
                _ => Vec::new(),
            },
            Includes => match (
                field("text").and_then(Value::as_str),
                field("slice").and_then(Value::as_str),
            ) {
                (Some(t), Some(s)) if t.contains(s) => string(t.to_owned()),
                _ => Vec::new(),
            },
            Concat => match input {
                Input::Tuple(items) => items
                    .iter()
                    .map(|v| v.as_ref().and_then(Value::as_str))
                    .collect::<Option<String>>()
                    .map(string)
                    .unwrap_or_default(),
                _ => Vec::new(),
            },
            Words => text
                .map(|t| {
                    t.split_whitespace()
                        .map(|w| Value::String(w.into()))
                        .collect()
                })
                .unwrap_or_default(),
            Lines => text
                .map(|t| t.lines().map(|l| Value::String(l.into())).collect())
                .unwrap_or_default(),
            Upper => text.map(|t| string(t.to_uppercase())).unwrap_or_default(),
            Lower => text.map(|t| string(t.to_lowercase())).unwrap_or_default(),
            Trim => text.map(|t| string(t.trim().into())).unwrap_or_default(),
            TrimStart => text
                .map(|t| string(t.trim_start().into()))
                .unwrap_or_default(),
            TrimEnd => text
                .map(|t| string(t.trim_end().into()))
                .unwrap_or_default(),
            Length => text
                .map(|t| vec![Value::from(t.encode_utf16().count())])
                .unwrap_or_default(),
            Type => one
                .map(|v| string(value::type_name(v).into()))
                .unwrap_or_default(),
            Refer => one
                .and_then(|v| Reference::of(v).ok())
                .map(|r| vec![r.to_json()])
                .unwrap_or_default(),
            Add => arithmetic(numbers(), 0.0, |a, b| a + b),
            Multiply => arithmetic(numbers(), 1.0, |a, b| a * b),
            Subtract => match numbers() {
                Some(ns) if !ns.is_empty() => {
                    let first = ns[0];
                    arithmetic(Some(ns[1..].to_vec()), first, |a, b| a - b)
                }
                _ => Vec::new(),
            },
            Divide => match numbers() {
                Some(ns) if !ns.is_empty() => {
                    let first = ns[0];
                    arithmetic(Some(ns[1..].to_vec()), first, |a, b| a / b)
                }
                _ => Vec::new(),
            },
            Modulo => match (
                field("n").and_then(Value::as_f64),
                field("by").and_then(Value::as_f64),
            ) {
                (Some(n), Some(by)) => value::number(n % by).into_iter().collect(),
                _ => Vec::new(),
            },
            Power => match (
                field("base").and_then(Value::as_f64),
                field("exponent").and_then(Value::as_f64),
            ) {
                (Some(b), Some(e)) => value::number(b.powf(e)).into_iter().collect(),
                _ => Vec::new(),
            },
            Absolute => one
                .and_then(Value::as_f64)
                .and_then(|n| value::number(n.abs()))
                .into_iter()
                .collect(),
        }
    }
}

impl Input {
    pub fn resolve(
        input: &MatchInput,
        mut get: impl FnMut(&Term) -> Option<std::sync::Arc<Value>>,
    ) -> Input {
        let mut get = |t: &Term| get(t).map(|v| v.as_ref().clone());
        match input {
            MatchInput::Term(t) => Input::One(get(t)),
            MatchInput::Tuple(ts) => Input::Tuple(ts.iter().map(&mut get).collect()),
            MatchInput::Object(entries) => {
                Input::Object(entries.iter().map(|(k, t)| (k.clone(), get(t))).collect())
            }
        }
    }
}

fn arithmetic(numbers: Option<Vec<f64>>, start: f64, step: fn(f64, f64) -> f64) -> Vec<Value> {
    numbers
        .and_then(|ns| value::number(ns.into_iter().fold(start, step)))
        .into_iter()
        .collect()
}

/// Numbers by value, strings by code point; other pairs do not compare.
pub fn order(left: &Value, right: &Value) -> Option<Ordering> {
    match (left, right) {
        (Value::Number(l), Value::Number(r)) => l.as_f64()?.partial_cmp(&r.as_f64()?),
        (Value::String(l), Value::String(r)) => Some(l.cmp(r)),
        (Value::Bool(l), Value::Bool(r)) => Some(l.cmp(r)),
        _ => None,
    }
}

/// synopsys' `text/like`: anchored, case-sensitive, `*` any run, `?` one character, `\`
/// escapes the next character.
pub fn glob(pattern: &str, text: &str) -> bool {
    enum Token {
        Any,
        One,
        Char(char),
    }
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => Token::Any,
            '?' => Token::One,
            '\\' => Token::Char(chars.next().unwrap_or('\\')),
            c => Token::Char(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    // Greedy match with one backtrack point (the last `*`): linear for ordinary patterns.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(Token::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Token::One) => {
                p += 1;
                t += 1;
            }
            Some(Token::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p..].iter().all(|t| matches!(t, Token::Any))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn glob_is_anchored_and_case_sensitive() {
        assert!(glob("*email*", "prefers email over phone"));
        assert!(!glob("*email*", "EMAIL only"));
        assert!(glob("EMAIL*", "EMAIL only"));
        assert!(glob("B?b", "Bob"));
        assert!(!glob("B?b", "Bobby"));
        assert!(!glob("%email%", "email"));
        assert!(glob("a\\*b", "a*b"));
        assert!(!glob("a\\*b", "axb"));
        assert!(glob("*a*b*c", "xxaxxbxxc"));
        assert!(glob("", ""));
        assert!(!glob("", "x"));
    }

    #[test]
    fn comparisons_take_numbers_and_strings() {
        let pair = |l: Value, r: Value| Input::Tuple(vec![Some(l), Some(r)]);
        assert_eq!(Less.apply(&pair(json!(25), json!(30))), [json!(25)]);
        assert!(Less.apply(&pair(json!(30), json!(30))).is_empty());
        assert_eq!(
            LessOrEqual.apply(&pair(json!(30), json!(30.0))),
            [json!(30)]
        );
        assert_eq!(Greater.apply(&pair(json!("b"), json!("a"))), [json!("b")]);
        assert!(Greater.apply(&pair(json!("b"), json!(1))).is_empty());
        assert_eq!(NotSame.apply(&pair(json!(1), json!(2))), [json!(1)]);
    }

    #[test]
    fn arithmetic_gives_integers_when_integral() {
        let tuple = |vs: &[Value]| Input::Tuple(vs.iter().cloned().map(Some).collect());
        assert_eq!(Add.apply(&tuple(&[json!(41), json!(1)])), [json!(42)]);
        assert_eq!(Divide.apply(&tuple(&[json!(7), json!(2)])), [json!(3.5)]);
        assert_eq!(
            Length.apply(&Input::One(Some(json!("Bob")))),
            [json!(3)],
            "UTF-16 units"
        );
        assert_eq!(Type.apply(&Input::One(Some(json!(30)))), [json!("int32")]);
    }
}
