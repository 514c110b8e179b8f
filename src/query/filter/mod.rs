//! The zvec filter language: parsed, type-checked against the schema, and compiled once per
//! query into a predicate over a row's scalar values.
//!
//! PLACEHOLDER: the parser and evaluator are being written; `compile` refuses every non-empty
//! expression for now.

use crate::doc::Value;
use crate::error::{Error, Result};
use crate::schema::CollectionSchema;

/// A compiled filter expression.
#[derive(Debug, Clone)]
pub struct Filter {
    fields: Vec<usize>,
}

impl Filter {
    /// Parses, type-checks and compiles `expr` against `schema`. An empty (or all-whitespace)
    /// expression is `Ok(None)`: no filter.
    pub fn compile(schema: &CollectionSchema, expr: &str) -> Result<Option<Filter>> {
        let _ = schema;
        if expr.trim().is_empty() {
            return Ok(None);
        }
        Err(Error::InvalidFilter {
            expr: expr.to_string(),
            position: None,
            reason: "filters are not implemented yet".into(),
        })
    }

    /// Whether the row whose scalar field `i` (schema order) is `field(i)` matches.
    pub fn matches<'a>(&self, field: impl Fn(usize) -> &'a Value) -> bool {
        let _ = field;
        false
    }

    /// Schema positions of the scalar fields the expression reads.
    pub fn fields(&self) -> &[usize] {
        &self.fields
    }
}
