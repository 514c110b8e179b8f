//! Documents as users write them, and the scalar values they hold.

use std::collections::BTreeMap;

use crate::schema::DataType;
use serde::{Deserialize, Serialize};

/// A scalar field value.
///
/// Integer and float values are converted to the field's declared type when a document is
/// written, with range checks (an `i64` of 2^31 does not fit an `int32` field and is refused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Value {
    /// No value (nullable fields only).
    Null,
    Bool(bool),
    Int32(i32),
    Int64(i64),
    UInt32(u32),
    UInt64(u64),
    Float(f32),
    Double(f64),
    String(String),
    BoolArray(Vec<bool>),
    Int32Array(Vec<i32>),
    Int64Array(Vec<i64>),
    UInt32Array(Vec<u32>),
    UInt64Array(Vec<u64>),
    FloatArray(Vec<f32>),
    DoubleArray(Vec<f64>),
    StringArray(Vec<String>),
}

impl Value {
    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as an integer, for any integer variant.
    pub fn as_i128(&self) -> Option<i128> {
        match *self {
            Value::Int32(v) => Some(v.into()),
            Value::Int64(v) => Some(v.into()),
            Value::UInt32(v) => Some(v.into()),
            Value::UInt64(v) => Some(v.into()),
            _ => None,
        }
    }

    /// The value as a float, for any numeric variant.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(v) => Some(v.into()),
            Value::Double(v) => Some(v),
            _ => self.as_i128().map(|v| v as f64),
        }
    }

    /// The value as a string slice.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Number of elements of an array value.
    pub fn array_len(&self) -> Option<usize> {
        Some(match self {
            Value::BoolArray(a) => a.len(),
            Value::Int32Array(a) => a.len(),
            Value::Int64Array(a) => a.len(),
            Value::UInt32Array(a) => a.len(),
            Value::UInt64Array(a) => a.len(),
            Value::FloatArray(a) => a.len(),
            Value::DoubleArray(a) => a.len(),
            Value::StringArray(a) => a.len(),
            _ => return None,
        })
    }

    /// The elements of an array value as scalar values.
    pub fn array_elements(&self) -> Option<Vec<Value>> {
        fn map<T: Clone>(a: &[T], f: impl Fn(T) -> Value) -> Vec<Value> {
            a.iter().cloned().map(f).collect()
        }
        Some(match self {
            Value::BoolArray(a) => map(a, Value::Bool),
            Value::Int32Array(a) => map(a, Value::Int32),
            Value::Int64Array(a) => map(a, Value::Int64),
            Value::UInt32Array(a) => map(a, Value::UInt32),
            Value::UInt64Array(a) => map(a, Value::UInt64),
            Value::FloatArray(a) => map(a, Value::Float),
            Value::DoubleArray(a) => map(a, Value::Double),
            Value::StringArray(a) => map(a, Value::String),
            _ => return None,
        })
    }

    /// This value converted to a field type with the rules writes use (integers range-checked,
    /// integers accepted for floats, arrays element by element), or why it cannot be.
    ///
    /// ```
    /// use stratavec::{DataType, Value};
    /// assert_eq!(Value::Int64(7).convert_to(DataType::Int32), Ok(Value::Int32(7)));
    /// assert!(Value::Int64(1 << 40).convert_to(DataType::Int32).is_err());
    /// ```
    pub fn convert_to(self, ty: crate::DataType) -> Result<Value, String> {
        coerce(self, ty)
    }

    /// A short name of the variant, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int32(_) => "int32",
            Value::Int64(_) => "int64",
            Value::UInt32(_) => "uint32",
            Value::UInt64(_) => "uint64",
            Value::Float(_) => "float",
            Value::Double(_) => "double",
            Value::String(_) => "string",
            Value::BoolArray(_) => "array_bool",
            Value::Int32Array(_) => "array_int32",
            Value::Int64Array(_) => "array_int64",
            Value::UInt32Array(_) => "array_uint32",
            Value::UInt64Array(_) => "array_uint64",
            Value::FloatArray(_) => "array_float",
            Value::DoubleArray(_) => "array_double",
            Value::StringArray(_) => "array_string",
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $v:ident),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(x: $t) -> Value {
                Value::$v(x)
            }
        })*
    };
}

value_from! {
    bool => Bool, i32 => Int32, i64 => Int64, u32 => UInt32, u64 => UInt64, f32 => Float,
    f64 => Double, String => String, Vec<bool> => BoolArray, Vec<i32> => Int32Array,
    Vec<i64> => Int64Array, Vec<u32> => UInt32Array, Vec<u64> => UInt64Array,
    Vec<f32> => FloatArray, Vec<f64> => DoubleArray, Vec<String> => StringArray,
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<Vec<&str>> for Value {
    fn from(a: Vec<&str>) -> Value {
        Value::StringArray(a.into_iter().map(str::to_string).collect())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::Null, Into::into)
    }
}

/// A document: a primary key, scalar fields and vectors.
///
/// ```
/// use stratavec::Doc;
/// let doc = Doc::new("a1").set("year", 2024).set("tags", vec!["rust", "db"]).vector("embedding", vec![0.1, 0.2]);
/// assert_eq!(doc.get("year").and_then(|v| v.as_i128()), Some(2024));
/// ```
///
/// The serde derives keep every value's variant (`{"Int32": 2024}`), so a document survives any
/// serde format unchanged without a schema; missing members take their defaults. For plain
/// JSON typed by a schema (`{"year": 2024}`), use `Doc::from_json` and `Doc::to_json` (feature
/// `json`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Doc {
    /// The primary key: 1..=1024 bytes of UTF-8 without NUL or newline.
    pub pk: String,
    /// Scalar fields by name.
    pub fields: BTreeMap<String, Value>,
    /// Vectors by field name.
    pub vectors: BTreeMap<String, Vec<f32>>,
    /// The similarity score when the document is a search hit (0 otherwise).
    pub score: f32,
}

impl Doc {
    /// An empty document with this primary key.
    pub fn new(pk: impl Into<String>) -> Self {
        Doc {
            pk: pk.into(),
            ..Doc::default()
        }
    }

    /// Sets a scalar field.
    pub fn set(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.insert(field.into(), value.into());
        self
    }

    /// Sets a vector.
    pub fn vector(mut self, field: impl Into<String>, vector: impl Into<Vec<f32>>) -> Self {
        self.vectors.insert(field.into(), vector.into());
        self
    }

    /// A scalar field's value.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field)
    }
}

/// What a write did to one document of its batch (zvec's per-document status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DocStatus {
    /// Written.
    Ok,
    /// Insert of a primary key that is already live.
    AlreadyExists,
    /// Update or delete of a primary key that is not live.
    NotFound,
}

fn int_in<T: TryFrom<i128>>(v: i128) -> Option<T> {
    T::try_from(v).ok()
}

/// Elements already converted to `elem`, as the array value of that element type.
pub(crate) fn pack_array(elem: DataType, values: Vec<Value>) -> Value {
    macro_rules! collect {
        ($variant:ident, $array:ident) => {
            Value::$array(
                values
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::$variant(x) => Some(x),
                        _ => None,
                    })
                    .collect(),
            )
        };
    }
    match elem {
        DataType::Bool => collect!(Bool, BoolArray),
        DataType::Int32 => collect!(Int32, Int32Array),
        DataType::Int64 => collect!(Int64, Int64Array),
        DataType::UInt32 => collect!(UInt32, UInt32Array),
        DataType::UInt64 => collect!(UInt64, UInt64Array),
        DataType::Float => collect!(Float, FloatArray),
        DataType::Double => collect!(Double, DoubleArray),
        _ => collect!(String, StringArray),
    }
}

/// Converts `value` to the field's declared type, or says why it cannot be.
pub(crate) fn coerce(value: Value, ty: DataType) -> std::result::Result<Value, String> {
    let mismatch = |v: &Value| format!("expected {ty}, got {}", v.kind());
    if let Some(elem) = ty.element() {
        let elements = value.array_elements().ok_or_else(|| mismatch(&value))?;
        let converted = elements
            .into_iter()
            .map(|e| coerce(e, elem))
            .collect::<std::result::Result<Vec<Value>, String>>()?;
        return Ok(pack_array(elem, converted));
    }
    let out_of_range = |v: i128| format!("value {v} is out of range for {ty}");
    Ok(match ty {
        DataType::Bool => match value {
            Value::Bool(b) => Value::Bool(b),
            other => return Err(mismatch(&other)),
        },
        DataType::String => match value {
            Value::String(s) => Value::String(s),
            other => return Err(mismatch(&other)),
        },
        DataType::Int32 | DataType::Int64 | DataType::UInt32 | DataType::UInt64 => {
            let v = value.as_i128().ok_or_else(|| mismatch(&value))?;
            match ty {
                DataType::Int32 => Value::Int32(int_in(v).ok_or_else(|| out_of_range(v))?),
                DataType::Int64 => Value::Int64(int_in(v).ok_or_else(|| out_of_range(v))?),
                DataType::UInt32 => Value::UInt32(int_in(v).ok_or_else(|| out_of_range(v))?),
                _ => Value::UInt64(int_in(v).ok_or_else(|| out_of_range(v))?),
            }
        }
        DataType::Float => match value {
            Value::Float(f) => Value::Float(f),
            Value::Double(d) if d.is_finite() && d.abs() > f32::MAX as f64 => {
                return Err(format!("value {d} is out of range for float"))
            }
            other => Value::Float(other.as_f64().ok_or_else(|| mismatch(&other))? as f32),
        },
        _ => Value::Double(value.as_f64().ok_or_else(|| mismatch(&value))?),
    })
}
