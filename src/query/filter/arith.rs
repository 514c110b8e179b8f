//! Arithmetic over a row's numeric columns: the expression [`crate::ColumnFill::Expression`]
//! fills a column added by `add_column` with (zvec's `add_column(field, expression)`).
//!
//! # Grammar
//!
//! Numbers (`5`, `-2`, `2.5`, `1e3`), numeric scalar fields (plain identifiers or
//! backtick-quoted, as in filters), `+ - * / %`, unary `-` and `+`, parentheses; `*`, `/` and
//! `%` bind tighter than `+` and `-`, all left-associative. Parsed with `sqlparser` like the
//! filter language; anything else (strings, comparisons, functions, comments) is refused with
//! the offending token's position. `%` goes beyond zvec 0.8.0.
//!
//! # Types
//!
//! Each operation is typed by its operands, as in SQL: integer when both are integers (fields
//! of the four integer types, integer literals), floating-point (f64) otherwise, so `n / 2` is
//! integer division (truncated toward zero, as zvec does) and `n / 2.0` is not. Integer
//! arithmetic runs in i128, so no u64 or i64 operand is cut, and is checked: overflow and
//! division (or `%`) by zero are errors, never a wrapped value or a panic. Floating-point
//! division by zero and a finite computation that overflows to infinity are errors too; a
//! stored NaN or infinity propagates. A NULL operand makes the whole expression NULL.

use sqlparser::ast::{BinaryOperator, Expr, UnaryOperator, Value as SqlValue};
use sqlparser::dialect::Dialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

use super::parse::{split_location, Source};
use crate::doc::Value;
use crate::error::{Error, FieldUsage, Result};
use crate::schema::{CollectionSchema, DataType};

/// The most operators an expression may have. The tree is as deep as its longest chain, and
/// compiling, evaluating and dropping it recurse that deep: this keeps the depth far below what
/// a 2 MiB thread stack survives, while no column formula comes near it.
const MAX_OPERATORS: usize = 1_000;

/// How deeply parentheses may nest (`sqlparser` counts one level per parenthesis and operator
/// precedence step).
const RECURSION_LIMIT: usize = 128;

/// A number an expression computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    /// Integer arithmetic's result.
    Int(i128),
    /// Floating-point arithmetic's result.
    Float(f64),
}

impl Number {
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    /// As the crate's value: integers as int64 (uint64 beyond it), floats as double; the
    /// caller converts to the field's type. `None`: an integer no 64-bit type holds.
    pub(crate) fn to_value(self) -> Option<Value> {
        Some(match self {
            Number::Int(i) => match i64::try_from(i) {
                Ok(v) => Value::Int64(v),
                Err(_) => Value::UInt64(u64::try_from(i).ok()?),
            },
            Number::Float(f) => Value::Double(f),
        })
    }
}

/// Why an expression has no value for a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EvalError {
    /// `/` or `%` by zero.
    DivisionByZero,
    /// Integer arithmetic beyond i128, or finite floating-point arithmetic beyond f64.
    Overflow,
    /// A stored value of a numeric field is not a number: the file contradicts the schema.
    NotANumber,
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // zvec's wording for division by zero.
        f.write_str(match self {
            EvalError::DivisionByZero => "divide by zero",
            EvalError::Overflow => "arithmetic overflow",
            EvalError::NotANumber => "a stored value of a numeric field is not a number",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Debug, Clone)]
enum Node {
    Literal(Number),
    /// A scalar field by schema position.
    Field(usize),
    Neg(Box<Node>),
    Binary {
        op: Op,
        left: Box<Node>,
        right: Box<Node>,
        /// Whether both operands are integers (integer arithmetic).
        int: bool,
    },
}

/// A compiled arithmetic expression: fields resolved to schema positions, every operation
/// typed.
#[derive(Debug, Clone)]
pub(crate) struct Arith {
    root: Node,
    int: bool,
    fields: Vec<usize>,
}

impl Arith {
    /// Parses and type-checks `text` against `schema`. Refused: an empty expression, a syntax
    /// error ([`Error::InvalidExpression`]), an unknown field ([`Error::UnknownField`]), a
    /// field that is not a numeric scalar ([`Error::NotNumericField`]).
    pub(crate) fn compile(schema: &CollectionSchema, text: &str) -> Result<Arith> {
        let source = Source::new(text);
        let error = |loc: Option<Location>, reason: String| Error::InvalidExpression {
            expr: text.to_string(),
            position: loc.and_then(|l| source.offset(l)),
            reason,
        };
        if text.trim().is_empty() {
            return Err(error(None, "the expression is empty".into()));
        }
        let dialect = ArithDialect;
        let tokens = Tokenizer::new(&dialect, text)
            .tokenize_with_location()
            .map_err(|e| error(Some(e.location), e.message))?;
        check_tokens(&tokens, &error)?;
        let mut parser = Parser::new(&dialect)
            .with_recursion_limit(RECURSION_LIMIT)
            .with_tokens_with_locations(tokens);
        let expr = parser.parse_expr().map_err(|e| match e {
            ParserError::RecursionLimitExceeded => {
                error(None, "the expression nests too deeply".into())
            }
            ParserError::ParserError(m) | ParserError::TokenizerError(m) => {
                let (message, loc) = split_location(&m);
                error(loc, message.to_string())
            }
        })?;
        let next = parser.peek_token_ref();
        if next.token != Token::EOF {
            return Err(error(
                Some(next.span.start),
                format!("unexpected `{}`", next.token),
            ));
        }
        let mut fields = Vec::new();
        let (root, int) = Compiler {
            schema,
            error: &error,
            fields: &mut fields,
        }
        .node(&expr)?;
        fields.sort_unstable();
        fields.dedup();
        Ok(Arith { root, int, fields })
    }

    /// Whether the result is an integer (every operation integer arithmetic).
    pub(crate) fn is_int(&self) -> bool {
        self.int
    }

    /// Schema positions of the fields read, ascending and distinct; empty for a constant.
    pub(crate) fn fields(&self) -> &[usize] {
        &self.fields
    }

    /// The value for the row whose scalar field `i` is `field(i)`; `Ok(None)` when an operand
    /// is NULL.
    pub(crate) fn eval<'a>(
        &self,
        field: &impl Fn(usize) -> &'a Value,
    ) -> std::result::Result<Option<Number>, EvalError> {
        eval(&self.root, field)
    }
}

fn eval<'a>(
    node: &Node,
    field: &impl Fn(usize) -> &'a Value,
) -> std::result::Result<Option<Number>, EvalError> {
    Ok(Some(match node {
        Node::Literal(n) => *n,
        Node::Field(f) => match field(*f) {
            Value::Null => return Ok(None),
            Value::Float(v) => Number::Float((*v).into()),
            Value::Double(v) => Number::Float(*v),
            v => Number::Int(v.as_i128().ok_or(EvalError::NotANumber)?),
        },
        Node::Neg(inner) => match eval(inner, field)? {
            None => return Ok(None),
            Some(Number::Int(i)) => Number::Int(i.checked_neg().ok_or(EvalError::Overflow)?),
            Some(Number::Float(f)) => Number::Float(-f),
        },
        Node::Binary {
            op,
            left,
            right,
            int,
        } => {
            let (Some(l), Some(r)) = (eval(left, field)?, eval(right, field)?) else {
                return Ok(None);
            };
            match (int, l, r) {
                (true, Number::Int(a), Number::Int(b)) => Number::Int(int_op(*op, a, b)?),
                _ => Number::Float(float_op(*op, l.as_f64(), r.as_f64())?),
            }
        }
    }))
}

fn int_op(op: Op, a: i128, b: i128) -> std::result::Result<i128, EvalError> {
    if matches!(op, Op::Div | Op::Rem) && b == 0 {
        return Err(EvalError::DivisionByZero);
    }
    match op {
        Op::Add => a.checked_add(b),
        Op::Sub => a.checked_sub(b),
        Op::Mul => a.checked_mul(b),
        Op::Div => a.checked_div(b),
        Op::Rem => a.checked_rem(b),
    }
    .ok_or(EvalError::Overflow)
}

fn float_op(op: Op, a: f64, b: f64) -> std::result::Result<f64, EvalError> {
    if matches!(op, Op::Div | Op::Rem) && b == 0.0 {
        return Err(EvalError::DivisionByZero);
    }
    let v = match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div => a / b,
        Op::Rem => a % b,
    };
    // Infinity from finite operands is an overflow; NaN or infinity already stored is data.
    if !v.is_finite() && a.is_finite() && b.is_finite() {
        return Err(EvalError::Overflow);
    }
    Ok(v)
}

/// Plain identifiers of letters, digits and `_`, backtick-quoted identifiers, `"..."` as a
/// string (refused): the filter language's rules for names.
#[derive(Debug)]
struct ArithDialect;

impl Dialect for ArithDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch == '_'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_alphanumeric() || ch == '_'
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`'
    }
}

/// Refuses every token outside the grammar before parsing, so that no SQL construct the
/// compiler would have to recognise reaches it, and bounds the operators.
fn check_tokens(
    tokens: &[TokenWithSpan],
    error: &impl Fn(Option<Location>, String) -> Error,
) -> Result<()> {
    let mut operators = 0usize;
    for t in tokens {
        match &t.token {
            Token::Whitespace(Whitespace::Space | Whitespace::Tab | Whitespace::Newline)
            | Token::EOF
            | Token::Number(_, false)
            | Token::Word(_)
            | Token::LParen
            | Token::RParen => continue,
            // `n--1` would silently read as `n`: a comment here is a typo, not a note.
            Token::Whitespace(_) => {
                return Err(error(
                    Some(t.span.start),
                    "comments are not allowed (write `- -1`, not `--1`)".into(),
                ))
            }
            Token::Plus | Token::Minus | Token::Mul | Token::Div | Token::Mod => {}
            other => return Err(error(Some(t.span.start), format!("unexpected `{other}`"))),
        }
        operators += 1;
        if operators > MAX_OPERATORS {
            return Err(error(
                Some(t.span.start),
                format!("the expression has more than {MAX_OPERATORS} operators"),
            ));
        }
    }
    Ok(())
}

struct Compiler<'a, E> {
    schema: &'a CollectionSchema,
    error: &'a E,
    fields: &'a mut Vec<usize>,
}

impl<E: Fn(Option<Location>, String) -> Error> Compiler<'_, E> {
    /// The node for `e`, and whether its value is an integer.
    fn node(&mut self, e: &Expr) -> Result<(Node, bool)> {
        Ok(match e {
            Expr::Value(v) => match &v.value {
                SqlValue::Number(text, _) => {
                    let n = number(text).ok_or_else(|| {
                        (self.error)(Some(v.span.start), format!("'{text}' is not a number"))
                    })?;
                    (Node::Literal(n), matches!(n, Number::Int(_)))
                }
                other => {
                    return Err((self.error)(
                        Some(v.span.start),
                        format!(
                            "{other} is not a number; only numeric fields and numbers may be used"
                        ),
                    ))
                }
            },
            Expr::Identifier(id) => {
                let name = id.value.as_str();
                let Some(f) = self.schema.field_index(name) else {
                    if self.schema.vector_index(name).is_some() {
                        return Err(Error::NotNumericField {
                            field: name.to_string(),
                            data_type: "VECTOR_FP32".into(),
                        });
                    }
                    return Err(Error::UnknownField {
                        field: name.to_string(),
                        usage: FieldUsage::Expression,
                    });
                };
                let t = self.schema.fields[f].data_type;
                let int = match t {
                    DataType::Int32 | DataType::Int64 | DataType::UInt32 | DataType::UInt64 => true,
                    DataType::Float | DataType::Double => false,
                    _ => {
                        return Err(Error::NotNumericField {
                            field: name.to_string(),
                            data_type: t.name().to_uppercase(),
                        })
                    }
                };
                self.fields.push(f);
                (Node::Field(f), int)
            }
            Expr::Nested(inner) => self.node(inner)?,
            Expr::UnaryOp {
                op: UnaryOperator::Plus,
                expr,
            } => self.node(expr)?,
            Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr,
            } => {
                let (inner, int) = self.node(expr)?;
                // `-5` is a literal, so that `-9223372036854775808` is one too.
                match inner {
                    Node::Literal(Number::Int(i)) if i != i128::MIN => {
                        (Node::Literal(Number::Int(-i)), int)
                    }
                    Node::Literal(Number::Float(f)) => (Node::Literal(Number::Float(-f)), int),
                    inner => (Node::Neg(Box::new(inner)), int),
                }
            }
            Expr::BinaryOp { left, op, right } => {
                let op = match op {
                    BinaryOperator::Plus => Op::Add,
                    BinaryOperator::Minus => Op::Sub,
                    BinaryOperator::Multiply => Op::Mul,
                    BinaryOperator::Divide => Op::Div,
                    BinaryOperator::Modulo => Op::Rem,
                    other => {
                        return Err((self.error)(
                            leaf_start(left),
                            format!("`{other}` is not an arithmetic operator (+ - * / %)"),
                        ))
                    }
                };
                let (left, l_int) = self.node(left)?;
                let (right, r_int) = self.node(right)?;
                let int = l_int && r_int;
                (
                    Node::Binary {
                        op,
                        left: Box::new(left),
                        right: Box::new(right),
                        int,
                    },
                    int,
                )
            }
            other => {
                return Err((self.error)(
                    leaf_start(other),
                    "only numbers, numeric fields, + - * / %, unary minus and parentheses may be \
                     used"
                        .into(),
                ))
            }
        })
    }
}

/// A number token: digits only are an integer (beyond i128: `None`), anything else a finite
/// float.
fn number(text: &str) -> Option<Number> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i128>().ok().map(Number::Int);
    }
    let valid = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    text.parse::<f64>()
        .ok()
        .filter(|f| valid && f.is_finite())
        .map(Number::Float)
}

/// Where an unsupported construct starts, when a leaf of it says (spans of whole subtrees are
/// not computed: `sqlparser` walks them recursively).
fn leaf_start(e: &Expr) -> Option<Location> {
    match e {
        Expr::Identifier(id) => Some(id.span.start),
        Expr::Value(v) => Some(v.span.start),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::schema::FieldSchema;

    fn schema() -> CollectionSchema {
        CollectionSchema::new("c")
            .field(FieldSchema::new("i", DataType::Int32).nullable())
            .field(FieldSchema::new("u", DataType::UInt64))
            .field(FieldSchema::new("d", DataType::Double))
            .field(FieldSchema::new("s", DataType::String))
    }

    fn run(expr: &str, row: &[Value]) -> std::result::Result<Option<Number>, EvalError> {
        let a = Arith::compile(&schema(), expr).map_err(|_| EvalError::NotANumber)?;
        a.eval(&|f| &row[f])
    }

    fn row(i: Option<i32>, u: u64, d: f64) -> Vec<Value> {
        vec![
            i.map_or(Value::Null, Value::Int32),
            Value::UInt64(u),
            Value::Double(d),
            Value::String("x".into()),
        ]
    }

    #[test]
    fn typing_and_precedence() {
        let r = row(Some(7), 3, 1.5);
        assert_eq!(run("i / 2", &r), Ok(Some(Number::Int(3))));
        assert_eq!(run("-i / 2", &r), Ok(Some(Number::Int(-3))));
        assert_eq!(run("i / 2.0", &r), Ok(Some(Number::Float(3.5))));
        assert_eq!(run("i + u * 2", &r), Ok(Some(Number::Int(13))));
        assert_eq!(run("(i + u) * 2", &r), Ok(Some(Number::Int(20))));
        assert_eq!(run("i % u", &r), Ok(Some(Number::Int(1))));
        assert_eq!(run("d * 2 + `i`", &r), Ok(Some(Number::Float(10.0))));
        assert_eq!(run("- - 5", &r), Ok(Some(Number::Int(5))));
        assert_eq!(run("+u", &r), Ok(Some(Number::Int(3))));
        assert_eq!(run("1e3", &r), Ok(Some(Number::Float(1000.0))));
        let a = Arith::compile(&schema(), "i * 2 + i").unwrap();
        assert!(a.is_int());
        assert_eq!(a.fields(), &[0]);
        assert!(!Arith::compile(&schema(), "u + d").unwrap().is_int());
        assert!(Arith::compile(&schema(), "5").unwrap().fields().is_empty());
    }

    #[test]
    fn null_and_checked_arithmetic() {
        let r = row(None, u64::MAX, 0.0);
        assert_eq!(run("i * 0", &r), Ok(None));
        assert_eq!(run("i / 0", &r), Ok(None));
        assert_eq!(
            run("u * 2", &r),
            Ok(Some(Number::Int(i128::from(u64::MAX) * 2)))
        );
        assert_eq!(run("u * u", &r), Err(EvalError::Overflow));
        assert_eq!(run("u / 0", &r), Err(EvalError::DivisionByZero));
        assert_eq!(run("u % 0", &r), Err(EvalError::DivisionByZero));
        assert_eq!(run("u / d", &r), Err(EvalError::DivisionByZero));
        assert_eq!(run("1e300 * 1e300", &r), Err(EvalError::Overflow));
        let inf = row(Some(1), 1, f64::INFINITY);
        assert_eq!(run("d * 2", &inf), Ok(Some(Number::Float(f64::INFINITY))));
    }

    #[test]
    fn refusals() {
        let s = schema();
        let err = |e: &str| Arith::compile(&s, e).unwrap_err();
        assert!(matches!(err("s * 2"), Error::NotNumericField { .. }));
        assert!(matches!(
            err("zz + 1"),
            Error::UnknownField {
                usage: FieldUsage::Expression,
                ..
            }
        ));
        for bad in [
            "",
            "  ",
            "i +",
            "i > 1",
            "'a'",
            "abs(i)",
            "i--1",
            "i ^ 2",
            "(i",
            "i i",
            "true",
            "NULL",
            "i /* c */",
            "99999999999999999999999999999999999999999",
        ] {
            assert!(
                matches!(err(bad), Error::InvalidExpression { .. }),
                "{bad}: {}",
                err(bad)
            );
        }
        let Error::InvalidExpression { position, .. } = err("i > 1") else {
            unreachable!()
        };
        assert_eq!(position, Some(2));
        let long = vec!["1"; MAX_OPERATORS + 2].join("+");
        assert!(matches!(err(&long), Error::InvalidExpression { .. }));
        let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
        assert!(matches!(err(&deep), Error::InvalidExpression { .. }));
    }
}
