//! The property the engine must keep: on random small databases and queries, its answers
//! are those of a naive evaluator that tries every fact for every pattern (nested loops
//! over all facts, no index, no plan), compared as sets of rows.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::reference::Reference;
use super::tests::{facts, rt};

struct Random(u64);

impl Random {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

type Fact = (Value, String, Value);
type Frame = Vec<(String, Value)>;

fn bind(frame: &Frame, term: &Value, value: &Value) -> Option<Frame> {
    match term.as_str().and_then(|s| s.strip_prefix('?')) {
        Some(name) => match frame.iter().find(|(n, _)| n == name) {
            Some((_, bound)) => (bound == value).then(|| frame.clone()),
            None => {
                let mut next = frame.clone();
                next.push((name.to_owned(), value.clone()));
                Some(next)
            }
        },
        None => (term == value).then(|| frame.clone()),
    }
}

fn resolve(frame: &Frame, term: &Value) -> Option<Value> {
    match term.as_str().and_then(|s| s.strip_prefix('?')) {
        Some(name) => frame
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone()),
        None => Some(term.clone()),
    }
}

/// Every frame `clause` extends `frame` to.
fn naive(facts: &[Fact], clause: &Value, frame: &Frame) -> Vec<Frame> {
    if let Some([e, a, v]) = clause
        .get("Case")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        return facts
            .iter()
            .filter_map(|(fe, fa, fv)| {
                bind(frame, e, fe)
                    .and_then(|f| bind(&f, a, &json!(fa)))
                    .and_then(|f| bind(&f, v, fv))
            })
            .collect();
    }
    if let Some(branches) = clause.get("Or").and_then(Value::as_array) {
        return branches
            .iter()
            .flat_map(|b| naive(facts, b, frame))
            .collect();
    }
    if let Some(inner) = clause.get("Not") {
        return if naive(facts, inner, frame).is_empty() {
            vec![frame.clone()]
        } else {
            Vec::new()
        };
    }
    if let Some([pair, op]) = clause
        .get("Match")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        let [left, right] = pair.as_array().map(Vec::as_slice).unwrap_or_default() else {
            return Vec::new();
        };
        let (Some(l), Some(r)) = (resolve(frame, left), resolve(frame, right)) else {
            return Vec::new();
        };
        let keep = match (op.as_str(), l.as_i64(), r.as_i64()) {
            (Some("<"), Some(l), Some(r)) => l < r,
            (Some("!="), _, _) => l != r,
            _ => false,
        };
        return if keep {
            vec![frame.clone()]
        } else {
            Vec::new()
        };
    }
    Vec::new()
}

fn rows(facts: &[Fact], clauses: &[Value]) -> BTreeSet<String> {
    // Negation and filters need their variables bound: the same strata synopsys plans in.
    let stratum = |c: &Value| match c
        .as_object()
        .and_then(|m| m.keys().next())
        .map(String::as_str)
    {
        Some("Case") => 0,
        Some("Or") => 1,
        Some("Match") => 2,
        _ => 3,
    };
    let mut ordered: Vec<&Value> = clauses.iter().collect();
    ordered.sort_by_key(|c| stratum(c));
    let mut frames = vec![Frame::new()];
    for clause in ordered {
        frames = frames
            .iter()
            .flat_map(|f| naive(facts, clause, f))
            .collect();
    }
    frames
        .into_iter()
        .map(|f| {
            let map: serde_json::Map<String, Value> = f.into_iter().collect();
            Value::Object(map).to_string()
        })
        .collect()
}

#[test]
fn the_engine_answers_as_a_naive_evaluator_does() {
    let rt = rt();
    let mut r = Random(0x9e37_79b9_7f4a_7c15);
    let entities: Vec<Value> = (0..4)
        .map(|i| Reference::of(&json!({"id": i})).expect("ref").to_json())
        .collect();
    let attributes = ["a", "b", "link"];
    // Variables by the position they are drawn for (a value may be an entity: links join).
    let variables = ["?x", "?y", "?a", "?v"];
    let for_position: [&[&str]; 3] = [&["?x", "?y"], &["?a"], &["?x", "?y", "?v"]];
    let mut found = 0;
    for database in 0..12 {
        let t = facts();
        let mut stored: Vec<Fact> = Vec::new();
        for _ in 0..30 {
            let e = entities[r.next(entities.len())].clone();
            let a = attributes[r.next(attributes.len())].to_owned();
            let v = if a == "link" {
                entities[r.next(entities.len())].clone()
            } else {
                json!(r.next(3))
            };
            if !stored.contains(&(e.clone(), a.clone(), v.clone())) {
                stored.push((e, a, v));
            }
        }
        // Some facts retracted again: the engine must not see them.
        let retracted: Vec<Fact> = stored.iter().filter(|_| r.next(5) == 0).cloned().collect();
        let tx: Vec<Value> = stored
            .iter()
            .map(|(e, a, v)| json!({"Assert": [e, a, v]}))
            .collect();
        t.transact(&rt, &Value::Array(tx).to_string());
        let undo: Vec<Value> = retracted
            .iter()
            .map(|(e, a, v)| json!({"Retract": [e, a, v]}))
            .collect();
        t.transact(&rt, &Value::Array(undo).to_string());
        stored.retain(|f| !retracted.contains(f));
        let term = |r: &mut Random, position: usize| -> Value {
            if r.next(4) > 0 {
                let choices = for_position[position];
                return json!(choices[r.next(choices.len())]);
            }
            match position {
                0 => entities[r.next(entities.len())].clone(),
                1 => json!(attributes[r.next(attributes.len())]),
                _ => json!(r.next(3)),
            }
        };
        for query in 0..25 {
            let case = |r: &mut Random| json!({"Case": [term(r, 0), term(r, 1), term(r, 2)]});
            let mut clauses = vec![case(&mut r)];
            for _ in 0..r.next(3) {
                clauses.push(case(&mut r));
            }
            match r.next(5) {
                0 => clauses.push(json!({"Not": case(&mut r)})),
                1 => clauses.push(json!({"Or": [case(&mut r), case(&mut r)]})),
                2 => clauses.push(json!({"Match": [[variables[r.next(3)], r.next(4)], "<"]})),
                3 => clauses
                    .push(json!({"Match": [[variables[r.next(3)], variables[r.next(3)]], "!="]})),
                _ => {}
            }
            let select: serde_json::Map<String, Value> = variables
                .iter()
                .map(|v| (v[1..].to_owned(), json!(v)))
                .collect();
            let q = json!({"select": select, "where": clauses}).to_string();
            let engine: BTreeSet<String> = t
                .ask(&rt, &q, None)
                .as_array()
                .expect("rows")
                .iter()
                .map(Value::to_string)
                .collect();
            let expected = rows(&stored, &clauses);
            assert_eq!(engine, expected, "database {database}, query {query}: {q}");
            found += usize::from(!expected.is_empty());
        }
    }
    assert!(
        found > 60,
        "only {found} of 300 queries had rows: a weak test"
    );
}
