//! The schema file of `stratavec create`, to and from [`CollectionSchema`].
//!
//! ```json
//! {"name": "glove",
//!  "fields": [{"name": "cat", "type": "int32", "nullable": false, "index": {"type": "inverted"}}],
//!  "vectors": [{"name": "embedding", "dim": 50, "metric": "cosine",
//!               "index": {"type": "hnsw", "m": 16, "ef_construction": 200}}]}
//! ```
//! `nullable` defaults to false; a scalar field's `index` to none (`{"type": "inverted"}`, or
//! just `"inverted"`, keeps posting lists that `=` and `IN` filters use, on bool, integer and
//! string fields); `metric` to l2, a vector's `index` to flat, and an HNSW index's `m` and
//! `ef_construction` to 16 and 200. Unknown keys are refused, so a typo is not silently ignored.

use std::path::Path;

use serde::Deserialize;
use serde_json::json;
use stratavec::{
    CollectionSchema, DataType, FieldSchema, IndexKind, Metric, ScalarIndex, VectorSchema,
};

/// HNSW links per node when the schema file does not say.
pub const DEFAULT_M: usize = 16;
/// HNSW build beam width when the schema file does not say.
pub const DEFAULT_EF_CONSTRUCTION: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaFile {
    name: String,
    #[serde(default)]
    fields: Vec<FieldFile>,
    #[serde(default)]
    vectors: Vec<VectorFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
    #[serde(default)]
    nullable: bool,
    #[serde(default)]
    index: Option<FieldIndexFile>,
}

/// A scalar field's index: `{"type": "inverted"}` (the vectors' form) or `"inverted"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum FieldIndexFile {
    Name(String),
    Object(FieldIndexObject),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldIndexObject {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorFile {
    name: String,
    #[serde(alias = "dimension")]
    dim: usize,
    #[serde(default)]
    metric: Option<String>,
    #[serde(default)]
    index: Option<IndexFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexFile {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    m: Option<usize>,
    #[serde(default)]
    ef_construction: Option<usize>,
}

const TYPE_NAMES: &str =
    "int32, int64, uint32, uint64, float, double, bool, string, or array_<type>";

/// Parses a schema file's text; errors say what is wrong, not where the file is.
pub fn parse(text: &str) -> Result<CollectionSchema, String> {
    let file: SchemaFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut schema = CollectionSchema::new(file.name);
    for f in file.fields {
        let data_type = DataType::from_name(&f.data_type).ok_or_else(|| {
            format!(
                "field {:?}: unknown type {:?} (expected {TYPE_NAMES})",
                f.name, f.data_type
            )
        })?;
        let index = match &f.index {
            None => None,
            Some(
                FieldIndexFile::Name(kind) | FieldIndexFile::Object(FieldIndexObject { kind }),
            ) => match kind.as_str() {
                "inverted" => Some(ScalarIndex::Inverted),
                "none" => None,
                other => {
                    return Err(format!(
                        "field {:?}: unknown index type {other:?} (expected inverted)",
                        f.name
                    ))
                }
            },
        };
        let mut field = FieldSchema::new(f.name, data_type);
        if f.nullable {
            field = field.nullable();
        }
        if let Some(index) = index {
            field = field.index(index);
        }
        schema = schema.field(field);
    }
    for v in file.vectors {
        let metric = match v.metric.as_deref() {
            None => Metric::L2,
            Some(m) => Metric::from_name(m).ok_or_else(|| {
                format!(
                    "vector {:?}: unknown metric {m:?} (expected l2, ip or cosine)",
                    v.name
                )
            })?,
        };
        let index = match v.index {
            None => IndexKind::Flat,
            Some(i) => match i.kind.as_str() {
                "flat" => {
                    if i.m.is_some() || i.ef_construction.is_some() {
                        return Err(format!(
                            "vector {:?}: a flat index takes no m or ef_construction",
                            v.name
                        ));
                    }
                    IndexKind::Flat
                }
                "hnsw" => IndexKind::Hnsw {
                    m: i.m.unwrap_or(DEFAULT_M),
                    ef_construction: i.ef_construction.unwrap_or(DEFAULT_EF_CONSTRUCTION),
                },
                other => {
                    return Err(format!(
                        "vector {:?}: unknown index type {other:?} (expected hnsw or flat)",
                        v.name
                    ))
                }
            },
        };
        schema = schema.vector(VectorSchema::new(v.name, v.dim).metric(metric).index(index));
    }
    schema.validate().map_err(|e| e.to_string())?;
    Ok(schema)
}

/// Reads and parses a schema file.
pub fn load(path: &Path) -> Result<CollectionSchema, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("read schema {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("schema {}: {e}", path.display()))
}

/// The schema in the schema file's form (what `create --schema` accepts).
pub fn to_json(schema: &CollectionSchema) -> serde_json::Value {
    let fields: Vec<_> = schema
        .fields
        .iter()
        .map(|f| {
            let mut field =
                json!({"name": f.name, "type": f.data_type.name(), "nullable": f.nullable});
            // Only when there is one, so that schemas without indexes print as they always did.
            if let Some(ScalarIndex::Inverted) = f.index {
                field["index"] = json!({"type": "inverted"});
            }
            field
        })
        .collect();
    let vectors: Vec<_> = schema
        .vectors
        .iter()
        .map(|v| {
            let index = match v.index {
                IndexKind::Flat => json!({"type": "flat"}),
                IndexKind::Hnsw { m, ef_construction } => {
                    json!({"type": "hnsw", "m": m, "ef_construction": ef_construction})
                }
            };
            json!({"name": v.name, "dim": v.dimension, "metric": v.metric.name(), "index": index})
        })
        .collect();
    json!({"name": schema.name, "fields": fields, "vectors": vectors})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let text = r#"{"name": "g", "fields": [{"name": "cat", "type": "array_int32", "nullable": true}],
            "vectors": [{"name": "e", "dim": 4, "metric": "cosine", "index": {"type": "hnsw", "m": 8}}]}"#;
        let schema = parse(text).unwrap();
        assert_eq!(schema.fields[0].data_type, DataType::ArrayInt32);
        assert!(schema.fields[0].nullable);
        assert_eq!(
            schema.vectors[0].index,
            IndexKind::Hnsw {
                m: 8,
                ef_construction: 200
            }
        );
        assert_eq!(parse(&to_json(&schema).to_string()).unwrap(), schema);
    }

    #[test]
    fn scalar_inverted_index() {
        let text = r#"{"name": "g", "fields": [
            {"name": "cat", "type": "int32", "index": {"type": "inverted"}},
            {"name": "tag", "type": "string", "index": "inverted"},
            {"name": "w", "type": "double", "index": "none"}]}"#;
        let schema = parse(text).unwrap();
        assert_eq!(schema.fields[0].index, Some(ScalarIndex::Inverted));
        assert_eq!(schema.fields[1].index, Some(ScalarIndex::Inverted));
        assert_eq!(schema.fields[2].index, None);
        assert_eq!(to_json(&schema)["fields"][0]["index"]["type"], "inverted");
        assert!(to_json(&schema)["fields"][2].get("index").is_none());
        assert_eq!(parse(&to_json(&schema).to_string()).unwrap(), schema);
        let e =
            parse(r#"{"name": "g", "fields": [{"name": "x", "type": "int32", "index": "btree"}]}"#)
                .unwrap_err();
        assert!(e.contains("btree"), "{e}");
        // The engine's rule: no inverted index on a float field.
        let e = parse(
            r#"{"name": "g", "fields": [{"name": "x", "type": "double", "index": "inverted"}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("inverted"), "{e}");
    }

    #[test]
    fn errors_name_the_problem() {
        let e = parse(r#"{"name": "g", "fields": [{"name": "x", "type": "int8"}]}"#).unwrap_err();
        assert!(e.contains("int8"), "{e}");
        let e = parse(r#"{"name": "g", "vectors": [{"name": "v", "dim": 3, "metric": "dot"}]}"#)
            .unwrap_err();
        assert!(e.contains("dot"), "{e}");
        let e = parse(r#"{"name": "g", "feilds": []}"#).unwrap_err();
        assert!(e.contains("feilds"), "{e}");
    }
}
