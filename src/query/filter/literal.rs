//! Values: literals as written, converted once to the kind of the operand they meet, the
//! borrowed view of a row's value they are compared with, and sorted literal sets.

use std::cmp::Ordering;

use crate::doc::Value;
use crate::schema::DataType;

/// A literal as written in the expression.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Raw {
    /// An integer (digits only). Beyond `i128`, saturated: no field holds such values anyway.
    Int(i128),
    /// A number with a fraction or an exponent.
    Float(f64),
    /// A single- or double-quoted string.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
}

impl Raw {
    /// Reads a number token's text, with its sign.
    pub(super) fn number(text: &str, negative: bool) -> Option<Raw> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            // Only overflow can fail on digits: saturate.
            let v = text.parse::<i128>().unwrap_or(i128::MAX);
            return Some(Raw::Int(if negative { -v } else { v }));
        }
        let valid = text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
        let v = text.parse::<f64>().ok().filter(|_| valid)?;
        Some(Raw::Float(if negative { -v } else { v }))
    }
}

/// The kind of value an operand holds: what its literals are converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Int,
    F32,
    F64,
    Str,
    Bool,
}

impl Kind {
    /// The kind of a scalar type; `None` for arrays.
    pub(super) fn of(ty: DataType) -> Option<Kind> {
        Some(match ty {
            DataType::Int32 | DataType::Int64 | DataType::UInt32 | DataType::UInt64 => Kind::Int,
            DataType::Float => Kind::F32,
            DataType::Double => Kind::F64,
            DataType::String => Kind::Str,
            DataType::Bool => Kind::Bool,
            _ => return None,
        })
    }
}

/// A literal converted to its operand's kind.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar {
    Int(i128),
    F32(f32),
    F64(f64),
    Str(String),
    Bool(bool),
}

impl Scalar {
    /// Converts a literal to `kind`, as a SQL cast of the literal to the field's type would:
    /// integers to any number kind, floats to float kinds only. `None`: the types do not meet.
    pub(super) fn convert(raw: &Raw, kind: Kind) -> Option<Scalar> {
        Some(match (raw, kind) {
            (Raw::Int(v), Kind::Int) => Scalar::Int(*v),
            (Raw::Int(v), Kind::F32) => Scalar::F32(*v as f32),
            (Raw::Float(v), Kind::F32) => Scalar::F32(*v as f32),
            (Raw::Int(v), Kind::F64) => Scalar::F64(*v as f64),
            (Raw::Float(v), Kind::F64) => Scalar::F64(*v),
            (Raw::Str(s), Kind::Str) => Scalar::Str(s.clone()),
            (Raw::Bool(b), Kind::Bool) => Scalar::Bool(*b),
            _ => return None,
        })
    }

    /// This literal as a stored value of type `ty`; `None` when out of the type's range.
    pub(super) fn to_value(&self, ty: DataType) -> Option<Value> {
        Some(match (self, ty) {
            (Scalar::Int(v), DataType::Int32) => Value::Int32(i32::try_from(*v).ok()?),
            (Scalar::Int(v), DataType::Int64) => Value::Int64(i64::try_from(*v).ok()?),
            (Scalar::Int(v), DataType::UInt32) => Value::UInt32(u32::try_from(*v).ok()?),
            (Scalar::Int(v), DataType::UInt64) => Value::UInt64(u64::try_from(*v).ok()?),
            (Scalar::F32(v), _) => Value::Float(*v),
            (Scalar::F64(v), _) => Value::Double(*v),
            (Scalar::Str(s), _) => Value::String(s.clone()),
            (Scalar::Bool(b), _) => Value::Bool(*b),
            _ => return None,
        })
    }
}

/// A row's scalar value, borrowed, in the same kinds as [`Scalar`].
#[derive(Debug, Clone, Copy)]
pub(super) enum ScalarRef<'a> {
    Int(i128),
    F32(f32),
    F64(f64),
    Str(&'a str),
    Bool(bool),
}

impl<'a> ScalarRef<'a> {
    /// The view of a scalar value; `None` for NULL (and for arrays).
    pub(super) fn of(v: &'a Value) -> Option<ScalarRef<'a>> {
        Some(match v {
            Value::Bool(b) => ScalarRef::Bool(*b),
            Value::Int32(x) => ScalarRef::Int((*x).into()),
            Value::Int64(x) => ScalarRef::Int((*x).into()),
            Value::UInt32(x) => ScalarRef::Int((*x).into()),
            Value::UInt64(x) => ScalarRef::Int((*x).into()),
            Value::Float(x) => ScalarRef::F32(*x),
            Value::Double(x) => ScalarRef::F64(*x),
            Value::String(s) => ScalarRef::Str(s),
            _ => return None,
        })
    }

    /// How this value orders against a literal: `Some(None)` when unordered (NaN), `None`
    /// when the kinds differ (which the type checker rules out).
    pub(super) fn compare(self, lit: &Scalar) -> Option<Option<Ordering>> {
        Some(match (self, lit) {
            (ScalarRef::Int(a), Scalar::Int(b)) => Some(a.cmp(b)),
            (ScalarRef::F32(a), Scalar::F32(b)) => a.partial_cmp(b),
            (ScalarRef::F64(a), Scalar::F64(b)) => a.partial_cmp(b),
            (ScalarRef::Str(a), Scalar::Str(b)) => Some(a.cmp(b.as_str())),
            (ScalarRef::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
            _ => return None,
        })
    }

    /// Whether two values are equal (IEEE equality for floats).
    fn equals(self, other: ScalarRef<'_>) -> bool {
        match (self, other) {
            (ScalarRef::Int(a), ScalarRef::Int(b)) => a == b,
            (ScalarRef::F32(a), ScalarRef::F32(b)) => a == b,
            (ScalarRef::F64(a), ScalarRef::F64(b)) => a == b,
            (ScalarRef::Str(a), ScalarRef::Str(b)) => a == b,
            (ScalarRef::Bool(a), ScalarRef::Bool(b)) => a == b,
            _ => false,
        }
    }
}

/// Calls `f` on the elements of an array value until it returns true. `None` when the value
/// is not an array (NULL).
pub(super) fn any_element<'a>(
    v: &'a Value,
    mut f: impl FnMut(ScalarRef<'a>) -> bool,
) -> Option<bool> {
    Some(match v {
        Value::BoolArray(a) => a.iter().any(|x| f(ScalarRef::Bool(*x))),
        Value::Int32Array(a) => a.iter().any(|x| f(ScalarRef::Int((*x).into()))),
        Value::Int64Array(a) => a.iter().any(|x| f(ScalarRef::Int((*x).into()))),
        Value::UInt32Array(a) => a.iter().any(|x| f(ScalarRef::Int((*x).into()))),
        Value::UInt64Array(a) => a.iter().any(|x| f(ScalarRef::Int((*x).into()))),
        Value::FloatArray(a) => a.iter().any(|x| f(ScalarRef::F32(*x))),
        Value::DoubleArray(a) => a.iter().any(|x| f(ScalarRef::F64(*x))),
        Value::StringArray(a) => a.iter().any(|x| f(ScalarRef::Str(x))),
        _ => return None,
    })
}

/// A set of literals of one kind, sorted and distinct, for `IN` and `CONTAIN_*`. Floats are
/// kept with `-0.0` folded into `0.0`, so that lookups by total order agree with `==`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Set {
    Int(Vec<i128>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Str(Vec<String>),
    Bool(Vec<bool>),
}

fn sorted<T>(mut v: Vec<T>, cmp: impl Fn(&T, &T) -> Ordering) -> Vec<T> {
    v.sort_by(&cmp);
    v.dedup_by(|a, b| cmp(a, b) == Ordering::Equal);
    v
}

impl Set {
    /// The set of `values`, all of which are of `kind`.
    pub(super) fn new(kind: Kind, values: Vec<Scalar>) -> Set {
        macro_rules! pick {
            ($variant:ident, $map:expr) => {
                values
                    .into_iter()
                    .filter_map(|v| match v {
                        Scalar::$variant(x) => Some($map(x)),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            };
        }
        match kind {
            Kind::Int => Set::Int(sorted(pick!(Int, |x| x), Ord::cmp)),
            Kind::F32 => Set::F32(sorted(pick!(F32, |x: f32| x + 0.0), f32::total_cmp)),
            Kind::F64 => Set::F64(sorted(pick!(F64, |x: f64| x + 0.0), f64::total_cmp)),
            Kind::Str => Set::Str(sorted(pick!(Str, |x| x), Ord::cmp)),
            Kind::Bool => Set::Bool(sorted(pick!(Bool, |x| x), Ord::cmp)),
        }
    }

    /// Whether the set holds a value equal to `v`.
    pub(super) fn contains(&self, v: ScalarRef<'_>) -> bool {
        match (self, v) {
            (Set::Int(s), ScalarRef::Int(x)) => s.binary_search(&x).is_ok(),
            // `+ 0.0` folds -0.0 into 0.0; NaN finds nothing, as NaN equals nothing.
            (Set::F32(s), ScalarRef::F32(x)) => {
                !x.is_nan() && s.binary_search_by(|p| p.total_cmp(&(x + 0.0))).is_ok()
            }
            (Set::F64(s), ScalarRef::F64(x)) => {
                !x.is_nan() && s.binary_search_by(|p| p.total_cmp(&(x + 0.0))).is_ok()
            }
            (Set::Str(s), ScalarRef::Str(x)) => s.binary_search_by(|p| p.as_str().cmp(x)).is_ok(),
            (Set::Bool(s), ScalarRef::Bool(x)) => s.contains(&x),
            _ => false,
        }
    }

    /// Whether every member of the set satisfies `f`.
    pub(super) fn all(&self, mut f: impl FnMut(ScalarRef<'_>) -> bool) -> bool {
        match self {
            Set::Int(s) => s.iter().all(|x| f(ScalarRef::Int(*x))),
            Set::F32(s) => s.iter().all(|x| f(ScalarRef::F32(*x))),
            Set::F64(s) => s.iter().all(|x| f(ScalarRef::F64(*x))),
            Set::Str(s) => s.iter().all(|x| f(ScalarRef::Str(x))),
            Set::Bool(s) => s.iter().all(|x| f(ScalarRef::Bool(*x))),
        }
    }

    /// Whether the array value holds every member of the set; `None` for NULL.
    pub(super) fn all_in(&self, array: &Value) -> Option<bool> {
        // Checked first so that an empty set still tells NULL apart.
        any_element(array, |_| false)?;
        Some(self.all(|s| any_element(array, |e| e.equals(s)) == Some(true)))
    }

    /// Whether the array value holds any member of the set; `None` for NULL.
    pub(super) fn any_in(&self, array: &Value) -> Option<bool> {
        any_element(array, |e| self.contains(e))
    }

    /// The members as stored values of type `ty`, leaving out those out of its range.
    pub(super) fn to_values(&self, ty: DataType) -> Vec<Value> {
        let scalar = |s: Scalar| s.to_value(ty);
        match self {
            Set::Int(s) => s.iter().filter_map(|x| scalar(Scalar::Int(*x))).collect(),
            Set::F32(s) => s.iter().filter_map(|x| scalar(Scalar::F32(*x))).collect(),
            Set::F64(s) => s.iter().filter_map(|x| scalar(Scalar::F64(*x))).collect(),
            Set::Str(s) => s.iter().map(|x| Value::String(x.clone())).collect(),
            Set::Bool(s) => s.iter().map(|x| Value::Bool(*x)).collect(),
        }
    }
}
