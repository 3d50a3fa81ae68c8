//! The query engine. It plans and orders as synopsys does (docs/design/synopsys-queries.md
//! §0), so answers come in synopsys' order: top-level clauses sorted by rank, each `Case`
//! answered per frame in the order of the index synopsys would scan. Unlike synopsys, a
//! `Case` looks facts up with every position the frame has bound, so a join is one index
//! lookup per frame; recursive rules are evaluated to a fixpoint with memoised answers.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::operators::Input;
use super::query::{Clause, Query, Term};
use super::reference::Reference;
use super::select::{self, Frame, resolve};
use super::store::Row;
use super::value;
use crate::storage::error::{Result, StorageError};

/// Where facts come from: the SQLite indexes, or (in tests) a plain list.
pub trait Source {
    /// Every fact with these parts.
    fn scan(
        &self,
        e: Option<&Reference>,
        a: Option<&str>,
        v: Option<&Reference>,
    ) -> Result<Vec<Row>>;
}

/// Rule calls nested deeper than this fail (a query's memory stays bounded).
pub const MAX_RULE_DEPTH: usize = 20_000;
/// Below this much stack left, a rule call continues on a new stack segment of this size.
const STACK_RED_ZONE: usize = 128 * 1024;
const STACK_SEGMENT: usize = 4 * 1024 * 1024;

/// The answer to `query`: one JSON row per distinct selection.
pub fn evaluate(source: &dyn Source, query: &Query) -> Result<Vec<Value>> {
    let deadline = Instant::now() + MAX_TIME;
    let mut engine = Engine {
        source,
        query,
        memo: HashMap::new(),
        visiting: HashSet::new(),
        depth: 0,
        changed: false,
        partial: false,
        relational: (0..query.rules.len())
            .map(|rule| relational(query, rule, &mut Vec::new()))
            .collect(),
        produced: 0,
        deadline,
    };
    let frames = engine.conjunction(
        &plan(&query.clauses),
        vec![vec![None; query.variables.len()]],
    )?;
    select::rows(&query.select, &frames, deadline)
}

/// A query may hold at most this many intermediate rows at once (memory), build this many
/// in all (work), and take this long: one request must not hold a reader thread (there are
/// four) or the memory for long.
pub const MAX_FRAMES: usize = 2_000_000;
pub const MAX_WORK: usize = 200_000_000;
pub const MAX_TIME: Duration = Duration::from_secs(10);
/// A recursive rule that keeps finding answers stops after this many rounds.
pub const MAX_ROUNDS: usize = 10_000;

/// Whether a rule's body is made of patterns and rules alike only: then binding an input
/// up front and filtering by it afterwards give the same answers.
fn relational(query: &Query, rule: usize, seen: &mut Vec<usize>) -> bool {
    fn walk(query: &Query, clause: &Clause, seen: &mut Vec<usize>) -> bool {
        match clause {
            Clause::Case(_) => true,
            Clause::And(cs) | Clause::Or(cs) => cs.iter().all(|c| walk(query, c, seen)),
            Clause::Rule { rule, .. } => relational(query, *rule, seen),
            Clause::Not(_) | Clause::Is(..) | Clause::Match { .. } => false,
        }
    }
    if seen.contains(&rule) {
        return true;
    }
    seen.push(rule);
    query
        .rules
        .get(rule)
        .is_some_and(|r| walk(query, &r.body, seen))
}

/// synopsys' plan: top-level `And`s flattened, then a stable sort by rank.
fn plan(clauses: &[Clause]) -> Vec<&Clause> {
    fn flatten<'a>(clauses: &'a [Clause], out: &mut Vec<&'a Clause>) {
        for clause in clauses {
            match clause {
                Clause::And(inner) => flatten(inner, out),
                other => out.push(other),
            }
        }
    }
    let mut out = Vec::new();
    flatten(clauses, &mut out);
    out.sort_by_key(|clause| rank(clause));
    out
}

fn rank(clause: &Clause) -> u8 {
    let constant = |t: &Term| u8::from(matches!(t, Term::Const(_)));
    match clause {
        Clause::Case([e, a, v]) => 10 - 4 * constant(e) - 3 * constant(a) - 2 * constant(v),
        Clause::And(_) => 11,
        Clause::Or(_) => 12,
        Clause::Match { .. } => 13,
        Clause::Not(_) => 15,
        Clause::Rule { .. } => 16,
        Clause::Is(..) => 17,
    }
}

/// The index synopsys scans for a pattern, chosen from its constants only: the order its
/// facts come in.
#[derive(Clone, Copy)]
enum Index {
    Eav,
    Vae,
    Aev,
}

fn index_of([e, a, v]: &[Term; 3]) -> Index {
    match (e, a, v) {
        (Term::Const(_), _, _) => Index::Eav,
        (_, _, Term::Const(_)) => Index::Vae,
        (_, Term::Const(_), _) => Index::Aev,
        _ => Index::Eav,
    }
}

fn compare(index: Index, x: &Row, y: &Row) -> Ordering {
    let e = || x.e.cmp(&y.e);
    let a = || value::attribute_order(&x.a, &y.a);
    let v = || x.v.cmp(&y.v);
    match index {
        Index::Eav => e().then_with(a).then_with(v),
        Index::Vae => v().then_with(a).then_with(e),
        Index::Aev => a().then_with(e).then_with(v),
    }
}

type Answers = Vec<Vec<Option<Arc<Value>>>>;

struct Memo {
    answers: Answers,
    seen: HashSet<Answer>,
    /// Set once a fixpoint has been reached: the answers are final.
    complete: bool,
}

struct Engine<'a> {
    source: &'a dyn Source,
    query: &'a Query,
    /// Answers of each rule call.
    memo: HashMap<CallKey, Memo>,
    /// Calls under evaluation in this round of the fixpoint.
    visiting: HashSet<CallKey>,
    depth: usize,
    /// This round found a new answer.
    changed: bool,
    /// This round read answers of a call still being evaluated (a cycle).
    partial: bool,
    /// Per rule: see `relational`.
    relational: Vec<bool>,
    /// Intermediate rows built so far.
    produced: usize,
    deadline: Instant,
}

impl Engine<'_> {
    fn conjunction(&mut self, clauses: &[&Clause], mut frames: Vec<Frame>) -> Result<Vec<Frame>> {
        for clause in clauses {
            if frames.is_empty() {
                break;
            }
            frames = self.clause(clause, frames)?;
            self.spend(frames.len())?;
        }
        Ok(frames)
    }

    /// Counts `rows` more intermediate rows (held at once) against the query's budget, and
    /// its time.
    fn spend(&mut self, rows: usize) -> Result<()> {
        self.produced = self.produced.saturating_add(rows);
        if rows > MAX_FRAMES || self.produced > MAX_WORK {
            return Err(StorageError::invalid(format!(
                "the query builds more than {MAX_FRAMES} intermediate rows at once or {MAX_WORK} in all: make its patterns more selective"
            )));
        }
        if Instant::now() > self.deadline {
            return Err(StorageError::invalid(format!(
                "the query takes longer than {} s: make its patterns more selective",
                MAX_TIME.as_secs()
            )));
        }
        Ok(())
    }

    fn clause(&mut self, clause: &Clause, frames: Vec<Frame>) -> Result<Vec<Frame>> {
        match clause {
            Clause::Case(pattern) => self.case(pattern, frames),
            Clause::And(clauses) => {
                let clauses: Vec<&Clause> = clauses.iter().collect();
                self.conjunction(&clauses, frames)
            }
            Clause::Or(branches) => {
                let mut out = Vec::new();
                for branch in branches {
                    out.extend(self.clause(branch, frames.clone())?);
                    self.spend(out.len())?;
                }
                Ok(out)
            }
            Clause::Not(inner) => {
                let mut out = Vec::with_capacity(frames.len());
                for frame in frames {
                    if self.clause(inner, vec![frame.clone()])?.is_empty() {
                        out.push(frame);
                    }
                }
                Ok(out)
            }
            Clause::Is(left, right) => Ok(frames
                .into_iter()
                .filter_map(|mut frame| {
                    let value = resolve(left, &frame).or_else(|| resolve(right, &frame))?;
                    (unify(left, &value, &mut frame) && unify(right, &value, &mut frame))
                        .then_some(frame)
                })
                .collect()),
            Clause::Match {
                input,
                operator,
                output,
            } => {
                let mut out = Vec::new();
                for frame in frames {
                    let resolved = Input::resolve(input, |t| resolve(t, &frame));
                    for result in operator.apply(&resolved) {
                        let result = Arc::new(result);
                        let mut next = frame.clone();
                        if output
                            .as_ref()
                            .is_none_or(|term| unify(term, &result, &mut next))
                        {
                            out.push(next);
                        }
                    }
                }
                Ok(out)
            }
            Clause::Rule { rule, input } => {
                let mut out = Vec::new();
                for frame in frames {
                    let def = &self.query.rules[*rule];
                    let mut args = vec![None; def.params.len()];
                    for (param, term) in input {
                        args[*param] = resolve(term, &frame);
                    }
                    let key = self.call(*rule, args)?;
                    let answers = self.memo.get(&key).map(|m| m.answers.as_slice());
                    for answer in answers.unwrap_or_default() {
                        // Most answers of a shared call do not fit this frame: check first.
                        let fits = input.iter().all(|(param, term)| {
                            match (&answer[*param], resolve(term, &frame)) {
                                (Some(value), Some(bound)) => *value == bound,
                                _ => true,
                            }
                        });
                        if !fits {
                            continue;
                        }
                        let mut next = frame.clone();
                        let fits = input.iter().all(|(param, term)| match &answer[*param] {
                            Some(value) => unify(term, value, &mut next),
                            None => true,
                        });
                        if fits {
                            out.push(next);
                        }
                    }
                }
                Ok(out)
            }
        }
    }

    fn case(&mut self, pattern: &[Term; 3], frames: Vec<Frame>) -> Result<Vec<Frame>> {
        let index = index_of(pattern);
        let [e, a, v] = pattern;
        let mut out = Vec::new();
        for frame in frames {
            let (e_value, a_value, v_value) =
                (resolve(e, &frame), resolve(a, &frame), resolve(v, &frame));
            let e_ref = match &e_value {
                Some(value) => match value::as_reference(value.as_ref()) {
                    Some(r) => Some(r),
                    None => continue,
                },
                None => None,
            };
            let attribute = match a_value.as_deref() {
                Some(Value::String(s)) => Some(s.as_str()),
                Some(_) => continue,
                None => None,
            };
            let v_ref = match &v_value {
                Some(value) => match Reference::of(value) {
                    Ok(r) => Some(r),
                    Err(_) => continue,
                },
                None => None,
            };
            let mut facts = self
                .source
                .scan(e_ref.as_ref(), attribute, v_ref.as_ref())?;
            facts.sort_by(|x, y| compare(index, x, y));
            for fact in facts {
                let mut next = frame.clone();
                if unify(e, &Arc::new(fact.e.to_json()), &mut next)
                    && unify(a, &Arc::new(Value::String(fact.a)), &mut next)
                    && unify(v, &Arc::new(fact.value), &mut next)
                {
                    out.push(next);
                }
            }
        }
        Ok(out)
    }

    /// One rule call; its answers (a value or `None` per parameter) are then in the memo
    /// under the returned key. Only the first bound argument goes into the call (the
    /// caller's unification filters by the others): "everything reachable from x" is then
    /// computed once for all the `y`s the caller asks about, not once per `y`.
    fn call(&mut self, rule: usize, mut args: Vec<Option<Arc<Value>>>) -> Result<CallKey> {
        if let Some(first) = args.iter().position(Option::is_some)
            && self.relational.get(rule).copied().unwrap_or(false)
        {
            for arg in args.iter_mut().skip(first + 1) {
                *arg = None;
            }
        }
        let key = CallKey(rule, args);
        if self.depth > 0 {
            self.visit(&key)?;
            return Ok(key);
        }
        // The outermost call runs rounds until no call learns a new answer; one round is
        // enough when no call met itself (no cycle read answers still being found).
        for round in 0.. {
            if round == MAX_ROUNDS {
                return Err(StorageError::invalid(format!(
                    "a recursive rule still finds new answers after {MAX_ROUNDS} rounds"
                )));
            }
            self.changed = false;
            self.partial = false;
            self.visiting.clear();
            self.visit(&key)?;
            self.spend(0)?;
            if !(self.changed && self.partial) {
                break;
            }
        }
        for memo in self.memo.values_mut() {
            memo.complete = true;
        }
        Ok(key)
    }

    fn visit(&mut self, key: &CallKey) -> Result<()> {
        if let Some(memo) = self.memo.get(key)
            && (memo.complete || self.visiting.contains(key))
        {
            self.partial |= !memo.complete;
            return Ok(());
        }
        if self.depth >= MAX_RULE_DEPTH {
            return Err(StorageError::invalid(format!(
                "rule calls nest deeper than {MAX_RULE_DEPTH}"
            )));
        }
        self.visiting.insert(key.clone());
        self.memo.entry(key.clone()).or_insert_with(|| Memo {
            answers: Vec::new(),
            seen: HashSet::new(),
            complete: false,
        });
        let def = &self.query.rules[key.0];
        let mut frame: Frame = vec![None; def.variables];
        for ((_, var), arg) in def.params.iter().zip(&key.1) {
            frame[*var] = arg.clone();
        }
        self.depth += 1;
        // A long chain of rule calls recurses deeply: grow the stack on the heap as needed.
        let frames = stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
            self.clause(&def.body, vec![frame])
        });
        self.depth -= 1;
        let frames = frames?;
        let params: Vec<usize> = def.params.iter().map(|(_, var)| *var).collect();
        let memo = self
            .memo
            .get_mut(key)
            .ok_or_else(|| StorageError::Internal("a rule's answers went missing".into()))?;
        for frame in frames {
            let answer = Answer(params.iter().map(|v| frame[*v].clone()).collect());
            if !memo.seen.contains(&answer) {
                memo.answers.push(answer.0.clone());
                memo.seen.insert(answer);
                self.changed = true;
            }
        }
        Ok(())
    }
}

/// A rule call: the rule and its arguments.
#[derive(Clone, PartialEq, Eq, Hash)]
struct CallKey(usize, Vec<Option<Arc<Value>>>);

/// A rule's answer, as a set member.
#[derive(PartialEq, Eq, Hash)]
struct Answer(Vec<Option<Arc<Value>>>);

/// Binds an unbound variable to `value`, or checks a bound one or a constant equals it.
fn unify(term: &Term, value: &Arc<Value>, frame: &mut Frame) -> bool {
    match term {
        Term::Const(c) => c == value,
        Term::Var(i) => match frame.get_mut(*i) {
            Some(slot @ None) => {
                *slot = Some(value.clone());
                true
            }
            Some(Some(bound)) => bound == value,
            None => false,
        },
    }
}
