//! The zvec filter language: parsed, type-checked against the schema, and compiled once per
//! query into a predicate over a row's scalar values.
//!
//! # Grammar
//!
//! zvec 0.8.0's SQL subset (reference §1.8), parsed with `sqlparser` through a dialect that
//! knows zvec's array keywords:
//!
//! | Construct | Example |
//! |---|---|
//! | comparison `= != < <= > >=` | `year >= 2020`, `'a' < s` (a literal on the left is flipped) |
//! | `AND`, `OR` (any case; AND binds tighter), parentheses | `a = 1 OR b = 2 AND c = 3` |
//! | `IN (..)`, `NOT IN (..)`: a non-empty list of literals | `cat IN ('a', 'b')` |
//! | `LIKE`, `NOT LIKE`: `%` any run, `_` one character, case-sensitive | `s LIKE 'a_b%'` |
//! | `IS NULL`, `IS NOT NULL` (an empty array is not NULL) | `tags IS NOT NULL` |
//! | `CONTAIN_ANY (..)`, `CONTAIN_ALL (..)`, their `NOT` forms (arrays) | `t CONTAIN_ANY ('x')` |
//! | `array_length(f) <op> n` (also with `IN` and `BETWEEN`) | `array_length(tags) > 2` |
//! | `BETWEEN a AND b`, `NOT BETWEEN` (inclusive; empty when a > b) | `n BETWEEN 1 AND 5` |
//! | `NOT expr`, `NOT (..)` | `NOT (a = 1 OR b = 2)` |
//! | literals: integers, floats, `'str'` or `"str"`, `true`/`false` in any case | `f = -1.5e3` |
//!
//! `LIKE` matches the whole string and has no escape character. `BETWEEN`, `NOT LIKE` and prefix
//! `NOT` go beyond zvec, and so do `''` inside a single-quoted string (a quote) and SQL comments.
//! Field names are case-sensitive; a name that is not a plain identifier (it has a `-`, starts
//! with a digit, or is a word SQL reserves such as `interval`, `exists`, `all`, `any`, `not`,
//! `null`, `true`) is written in backticks: `` `my-field` = 1 ``. `==`, `<>`, `&&`, `||` and `!`
//! are syntax errors, as in zvec. The primary key is not a field and cannot be filtered. An
//! expression may have up to 10,000 operators and keywords (literals, field names, parentheses
//! and commas do not count) and nest `NOT` and alternating `AND`/`OR` up to 64 levels deep.
//!
//! # Types
//!
//! Integer fields take integer literals only (`n = 3.5` is an error); float and double fields
//! take integer or float literals (converted to the field's type, like a SQL cast); string
//! fields take strings; bool fields take `true`/`false` with `=`, `!=`, `IN`, `NOT IN`. Array
//! fields take only `CONTAIN_*`, `array_length` and `IS [NOT] NULL`; scalar fields never take
//! those. An unknown field, a type mismatch, `IN ()` and a literal compared with `NULL` are
//! errors naming the field.
//!
//! An integer literal outside the field's range is no error: comparisons are exact over all
//! integers, so `u32 = -1` matches nothing, `u32 != -1` every non-NULL row, `u32 > -1` every
//! non-NULL row and `i64 < 9223372036854775808` every non-NULL row.
//!
//! # NULL: three-valued logic
//!
//! A comparison whose field is NULL is UNKNOWN — including `!=`, `NOT IN`, `NOT LIKE`,
//! `NOT BETWEEN` and `NOT CONTAIN_*` — and a row matches only when the whole expression is TRUE,
//! so every comparison with NULL excludes the row (zvec's rule). `AND`, `OR` and `NOT` follow
//! SQL's Kleene logic: `NOT UNKNOWN` is UNKNOWN, so `NOT (n = 1)` is true only where `n = 1` is
//! definitely false and never matches a NULL `n`; `UNKNOWN OR TRUE` is TRUE. `IS NULL` and
//! `IS NOT NULL` are never UNKNOWN.
//!
//! Empty lists after the array operators: `CONTAIN_ANY ()` is unsatisfiable (zvec) and
//! `CONTAIN_ALL ()` holds for every non-NULL array (every one of no values is contained); the
//! `NOT` forms are their negations, and NULL arrays stay UNKNOWN for all four.
//!
//! A NaN stored in a float field is a value, not NULL: it is unequal to and unordered with every
//! literal (`!=` is TRUE, the other comparisons FALSE), as in IEEE 754.
//!
//! # Errors
//!
//! Every error is [`crate::Error::InvalidFilter`] with the expression, the 0-based character
//! offset of the offending token when known, and a reason naming the field.

pub(crate) mod arith;
mod compile;
mod eval;
mod like;
mod literal;
mod parse;

use crate::doc::Value;
use crate::error::Result;
use crate::schema::CollectionSchema;

use eval::Pred;

/// A compiled filter expression: field positions resolved and literals converted to the
/// fields' types, so that evaluating a row parses nothing and allocates nothing.
#[derive(Debug, Clone)]
pub struct Filter {
    root: Pred,
    fields: Vec<usize>,
    equality: Vec<(usize, Vec<Value>)>,
}

impl Filter {
    /// Parses, type-checks and compiles `expr` against `schema`. An empty (or all-whitespace)
    /// expression is `Ok(None)`: no filter.
    pub fn compile(schema: &CollectionSchema, expr: &str) -> Result<Option<Filter>> {
        if expr.trim().is_empty() {
            return Ok(None);
        }
        let source = parse::Source::new(expr);
        let ast = parse::parse(&source)?;
        let root = compile::compile(schema, &source, &ast)?;
        let mut fields = Vec::new();
        root.collect_fields(&mut fields);
        fields.sort_unstable();
        fields.dedup();
        let equality = compile::equality_conjuncts(schema, &root);
        Ok(Some(Filter {
            root,
            fields,
            equality,
        }))
    }

    /// Whether the row whose scalar field `i` (schema order) is `field(i)` matches: the
    /// expression is TRUE for it (FALSE and UNKNOWN do not match).
    pub fn matches<'a>(&self, field: impl Fn(usize) -> &'a Value) -> bool {
        self.root.eval(&field).is_true()
    }

    /// Schema positions of the scalar fields the expression reads, ascending and distinct.
    pub fn fields(&self) -> &[usize] {
        &self.fields
    }

    /// When the whole filter is `f = v` or `f IN (..)` on a scalar field, or a top-level `AND`
    /// has such a conjunct: that field's position and the values (in the field's type, sorted,
    /// distinct) one of which a matching row must hold. Of several such conjuncts, the one with
    /// the fewest values. An index can narrow candidates with them; the rows it yields must
    /// still be checked with [`Filter::matches`]. Literals out of the field's range are left
    /// out, so the list can be empty: nothing matches.
    pub fn equality_terms(&self) -> Option<(usize, Vec<Value>)> {
        self.equality.first().cloned()
    }

    /// Every conjunct [`Filter::equality_terms`] could return, fewest values first (ties in
    /// expression order), so that a planner can take the first whose field has an index. Any
    /// one of them narrows candidates soundly; matching rows must still pass
    /// [`Filter::matches`].
    pub fn equality_conjuncts(&self) -> &[(usize, Vec<Value>)] {
        &self.equality
    }
}

#[cfg(test)]
mod tests;
