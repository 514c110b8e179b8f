//! Documents and values as plain JSON, typed by a collection's schema (feature `json`, on by
//! default).
//!
//! A document is `{"pk": "...", "fields": {"name": value}, "vectors": {"name": [floats]}}`.
//! JSON has one number type, so reading needs the schema: each field's value is converted to
//! its declared type with the rules every write uses ([`Value::convert_to`]: integers
//! range-checked, integers accepted for float fields, arrays element by element). Writing needs
//! no schema. This is the form of the command-line tool's `import --jsonl` and `export`.
//!
//! The serde derives of [`Doc`] and [`Value`] are a different, schema-free form that keeps
//! each value's variant (`{"Int32": 7}`); use them to store documents losslessly in a format of
//! your choice, and this module to exchange documents with people and other programs.
//!
//! Every function here returns an error, never panics, whatever the input.

use serde_json::{Map, Number, Value as Json};

use crate::doc::{pack_array, Doc, Value};
use crate::error::{Error, Result};
use crate::schema::{CollectionSchema, DataType};

/// The keys a JSON document may have.
const DOC_KEYS: [&str; 3] = ["pk", "fields", "vectors"];

impl Doc {
    /// Reads a document in the JSON form `{"pk": "...", "fields": {...}, "vectors": {...}}`,
    /// converting each field to its type in `schema`.
    ///
    /// `fields` and `vectors` may be left out or `null`; a field given as `null` is
    /// [`Value::Null`] (a nullable field's "no value", or a cleared field in an update). A
    /// numeric `pk` is taken as its decimal text. Other keys, and names that are not in the
    /// schema, are refused, so that a typo does not silently drop data. Whether the document
    /// is complete enough for an insert is checked by the write, as for any document.
    ///
    /// Errors: [`Error::InvalidJson`] when the JSON is not a document (not an object, no
    /// usable `pk`, an unknown key), [`Error::InvalidDoc`] naming the field when a value does
    /// not fit the schema.
    ///
    /// ```
    /// use serde_json::json;
    /// use stratavec::{CollectionSchema, DataType, Doc, FieldSchema, Value, VectorSchema};
    ///
    /// let schema = CollectionSchema::new("articles")
    ///     .field(FieldSchema::new("year", DataType::Int32))
    ///     .field(FieldSchema::new("tags", DataType::ArrayString).nullable())
    ///     .vector(VectorSchema::new("embedding", 2));
    /// let json = json!({"pk": "a1", "fields": {"year": 2024, "tags": ["rust"]},
    ///                   "vectors": {"embedding": [0.5, 1]}});
    /// let doc = Doc::from_json(&json, &schema)?;
    /// assert_eq!(doc.get("year"), Some(&Value::Int32(2024)));
    /// assert_eq!(doc.vectors["embedding"], [0.5, 1.0]);
    /// // Back to JSON: the same document.
    /// assert_eq!(doc.to_json(), json!({"pk": "a1", "fields": {"tags": ["rust"], "year": 2024},
    ///                                  "vectors": {"embedding": [0.5, 1.0]}}));
    ///
    /// // A value the field's type cannot hold is an error, not a panic or a silent cast.
    /// let too_big = json!({"pk": "a2", "fields": {"year": 3_000_000_000u64}});
    /// assert!(Doc::from_json(&too_big, &schema).is_err());
    /// # Ok::<(), stratavec::Error>(())
    /// ```
    pub fn from_json(json: &Json, schema: &CollectionSchema) -> Result<Doc> {
        let obj = json
            .as_object()
            .ok_or_else(|| not_a_doc(format!("expected a JSON object, got {}", json_kind(json))))?;
        if let Some(key) = obj.keys().find(|k| !DOC_KEYS.contains(&k.as_str())) {
            return Err(not_a_doc(format!(
                "unknown key {key:?} (expected pk, fields, vectors)"
            )));
        }
        let pk = match obj.get("pk") {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(not_a_doc(format!(
                    "\"pk\" must be a string, got {}",
                    json_kind(other)
                )))
            }
            None => return Err(not_a_doc("\"pk\" is missing".into())),
        };
        let mut doc = Doc::new(pk);
        for (name, value) in section(obj, "fields")? {
            let f = schema
                .field_index(name)
                .map(|i| &schema.fields[i])
                .ok_or_else(|| {
                    invalid(&doc.pk, format!("'{name}' not found in collection schema"))
                })?;
            let v = Value::from_json(value, f.data_type)
                .map_err(|e| invalid(&doc.pk, format!("field[{name}]: {}", reason(e))))?;
            doc.fields.insert(name.clone(), v);
        }
        for (name, value) in section(obj, "vectors")? {
            if schema.vector_index(name).is_none() {
                return Err(invalid(
                    &doc.pk,
                    format!("'{name}' not found in collection schema"),
                ));
            }
            let v = vector_from_json(value)
                .map_err(|e| invalid(&doc.pk, format!("field[{name}]: {e}")))?;
            doc.vectors.insert(name.clone(), v);
        }
        Ok(doc)
    }

    /// [`Doc::from_json`] of a JSON text, e.g. one line of a JSON-lines file. Text that is not
    /// JSON is an [`Error::InvalidJson`] saying where it stops being JSON.
    ///
    /// ```
    /// use stratavec::{CollectionSchema, Doc, VectorSchema};
    /// let schema = CollectionSchema::new("c").vector(VectorSchema::new("v", 2));
    /// let doc = Doc::from_json_str(r#"{"pk": "a", "vectors": {"v": [1, 2]}}"#, &schema)?;
    /// assert_eq!(doc.pk, "a");
    /// assert!(Doc::from_json_str(r#"{"pk": "a", "#, &schema).is_err());
    /// # Ok::<(), stratavec::Error>(())
    /// ```
    pub fn from_json_str(text: &str, schema: &CollectionSchema) -> Result<Doc> {
        let json: Json = serde_json::from_str(text).map_err(|e| Error::InvalidJson {
            reason: format!("document is not valid JSON: {e}"),
        })?;
        Doc::from_json(&json, schema)
    }

    /// The document in the JSON form [`Doc::from_json`] reads: `{"pk", "fields", "vectors"}`,
    /// with every field and vector the document holds (both objects present, maybe empty).
    /// The search score is not part of it.
    ///
    /// Floats are written as the shortest decimal that reads back as the same `f32`, so
    /// `0.1f32` is `0.1`, not `0.10000000149011612`. JSON has no NaN or infinity: such values
    /// (which writes refuse in vectors, but a float field may hold) are written as `null`.
    pub fn to_json(&self) -> Json {
        let mut obj = Map::new();
        obj.insert("pk".into(), Json::String(self.pk.clone()));
        obj.insert("fields".into(), fields_to_json(self));
        obj.insert("vectors".into(), vectors_to_json(self));
        Json::Object(obj)
    }
}

impl Value {
    /// Reads a JSON value as a value of type `data_type`, with the rules writes use (see
    /// [`Value::convert_to`]); JSON `null` is [`Value::Null`]. A mismatch or an out-of-range
    /// number is an [`Error::InvalidJson`] that says what was expected.
    ///
    /// ```
    /// use serde_json::json;
    /// use stratavec::{DataType, Value};
    /// assert_eq!(Value::from_json(&json!(7), DataType::UInt32)?, Value::UInt32(7));
    /// assert_eq!(Value::from_json(&json!([1, 2]), DataType::ArrayDouble)?,
    ///            Value::DoubleArray(vec![1.0, 2.0]));
    /// assert!(Value::from_json(&json!(-1), DataType::UInt32).is_err());
    /// assert!(Value::from_json(&json!("7"), DataType::Int32).is_err());
    /// # Ok::<(), stratavec::Error>(())
    /// ```
    pub fn from_json(json: &Json, data_type: DataType) -> Result<Value> {
        if json.is_null() {
            return Ok(Value::Null);
        }
        typed(json, data_type).map_err(|reason| Error::InvalidJson { reason })
    }

    /// The value as JSON: numbers, strings, booleans, arrays; [`Value::Null`] (and a
    /// non-finite float) is `null`.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int32(x) => Json::from(*x),
            Value::Int64(x) => Json::from(*x),
            Value::UInt32(x) => Json::from(*x),
            Value::UInt64(x) => Json::from(*x),
            Value::Float(x) => f32_to_json(*x),
            Value::Double(x) => f64_to_json(*x),
            Value::String(s) => Json::String(s.clone()),
            Value::BoolArray(a) => Json::from(a.clone()),
            Value::Int32Array(a) => Json::from(a.clone()),
            Value::Int64Array(a) => Json::from(a.clone()),
            Value::UInt32Array(a) => Json::from(a.clone()),
            Value::UInt64Array(a) => Json::from(a.clone()),
            Value::FloatArray(a) => vector_to_json(a),
            Value::DoubleArray(a) => Json::Array(a.iter().map(|x| f64_to_json(*x)).collect()),
            Value::StringArray(a) => Json::from(a.clone()),
        }
    }
}

/// An `f32` as the shortest decimal that reads back as the same `f32` (not its long `f64`
/// expansion); NaN and infinities are `null`. For scores and single components.
///
/// ```
/// assert_eq!(stratavec::json::f32_to_json(0.1).to_string(), "0.1");
/// assert!(stratavec::json::f32_to_json(f32::NAN).is_null());
/// ```
pub fn f32_to_json(x: f32) -> Json {
    if !x.is_finite() {
        return Json::Null;
    }
    // `f32`'s Display is the shortest round-tripping decimal; as an f64 it prints the same.
    x.to_string()
        .parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or(Json::Null, Json::Number)
}

fn f64_to_json(x: f64) -> Json {
    Number::from_f64(x).map_or(Json::Null, Json::Number)
}

/// A vector as a JSON array of numbers (see [`f32_to_json`]).
pub fn vector_to_json(v: &[f32]) -> Json {
    Json::Array(v.iter().map(|x| f32_to_json(*x)).collect())
}

/// A document's scalar fields as a JSON object (the `fields` of [`Doc::to_json`]).
pub fn fields_to_json(doc: &Doc) -> Json {
    Json::Object(
        doc.fields
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect(),
    )
}

/// A document's vectors as a JSON object (the `vectors` of [`Doc::to_json`]).
pub fn vectors_to_json(doc: &Doc) -> Json {
    Json::Object(
        doc.vectors
            .iter()
            .map(|(k, v)| (k.clone(), vector_to_json(v)))
            .collect(),
    )
}

/// A JSON array of numbers as an `f32` vector. Components beyond `f32`'s range are refused
/// here rather than becoming infinities the write would refuse with a vaguer message.
pub fn vector_from_json(json: &Json) -> Result<Vec<f32>> {
    let items = json.as_array().ok_or_else(|| Error::InvalidJson {
        reason: format!("expected an array of numbers, got {}", json_kind(json)),
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let x = x.as_f64().ok_or_else(|| Error::InvalidJson {
                reason: format!("component {i} is {}, expected a number", json_kind(x)),
            })?;
            let f = x as f32;
            if !f.is_finite() {
                return Err(Error::InvalidJson {
                    reason: format!("component {i} ({x}) is out of range for float"),
                });
            }
            Ok(f)
        })
        .collect()
}

fn not_a_doc(reason: String) -> Error {
    Error::InvalidJson {
        reason: format!("not a JSON document: {reason}"),
    }
}

/// A document error worded like the write path's (`Invalid doc[pk]: field[...]: ...`), built
/// here so that this module stays beside `doc.rs`, below the engine it does not need.
fn invalid(pk: &str, reason: String) -> Error {
    Error::InvalidDoc {
        pk: pk.chars().take(32).collect(),
        reason,
    }
}

/// The message of an error made by this module, without the variant's prefix.
fn reason(e: Error) -> String {
    match e {
        Error::InvalidJson { reason } => reason,
        other => other.to_string(),
    }
}

/// The object under `key` (`fields`, `vectors`); absent or `null` is empty.
fn section<'a>(obj: &'a Map<String, Json>, key: &str) -> Result<Vec<(&'a String, &'a Json)>> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Object(m)) => Ok(m.iter().collect()),
        Some(other) => Err(not_a_doc(format!(
            "\"{key}\" must be an object, got {}",
            json_kind(other)
        ))),
    }
}

fn json_kind(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// A JSON scalar as the closest untyped [`Value`], for [`Value::convert_to`] to check and
/// convert: integers stay integers (so range checks are exact), other numbers are doubles.
fn loose_scalar(j: &Json) -> std::result::Result<Value, String> {
    match j {
        Json::Bool(b) => Ok(Value::Bool(*b)),
        Json::String(s) => Ok(Value::String(s.clone())),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(Value::Int64(i))
            } else if let Some(u) = n.as_u64() {
                Ok(Value::UInt64(u))
            } else {
                n.as_f64()
                    .map(Value::Double)
                    .ok_or_else(|| format!("unsupported number {n}"))
            }
        }
        other => Err(format!("got {}", json_kind(other))),
    }
}

/// A JSON value as a value of type `ty` (not null).
fn typed(j: &Json, ty: DataType) -> std::result::Result<Value, String> {
    let Some(elem) = ty.element() else {
        return match j {
            Json::Array(_) | Json::Object(_) | Json::Null => {
                Err(format!("expected {ty}, got {}", json_kind(j)))
            }
            _ => loose_scalar(j)?.convert_to(ty),
        };
    };
    let items = j
        .as_array()
        .ok_or_else(|| format!("expected {ty}, got {}", json_kind(j)))?;
    let values = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            if item.is_array() || item.is_object() || item.is_null() {
                return Err(format!(
                    "element {i}: expected {elem}, got {}",
                    json_kind(item)
                ));
            }
            loose_scalar(item)
                .and_then(|v| v.convert_to(elem))
                .map_err(|e| format!("element {i}: {e}"))
        })
        .collect::<std::result::Result<Vec<Value>, String>>()?;
    Ok(pack_array(elem, values))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::{FieldSchema, VectorSchema};
    use serde_json::json;

    fn schema() -> CollectionSchema {
        CollectionSchema::new("c")
            .field(FieldSchema::new("year", DataType::Int32))
            .field(FieldSchema::new("tags", DataType::ArrayString).nullable())
            .field(FieldSchema::new("w", DataType::Float).nullable())
            .field(FieldSchema::new("big", DataType::UInt64).nullable())
            .field(FieldSchema::new("ids", DataType::ArrayInt64).nullable())
            .field(FieldSchema::new("ok", DataType::Bool).nullable())
            .vector(VectorSchema::new("e", 2))
    }

    #[test]
    fn fields_are_typed_by_the_schema() -> Result<()> {
        let doc = Doc::from_json(
            &json!({"pk": "a", "fields": {"year": 2024, "tags": ["x"], "w": 1,
                    "big": u64::MAX, "ids": [-1, 2], "ok": true},
                    "vectors": {"e": [1, 0.25]}}),
            &schema(),
        )?;
        assert_eq!(doc.get("year"), Some(&Value::Int32(2024)));
        assert_eq!(doc.get("tags"), Some(&Value::StringArray(vec!["x".into()])));
        assert_eq!(doc.get("w"), Some(&Value::Float(1.0)));
        assert_eq!(doc.get("big"), Some(&Value::UInt64(u64::MAX)));
        assert_eq!(doc.get("ids"), Some(&Value::Int64Array(vec![-1, 2])));
        assert_eq!(doc.vectors["e"], vec![1.0, 0.25]);
        // Empty arrays take the field's element type.
        let doc = Doc::from_json(
            &json!({"pk": 7, "fields": {"ids": [], "tags": null}}),
            &schema(),
        )?;
        assert_eq!(doc.pk, "7");
        assert_eq!(doc.get("ids"), Some(&Value::Int64Array(vec![])));
        assert_eq!(doc.get("tags"), Some(&Value::Null));
        Ok(())
    }

    #[test]
    fn round_trip() -> Result<()> {
        let json = json!({"pk": "a", "fields": {"big": 18446744073709551615u64, "ids": [1],
                          "tags": ["x", "y"], "w": 0.1, "year": -5},
                          "vectors": {"e": [0.1, -2.5]}});
        let doc = Doc::from_json(&json, &schema())?;
        assert_eq!(doc.to_json(), json);
        assert_eq!(Doc::from_json(&doc.to_json(), &schema())?, doc);
        Ok(())
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let s = schema();
        let bad = [
            json!(null),
            json!([1]),
            json!("a"),
            json!({}),
            json!({"pk": null}),
            json!({"pk": ["a"]}),
            json!({"pk": "a", "extra": 1}),
            json!({"pk": "a", "fields": []}),
            json!({"pk": "a", "vectors": 3}),
            json!({"pk": "a", "fields": {"nope": 1}}),
            json!({"pk": "a", "vectors": {"nope": [1, 2]}}),
            json!({"pk": "a", "fields": {"year": 3_000_000_000u64}}),
            json!({"pk": "a", "fields": {"year": 1.5}}),
            json!({"pk": "a", "fields": {"year": "1"}}),
            json!({"pk": "a", "fields": {"year": [1]}}),
            json!({"pk": "a", "fields": {"year": {"a": 1}}}),
            json!({"pk": "a", "fields": {"big": -1}}),
            json!({"pk": "a", "fields": {"w": 1e300}}),
            json!({"pk": "a", "fields": {"ok": 1}}),
            json!({"pk": "a", "fields": {"tags": "x"}}),
            json!({"pk": "a", "fields": {"tags": [1]}}),
            json!({"pk": "a", "fields": {"tags": [null]}}),
            json!({"pk": "a", "fields": {"ids": [[1]]}}),
            json!({"pk": "a", "fields": {"ids": [1, 2.5]}}),
            json!({"pk": "a", "vectors": {"e": "x"}}),
            json!({"pk": "a", "vectors": {"e": [1, "2"]}}),
            json!({"pk": "a", "vectors": {"e": [1, 1e300]}}),
            json!({"pk": "a", "vectors": {"e": [null]}}),
        ];
        for j in bad {
            let e = Doc::from_json(&j, &s).expect_err(&j.to_string());
            assert!(
                matches!(e, Error::InvalidJson { .. } | Error::InvalidDoc { .. }),
                "{j}: {e:?}"
            );
        }
        let e = Doc::from_json(&json!({"pk": "a", "fields": {"year": "x"}}), &s).unwrap_err();
        assert!(e.to_string().contains("field[year]"), "{e}");
        assert!(Doc::from_json_str("{", &s).is_err());
        assert!(Doc::from_json_str("", &s).is_err());
    }

    #[test]
    fn serde_form_keeps_variants() {
        let doc = Doc::new("a")
            .set("n", 7i32)
            .set("u", 7u64)
            .vector("e", vec![0.5, 1.0]);
        let text = serde_json::to_string(&doc).unwrap();
        assert!(text.contains(r#"{"Int32":7}"#), "{text}");
        assert_eq!(serde_json::from_str::<Doc>(&text).unwrap(), doc);
        let minimal: Doc = serde_json::from_str(r#"{"pk": "b"}"#).unwrap();
        assert_eq!(minimal, Doc::new("b"));
    }

    #[test]
    fn floats_are_short_and_non_finite_is_null() {
        assert_eq!(f32_to_json(0.1).to_string(), "0.1");
        assert_eq!(Value::Double(f64::NAN).to_json(), Json::Null);
        assert_eq!(vector_to_json(&[f32::INFINITY, 1.5]), json!([null, 1.5]));
    }
}
