//! Property tests of the filter language: random well-formed expressions over random rows
//! select exactly the rows an independent reference evaluator (written here, in SQL's
//! three-valued logic) selects; random garbage is refused with an error and never panics.

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::Config;
use stratavec::query::Filter;
use stratavec::storage::{SimStorage, Storage};
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, DataType, Doc, Error, FieldSchema, Query,
    VectorSchema,
};

fn schema() -> CollectionSchema {
    CollectionSchema::new("p")
        .field(FieldSchema::new("int32", DataType::Int32))
        .field(FieldSchema::new("int64", DataType::Int64).nullable())
        .field(FieldSchema::new("dbl", DataType::Double))
        .field(FieldSchema::new("str", DataType::String).nullable())
        .field(FieldSchema::new("flag", DataType::Bool))
        .field(FieldSchema::new("tags", DataType::ArrayString).nullable())
        .field(FieldSchema::new("ints", DataType::ArrayInt32))
        .vector(VectorSchema::new("v", 2))
}

// ---------------------------------------------------------------------------------------------
// Rows

#[derive(Debug, Clone)]
struct Row {
    int32: i32,
    int64: Option<i64>,
    dbl: f64,
    str: Option<String>,
    flag: bool,
    tags: Option<Vec<String>>,
    ints: Vec<i32>,
}

/// Short strings over an alphabet with LIKE's wildcards, a capital and a non-ASCII letter.
fn small_string() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!['a', 'b', '_', '%', 'A', 'é']),
        0..4,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

fn tag() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "A"]).prop_map(str::to_string)
}

fn row() -> impl Strategy<Value = Row> {
    (
        prop_oneof![8 => -6i32..6, 1 => Just(i32::MIN), 1 => Just(i32::MAX)],
        prop::option::weighted(
            0.8,
            prop_oneof![8 => -6i64..6, 1 => Just(i64::MIN), 1 => Just(i64::MAX)],
        ),
        prop::sample::select(vec![-2.5, -1.0, -0.0, 0.0, 0.5, 1.0, 3.25]),
        prop::option::weighted(0.8, small_string()),
        any::<bool>(),
        prop::option::weighted(0.8, prop::collection::vec(tag(), 0..4)),
        prop::collection::vec(-3i32..3, 0..4),
    )
        .prop_map(|(int32, int64, dbl, str, flag, tags, ints)| Row {
            int32,
            int64,
            dbl,
            str,
            flag,
            tags,
            ints,
        })
}

fn doc(i: usize, r: &Row) -> Doc {
    Doc::new(format!("p{i:02}"))
        .set("int32", r.int32)
        .set("int64", r.int64)
        .set("dbl", r.dbl)
        .set("str", r.str.clone())
        .set("flag", r.flag)
        .set("tags", r.tags.clone())
        .set("ints", r.ints.clone())
        .vector("v", vec![i as f32, 0.5])
}

// ---------------------------------------------------------------------------------------------
// Expressions

#[derive(Debug, Clone)]
enum Lit {
    Int(i128),
    /// A float literal: its value and how it is written.
    Float(f64, &'static str),
    Str(String),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Operand {
    Int32,
    Int64,
    Dbl,
    Str,
    Flag,
    LenTags,
    LenInts,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(Operand, Op, Lit, bool),
    In(Operand, Vec<Lit>, bool),
    Between(Operand, Lit, Lit, bool),
    Like(String, bool),
    /// Field name, negated.
    IsNull(&'static str, bool),
    /// Tags (true) or ints, all, negated, values.
    Contain(bool, bool, bool, Vec<Lit>),
}

fn int_lit(range: std::ops::Range<i128>, extremes: Vec<i128>) -> BoxedStrategy<Lit> {
    let extreme = prop::sample::select(extremes).prop_map(Lit::Int);
    prop_oneof![4 => range.prop_map(Lit::Int), 1 => extreme].boxed()
}

/// A literal of the operand's type (out-of-range integers included).
fn lit_for(operand: Operand) -> BoxedStrategy<Lit> {
    match operand {
        Operand::Int32 => int_lit(
            -7..7,
            vec![
                i32::MIN.into(),
                i32::MAX.into(),
                3_000_000_000,
                -3_000_000_000,
            ],
        ),
        Operand::Int64 => int_lit(
            -7..7,
            vec![
                i64::MIN.into(),
                i64::MAX.into(),
                9_223_372_036_854_775_808,
                -9_223_372_036_854_775_809,
                99_999_999_999_999_999_999_999,
            ],
        ),
        Operand::Dbl => prop_oneof![
            (-4i128..4).prop_map(Lit::Int),
            prop::sample::select(vec![
                (-2.5, "-2.5"),
                (0.5, "0.5"),
                (0.5, ".5"),
                (1.0, "1.0"),
                (1.0, "1e0"),
                (3.25, "3.25"),
                (-0.0, "-0.0"),
                (100.0, "1E2"),
            ])
            .prop_map(|(v, t)| Lit::Float(v, t)),
        ]
        .boxed(),
        Operand::Str => small_string().prop_map(Lit::Str).boxed(),
        Operand::Flag => any::<bool>().prop_map(Lit::Bool).boxed(),
        Operand::LenTags | Operand::LenInts => (-1i128..5).prop_map(Lit::Int).boxed(),
    }
}

fn operand() -> impl Strategy<Value = Operand> {
    prop::sample::select(vec![
        Operand::Int32,
        Operand::Int64,
        Operand::Dbl,
        Operand::Str,
        Operand::Flag,
        Operand::LenTags,
        Operand::LenInts,
    ])
}

fn op_for(operand: Operand) -> BoxedStrategy<Op> {
    if operand == Operand::Flag {
        prop::sample::select(vec![Op::Eq, Op::Ne]).boxed()
    } else {
        prop::sample::select(vec![Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge]).boxed()
    }
}

fn atom() -> impl Strategy<Value = Expr> {
    let cmp = operand().prop_flat_map(|o| {
        (op_for(o), lit_for(o), any::<bool>())
            .prop_map(move |(op, l, flip)| Expr::Cmp(o, op, l, flip))
    });
    let in_list = operand().prop_flat_map(|o| {
        (prop::collection::vec(lit_for(o), 1..4), any::<bool>())
            .prop_map(move |(ls, neg)| Expr::In(o, ls, neg))
    });
    let between = operand()
        .prop_filter("bool has no order", |o| *o != Operand::Flag)
        .prop_flat_map(|o| {
            (lit_for(o), lit_for(o), any::<bool>())
                .prop_map(move |(a, b, neg)| Expr::Between(o, a, b, neg))
        });
    let pattern = prop::collection::vec(
        prop::sample::select(vec!["a", "b", "A", "é", "_", "%", "%"]),
        0..5,
    )
    .prop_map(|p| p.concat());
    let like = (pattern, any::<bool>()).prop_map(|(p, neg)| Expr::Like(p, neg));
    let is_null = (
        prop::sample::select(vec!["int32", "int64", "str", "tags", "ints", "flag"]),
        any::<bool>(),
    )
        .prop_map(|(f, neg)| Expr::IsNull(f, neg));
    let contain =
        (any::<bool>(), any::<bool>(), any::<bool>()).prop_flat_map(|(tags, all, neg)| {
            let item = if tags {
                tag().prop_map(Lit::Str).boxed()
            } else {
                prop_oneof![4 => (-4i128..4).prop_map(Lit::Int), 1 => Just(Lit::Int(3_000_000_000))]
                    .boxed()
            };
            prop::collection::vec(item, 0..4).prop_map(move |ls| Expr::Contain(tags, all, neg, ls))
        });
    prop_oneof![
        4 => cmp,
        2 => in_list,
        1 => between,
        1 => like,
        1 => is_null,
        2 => contain,
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    atom().prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Expr::Not(Box::new(a))),
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// Rendering: random keyword case, quotes, whitespace and redundant parentheses, with just the
// parentheses precedence needs (AND binds tighter than OR; NOT tighter than AND, looser than
// comparisons).

/// A token and whether an expression can end right after it.
struct Tok {
    text: String,
    can_end: bool,
    /// A string literal (for cuts inside it).
    string: bool,
}

struct Render {
    seed: u64,
    toks: Vec<Tok>,
}

impl Render {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.seed ^= self.seed >> 12;
        self.seed ^= self.seed << 25;
        self.seed ^= self.seed >> 27;
        self.seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn chance(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    fn push(&mut self, text: impl Into<String>, can_end: bool) {
        self.toks.push(Tok {
            text: text.into(),
            can_end,
            string: false,
        });
    }

    fn keyword(&mut self, k: &str) {
        let text = match self.next() % 3 {
            0 => k.to_lowercase(),
            1 => k.to_uppercase(),
            _ => {
                let lower = k.to_lowercase();
                let mut cs = lower.chars();
                cs.next()
                    .map(|c| c.to_uppercase().chain(cs).collect())
                    .unwrap_or_default()
            }
        };
        let can_end = ["NULL", "TRUE", "FALSE"]
            .iter()
            .any(|w| k.eq_ignore_ascii_case(w));
        self.push(text, can_end);
    }

    fn lit(&mut self, l: &Lit) {
        match l {
            Lit::Int(v) => {
                if *v < 0 {
                    self.push("-", false);
                }
                self.push(v.unsigned_abs().to_string(), true);
            }
            Lit::Float(_, text) => {
                if let Some(t) = text.strip_prefix('-') {
                    self.push("-", false);
                    self.push(t, true);
                } else {
                    self.push(*text, true);
                }
            }
            Lit::Str(s) => {
                let q = if self.chance(2) { '\'' } else { '"' };
                self.toks.push(Tok {
                    text: format!("{q}{s}{q}"),
                    can_end: true,
                    string: true,
                });
            }
            Lit::Bool(b) => self.keyword(if *b { "true" } else { "false" }),
        }
    }

    fn list(&mut self, ls: &[Lit]) {
        self.push("(", false);
        for (i, l) in ls.iter().enumerate() {
            if i > 0 {
                self.push(",", false);
            }
            self.lit(l);
        }
        self.push(")", true);
    }

    fn operand(&mut self, o: Operand) {
        let field = match o {
            Operand::Int32 => "int32",
            Operand::Int64 => "int64",
            Operand::Dbl => "dbl",
            Operand::Str => "str",
            Operand::Flag => "flag",
            Operand::LenTags | Operand::LenInts => {
                self.keyword("array_length");
                self.push("(", false);
                self.push(
                    if o == Operand::LenTags {
                        "tags"
                    } else {
                        "ints"
                    },
                    false,
                );
                self.push(")", true);
                return;
            }
        };
        self.push(field, true);
    }

    fn prec(e: &Expr) -> u8 {
        match e {
            Expr::Or(..) => 1,
            Expr::And(..) => 2,
            Expr::Not(..) => 3,
            _ => 4,
        }
    }

    fn expr(&mut self, e: &Expr, min_prec: u8) {
        let parens = Self::prec(e) < min_prec || self.chance(8);
        if parens {
            self.push("(", false);
        }
        match e {
            Expr::Or(a, b) => {
                self.expr(a, 1);
                self.keyword("OR");
                self.expr(b, 2);
            }
            Expr::And(a, b) => {
                self.expr(a, 2);
                self.keyword("AND");
                self.expr(b, 3);
            }
            Expr::Not(a) => {
                self.keyword("NOT");
                self.expr(a, 3);
            }
            Expr::Cmp(o, op, l, flip) => {
                let (sym, flipped) = match op {
                    Op::Eq => ("=", "="),
                    Op::Ne => ("!=", "!="),
                    Op::Lt => ("<", ">"),
                    Op::Le => ("<=", ">="),
                    Op::Gt => (">", "<"),
                    Op::Ge => (">=", "<="),
                };
                if *flip {
                    self.lit(l);
                    self.push(flipped, false);
                    self.operand(*o);
                } else {
                    self.operand(*o);
                    self.push(sym, false);
                    self.lit(l);
                }
            }
            Expr::In(o, ls, neg) => {
                self.operand(*o);
                if *neg {
                    self.keyword("NOT");
                }
                self.keyword("IN");
                self.list(ls);
            }
            Expr::Between(o, a, b, neg) => {
                self.operand(*o);
                if *neg {
                    self.keyword("NOT");
                }
                self.keyword("BETWEEN");
                self.lit(a);
                self.keyword("AND");
                self.lit(b);
            }
            Expr::Like(p, neg) => {
                self.push("str", true);
                if *neg {
                    self.keyword("NOT");
                }
                self.keyword("LIKE");
                self.lit(&Lit::Str(p.clone()));
            }
            Expr::IsNull(f, neg) => {
                self.push(*f, true);
                self.keyword("IS");
                if *neg {
                    self.keyword("NOT");
                }
                self.keyword("NULL");
            }
            Expr::Contain(tags, all, neg, ls) => {
                self.push(if *tags { "tags" } else { "ints" }, true);
                if *neg {
                    self.keyword("NOT");
                }
                self.keyword(if *all { "CONTAIN_ALL" } else { "CONTAIN_ANY" });
                self.list(ls);
            }
        }
        if parens {
            self.push(")", true);
        }
    }

    fn space(&mut self) -> &'static str {
        match self.next() % 10 {
            0 => "  ",
            1 => "\n",
            2 => "\t",
            _ => " ",
        }
    }

    fn join(&mut self, toks: &[Tok]) -> String {
        let mut out = String::new();
        for (i, t) in toks.iter().enumerate() {
            if i > 0 {
                let s = self.space();
                out.push_str(s);
            }
            out.push_str(&t.text);
        }
        out
    }
}

fn render(e: &Expr, seed: u64) -> (String, Vec<Tok>) {
    let mut r = Render {
        seed: seed | 1,
        toks: Vec::new(),
    };
    r.expr(e, 0);
    let toks = std::mem::take(&mut r.toks);
    (r.join(&toks), toks)
}

// ---------------------------------------------------------------------------------------------
// The reference evaluator: three-valued logic, `None` is UNKNOWN.

fn and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn or(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

/// A row's value of an operand.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum V {
    I(i128),
    F(f64),
    S(String),
    B(bool),
}

fn value(r: &Row, o: Operand) -> Option<V> {
    match o {
        Operand::Int32 => Some(V::I(r.int32.into())),
        Operand::Int64 => r.int64.map(|v| V::I(v.into())),
        Operand::Dbl => Some(V::F(r.dbl)),
        Operand::Str => r.str.clone().map(V::S),
        Operand::Flag => Some(V::B(r.flag)),
        Operand::LenTags => r.tags.as_ref().map(|t| V::I(t.len() as i128)),
        Operand::LenInts => Some(V::I(r.ints.len() as i128)),
    }
}

/// The literal in the operand's terms (integers become floats for the double field).
fn lit_value(l: &Lit, o: Operand) -> V {
    match (l, o) {
        (Lit::Int(v), Operand::Dbl) => V::F(*v as f64),
        (Lit::Int(v), _) => V::I(*v),
        (Lit::Float(v, _), _) => V::F(*v),
        (Lit::Str(s), _) => V::S(s.clone()),
        (Lit::Bool(b), _) => V::B(*b),
    }
}

fn compare(v: &V, op: Op, l: &V) -> bool {
    match op {
        Op::Eq => v == l,
        Op::Ne => v != l,
        Op::Lt => v < l,
        Op::Le => v <= l,
        Op::Gt => v > l,
        Op::Ge => v >= l,
    }
}

fn like(s: &[char], p: &[char]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some(('%', rest)) => (0..=s.len()).any(|k| like(&s[k..], rest)),
        Some(('_', rest)) => !s.is_empty() && like(&s[1..], rest),
        Some((c, rest)) => s.first() == Some(c) && like(&s[1..], rest),
    }
}

fn eval(e: &Expr, r: &Row) -> Option<bool> {
    match e {
        Expr::And(a, b) => and(eval(a, r), eval(b, r)),
        Expr::Or(a, b) => or(eval(a, r), eval(b, r)),
        Expr::Not(a) => eval(a, r).map(|b| !b),
        Expr::Cmp(o, op, l, _) => value(r, *o).map(|v| compare(&v, *op, &lit_value(l, *o))),
        Expr::In(o, ls, neg) => {
            value(r, *o).map(|v| ls.iter().any(|l| v == lit_value(l, *o)) != *neg)
        }
        Expr::Between(o, a, b, neg) => value(r, *o).map(|v| {
            (compare(&v, Op::Ge, &lit_value(a, *o)) && compare(&v, Op::Le, &lit_value(b, *o)))
                != *neg
        }),
        Expr::Like(p, neg) => r.str.as_ref().map(|s| {
            let s: Vec<char> = s.chars().collect();
            let p: Vec<char> = p.chars().collect();
            like(&s, &p) != *neg
        }),
        Expr::IsNull(f, neg) => {
            let null = match *f {
                "int64" => r.int64.is_none(),
                "str" => r.str.is_none(),
                "tags" => r.tags.is_none(),
                _ => false,
            };
            Some(null != *neg)
        }
        Expr::Contain(tags, all, neg, ls) => {
            let elems: Option<Vec<V>> = if *tags {
                r.tags
                    .as_ref()
                    .map(|t| t.iter().map(|s| V::S(s.clone())).collect())
            } else {
                Some(r.ints.iter().map(|i| V::I((*i).into())).collect())
            };
            elems.map(|elems| {
                let has = |l: &Lit| elems.contains(&lit_value(l, Operand::Int32));
                let held = if *all {
                    ls.iter().all(has)
                } else {
                    ls.iter().any(has)
                };
                held != *neg
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The properties

fn collection(rows: &[Row], split: usize) -> Collection {
    let sim = SimStorage::new();
    sim.create_dir_all(Path::new("/db")).unwrap();
    let c = Collection::create(
        "/db/p",
        schema(),
        CollectionOptions::default().storage(Arc::new(sim)),
    )
    .unwrap();
    let docs: Vec<Doc> = rows.iter().enumerate().map(|(i, r)| doc(i, r)).collect();
    let split = split.min(docs.len());
    if split > 0 {
        c.insert(&docs[..split]).unwrap();
        c.flush().unwrap();
    }
    if split < docs.len() {
        c.insert(&docs[split..]).unwrap();
    }
    c
}

fn pks(docs: Vec<Doc>) -> Vec<String> {
    let mut pks: Vec<String> = docs.into_iter().map(|d| d.pk).collect();
    pks.sort();
    pks
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn must_fail(text: &str) -> Result<(), TestCaseError> {
    match Filter::compile(&schema(), text) {
        Err(Error::InvalidFilter { expr, .. }) => {
            prop_assert_eq!(expr, text);
            Ok(())
        }
        other => Err(TestCaseError::fail(format!(
            "[{text}] should be refused, got {other:?}"
        ))),
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// Every generated expression compiles and selects the reference evaluator's rows, by scan
    /// and by vector search, over rows split between a persisted and the writing segment;
    /// deleting by the first expression deletes exactly those rows.
    #[test]
    fn filters_select_what_the_reference_selects(
        rows in prop::collection::vec(row(), 0..14),
        split in 0usize..14,
        exprs in prop::collection::vec((expr(), any::<u64>()), 1..6),
    ) {
        let c = collection(&rows, split);
        for (e, seed) in &exprs {
            let (text, _) = render(e, *seed);
            let expected: Vec<String> = rows
                .iter()
                .enumerate()
                .filter(|(_, r)| eval(e, r) == Some(true))
                .map(|(i, _)| format!("p{i:02}"))
                .collect();
            let scan = c.query(&Query::new().topk(100_000).filter(text.as_str()));
            let scan = match scan {
                Ok(docs) => pks(docs),
                Err(err) => return Err(TestCaseError::fail(format!("[{text}]: {err}"))),
            };
            prop_assert_eq!(&scan, &expected, "scan [{}] {:?}", text, e);
            let knn = pks(c
                .query(&Query::vector("v", vec![0.0, 0.0]).topk(1000).filter(text.as_str()))
                .unwrap());
            prop_assert_eq!(&knn, &expected, "vector search [{}]", text);
        }
        let (text, _) = render(&exprs[0].0, exprs[0].1);
        let expected = rows.iter().filter(|r| eval(&exprs[0].0, r) == Some(true)).count();
        prop_assert_eq!(c.delete_by_filter(&text).unwrap(), expected, "delete [{}]", text);
        let left = pks(c.query(&Query::new().topk(100_000)).unwrap());
        prop_assert_eq!(left.len(), rows.len() - expected);
        let after = c.query(&Query::new().topk(100_000).filter(text.as_str())).unwrap();
        prop_assert!(after.is_empty(), "[{}] still matches after delete", text);
    }

    /// Arbitrary text (any Unicode, or printable ASCII) is refused with an error, never a
    /// panic; only blank text is no filter.
    #[test]
    fn garbage_is_refused(text in prop_oneof![any::<String>(), "[ -~]{0,40}"]) {
        if text.trim().is_empty() {
            prop_assert!(Filter::compile(&schema(), &text).unwrap().is_none());
        } else {
            must_fail(&text)?;
        }
    }

    /// Valid expressions cut right after a token that cannot end one (an operator, `(`, `,`,
    /// a keyword other than NULL) or inside a string literal are refused.
    #[test]
    fn truncated_expressions_are_refused(
        e in expr(),
        seed in any::<u64>(),
        pick in any::<usize>(),
        cut in any::<usize>(),
    ) {
        let (_, toks) = render(&e, seed);
        let mut r = Render { seed: seed | 1, toks: Vec::new() };
        let open: Vec<usize> = (0..toks.len())
            .filter(|&i| !toks[i].can_end || toks[i].string)
            .collect();
        prop_assume!(!open.is_empty());
        let i = open[pick % open.len()];
        let mut text = r.join(&toks[..i]);
        if toks[i].string {
            // Keep the opening quote and part of the content: an unterminated string.
            let chars: Vec<char> = toks[i].text.chars().collect();
            let keep = 1 + cut % (chars.len() - 1);
            text.push(' ');
            text.extend(&chars[..keep]);
        } else {
            text.push(' ');
            text.push_str(&toks[i].text);
        }
        must_fail(&text)?;
    }

    /// zvec's non-operators anywhere make a valid expression a syntax error.
    #[test]
    fn forbidden_operators_are_refused(e in expr(), seed in any::<u64>(), which in 0usize..6) {
        let (text, _) = render(&e, seed);
        let bad = match which {
            0 => format!("{text} && int32 = 1"),
            1 => format!("int32 = 1 || {text}"),
            2 => format!("!({text})"),
            3 => format!("({text}) AND int32 == 1"),
            4 => format!("str <> 'a' OR ({text})"),
            _ => format!("({text}) AND !flag"),
        };
        match Filter::compile(&schema(), &bad) {
            Err(Error::InvalidFilter { reason, .. }) => {
                prop_assert!(reason.starts_with("syntax error"), "[{}]: {}", bad, reason)
            }
            other => prop_assert!(false, "[{}] should be refused, got {:?}", bad, other),
        }
    }

    /// Any prefix of a valid expression, and any soup of the language's tokens, compiles or is
    /// refused without panicking.
    #[test]
    fn prefixes_and_token_soup_never_panic(
        e in expr(),
        seed in any::<u64>(),
        cut in any::<usize>(),
        soup in prop::collection::vec(prop::sample::select(vec![
            "int32", "int64", "dbl", "str", "flag", "tags", "ints", "zz", "(", ")", ",", "=",
            "!=", "<", "<=", ">", ">=", "==", "<>", "!", "&&", "||", "AND", "or", "NOT", "IN",
            "LIKE", "BETWEEN", "IS", "NULL", "CONTAIN_ANY", "contain_all", "array_length",
            "1", "-2", "3.5", "1e400", "'a'", "\"b\"", "'", "true", "FALSE", "-", "+", "*",
            "`", "`int32`", "99999999999999999999999999999999999999999",
        ]), 0..24),
    ) {
        let (text, _) = render(&e, seed);
        let chars: Vec<char> = text.chars().collect();
        let prefix: String = chars[..cut % (chars.len() + 1)].iter().collect();
        let _ = Filter::compile(&schema(), &prefix);
        let _ = Filter::compile(&schema(), &soup.join(" "));
    }
}
