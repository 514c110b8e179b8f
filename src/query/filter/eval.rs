//! The compiled predicate tree and its evaluation over a row, in SQL's three-valued logic.

use std::cmp::Ordering;

use super::like::Pattern;
use super::literal::{Scalar, ScalarRef, Set};
use crate::doc::Value;

/// A truth value of three-valued logic: comparisons with NULL are `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tri {
    False,
    Unknown,
    True,
}

impl Tri {
    fn from_bool(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }

    /// `Unknown` when `b` is `None` (NULL), else `b` — negated when `negated`.
    fn of(b: Option<bool>, negated: bool) -> Tri {
        b.map_or(Tri::Unknown, |b| Tri::from_bool(b != negated))
    }

    fn not(self) -> Tri {
        match self {
            Tri::False => Tri::True,
            Tri::Unknown => Tri::Unknown,
            Tri::True => Tri::False,
        }
    }

    /// Whether a row with this outcome matches: only TRUE does.
    pub(super) fn is_true(self) -> bool {
        self == Tri::True
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// The operator with its operands swapped: `1 < n` is `n > 1`.
    pub(super) fn flip(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            op => op,
        }
    }

    /// Whether the operator holds for this ordering of value to literal; `None` is unordered
    /// (NaN), for which only `!=` holds.
    fn holds(self, ord: Option<Ordering>) -> bool {
        use Ordering::{Equal, Greater, Less};
        match self {
            CmpOp::Eq => ord == Some(Equal),
            CmpOp::Ne => ord != Some(Equal),
            CmpOp::Lt => ord == Some(Less),
            CmpOp::Le => matches!(ord, Some(Less | Equal)),
            CmpOp::Gt => ord == Some(Greater),
            CmpOp::Ge => matches!(ord, Some(Greater | Equal)),
        }
    }
}

/// What a comparison reads from the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operand {
    /// A scalar field's value.
    Field(usize),
    /// `array_length(f)` of an array field.
    ArrayLength(usize),
}

impl Operand {
    fn field(self) -> usize {
        match self {
            Operand::Field(f) | Operand::ArrayLength(f) => f,
        }
    }

    /// The operand's value in `row`; `None` for NULL.
    fn load<'a>(self, row: &impl Fn(usize) -> &'a Value) -> Option<ScalarRef<'a>> {
        match self {
            Operand::Field(f) => ScalarRef::of(row(f)),
            Operand::ArrayLength(f) => row(f).array_len().map(|n| ScalarRef::Int(n as i128)),
        }
    }
}

/// A compiled predicate: fields resolved to schema positions, literals converted to the
/// operands' kinds.
#[derive(Debug, Clone)]
pub(super) enum Pred {
    /// All of them (TRUE for none).
    And(Vec<Pred>),
    /// Any of them (FALSE for none).
    Or(Vec<Pred>),
    /// Negation; UNKNOWN stays UNKNOWN.
    Not(Box<Pred>),
    /// `f IS [NOT] NULL`: never UNKNOWN.
    IsNull { field: usize, negated: bool },
    /// `operand <op> literal`.
    Cmp {
        operand: Operand,
        op: CmpOp,
        value: Scalar,
    },
    /// `operand [NOT] IN (set)`.
    In {
        operand: Operand,
        set: Set,
        negated: bool,
    },
    /// `operand [NOT] BETWEEN low AND high`.
    Between {
        operand: Operand,
        low: Scalar,
        high: Scalar,
        negated: bool,
    },
    /// `f [NOT] LIKE pattern`.
    Like {
        field: usize,
        pattern: Pattern,
        negated: bool,
    },
    /// `f [NOT] CONTAIN_ANY (set)` or, with `all`, `CONTAIN_ALL`.
    Contain {
        field: usize,
        set: Set,
        all: bool,
        negated: bool,
    },
}

impl Pred {
    /// The predicate's truth value for `row` (which gives field `i`'s value).
    pub(super) fn eval<'a>(&self, row: &impl Fn(usize) -> &'a Value) -> Tri {
        match self {
            Pred::And(parts) => {
                let mut out = Tri::True;
                for p in parts {
                    match p.eval(row) {
                        Tri::False => return Tri::False,
                        Tri::Unknown => out = Tri::Unknown,
                        Tri::True => {}
                    }
                }
                out
            }
            Pred::Or(parts) => {
                let mut out = Tri::False;
                for p in parts {
                    match p.eval(row) {
                        Tri::True => return Tri::True,
                        Tri::Unknown => out = Tri::Unknown,
                        Tri::False => {}
                    }
                }
                out
            }
            Pred::Not(p) => p.eval(row).not(),
            Pred::IsNull { field, negated } => Tri::from_bool(row(*field).is_null() != *negated),
            Pred::Cmp { operand, op, value } => match operand.load(row) {
                Some(v) => Tri::of(v.compare(value).map(|ord| op.holds(ord)), false),
                None => Tri::Unknown,
            },
            Pred::In {
                operand,
                set,
                negated,
            } => Tri::of(operand.load(row).map(|v| set.contains(v)), *negated),
            Pred::Between {
                operand,
                low,
                high,
                negated,
            } => {
                let inside = operand.load(row).and_then(|v| {
                    let above = CmpOp::Ge.holds(v.compare(low)?);
                    let below = CmpOp::Le.holds(v.compare(high)?);
                    Some(above && below)
                });
                Tri::of(inside, *negated)
            }
            Pred::Like {
                field,
                pattern,
                negated,
            } => Tri::of(row(*field).as_str().map(|s| pattern.matches(s)), *negated),
            Pred::Contain {
                field,
                set,
                all,
                negated,
            } => {
                let array = row(*field);
                let held = if *all {
                    set.all_in(array)
                } else {
                    set.any_in(array)
                };
                Tri::of(held, *negated)
            }
        }
    }

    /// Appends the schema positions of the fields the predicate reads (with repeats).
    pub(super) fn collect_fields(&self, out: &mut Vec<usize>) {
        match self {
            Pred::And(parts) | Pred::Or(parts) => {
                for p in parts {
                    p.collect_fields(out);
                }
            }
            Pred::Not(p) => p.collect_fields(out),
            Pred::IsNull { field, .. } | Pred::Like { field, .. } | Pred::Contain { field, .. } => {
                out.push(*field)
            }
            Pred::Cmp { operand, .. }
            | Pred::In { operand, .. }
            | Pred::Between { operand, .. } => out.push(operand.field()),
        }
    }
}
