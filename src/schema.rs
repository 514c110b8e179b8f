//! What a collection stores: scalar fields and dense vector fields.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The largest dimension of a dense vector (zvec's limit).
pub const MAX_DIMENSION: usize = 20_000;
/// The most vector fields a collection may have (zvec's limit).
pub const MAX_VECTOR_FIELDS: usize = 5;
/// The most scalar fields a collection may have: bounds what a manifest read from disk can
/// make the engine allocate per row.
pub const MAX_FIELDS: usize = 1024;
/// The longest collection name, in bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// The largest HNSW `m` (hnsw_rs's limit: it exits the process above 256).
pub const MAX_HNSW_M: usize = 256;
/// The largest HNSW `ef_construction`: hnsw_rs allocates candidate lists of this size per
/// insertion, so an unbounded value read from a damaged manifest could exhaust memory.
pub const MAX_EF_CONSTRUCTION: usize = 4096;

/// The type of a scalar field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum DataType {
    Bool,
    Int32,
    Int64,
    UInt32,
    UInt64,
    Float,
    Double,
    String,
    ArrayBool,
    ArrayInt32,
    ArrayInt64,
    ArrayUInt32,
    ArrayUInt64,
    ArrayFloat,
    ArrayDouble,
    ArrayString,
}

impl DataType {
    /// The schema-file spelling: `int32`, `array_string`, ...
    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::Int32 => "int32",
            DataType::Int64 => "int64",
            DataType::UInt32 => "uint32",
            DataType::UInt64 => "uint64",
            DataType::Float => "float",
            DataType::Double => "double",
            DataType::String => "string",
            DataType::ArrayBool => "array_bool",
            DataType::ArrayInt32 => "array_int32",
            DataType::ArrayInt64 => "array_int64",
            DataType::ArrayUInt32 => "array_uint32",
            DataType::ArrayUInt64 => "array_uint64",
            DataType::ArrayFloat => "array_float",
            DataType::ArrayDouble => "array_double",
            DataType::ArrayString => "array_string",
        }
    }

    /// Parses [`DataType::name`]'s spelling.
    pub fn from_name(name: &str) -> Option<DataType> {
        ALL_TYPES.iter().copied().find(|t| t.name() == name)
    }

    /// Whether values of this type are arrays.
    pub fn is_array(self) -> bool {
        self.element().is_some()
    }

    /// The element type of an array type.
    pub fn element(self) -> Option<DataType> {
        Some(match self {
            DataType::ArrayBool => DataType::Bool,
            DataType::ArrayInt32 => DataType::Int32,
            DataType::ArrayInt64 => DataType::Int64,
            DataType::ArrayUInt32 => DataType::UInt32,
            DataType::ArrayUInt64 => DataType::UInt64,
            DataType::ArrayFloat => DataType::Float,
            DataType::ArrayDouble => DataType::Double,
            DataType::ArrayString => DataType::String,
            _ => return None,
        })
    }
}

const ALL_TYPES: [DataType; 16] = [
    DataType::Bool,
    DataType::Int32,
    DataType::Int64,
    DataType::UInt32,
    DataType::UInt64,
    DataType::Float,
    DataType::Double,
    DataType::String,
    DataType::ArrayBool,
    DataType::ArrayInt32,
    DataType::ArrayInt64,
    DataType::ArrayUInt32,
    DataType::ArrayUInt64,
    DataType::ArrayFloat,
    DataType::ArrayDouble,
    DataType::ArrayString,
];

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How vector similarity is scored (zvec's conventions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Metric {
    /// Squared Euclidean distance; smaller is closer.
    L2,
    /// Inner product; larger is closer.
    Ip,
    /// Cosine distance `1 − cos`, in [0, 2]; smaller is closer.
    Cosine,
}

impl Metric {
    /// The schema-file spelling: `l2`, `ip`, `cosine`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::Ip => "ip",
            Metric::Cosine => "cosine",
        }
    }

    /// Parses [`Metric::name`]'s spelling.
    pub fn from_name(name: &str) -> Option<Metric> {
        [Metric::L2, Metric::Ip, Metric::Cosine]
            .into_iter()
            .find(|m| m.name() == name)
    }

    /// Whether a larger score is a better hit.
    pub fn higher_is_better(self) -> bool {
        self == Metric::Ip
    }
}

/// The index kept for a vector field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexKind {
    /// Exact search: every live vector is scored.
    Flat,
    /// Approximate search over an HNSW graph.
    Hnsw {
        /// Links per node (layer 0 keeps twice as many). 2..=256.
        m: usize,
        /// Beam width while building.
        ef_construction: usize,
    },
}

/// An index on a scalar field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScalarIndex {
    /// Posting lists per value, used by filters of the form `f = v`, `f IN (...)` (also inside
    /// an AND) to find candidate rows without scanning the segment. Bool, integer and string
    /// fields.
    Inverted,
}

/// A scalar field of the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSchema {
    /// The field's name, unique among all fields and vectors.
    pub name: String,
    /// Its type.
    pub data_type: DataType,
    /// Whether documents may omit it (NULL).
    pub nullable: bool,
    /// An index kept for the field, if any.
    #[serde(default)]
    pub index: Option<ScalarIndex>,
}

impl FieldSchema {
    /// A non-nullable field.
    pub fn new(name: impl Into<String>, data_type: DataType) -> Self {
        FieldSchema {
            name: name.into(),
            data_type,
            nullable: false,
            index: None,
        }
    }

    /// Keeps an index for the field.
    pub fn index(mut self, index: ScalarIndex) -> Self {
        self.index = Some(index);
        self
    }

    /// Makes the field nullable.
    pub fn nullable(mut self) -> Self {
        self.nullable = true;
        self
    }
}

/// A dense `f32` vector field of the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorSchema {
    /// The field's name.
    pub name: String,
    /// Number of components, 1..=20000.
    pub dimension: usize,
    /// How similarity is scored.
    pub metric: Metric,
    /// The index kept for it.
    pub index: IndexKind,
}

impl VectorSchema {
    /// A vector field with exact (flat) search and the L2 metric.
    pub fn new(name: impl Into<String>, dimension: usize) -> Self {
        VectorSchema {
            name: name.into(),
            dimension,
            metric: Metric::L2,
            index: IndexKind::Flat,
        }
    }

    /// Sets the metric.
    pub fn metric(mut self, metric: Metric) -> Self {
        self.metric = metric;
        self
    }

    /// Sets the index kind.
    pub fn index(mut self, index: IndexKind) -> Self {
        self.index = index;
        self
    }
}

/// The schema of a collection: its name, scalar fields and vector fields.
///
/// ```
/// use stratavec::{CollectionSchema, DataType, FieldSchema, Metric, VectorSchema};
/// let schema = CollectionSchema::new("articles")
///     .field(FieldSchema::new("year", DataType::Int32))
///     .field(FieldSchema::new("tags", DataType::ArrayString).nullable())
///     .vector(VectorSchema::new("embedding", 384).metric(Metric::Cosine));
/// schema.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionSchema {
    /// The collection's name.
    pub name: String,
    /// Scalar fields, in declaration order.
    pub fields: Vec<FieldSchema>,
    /// Vector fields, in declaration order.
    pub vectors: Vec<VectorSchema>,
}

impl CollectionSchema {
    /// An empty schema.
    pub fn new(name: impl Into<String>) -> Self {
        CollectionSchema {
            name: name.into(),
            fields: Vec::new(),
            vectors: Vec::new(),
        }
    }

    /// Adds a scalar field.
    pub fn field(mut self, field: FieldSchema) -> Self {
        self.fields.push(field);
        self
    }

    /// Adds a vector field.
    pub fn vector(mut self, vector: VectorSchema) -> Self {
        self.vectors.push(vector);
        self
    }

    /// The position of a scalar field.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// The position of a vector field.
    pub fn vector_index(&self, name: &str) -> Option<usize> {
        self.vectors.iter().position(|v| v.name == name)
    }

    /// Checks zvec's schema rules: a collection name of 1..=255 bytes without control
    /// characters, `/` or `\`; unique field names of 1..=64 characters of `[A-Za-z0-9_-]`; at
    /// most 1024 scalar and five vector fields; 1..=20000 dimensions; HNSW `m` in 2..=256 and
    /// `ef_construction` in 1..=4096. A schema without vector fields is allowed (filter-only
    /// queries and fetches work; vector searches have nothing to search).
    ///
    /// The same checks run on the schema of every manifest read from disk, so a damaged or
    /// crafted manifest can never hand the engine (or hnsw_rs) a value `create` would refuse.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Err(Error::InvalidSchema { reason });
        if self.name.is_empty() {
            return invalid("the collection name must not be empty".into());
        }
        if self.name.len() > MAX_NAME_BYTES {
            return invalid(format!(
                "the collection name is {} bytes, at most {MAX_NAME_BYTES} are allowed",
                self.name.len()
            ));
        }
        if self
            .name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
        {
            return invalid(format!(
                "the collection name {:?} contains a control character, '/' or '\\'",
                self.name
            ));
        }
        if self.fields.len() > MAX_FIELDS {
            return invalid(format!(
                "scalar field size must <= {MAX_FIELDS}, got {}",
                self.fields.len()
            ));
        }
        if self.vectors.len() > MAX_VECTOR_FIELDS {
            return invalid(format!(
                "vector field size must <= {MAX_VECTOR_FIELDS}, got {}",
                self.vectors.len()
            ));
        }
        let mut seen = HashSet::new();
        let names = self
            .fields
            .iter()
            .map(|f| &f.name)
            .chain(self.vectors.iter().map(|v| &v.name));
        for name in names {
            // Names become file names (`<field>.<block>.graph`) and filter identifiers.
            let well_formed = (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !well_formed {
                return invalid(format!(
                    "field name {name:?} must be 1..=64 characters of [A-Za-z0-9_-]"
                ));
            }
            if !seen.insert(name.as_str()) {
                return invalid(format!("field[{name}] is declared twice"));
            }
        }
        for f in &self.fields {
            let indexable = matches!(
                f.data_type,
                DataType::Bool
                    | DataType::Int32
                    | DataType::Int64
                    | DataType::UInt32
                    | DataType::UInt64
                    | DataType::String
            );
            if f.index.is_some() && !indexable {
                return invalid(format!(
                    "field[{}]: an inverted index needs a bool, integer or string field, not {}",
                    f.name, f.data_type
                ));
            }
        }
        for v in &self.vectors {
            if v.dimension == 0 || v.dimension > MAX_DIMENSION {
                return invalid(format!(
                    "field[{}]'s dimension must be in (0,{MAX_DIMENSION}], got {}",
                    v.name, v.dimension
                ));
            }
            if let IndexKind::Hnsw { m, ef_construction } = v.index {
                if !(2..=MAX_HNSW_M).contains(&m) {
                    return invalid(format!(
                        "field[{}]: hnsw m must be in 2..={MAX_HNSW_M}, got {m}",
                        v.name
                    ));
                }
                if !(1..=MAX_EF_CONSTRUCTION).contains(&ef_construction) {
                    return invalid(format!(
                        "field[{}]: ef_construction must be in 1..={MAX_EF_CONSTRUCTION}, got {ef_construction}",
                        v.name
                    ));
                }
            }
        }
        Ok(())
    }
}
