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

/// A JSON value as the closest untyped [`Value`]; the library then converts it to the field's
/// type with the same rules (and range checks) as every write.
fn loose(j: &Json) -> Result<Value, String> {
    Ok(match j {
        Json::Bool(b) => Value::Bool(*b),
        Json::String(s) => Value::String(s.clone()),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Int64(i),
            (None, Some(u), _) => Value::UInt64(u),
            (_, _, Some(f)) => Value::Double(f),
            _ => return Err(format!("unsupported number {n}")),
        },
        Json::Array(items) => {
            let items = items.iter().map(loose).collect::<Result<Vec<_>, _>>()?;
            let all = |f: fn(&Value) -> bool| items.iter().all(f);
            if all(|v| matches!(v, Value::Bool(_))) && !items.is_empty() {
                Value::BoolArray(
                    items
                        .iter()
                        .filter_map(|v| match v {
                            Value::Bool(b) => Some(*b),
                            _ => None,
                        })
                        .collect(),
                )
            } else if all(|v| matches!(v, Value::String(_))) {
                Value::StringArray(
                    items
                        .into_iter()
                        .filter_map(|v| match v {
                            Value::String(s) => Some(s),
                            _ => None,
                        })
                        .collect(),
                )
            } else if all(|v| matches!(v, Value::Int64(_))) {
                Value::Int64Array(
                    items
                        .iter()
                        .filter_map(|v| match v {
                            Value::Int64(i) => Some(*i),
                            _ => None,
                        })
                        .collect(),
                )
            } else if all(|v| {
                matches!(v, Value::Int64(i) if *i >= 0) || matches!(v, Value::UInt64(_))
            }) {
                Value::UInt64Array(
                    items
                        .iter()
                        .filter_map(|v| v.as_i128().and_then(|i| u64::try_from(i).ok()))
                        .collect(),
                )
            } else if all(|v| v.as_f64().is_some()) {
                Value::DoubleArray(items.iter().filter_map(Value::as_f64).collect())
            } else {
                return Err(format!("mixed or unsupported array elements in {j}"));
            }
        }
        Json::Null | Json::Object(_) => return Err(format!("unsupported value {j}")),
    })
}

fn scalar(t: DataType, j: &Json) -> Result<Value, String> {
    loose(j)?.convert_to(t)
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
