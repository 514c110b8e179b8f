//! Documents and values to and from JSON, typed by the collection's schema.

use serde_json::{json, Map, Number, Value as Json};
use stratavec::{CollectionSchema, DataType, Doc, Value};

/// An `f32` as the shortest decimal that reads back as the same `f32` (not its long `f64`
/// expansion); NaN and infinities are `null`.
pub fn f32_json(x: f32) -> Json {
    if !x.is_finite() {
        return Json::Null;
    }
    x.to_string()
        .parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or(Json::Null, Json::Number)
}

fn f64_json(x: f64) -> Json {
    Number::from_f64(x).map_or(Json::Null, Json::Number)
}

/// A scalar value as JSON.
pub fn value_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int32(x) => json!(x),
        Value::Int64(x) => json!(x),
        Value::UInt32(x) => json!(x),
        Value::UInt64(x) => json!(x),
        Value::Float(x) => f32_json(*x),
        Value::Double(x) => f64_json(*x),
        Value::String(s) => json!(s),
        Value::BoolArray(a) => json!(a),
        Value::Int32Array(a) => json!(a),
        Value::Int64Array(a) => json!(a),
        Value::UInt32Array(a) => json!(a),
        Value::UInt64Array(a) => json!(a),
        Value::FloatArray(a) => Json::Array(a.iter().map(|x| f32_json(*x)).collect()),
        Value::DoubleArray(a) => Json::Array(a.iter().map(|x| f64_json(*x)).collect()),
        Value::StringArray(a) => json!(a),
    }
}

/// A vector as a JSON array.
pub fn vector_json(v: &[f32]) -> Json {
    Json::Array(v.iter().map(|x| f32_json(*x)).collect())
}

/// A document's scalar fields as a JSON object.
pub fn fields_json(doc: &Doc) -> Json {
    Json::Object(
        doc.fields
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect(),
    )
}

/// A document's vectors as a JSON object.
pub fn vectors_json(doc: &Doc) -> Json {
    Json::Object(
        doc.vectors
            .iter()
            .map(|(k, v)| (k.clone(), vector_json(v)))
            .collect(),
    )
}

fn int_of(j: &Json, min: i128, max: i128) -> Result<i128, String> {
    let v = match j {
        Json::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        _ => None,
    };
    match v {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        Some(v) => Err(format!("{v} is out of range")),
        None => Err(format!("expected an integer, got {j}")),
    }
}

fn float_of(j: &Json) -> Result<f64, String> {
    j.as_f64()
        .ok_or_else(|| format!("expected a number, got {j}"))
}

fn scalar(t: DataType, j: &Json) -> Result<Value, String> {
    Ok(match t {
        DataType::Bool => Value::Bool(
            j.as_bool()
                .ok_or_else(|| format!("expected true or false, got {j}"))?,
        ),
        DataType::Int32 => Value::Int32(int_of(j, i32::MIN.into(), i32::MAX.into())? as i32),
        DataType::Int64 => Value::Int64(int_of(j, i64::MIN.into(), i64::MAX.into())? as i64),
        DataType::UInt32 => Value::UInt32(int_of(j, 0, u32::MAX.into())? as u32),
        DataType::UInt64 => Value::UInt64(int_of(j, 0, u64::MAX.into())? as u64),
        DataType::Float => {
            let x = float_of(j)? as f32;
            if !x.is_finite() {
                return Err(format!("{j} does not fit a float"));
            }
            Value::Float(x)
        }
        DataType::Double => Value::Double(float_of(j)?),
        DataType::String => Value::String(
            j.as_str()
                .ok_or_else(|| format!("expected a string, got {j}"))?
                .to_string(),
        ),
        array => {
            let elem = array
                .element()
                .ok_or_else(|| format!("unsupported type {array}"))?;
            let items = j
                .as_array()
                .ok_or_else(|| format!("expected an array, got {j}"))?;
            let values = items
                .iter()
                .map(|x| scalar(elem, x))
                .collect::<Result<Vec<_>, _>>()?;
            macro_rules! collect {
                ($variant:ident, $arr:ident) => {
                    Value::$arr(
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
                DataType::String => collect!(String, StringArray),
                other => return Err(format!("unsupported array element type {other}")),
            }
        }
    })
}

/// One JSON-lines document: `{"pk": "...", "fields": {...}, "vectors": {"name": [floats]}}`,
/// each field converted to its schema type.
pub fn doc_from_json(schema: &CollectionSchema, line: &str) -> Result<Doc, String> {
    let j: Json = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let obj = j
        .as_object()
        .ok_or_else(|| "expected a JSON object".to_string())?;
    for key in obj.keys() {
        if !matches!(key.as_str(), "pk" | "fields" | "vectors") {
            return Err(format!(
                "unknown key {key:?} (expected pk, fields, vectors)"
            ));
        }
    }
    let pk = match obj.get("pk") {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Number(n)) => n.to_string(),
        _ => return Err("\"pk\" must be a string".into()),
    };
    let mut doc = Doc::new(pk);
    let empty = Map::new();
    let object = |key: &str| -> Result<&Map<String, Json>, String> {
        match obj.get(key) {
            None | Some(Json::Null) => Ok(&empty),
            Some(Json::Object(m)) => Ok(m),
            Some(_) => Err(format!("\"{key}\" must be an object")),
        }
    };
    for (name, value) in object("fields")? {
        let f = schema
            .field_index(name)
            .map(|i| &schema.fields[i])
            .ok_or_else(|| format!("field {name:?} is not in the schema"))?;
        let v = if value.is_null() {
            Value::Null
        } else {
            scalar(f.data_type, value).map_err(|e| format!("field {name:?}: {e}"))?
        };
        doc = doc.set(name.clone(), v);
    }
    for (name, value) in object("vectors")? {
        if schema.vector_index(name).is_none() {
            return Err(format!("vector {name:?} is not in the schema"));
        }
        let items = value
            .as_array()
            .ok_or_else(|| format!("vector {name:?}: expected an array of numbers"))?;
        let v = items
            .iter()
            .map(|x| x.as_f64().map(|x| x as f32))
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| format!("vector {name:?}: expected an array of numbers"))?;
        doc = doc.vector(name.clone(), v);
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratavec::{FieldSchema, VectorSchema};

    #[test]
    fn jsonl_doc_is_typed_by_the_schema() {
        let schema = CollectionSchema::new("c")
            .field(FieldSchema::new("year", DataType::Int32))
            .field(FieldSchema::new("tags", DataType::ArrayString).nullable())
            .field(FieldSchema::new("w", DataType::Float))
            .vector(VectorSchema::new("e", 2));
        let doc = doc_from_json(
            &schema,
            r#"{"pk": "a", "fields": {"year": 2024, "tags": ["x"], "w": 0.5}, "vectors": {"e": [1, 0.25]}}"#,
        )
        .unwrap();
        assert_eq!(doc.get("year"), Some(&Value::Int32(2024)));
        assert_eq!(doc.get("tags"), Some(&Value::StringArray(vec!["x".into()])));
        assert_eq!(doc.vectors["e"], vec![1.0, 0.25]);
        assert!(doc_from_json(&schema, r#"{"pk": "a", "fields": {"year": 3000000000}}"#).is_err());
        assert!(doc_from_json(&schema, r#"{"pk": "a", "fields": {"nope": 1}}"#).is_err());
        assert_eq!(f32_json(0.1).to_string(), "0.1");
    }
}
