//! Type checking: a parsed expression becomes a [`Pred`] with fields resolved against the
//! schema and literals converted to the fields' types, or an error naming the field.
//!
//! Syntax trees are walked without recursing along `AND`/`OR` chains, and nested only to
//! [`MAX_DEPTH`] levels otherwise; positions come from leaf tokens only, as `sqlparser`'s own
//! span and display walks recurse over whole subtrees.

use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectNamePart,
    UnaryOperator, Value as SqlValue,
};
use sqlparser::tokenizer::Location;

use super::eval::{CmpOp, Operand, Pred};
use super::like::Pattern;
use super::literal::{Kind, Raw, Scalar, Set};
use super::parse::{Source, CONTAIN_ALL, CONTAIN_ANY, NOT_CONTAIN_ALL, NOT_CONTAIN_ANY};
use crate::doc::Value;
use crate::error::{Error, Result};
use crate::schema::{CollectionSchema, DataType, FieldSchema};

/// How deeply `NOT` and alternating `AND`/`OR` may nest.
const MAX_DEPTH: usize = 64;

/// Compiles the parsed expression against the schema.
pub(super) fn compile(schema: &CollectionSchema, source: &Source<'_>, expr: &Expr) -> Result<Pred> {
    Compiler { schema, source }.pred(expr, 0)
}

/// The equality conjuncts of [`super::Filter::equality_conjuncts`]: `f = v` or `f IN (..)` on
/// a scalar field, at the root or directly under a top-level `AND`, fewest values first.
pub(super) fn equality_conjuncts(
    schema: &CollectionSchema,
    root: &Pred,
) -> Vec<(usize, Vec<Value>)> {
    let conjuncts = match root {
        Pred::And(parts) => parts.as_slice(),
        p => std::slice::from_ref(p),
    };
    let mut out: Vec<(usize, Vec<Value>)> = conjuncts
        .iter()
        .filter_map(|p| match p {
            Pred::Cmp {
                operand: Operand::Field(f),
                op: CmpOp::Eq,
                value,
            } => {
                let ty = schema.fields.get(*f)?.data_type;
                Some((*f, value.to_value(ty).into_iter().collect::<Vec<_>>()))
            }
            Pred::In {
                operand: Operand::Field(f),
                set,
                negated: false,
            } => Some((*f, set.to_values(schema.fields.get(*f)?.data_type))),
            _ => None,
        })
        .collect();
    out.sort_by_key(|(_, values)| values.len());
    out
}

struct Compiler<'a> {
    schema: &'a CollectionSchema,
    source: &'a Source<'a>,
}

/// A literal as written, with its text for messages.
struct Literal {
    raw: Raw,
    text: String,
    at: Location,
}

/// What a comparison reads: a field, or `array_length` of one.
struct Target<'a> {
    index: usize,
    field: &'a FieldSchema,
    length: bool,
    at: Location,
}

impl Target<'_> {
    fn operand(&self) -> Operand {
        if self.length {
            Operand::ArrayLength(self.index)
        } else {
            Operand::Field(self.index)
        }
    }

    /// `int32 field n` or `array_length(tags)`, for messages.
    fn label(&self) -> String {
        if self.length {
            format!("array_length({})", self.field.name)
        } else {
            format!("{} field {}", self.field.data_type, self.field.name)
        }
    }
}

/// One side of a comparison.
enum Side<'a, 'e> {
    Target(Target<'a>),
    Literal(Literal),
    Other(&'e Expr),
}

/// The operands of a chain of `op` (`a AND b AND (c AND d)`), left to right, without
/// recursion: `sqlparser` builds such chains as deep left-leaning trees.
fn flatten<'e>(expr: &'e Expr, op: &BinaryOperator) -> Vec<&'e Expr> {
    let mut out = Vec::new();
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        match e {
            Expr::BinaryOp { left, op: o, right } if o == op => {
                stack.push(right);
                stack.push(left);
            }
            Expr::Nested(inner) if matches!(&**inner, Expr::BinaryOp { op: o, .. } if o == op) => {
                stack.push(inner)
            }
            e => out.push(e),
        }
    }
    out
}

/// Where an expression starts, as far as its leftmost leaf tells, found without recursion.
fn start(mut e: &Expr) -> Option<Location> {
    loop {
        e = match e {
            Expr::Identifier(id) => return Some(id.span.start),
            Expr::Value(v) => return Some(v.span.start),
            Expr::Function(f) => {
                return match f.name.0.first() {
                    Some(ObjectNamePart::Identifier(id)) => Some(id.span.start),
                    _ => None,
                }
            }
            Expr::BinaryOp { left, .. } => left,
            Expr::Nested(x)
            | Expr::UnaryOp { expr: x, .. }
            | Expr::IsNull(x)
            | Expr::IsNotNull(x)
            | Expr::IsTrue(x)
            | Expr::IsFalse(x)
            | Expr::IsNotTrue(x)
            | Expr::IsNotFalse(x)
            | Expr::IsUnknown(x)
            | Expr::IsNotUnknown(x)
            | Expr::InList { expr: x, .. }
            | Expr::InSubquery { expr: x, .. }
            | Expr::Between { expr: x, .. }
            | Expr::Like { expr: x, .. }
            | Expr::ILike { expr: x, .. }
            | Expr::SimilarTo { expr: x, .. }
            | Expr::RLike { expr: x, .. }
            | Expr::IsDistinctFrom(x, _)
            | Expr::IsNotDistinctFrom(x, _)
            | Expr::AnyOp { left: x, .. }
            | Expr::AllOp { left: x, .. } => x,
            Expr::Tuple(items) => items.first()?,
            _ => return None,
        }
    }
}

/// The comparison operator of a binary operator.
fn cmp_op(op: &BinaryOperator) -> Option<CmpOp> {
    Some(match op {
        BinaryOperator::Eq => CmpOp::Eq,
        BinaryOperator::NotEq => CmpOp::Ne,
        BinaryOperator::Lt => CmpOp::Lt,
        BinaryOperator::LtEq => CmpOp::Le,
        BinaryOperator::Gt => CmpOp::Gt,
        BinaryOperator::GtEq => CmpOp::Ge,
        _ => return None,
    })
}

/// What an unsupported expression is, for the message (without displaying it: that recurses).
fn describe(e: &Expr) -> String {
    match e {
        Expr::ILike { .. } => "ILIKE is not supported; LIKE is case-sensitive".into(),
        Expr::SimilarTo { .. } | Expr::RLike { .. } => {
            "regular expressions are not supported; use LIKE".into()
        }
        Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotTrue(_)
        | Expr::IsNotFalse(_)
        | Expr::IsUnknown(_)
        | Expr::IsNotUnknown(_) => "IS TRUE / IS FALSE is not supported; use = true".into(),
        Expr::IsDistinctFrom(..) | Expr::IsNotDistinctFrom(..) => {
            "IS [NOT] DISTINCT FROM is not supported".into()
        }
        Expr::Case { .. } => "CASE is not supported".into(),
        Expr::Exists { .. } | Expr::Subquery(_) | Expr::InSubquery { .. } => {
            "subqueries are not supported".into()
        }
        Expr::Cast { .. } => "casts are not supported".into(),
        Expr::Function(f) => format!("function {} is not supported (only array_length)", f.name),
        Expr::Tuple(_) => "a parenthesized list is not a condition".into(),
        Expr::CompoundIdentifier(_) => "qualified names are not supported".into(),
        Expr::BinaryOp { op, .. } => format!("operator {op} is not supported"),
        Expr::UnaryOp { op, .. } => format!("operator {op} is not supported"),
        _ => "unsupported expression".into(),
    }
}

impl<'a> Compiler<'a> {
    fn error(&self, at: Option<Location>, reason: impl Into<String>) -> Error {
        self.source.error(at, reason)
    }

    /// A boolean expression.
    fn pred(&self, e: &Expr, depth: usize) -> Result<Pred> {
        if depth > MAX_DEPTH {
            return Err(self.error(
                start(e),
                format!("the expression nests more than {MAX_DEPTH} levels deep"),
            ));
        }
        match e {
            // Parentheses cost no level: `sqlparser` bounds their nesting itself.
            Expr::Nested(inner) => self.pred(inner, depth),
            Expr::BinaryOp {
                op: op @ (BinaryOperator::And | BinaryOperator::Or),
                ..
            } => {
                let parts = flatten(e, op)
                    .into_iter()
                    .map(|part| self.pred(part, depth + 1))
                    .collect::<Result<Vec<_>>>()?;
                Ok(match op {
                    BinaryOperator::And => Pred::And(parts),
                    _ => Pred::Or(parts),
                })
            }
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr,
            } => Ok(Pred::Not(Box::new(self.pred(expr, depth + 1)?))),
            Expr::BinaryOp { left, op, right } => match (cmp_op(op), op) {
                (Some(op), _) => self.comparison(left, op, right),
                (None, BinaryOperator::Custom(name)) => self.contain(left, name, right),
                _ => Err(self.error(start(e), describe(e))),
            },
            Expr::InList {
                expr,
                list,
                negated,
            } => self.in_list(expr, list, *negated),
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => self.between(expr, *negated, low, high),
            Expr::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any {
                    return Err(self.error(start(e), "LIKE ANY is not supported"));
                }
                if let Some(escape) = escape_char {
                    return Err(self.error(
                        start(escape),
                        "LIKE has no ESCAPE clause: % and _ are always wildcards",
                    ));
                }
                self.like(expr, pattern, *negated)
            }
            Expr::IsNull(x) => self.is_null(x, false),
            Expr::IsNotNull(x) => self.is_null(x, true),
            Expr::Identifier(id) => Err(self.error(
                Some(id.span.start),
                format!(
                    "{} alone is not a condition: compare it with a value",
                    id.value
                ),
            )),
            Expr::Value(v) => {
                Err(self.error(Some(v.span.start), "a literal alone is not a condition"))
            }
            e => Err(self.error(start(e), describe(e))),
        }
    }

    /// Resolves a field name.
    fn field(&self, id: &Ident) -> Result<Target<'a>> {
        let at = Some(id.span.start);
        let name = &id.value;
        if let Some(index) = self.schema.field_index(name) {
            return Ok(Target {
                index,
                field: &self.schema.fields[index],
                length: false,
                at: id.span.start,
            });
        }
        if self.schema.vector_index(name).is_some() {
            return Err(self.error(
                at,
                format!("'{name}' is a vector field; filters apply to scalar fields"),
            ));
        }
        let hint = if ["pk", "id", "_id"].contains(&name.as_str()) {
            " (the primary key cannot be filtered)"
        } else {
            ""
        };
        Err(self.error(at, format!("field '{name}' not defined in schema{hint}")))
    }

    /// One side of a comparison: a field, `array_length(field)`, a literal, or anything else.
    fn side<'e>(&self, mut e: &'e Expr) -> Result<Side<'a, 'e>> {
        while let Expr::Nested(inner) = e {
            e = inner;
        }
        Ok(match e {
            Expr::Identifier(id) => Side::Target(self.field(id)?),
            Expr::Function(_) => Side::Target(self.array_length(e)?),
            Expr::Value(_) | Expr::UnaryOp { .. } => match self.literal(e)? {
                Some(lit) => Side::Literal(lit),
                None => Side::Other(e),
            },
            e => Side::Other(e),
        })
    }

    /// `array_length(field)` of an array field.
    fn array_length(&self, e: &Expr) -> Result<Target<'a>> {
        let Expr::Function(f) = e else {
            return Err(self.error(start(e), describe(e)));
        };
        let name = match f.name.0.as_slice() {
            [ObjectNamePart::Identifier(id)] if id.quote_style.is_none() => id,
            _ => return Err(self.error(start(e), describe(e))),
        };
        if !name.value.eq_ignore_ascii_case("array_length") {
            return Err(self.error(start(e), describe(e)));
        }
        let arg = match &f.args {
            FunctionArguments::List(list)
                if list.duplicate_treatment.is_none()
                    && list.clauses.is_empty()
                    && matches!(f.parameters, FunctionArguments::None)
                    && f.filter.is_none()
                    && f.over.is_none()
                    && f.null_treatment.is_none()
                    && f.within_group.is_empty() =>
            {
                match list.args.as_slice() {
                    [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Identifier(id)))] => id,
                    _ => {
                        return Err(
                            self.error(Some(name.span.start), "array_length takes one array field")
                        )
                    }
                }
            }
            _ => {
                return Err(self.error(Some(name.span.start), "array_length takes one array field"))
            }
        };
        let target = self.field(arg)?;
        if !target.field.data_type.is_array() {
            return Err(self.error(
                Some(arg.span.start),
                format!(
                    "array_length needs an array field; {} is {}",
                    target.field.name, target.field.data_type
                ),
            ));
        }
        Ok(Target {
            length: true,
            at: name.span.start,
            ..target
        })
    }

    /// A literal: a number (with at most one sign), a string or a boolean. `None` when `e` is
    /// another unary operation.
    fn literal(&self, e: &Expr) -> Result<Option<Literal>> {
        let (negative, value) = match e {
            Expr::Value(v) => (None, v),
            Expr::UnaryOp {
                op: op @ (UnaryOperator::Minus | UnaryOperator::Plus),
                expr,
            } => match &**expr {
                Expr::Value(v) if matches!(v.value, SqlValue::Number(..)) => {
                    (Some(*op == UnaryOperator::Minus), v)
                }
                inner => {
                    return Err(self.error(start(inner), "a sign applies only to a number"));
                }
            },
            _ => return Ok(None),
        };
        let at = value.span.start;
        let (raw, text) = match &value.value {
            SqlValue::Number(text, _) => {
                let raw = Raw::number(text, negative == Some(true))
                    .ok_or_else(|| self.error(Some(at), format!("'{text}' is not a number")))?;
                let sign = match negative {
                    Some(true) => "-",
                    Some(false) => "+",
                    None => "",
                };
                (raw, format!("{sign}{text}"))
            }
            SqlValue::SingleQuotedString(s) | SqlValue::DoubleQuotedString(s) => {
                (Raw::Str(s.clone()), format!("'{s}'"))
            }
            SqlValue::Boolean(b) => (Raw::Bool(*b), b.to_string()),
            SqlValue::Null => {
                return Err(self.error(
                    Some(at),
                    "NULL is not a value to compare with: use IS NULL or IS NOT NULL",
                ))
            }
            other => return Err(self.error(Some(at), format!("unsupported literal {other}"))),
        };
        Ok(Some(Literal { raw, text, at }))
    }

    /// The kind of a scalar operand; array fields are refused for `what`.
    fn scalar_kind(&self, target: &Target<'_>, what: &str) -> Result<Kind> {
        if target.length {
            return Ok(Kind::Int);
        }
        Kind::of(target.field.data_type).ok_or_else(|| {
            let name = &target.field.name;
            self.error(
                Some(target.at),
                format!(
                    "{what} does not apply to {} field {name}: use CONTAIN_ANY, CONTAIN_ALL, \
                     array_length({name}) or IS [NOT] NULL",
                    target.field.data_type
                ),
            )
        })
    }

    /// A literal converted to `kind`, or a type mismatch naming `label`.
    fn convert(&self, label: &str, kind: Kind, lit: &Literal) -> Result<Scalar> {
        Scalar::convert(&lit.raw, kind).ok_or_else(|| {
            self.error(
                Some(lit.at),
                format!("type mismatch: {label} vs {}", lit.text),
            )
        })
    }

    /// A target and a literal, in either order.
    fn target_and_literal(
        &self,
        left: &Expr,
        right: &Expr,
        what: &str,
    ) -> Result<(Target<'a>, Literal, bool)> {
        match (self.side(left)?, self.side(right)?) {
            (Side::Other(e), _) | (_, Side::Other(e)) => Err(self.error(
                start(e),
                format!(
                    "{what} compares a field or array_length(field) with a literal; {}",
                    describe(e)
                ),
            )),
            (Side::Target(t), Side::Literal(l)) => Ok((t, l, false)),
            (Side::Literal(l), Side::Target(t)) => Ok((t, l, true)),
            (Side::Target(a), Side::Target(b)) => Err(self.error(
                Some(b.at),
                format!(
                    "comparing two fields ({} and {}) is not supported; compare a field with \
                     a literal",
                    a.field.name, b.field.name
                ),
            )),
            (Side::Literal(a), Side::Literal(_)) => {
                Err(self.error(Some(a.at), format!("{what} needs a field on one side")))
            }
        }
    }

    fn comparison(&self, left: &Expr, op: CmpOp, right: &Expr) -> Result<Pred> {
        let (target, lit, flipped) = self.target_and_literal(left, right, "a comparison")?;
        let op = if flipped { op.flip() } else { op };
        let kind = self.scalar_kind(&target, "a comparison")?;
        if kind == Kind::Bool && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
            return Err(self.error(
                Some(target.at),
                format!(
                    "bool field {} is compared with = or != only",
                    target.field.name
                ),
            ));
        }
        let value = self.convert(&target.label(), kind, &lit)?;
        Ok(Pred::Cmp {
            operand: target.operand(),
            op,
            value,
        })
    }

    /// The literals of a list, converted for `label`.
    fn literals<'e>(
        &self,
        list: impl IntoIterator<Item = &'e Expr>,
        label: &str,
        kind: Kind,
        what: &str,
    ) -> Result<Vec<Scalar>> {
        list.into_iter()
            .map(|item| match self.side(item)? {
                Side::Literal(lit) => self.convert(label, kind, &lit),
                _ => Err(self.error(start(item), format!("{what} takes a list of literals"))),
            })
            .collect()
    }

    /// A target that is not a literal or anything else.
    fn target(&self, e: &Expr, what: &str) -> Result<Target<'a>> {
        match self.side(e)? {
            Side::Target(t) => Ok(t),
            _ => Err(self.error(start(e), format!("{what} applies to a field on its left"))),
        }
    }

    fn in_list(&self, expr: &Expr, list: &[Expr], negated: bool) -> Result<Pred> {
        let what = if negated { "NOT IN" } else { "IN" };
        let target = self.target(expr, what)?;
        let kind = self.scalar_kind(&target, what)?;
        if list.is_empty() {
            return Err(self.error(
                Some(target.at),
                format!(
                    "{what} () needs at least one value (field {})",
                    target.field.name
                ),
            ));
        }
        let values = self.literals(list, &target.label(), kind, what)?;
        Ok(Pred::In {
            operand: target.operand(),
            set: Set::new(kind, values),
            negated,
        })
    }

    fn between(&self, expr: &Expr, negated: bool, low: &Expr, high: &Expr) -> Result<Pred> {
        let target = self.target(expr, "BETWEEN")?;
        let kind = self.scalar_kind(&target, "BETWEEN")?;
        if kind == Kind::Bool {
            return Err(self.error(
                Some(target.at),
                format!(
                    "bool field {} is compared with = or != only",
                    target.field.name
                ),
            ));
        }
        let label = target.label();
        let mut bounds = self.literals([low, high], &label, kind, "BETWEEN")?;
        let (Some(high), Some(low)) = (bounds.pop(), bounds.pop()) else {
            return Err(self.error(Some(target.at), "BETWEEN needs two bounds"));
        };
        Ok(Pred::Between {
            operand: target.operand(),
            low,
            high,
            negated,
        })
    }

    fn like(&self, expr: &Expr, pattern: &Expr, negated: bool) -> Result<Pred> {
        let what = if negated { "NOT LIKE" } else { "LIKE" };
        let target = self.target(expr, what)?;
        if target.length || target.field.data_type != DataType::String {
            let ty = if target.length {
                "an integer".to_string()
            } else {
                target.field.data_type.to_string()
            };
            return Err(self.error(
                Some(target.at),
                format!(
                    "{what} needs a string field; {} is {ty}",
                    if target.length {
                        target.label()
                    } else {
                        target.field.name.clone()
                    }
                ),
            ));
        }
        let text = match self.side(pattern)? {
            Side::Literal(Literal {
                raw: Raw::Str(s), ..
            }) => s,
            Side::Literal(lit) => {
                return Err(self.error(
                    Some(lit.at),
                    format!("type mismatch: {} vs {}", target.label(), lit.text),
                ))
            }
            _ => {
                return Err(self.error(
                    start(pattern),
                    format!("{what} needs a string literal pattern"),
                ))
            }
        };
        Ok(Pred::Like {
            field: target.index,
            pattern: Pattern::new(&text),
            negated,
        })
    }

    fn is_null(&self, expr: &Expr, negated: bool) -> Result<Pred> {
        let what = if negated { "IS NOT NULL" } else { "IS NULL" };
        let target = self.target(expr, what)?;
        if target.length {
            return Err(self.error(
                Some(target.at),
                format!("{what} applies to a field, not to array_length"),
            ));
        }
        Ok(Pred::IsNull {
            field: target.index,
            negated,
        })
    }

    fn contain(&self, left: &Expr, name: &str, right: &Expr) -> Result<Pred> {
        let (all, negated) = match name {
            CONTAIN_ANY => (false, false),
            CONTAIN_ALL => (true, false),
            NOT_CONTAIN_ANY => (false, true),
            NOT_CONTAIN_ALL => (true, true),
            _ => return Err(self.error(start(left), format!("operator {name} is not supported"))),
        };
        let target = self.target(left, name)?;
        let ty = target.field.data_type;
        let kind = match ty.element().and_then(Kind::of) {
            Some(kind) if !target.length => kind,
            _ => {
                return Err(self.error(
                    Some(target.at),
                    format!("{name} needs an array field; {} is {ty}", target.field.name),
                ))
            }
        };
        let Expr::Tuple(list) = right else {
            return Err(self.error(start(right), format!("{name} takes a list of literals")));
        };
        let values = self.literals(list, &target.label(), kind, name)?;
        Ok(Pred::Contain {
            field: target.index,
            set: Set::new(kind, values),
            all,
            negated,
        })
    }
}
