//! A query in synopsys' language, read and checked: `{"select": …, "where": [clause, …]}`
//! with `?variables` (docs/design/synopsys-queries.md). Every variable gets a number in its
//! scope (the query, or one rule); a bad query says which clause is wrong.

use std::sync::Arc;

use serde_json::Value;

use super::operators::Operator;
use super::ordered_json::Ordered;
use super::value;

/// A variable (its number in the scope) or a constant value.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Var(usize),
    Const(Arc<Value>),
}

/// What a query returns per row.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    Term(Term),
    /// Keys in the order written (merging walks them in that order).
    Object(Vec<(String, Selection)>),
    /// `[member]`: the distinct members of every row merged into this one.
    Group(Box<Selection>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum MatchInput {
    Term(Term),
    Tuple(Vec<Term>),
    Object(Vec<(String, Term)>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Clause {
    /// `[entity, attribute, value]`.
    Case([Term; 3]),
    And(Vec<Clause>),
    Or(Vec<Clause>),
    Not(Box<Clause>),
    Is(Term, Term),
    Match {
        input: MatchInput,
        operator: Operator,
        output: Option<Term>,
    },
    /// A call of `rules[rule]` with its parameters bound to terms of the caller's scope.
    Rule {
        rule: usize,
        input: Vec<(usize, Term)>,
    },
}

/// A named rule: its parameters are variables of its own scope.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDef {
    pub params: Vec<(String, usize)>,
    pub body: Clause,
    pub variables: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub select: Selection,
    pub clauses: Vec<Clause>,
    /// The query scope's variable names, by number.
    pub variables: Vec<String>,
    pub rules: Vec<RuleDef>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct QueryError(pub String);

fn err<T>(at: &str, message: impl std::fmt::Display) -> Result<T, QueryError> {
    Err(QueryError(format!("{at}: {message}")))
}

/// Reads `query` (keys in the order written). `extra` names top-level keys the caller
/// handles itself; any other key is refused rather than ignored.
pub fn parse(query: &Ordered, extra: &[&str]) -> Result<Query, QueryError> {
    let Ordered::Object(entries) = query else {
        return Err(QueryError(
            "a query is a JSON object {\"select\": …, \"where\": […]}".into(),
        ));
    };
    for (key, _) in entries {
        if key != "select" && key != "where" && !extra.contains(&key.as_str()) {
            return err(
                key,
                "not a query field here (select and where are; limit, offset and order are taken by POST /api/data/query)",
            );
        }
    }
    let field = |name: &str| entries.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let mut parser = Parser {
        scopes: vec![Vec::new()],
        rules: Vec::new(),
        rule_stack: Vec::new(),
    };
    let select = match field("select") {
        None => Selection::Object(Vec::new()),
        Some(Ordered::Object(entries)) => parser.select_object(entries, "select")?,
        Some(Ordered::Array(items)) => parser.select_group(items, "select")?,
        Some(other) => {
            return err(
                "select",
                format!(
                    "must be an object or a tuple, instead got {}",
                    short(&other.to_value())
                ),
            );
        }
    };
    let Some(Ordered::Array(clauses)) = field("where") else {
        return err("where", "must be an array of clauses");
    };
    let clauses = clauses
        .iter()
        .enumerate()
        .map(|(i, c)| parser.clause(c, &format!("where[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let variables = parser.scopes.pop().unwrap_or_default();
    Ok(Query {
        select,
        clauses,
        variables,
        rules: parser.rules,
    })
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

struct Parser {
    /// Variable names of each open scope; the last is current.
    scopes: Vec<Vec<String>>,
    rules: Vec<RuleDef>,
    /// The rules whose bodies are being read (a call without `rule` is the innermost).
    rule_stack: Vec<usize>,
}

impl Parser {
    fn variable(&mut self, name: &str) -> usize {
        let scope = self.scopes.last_mut().expect("a scope is always open");
        if let Some(i) = scope.iter().position(|n| n == name) {
            return i;
        }
        scope.push(name.to_owned());
        scope.len() - 1
    }

    fn term(&mut self, value: &Ordered, at: &str) -> Result<Term, QueryError> {
        match value {
            Ordered::String(s) if s.starts_with('?') => Ok(Term::Var(self.variable(&s[1..]))),
            Ordered::Array(_) => err(at, "a term is a ?variable or a constant, not an array"),
            other => match value::normalize(other.to_value()) {
                Ok(v) => Ok(Term::Const(Arc::new(v))),
                Err(e) => err(at, e),
            },
        }
    }

    fn select_object(
        &mut self,
        entries: &[(String, Ordered)],
        at: &str,
    ) -> Result<Selection, QueryError> {
        let mut out = Vec::with_capacity(entries.len());
        for (key, member) in Ordered::entries_in_js_order(entries) {
            let here = format!("{at}.{key}");
            let member = match member {
                Ordered::Array(items) => self.select_group(items, &here)?,
                Ordered::Object(map) if !(map.len() == 1 && map[0].0 == "/") => {
                    return err(
                        &here,
                        "a selected member is a ?variable, a constant or [ … ] (a group)",
                    );
                }
                other => Selection::Term(self.term(other, &here)?),
            };
            out.push((key.clone(), member));
        }
        Ok(Selection::Object(out))
    }

    /// `[member]`: synopsys reads only the first element.
    fn select_group(&mut self, items: &[Ordered], at: &str) -> Result<Selection, QueryError> {
        let member = match items.first() {
            Some(Ordered::Object(entries)) if !(entries.len() == 1 && entries[0].0 == "/") => {
                self.select_object(entries, at)?
            }
            Some(Ordered::String(s)) if s.starts_with('?') => {
                Selection::Term(Term::Var(self.variable(&s[1..])))
            }
            _ => {
                return err(
                    at,
                    format!(
                        "Invalid query selector {}: a group is [\"?variable\"] or [{{…}}]",
                        short(&Ordered::Array(items.to_vec()).to_value())
                    ),
                );
            }
        };
        if items.len() > 1 {
            return err(
                at,
                "a group holds one member ([\"?x\"] or [{…}]); synopsys would ignore the rest",
            );
        }
        Ok(Selection::Group(Box::new(member)))
    }

    fn clause(&mut self, clause: &Ordered, at: &str) -> Result<Clause, QueryError> {
        let Ordered::Object(entries) = clause else {
            return err(at, "a clause is an object such as {\"Case\": [e, a, v]}");
        };
        let [(kind, body)] = entries.as_slice() else {
            return err(at, "a clause is an object with exactly one key");
        };
        let here = format!("{at}.{kind}");
        match kind.as_str() {
            "Case" => {
                let Ordered::Array(terms) = body else {
                    return err(&here, "takes [entity, attribute, value]");
                };
                let [e, a, v] = terms.as_slice() else {
                    return err(
                        &here,
                        format!(
                            "takes [entity, attribute, value], got {} terms",
                            terms.len()
                        ),
                    );
                };
                Ok(Clause::Case([
                    self.term(e, &format!("{here}[0]"))?,
                    self.term(a, &format!("{here}[1]"))?,
                    self.term(v, &format!("{here}[2]"))?,
                ]))
            }
            "And" | "Or" => {
                let Ordered::Array(items) = body else {
                    return err(&here, "takes an array of clauses");
                };
                let clauses = items
                    .iter()
                    .enumerate()
                    .map(|(i, c)| self.clause(c, &format!("{here}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if kind == "And" {
                    Clause::And(clauses)
                } else {
                    Clause::Or(clauses)
                })
            }
            "Not" => Ok(Clause::Not(Box::new(self.clause(body, &here)?))),
            "Is" => {
                let Ordered::Array(terms) = body else {
                    return err(&here, "takes [term, term]");
                };
                let [a, b] = terms.as_slice() else {
                    return err(&here, "takes [term, term]");
                };
                Ok(Clause::Is(
                    self.term(a, &format!("{here}[0]"))?,
                    self.term(b, &format!("{here}[1]"))?,
                ))
            }
            "Match" => self.match_clause(body, &here),
            "Rule" => self.rule(body, &here),
            other => err(
                at,
                format!("Unsupported query kind {other} (Case, And, Or, Not, Is, Match, Rule)"),
            ),
        }
    }

    fn match_clause(&mut self, body: &Ordered, at: &str) -> Result<Clause, QueryError> {
        let Ordered::Array(parts) = body else {
            return err(
                at,
                "takes [input, \"operator\"] or [input, \"operator\", output]",
            );
        };
        let (input, name, output) = match parts.as_slice() {
            [input, Ordered::String(name)] => (input, name, None),
            [input, Ordered::String(name), output] => (input, name, Some(output)),
            _ => {
                return err(
                    at,
                    "takes [input, \"operator\"] or [input, \"operator\", output]",
                );
            }
        };
        let operator = Operator::parse(name).ok_or_else(|| {
            QueryError(format!(
                "{at}: unknown operator {name:?} (known: {})",
                Operator::NAMES.join(", ")
            ))
        })?;
        let input = match input {
            Ordered::Array(items) => MatchInput::Tuple(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, t)| self.term(t, &format!("{at}[0][{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            Ordered::Object(entries) if !(entries.len() == 1 && entries[0].0 == "/") => {
                MatchInput::Object(
                    entries
                        .iter()
                        .map(|(k, t)| Ok((k.clone(), self.term(t, &format!("{at}[0].{k}"))?)))
                        .collect::<Result<_, QueryError>>()?,
                )
            }
            other => MatchInput::Term(self.term(other, &format!("{at}[0]"))?),
        };
        operator
            .check_input(&input)
            .map_err(|e| QueryError(format!("{at}: {name}: {e}")))?;
        let output = match output {
            None | Some(Ordered::Null) => None,
            Some(Ordered::Object(entries)) if !(entries.len() == 1 && entries[0].0 == "/") => {
                return err(at, "an output is a ?variable or a constant");
            }
            Some(other) => Some(self.term(other, &format!("{at}[2]"))?),
        };
        Ok(Clause::Match {
            input,
            operator,
            output,
        })
    }

    /// `{"input": {name: term}, "rule": {"select": {name: "?var"}, "where": clause}}`; without
    /// `rule`, a call of the rule whose body this is.
    fn rule(&mut self, body: &Ordered, at: &str) -> Result<Clause, QueryError> {
        let Ordered::Object(entries) = body else {
            return err(
                at,
                "takes {\"input\": {…}, \"rule\": {\"select\": {…}, \"where\": …}}",
            );
        };
        let field = |name: &str| entries.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        for (key, _) in entries {
            if key != "input" && key != "rule" {
                return err(at, format!("unknown field {key:?} (input, rule)"));
            }
        }
        let Some(Ordered::Object(input)) = field("input") else {
            return err(at, "input is an object {name: term}");
        };
        let rule = match field("rule") {
            Some(definition) => self.define_rule(definition, &format!("{at}.rule"))?,
            None => *self.rule_stack.last().ok_or_else(|| {
                QueryError(format!(
                    "{at}: a rule without a definition calls the rule it is inside, and this is not inside one"
                ))
            })?,
        };
        let params = self.rules.get(rule).map(|r| r.params.clone());
        let mut bound = Vec::with_capacity(input.len());
        for (name, term) in input {
            let index = match &params {
                Some(params) => params.iter().position(|(n, _)| n == name),
                // The rule being defined: its parameters are read before its body.
                None => None,
            };
            let Some(index) = index else {
                return err(at, format!("input {name:?} is not a parameter of the rule"));
            };
            bound.push((index, self.term(term, &format!("{at}.input.{name}"))?));
        }
        Ok(Clause::Rule { rule, input: bound })
    }

    fn define_rule(&mut self, definition: &Ordered, at: &str) -> Result<usize, QueryError> {
        let Ordered::Object(entries) = definition else {
            return err(
                at,
                "a rule is {\"select\": {name: \"?var\"}, \"where\": clause}",
            );
        };
        let field = |name: &str| entries.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let Some(Ordered::Object(select)) = field("select") else {
            return err(at, "select is an object {name: \"?var\"}");
        };
        let Some(body) = field("where") else {
            return err(at, "where is one clause (an And or Or for several)");
        };
        if matches!(body, Ordered::Array(_)) {
            return err(
                at,
                "where is one clause (an And or Or for several), not an array",
            );
        }
        self.scopes.push(Vec::new());
        let mut params = Vec::with_capacity(select.len());
        for (name, term) in select {
            match term {
                Ordered::String(s) if s.starts_with('?') => {
                    params.push((name.clone(), self.variable(&s[1..])));
                }
                _ => {
                    self.scopes.pop();
                    return err(at, format!("select.{name} is a ?variable"));
                }
            }
        }
        let index = self.rules.len();
        self.rules.push(RuleDef {
            params,
            body: Clause::And(Vec::new()),
            variables: 0,
        });
        self.rule_stack.push(index);
        let parsed = self.clause(body, &format!("{at}.where"));
        self.rule_stack.pop();
        let scope = self.scopes.pop().unwrap_or_default();
        let body = parsed?;
        if let Some(rule) = self.rules.get_mut(index) {
            rule.body = body;
            rule.variables = scope.len();
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Query, QueryError> {
        parse(&serde_json::from_str::<Ordered>(text).expect("json"), &[])
    }

    #[test]
    fn variables_are_numbered_per_scope() {
        let q = read(r#"{"select":{"n":"?n"},"where":[{"Case":["?e","name","?n"]},{"Rule":{"input":{"from":"?e"},"rule":{"select":{"from":"?a"},"where":{"Case":["?a","next","?b"]}}}}]}"#).expect("query");
        assert_eq!(q.variables, ["n", "e"]);
        assert_eq!(q.rules.len(), 1);
        assert_eq!(q.rules[0].params, [("from".to_string(), 0)]);
        assert_eq!(q.rules[0].variables, 2);
        assert_eq!(
            q.clauses[1],
            Clause::Rule {
                rule: 0,
                input: vec![(0, Term::Var(1))]
            }
        );
    }

    #[test]
    fn a_bad_clause_is_named() {
        let e = |text: &str| read(text).expect_err("refused").0;
        assert!(
            e(r#"{"where":[{"Case":["?e","name","?n"]},{"Foo":["?n"]}]}"#)
                .starts_with("where[1]: Unsupported query kind Foo")
        );
        assert!(e(r#"{"where":[{"Case":["?e","name"]}]}"#).contains("where[0].Case"));
        assert!(e(r#"{"where":[{"Match":["?x","<>"]}]}"#).contains("unknown operator"));
        assert!(e(r#"{"select":{"n":[1]},"where":[]}"#).contains("Invalid query selector [1]"));
        assert!(e(r#"{"select":"?n","where":[]}"#).contains("must be an object or a tuple"));
        assert!(e(r#"{"select":{}}"#).contains("where"));
        assert!(e(r#"{"where":[],"limit":1}"#).starts_with("limit"));
        assert!(e(r#"{"where":[{"Rule":{"input":{"x":"?x"}}}]}"#).contains("not inside one"));
    }
}
