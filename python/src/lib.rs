//! `stratavec._native`: the thin PyO3 layer between Python and the stratavec crate.
//!
//! It converts arguments (documents, vectors, schemas) into the crate's types, calls the crate
//! with the GIL released, and converts results back. zvec's Python surface (classes, defaults,
//! status objects) lives in the pure-Python package `stratavec` on top of this module.
//!
//! Nothing here may panic on input coming from Python: every conversion returns a `PyErr`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex, MutexGuard};

use numpy::{PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use stratavec::wal::FlushPolicy;
use stratavec::{
    Collection, CollectionOptions, CollectionSchema, ColumnFill, DataType, Doc, DocStatus, Error,
    FetchOptions, FieldSchema, GroupBy, IndexKind, IndexParam, Metric, OpenOptions, Query,
    ReRanker, ScalarIndex, ScanCursor, ScanOptions, Value, VectorSchema,
};

pyo3::create_exception!(
    _native,
    CorruptionError,
    PyRuntimeError,
    "A collection file failed validation (checksum, structure); the message names the file and byte offset."
);
pyo3::create_exception!(
    _native,
    PoisonedError,
    PyRuntimeError,
    "An earlier write or fsync failed: the handle refuses writes until the collection is reopened."
);
pyo3::create_exception!(
    _native,
    LockError,
    PyRuntimeError,
    "Another handle holds a conflicting lock on the collection."
);

/// Maps the crate's error enum to Python exceptions: caller mistakes are `ValueError`
/// (zvec's INVALID_ARGUMENT), everything the environment or the files did is a `RuntimeError`
/// (zvec's INTERNAL_ERROR), with subclasses for corruption, poisoning and locks. The message is
/// the crate's, which already has zvec's wording.
fn to_py(e: Error) -> PyErr {
    match e {
        // Without the crate's "invalid argument: " prefix, which zvec does not have.
        Error::InvalidArgument(msg) => PyValueError::new_err(msg),
        // zvec words primary-key errors `Invalid doc: id[<preview>] <reason>`.
        Error::InvalidDoc { pk, reason } if reason.starts_with("id ") => {
            let rest = &reason[3..];
            if pk.is_empty() {
                PyValueError::new_err(format!("Invalid doc: id {rest}"))
            } else {
                let cut = pk.chars().count() >= 32 && rest.starts_with("exceeds");
                PyValueError::new_err(format!(
                    "Invalid doc: id[{}{}] {rest}",
                    pk.escape_debug(),
                    if cut { "..." } else { "" }
                ))
            }
        }
        // zvec raises RuntimeError when an add_column expression cannot be evaluated for a
        // stored document (its arguments parsed; the data refused them).
        e @ Error::ExpressionFailed { .. } => PyRuntimeError::new_err(e.to_string()),
        e if e.is_invalid_argument() => PyValueError::new_err(e.to_string()),
        e @ (Error::CollectionNotFound(_)
        | Error::PathExists(_)
        | Error::ReadOnly
        | Error::Closed) => PyValueError::new_err(e.to_string()),
        e @ Error::Corrupted { .. } => CorruptionError::new_err(e.to_string()),
        e @ Error::Poisoned { .. } => PoisonedError::new_err(e.to_string()),
        e @ Error::Locked(_) => LockError::new_err(e.to_string()),
        e => PyRuntimeError::new_err(e.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Names shared with the Python layer.

fn zvec_type_name(t: DataType) -> String {
    t.name().to_ascii_uppercase()
}

fn parse_type(name: &str) -> PyResult<DataType> {
    DataType::from_name(&name.to_ascii_lowercase()).ok_or_else(|| {
        pyo3::exceptions::PyNotImplementedError::new_err(format!(
            "data type {name} is not supported by stratavec"
        ))
    })
}

fn parse_metric(name: &str) -> PyResult<Metric> {
    Metric::from_name(&name.to_ascii_lowercase())
        .ok_or_else(|| PyValueError::new_err(format!("unknown metric type {name}")))
}

fn parse_policy(text: &str) -> PyResult<FlushPolicy> {
    text.parse::<FlushPolicy>().map_err(to_py)
}

type FieldSpec = (String, String, bool, bool);
type VectorSpec = (String, usize, String, Option<(usize, usize)>);
type SchemaSpec = (String, Vec<FieldSpec>, Vec<VectorSpec>);

fn field_from_spec(spec: FieldSpec) -> PyResult<FieldSchema> {
    let (name, ty, nullable, inverted) = spec;
    let mut f = FieldSchema::new(name, parse_type(&ty)?);
    f.nullable = nullable;
    if inverted {
        f = f.index(ScalarIndex::Inverted);
    }
    Ok(f)
}

fn schema_from_spec(spec: SchemaSpec) -> PyResult<CollectionSchema> {
    let (name, fields, vectors) = spec;
    let mut schema = CollectionSchema::new(name);
    for f in fields {
        schema = schema.field(field_from_spec(f)?);
    }
    for (vname, dim, metric, index) in vectors {
        let kind = match index {
            None => IndexKind::Flat,
            Some((m, ef_construction)) => IndexKind::Hnsw { m, ef_construction },
        };
        schema = schema.vector(
            VectorSchema::new(vname, dim)
                .metric(parse_metric(&metric)?)
                .index(kind),
        );
    }
    Ok(schema)
}

fn schema_to_spec(schema: &CollectionSchema) -> SchemaSpec {
    let fields = schema
        .fields
        .iter()
        .map(|f| {
            (
                f.name.clone(),
                zvec_type_name(f.data_type),
                f.nullable,
                f.index.is_some(),
            )
        })
        .collect();
    let vectors = schema
        .vectors
        .iter()
        .map(|v| {
            let index = match v.index {
                IndexKind::Flat => None,
                IndexKind::Hnsw { m, ef_construction } => Some((m, ef_construction)),
            };
            (
                v.name.clone(),
                v.dimension,
                v.metric.name().to_ascii_uppercase(),
                index,
            )
        })
        .collect();
    (schema.name.clone(), fields, vectors)
}

// ---------------------------------------------------------------------------------------------
// Python values -> crate values.

fn type_error(field: &str, ty: DataType, obj: &Bound<'_, PyAny>) -> PyErr {
    let got = obj
        .get_type()
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unknown>".into());
    PyTypeError::new_err(format!(
        "Field '{field}': expected {}, got {got}",
        zvec_type_name(ty)
    ))
}

/// An integer (bools count as 0/1, like zvec) as i128, or `None` for anything else.
fn as_int(obj: &Bound<'_, PyAny>) -> Option<i128> {
    if obj.is_instance_of::<PyBool>() {
        return obj.extract::<bool>().ok().map(i128::from);
    }
    if !obj.is_instance_of::<PyInt>() {
        // numpy integer scalars are not `int` subclasses but implement __index__.
        if obj.is_instance_of::<PyFloat>() || !obj.hasattr("__index__").unwrap_or(false) {
            return None;
        }
    }
    if let Ok(v) = obj.extract::<i64>() {
        return Some(v.into());
    }
    obj.extract::<u64>().ok().map(i128::from)
}

/// One scalar (not array) value of type `ty`.
fn scalar_value(field: &str, ty: DataType, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let mismatch = || type_error(field, ty, obj);
    Ok(match ty {
        DataType::Bool => match as_int(obj) {
            Some(v) => Value::Bool(v != 0),
            None => return Err(mismatch()),
        },
        DataType::String => match obj.cast::<PyString>() {
            Ok(s) => Value::String(s.to_str()?.to_string()),
            Err(_) => return Err(mismatch()),
        },
        DataType::Int32 | DataType::Int64 | DataType::UInt32 | DataType::UInt64 => {
            let v = as_int(obj).ok_or_else(mismatch)?;
            let converted = match ty {
                DataType::Int32 => i32::try_from(v).ok().map(Value::Int32),
                DataType::Int64 => i64::try_from(v).ok().map(Value::Int64),
                DataType::UInt32 => u32::try_from(v).ok().map(Value::UInt32),
                _ => u64::try_from(v).ok().map(Value::UInt64),
            };
            converted.ok_or_else(mismatch)?
        }
        DataType::Float | DataType::Double => {
            if obj.is_instance_of::<PyString>() {
                return Err(mismatch());
            }
            let v = match as_int(obj) {
                Some(i) => i as f64,
                None => obj.extract::<f64>().map_err(|_| mismatch())?,
            };
            if ty == DataType::Float {
                Value::Float(v as f32)
            } else {
                Value::Double(v)
            }
        }
        _ => return Err(mismatch()),
    })
}

fn field_value(field: &str, ty: DataType, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    let Some(elem) = ty.element() else {
        return scalar_value(field, ty, obj);
    };
    if obj.is_instance_of::<PyString>() {
        return Err(type_error(field, ty, obj));
    }
    let items = obj
        .try_iter()
        .map_err(|_| type_error(field, ty, obj))?
        .map(|item| {
            let item = item?;
            if item.is_none() {
                return Err(type_error(field, ty, &item));
            }
            scalar_value(field, elem, &item)
        })
        .collect::<PyResult<Vec<Value>>>()?;
    pack_array(elem, items).ok_or_else(|| type_error(field, ty, obj))
}

fn pack_array(elem: DataType, items: Vec<Value>) -> Option<Value> {
    macro_rules! pack {
        ($variant:ident, $arr:ident) => {
            Value::$arr(
                items
                    .into_iter()
                    .map(|v| match v {
                        Value::$variant(x) => Some(x),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?,
            )
        };
    }
    Some(match elem {
        DataType::Bool => pack!(Bool, BoolArray),
        DataType::Int32 => pack!(Int32, Int32Array),
        DataType::Int64 => pack!(Int64, Int64Array),
        DataType::UInt32 => pack!(UInt32, UInt32Array),
        DataType::UInt64 => pack!(UInt64, UInt64Array),
        DataType::Float => pack!(Float, FloatArray),
        DataType::Double => pack!(Double, DoubleArray),
        DataType::String => pack!(String, StringArray),
        _ => return None,
    })
}

/// A dense vector from a 1-d numpy array (float32 read in place, other dtypes converted by
/// numpy) or any sequence of numbers.
fn vector_of(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<Vec<f32>> {
    if let Ok(arr) = obj.extract::<PyReadonlyArray1<'_, f32>>() {
        if let Ok(slice) = arr.as_slice() {
            return Ok(slice.to_vec());
        }
        return Ok(arr.as_array().iter().copied().collect());
    }
    if let Ok(arr) = obj.cast::<numpy::PyUntypedArray>() {
        if arr.ndim() != 1 {
            return Err(PyValueError::new_err(format!(
                "vector[{name}]: expected a 1-d array, got {} dimensions",
                arr.ndim()
            )));
        }
        let converted = arr.call_method1("astype", ("float32",))?;
        let arr = converted.extract::<PyReadonlyArray1<'_, f32>>()?;
        return Ok(arr.as_array().iter().copied().collect());
    }
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err(format!(
            "vector[{name}]: expected a list of floats or a numpy array, got {}",
            obj.get_type().repr()?
        )));
    }
    obj.extract::<Vec<f32>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "vector[{name}]: expected a list of floats or a numpy array, got {}",
            obj.get_type()
                .repr()
                .map(|r| r.to_string())
                .unwrap_or_default()
        ))
    })
}

/// Reads a Python `Doc` (any object with `id`, `fields` and `vectors` attributes).
/// `partial`: an update, where a None field clears a nullable field.
fn doc_from_py(schema: &CollectionSchema, obj: &Bound<'_, PyAny>, partial: bool) -> PyResult<Doc> {
    let id = obj.getattr("id")?;
    let pk = match id.cast::<PyString>() {
        Ok(s) => match s.to_str() {
            Ok(s) => s.to_string(),
            Err(_) => {
                return Err(PyValueError::new_err(format!(
                    "Invalid doc: id[{}] is not valid UTF-8",
                    s.repr()?
                )))
            }
        },
        Err(_) => {
            return Err(PyTypeError::new_err(format!(
                "Doc id must be str, got {}",
                id.get_type().repr()?
            )))
        }
    };
    let mut doc = Doc::new(pk);
    let fields = obj.getattr("fields")?;
    if !fields.is_none() {
        let fields = fields
            .cast::<PyDict>()
            .map_err(|_| PyTypeError::new_err("Doc fields must be a dict"))?;
        for (k, v) in fields.iter() {
            let name: String = k
                .extract()
                .map_err(|_| PyTypeError::new_err("Doc field names must be str"))?;
            let value = match schema.field_index(&name) {
                Some(i) => {
                    let f = &schema.fields[i];
                    if v.is_none() && !f.nullable && !partial {
                        return Err(PyValueError::new_err(format!(
                            "Field '{name}': expected non-nullable type"
                        )));
                    }
                    field_value(&name, f.data_type, &v)?
                }
                // Unknown names are refused by the crate, with zvec's message.
                None => Value::Null,
            };
            doc.fields.insert(name, value);
        }
    }
    let vectors = obj.getattr("vectors")?;
    if !vectors.is_none() {
        let vectors = vectors
            .cast::<PyDict>()
            .map_err(|_| PyTypeError::new_err("Doc vectors must be a dict"))?;
        for (k, v) in vectors.iter() {
            let name: String = k
                .extract()
                .map_err(|_| PyTypeError::new_err("Doc vector names must be str"))?;
            let vector = if schema.vector_index(&name).is_some() {
                vector_of(&name, &v)?
            } else {
                Vec::new()
            };
            doc.vectors.insert(name, vector);
        }
    }
    Ok(doc)
}

// ---------------------------------------------------------------------------------------------
// Crate values -> Python values.

fn value_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(x) => PyBool::new(py, *x).to_owned().into_any(),
        Value::Int32(x) => x.into_pyobject(py)?.into_any(),
        Value::Int64(x) => x.into_pyobject(py)?.into_any(),
        Value::UInt32(x) => x.into_pyobject(py)?.into_any(),
        Value::UInt64(x) => x.into_pyobject(py)?.into_any(),
        Value::Float(x) => (*x as f64).into_pyobject(py)?.into_any(),
        Value::Double(x) => x.into_pyobject(py)?.into_any(),
        Value::String(x) => PyString::new(py, x).into_any(),
        Value::BoolArray(a) => PyList::new(py, a)?.into_any(),
        Value::Int32Array(a) => PyList::new(py, a)?.into_any(),
        Value::Int64Array(a) => PyList::new(py, a)?.into_any(),
        Value::UInt32Array(a) => PyList::new(py, a)?.into_any(),
        Value::UInt64Array(a) => PyList::new(py, a)?.into_any(),
        Value::FloatArray(a) => PyList::new(py, a.iter().map(|x| *x as f64))?.into_any(),
        Value::DoubleArray(a) => PyList::new(py, a)?.into_any(),
        Value::StringArray(a) => PyList::new(py, a)?.into_any(),
    })
}

/// A result document as the tuple zvec's `Doc._from_tuple` takes: `(id, score, fields,
/// vectors)`, fields in schema order, vectors as lists of floats.
fn doc_to_py<'py>(
    py: Python<'py>,
    schema: &CollectionSchema,
    doc: &Doc,
) -> PyResult<Bound<'py, PyTuple>> {
    // In schema order, then whatever the document holds beyond `schema`: a schema change
    // between the read and this call must not drop a field from the answer.
    let fields = PyDict::new(py);
    let field_order = schema.fields.iter().map(|f| f.name.as_str());
    for name in field_order.chain(doc.fields.keys().map(String::as_str)) {
        if let (Some(v), false) = (doc.fields.get(name), fields.contains(name)?) {
            fields.set_item(name, value_to_py(py, v)?)?;
        }
    }
    let vectors = PyDict::new(py);
    let vector_order = schema.vectors.iter().map(|v| v.name.as_str());
    for name in vector_order.chain(doc.vectors.keys().map(String::as_str)) {
        if let (Some(v), false) = (doc.vectors.get(name), vectors.contains(name)?) {
            vectors.set_item(name, PyList::new(py, v.iter().map(|x| *x as f64))?)?;
        }
    }
    PyTuple::new(
        py,
        [
            PyString::new(py, &doc.pk).into_any(),
            (doc.score as f64).into_pyobject(py)?.into_any(),
            fields.into_any(),
            vectors.into_any(),
        ],
    )
}

fn docs_to_py<'py>(
    py: Python<'py>,
    schema: &CollectionSchema,
    docs: &[Doc],
) -> PyResult<Bound<'py, PyList>> {
    let items = docs
        .iter()
        .map(|d| doc_to_py(py, schema, d))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

fn status_code(s: DocStatus) -> u8 {
    // zvec's StatusCode values.
    match s {
        DocStatus::Ok => 0,
        DocStatus::NotFound => 1,
        DocStatus::AlreadyExists => 2,
    }
}

// ---------------------------------------------------------------------------------------------
// The collection handle.

/// An open collection (`stratavec.Collection` wraps it with zvec's API).
#[pyclass(module = "stratavec._native", frozen)]
struct NativeCollection {
    inner: Mutex<Option<Arc<Collection>>>,
    /// The schema as of the last schema change through this handle, for `schema()` once the
    /// handle is closed; calls on an open handle read the collection's own.
    schema: Mutex<Arc<CollectionSchema>>,
    path: String,
    read_only: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl NativeCollection {
    fn wrap(c: Collection, read_only: bool) -> Self {
        NativeCollection {
            schema: Mutex::new(c.schema()),
            path: c.path().display().to_string(),
            inner: Mutex::new(Some(Arc::new(c))),
            read_only,
        }
    }

    fn get(&self) -> PyResult<Arc<Collection>> {
        lock(&self.inner)
            .clone()
            .ok_or_else(|| PyValueError::new_err("collection is already closed or destroyed."))
    }

    /// Runs a schema change with the GIL released, then keeps the new schema for `schema()`.
    fn change(
        &self,
        py: Python<'_>,
        change: impl FnOnce(&Collection) -> stratavec::Result<()> + Send,
    ) -> PyResult<()> {
        let c = self.get()?;
        py.detach(|| change(&c)).map_err(to_py)?;
        *lock(&self.schema) = c.schema();
        Ok(())
    }

    fn docs(
        &self,
        schema: &CollectionSchema,
        docs: &Bound<'_, PyAny>,
        partial: bool,
    ) -> PyResult<Vec<Doc>> {
        docs.try_iter()?
            .enumerate()
            .map(|(i, d)| {
                // Which document of the batch failed to convert, as zvec says it.
                doc_from_py(schema, &d?, partial).map_err(|e| {
                    Python::attach(|py| {
                        let kind = e.get_type(py);
                        let msg = format!("{} (document at index {i})", e.value(py));
                        if kind.is(py.get_type::<PyTypeError>()) {
                            PyTypeError::new_err(msg)
                        } else if kind.is(py.get_type::<PyValueError>()) {
                            PyValueError::new_err(msg)
                        } else {
                            e
                        }
                    })
                })
            })
            .collect()
    }

    fn write(
        &self,
        py: Python<'_>,
        docs: &Bound<'_, PyAny>,
        op: fn(&Collection, &[Doc]) -> stratavec::Result<Vec<DocStatus>>,
        partial: bool,
    ) -> PyResult<Vec<u8>> {
        let c = self.get()?;
        let docs = self.docs(&c.schema(), docs, partial)?;
        let statuses = py.detach(|| op(&c, &docs)).map_err(to_py)?;
        Ok(statuses.into_iter().map(status_code).collect())
    }
}

fn parse_reranker(spec: Option<(String, Vec<f32>)>) -> PyResult<Option<ReRanker>> {
    Ok(match spec {
        None => None,
        Some((kind, args)) => match kind.as_str() {
            "rrf" => Some(ReRanker::Rrf {
                rank_constant: args.first().copied().unwrap_or(60.0),
            }),
            "weighted" => Some(ReRanker::Weighted { weights: args }),
            other => {
                return Err(PyValueError::new_err(format!("unknown reranker {other}")));
            }
        },
    })
}

type Route<'py> = (String, Option<Bound<'py, PyAny>>, Option<String>);

#[allow(clippy::too_many_arguments)]
fn build_query(
    routes: Vec<Route<'_>>,
    topk: usize,
    filter: Option<String>,
    ef: Option<usize>,
    output_fields: Option<Vec<String>>,
    include_vector: bool,
    reranker: Option<(String, Vec<f32>)>,
) -> PyResult<Query> {
    let mut q = Query::new().topk(topk).include_vector(include_vector);
    for (field, vector, id) in routes {
        let source = match (vector, id) {
            (Some(v), None) => stratavec::query::VectorSource::Vector(vector_of(&field, &v)?),
            (None, Some(id)) => stratavec::query::VectorSource::ById(id),
            _ => {
                return Err(PyValueError::new_err(
                    "a query route needs exactly one of a vector or a document id",
                ))
            }
        };
        q.vectors
            .push(stratavec::query::VectorQuery { field, source });
    }
    q.filter = filter;
    q.ef = ef;
    q.output_fields = output_fields;
    q.reranker = parse_reranker(reranker)?;
    Ok(q)
}

#[pymethods]
impl NativeCollection {
    /// Creates a collection (`flush_policy`: `always`, `every:N`, `interval:MS`, `never`).
    #[staticmethod]
    #[pyo3(signature = (path, schema, flush_policy=None))]
    fn create(
        py: Python<'_>,
        path: String,
        schema: SchemaSpec,
        flush_policy: Option<String>,
    ) -> PyResult<Self> {
        let schema = schema_from_spec(schema)?;
        let mut options = CollectionOptions::default();
        if let Some(p) = flush_policy {
            options = options.flush_policy(parse_policy(&p)?);
        }
        let c = py
            .detach(|| Collection::create(&path, schema, options))
            .map_err(to_py)?;
        Ok(Self::wrap(c, false))
    }

    /// Opens a collection, recovering its WAL.
    #[staticmethod]
    #[pyo3(signature = (path, read_only=false, flush_policy=None, salvage=false))]
    fn open(
        py: Python<'_>,
        path: String,
        read_only: bool,
        flush_policy: Option<String>,
        salvage: bool,
    ) -> PyResult<Self> {
        let mut options = OpenOptions::default().read_only(read_only).salvage(salvage);
        if let Some(p) = flush_policy {
            options = options.flush_policy(parse_policy(&p)?);
        }
        let c = py
            .detach(|| Collection::open(&path, options))
            .map_err(to_py)?;
        Ok(Self::wrap(c, read_only))
    }

    #[getter]
    fn path(&self) -> String {
        self.path.clone()
    }

    #[getter]
    fn read_only(&self) -> bool {
        self.read_only
    }

    fn schema(&self) -> SchemaSpec {
        let schema = match lock(&self.inner).as_ref() {
            Some(c) => c.schema(),
            None => lock(&self.schema).clone(),
        };
        schema_to_spec(&schema)
    }

    /// zvec's add_column: `field` as in a schema spec; existing documents get `expression`'s
    /// value, or NULL when it is `None`.
    #[pyo3(signature = (field, expression=None))]
    fn add_column(
        &self,
        py: Python<'_>,
        field: FieldSpec,
        expression: Option<String>,
    ) -> PyResult<()> {
        let field = field_from_spec(field)?;
        let fill = match expression {
            Some(e) => ColumnFill::Expression(e),
            None => ColumnFill::Null,
        };
        self.change(py, move |c| c.add_column(field, fill))
    }

    fn drop_column(&self, py: Python<'_>, name: String) -> PyResult<()> {
        self.change(py, move |c| c.drop_column(&name))
    }

    /// Renames and/or retypes a column (`new_type` in zvec's spelling, e.g. `INT64`).
    #[pyo3(signature = (name, new_name=None, new_type=None))]
    fn alter_column(
        &self,
        py: Python<'_>,
        name: String,
        new_name: Option<String>,
        new_type: Option<String>,
    ) -> PyResult<()> {
        let new_type = new_type.as_deref().map(parse_type).transpose()?;
        self.change(py, move |c| {
            c.alter_column(&name, new_name.as_deref(), new_type)
        })
    }

    /// `kind`: `INVERT`, `FLAT`, or `HNSW` with `hnsw = (m, ef_construction)`.
    #[pyo3(signature = (field, kind, hnsw=None))]
    fn create_index(
        &self,
        py: Python<'_>,
        field: String,
        kind: String,
        hnsw: Option<(usize, usize)>,
    ) -> PyResult<()> {
        let param = match (kind.as_str(), hnsw) {
            ("INVERT", None) => IndexParam::Inverted,
            ("FLAT", None) => IndexParam::Vector(IndexKind::Flat),
            ("HNSW", Some((m, ef_construction))) => {
                IndexParam::Vector(IndexKind::Hnsw { m, ef_construction })
            }
            _ => {
                return Err(PyValueError::new_err(format!(
                    "unknown index {kind} (with HNSW parameters: {})",
                    hnsw.is_some()
                )))
            }
        };
        self.change(py, move |c| c.create_index(&field, param))
    }

    fn drop_index(&self, py: Python<'_>, field: String) -> PyResult<()> {
        self.change(py, move |c| c.drop_index(&field))
    }

    fn flush_policy(&self) -> PyResult<String> {
        Ok(self.get()?.flush_policy().to_string())
    }

    fn insert(&self, py: Python<'_>, docs: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
        self.write(py, docs, Collection::insert, false)
    }

    fn upsert(&self, py: Python<'_>, docs: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
        self.write(py, docs, Collection::upsert, false)
    }

    fn update(&self, py: Python<'_>, docs: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
        self.write(py, docs, Collection::update, true)
    }

    fn delete(&self, py: Python<'_>, ids: Vec<String>) -> PyResult<Vec<u8>> {
        let c = self.get()?;
        let statuses = py.detach(|| c.delete(&ids)).map_err(to_py)?;
        Ok(statuses.into_iter().map(status_code).collect())
    }

    /// Deletes the documents matching `expr` (every document when it is empty); returns how many.
    fn delete_by_filter(&self, py: Python<'_>, expr: String) -> PyResult<usize> {
        let c = self.get()?;
        py.detach(|| {
            if expr.trim().is_empty() {
                c.delete_all()
            } else {
                c.delete_by_filter(&expr)
            }
        })
        .map_err(to_py)
    }

    #[pyo3(signature = (ids, output_fields=None, include_vector=true))]
    fn fetch<'py>(
        &self,
        py: Python<'py>,
        ids: Vec<String>,
        output_fields: Option<Vec<String>>,
        include_vector: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let c = self.get()?;
        let options = FetchOptions {
            output_fields,
            include_vector,
        };
        let docs = py.detach(|| c.fetch_with(&ids, &options)).map_err(to_py)?;
        docs_to_py(py, &c.schema(), &docs)
    }

    /// One page of a scan in doc-id order: `(docs, next)`, where `next` is the cursor token
    /// of the following page or `None` at the end.
    #[pyo3(signature = (filter=None, output_fields=None, include_vector=true, limit=1000, cursor=None))]
    fn scan<'py>(
        &self,
        py: Python<'py>,
        filter: Option<String>,
        output_fields: Option<Vec<String>>,
        include_vector: bool,
        limit: usize,
        cursor: Option<String>,
    ) -> PyResult<(Bound<'py, PyList>, Option<String>)> {
        let c = self.get()?;
        let options = ScanOptions {
            filter,
            output_fields,
            include_vector,
            limit,
        };
        let cursor = cursor
            .as_deref()
            .map(ScanCursor::from_token)
            .transpose()
            .map_err(to_py)?;
        let page = py.detach(|| c.scan(&options, cursor)).map_err(to_py)?;
        let docs = docs_to_py(py, &c.schema(), &page.docs)?;
        Ok((docs, page.next.map(|n| n.to_token())))
    }

    /// How many live documents match `filter` (all when `None`).
    #[pyo3(signature = (filter=None))]
    fn count(&self, py: Python<'_>, filter: Option<String>) -> PyResult<u64> {
        let c = self.get()?;
        py.detach(|| c.count(filter.as_deref())).map_err(to_py)
    }

    /// zvec's query: `routes` is a list of `(field, vector, id)`; `reranker` is
    /// `("rrf", [rank_constant])` or `("weighted", weights)`.
    #[pyo3(signature = (routes, topk=10, filter=None, ef=None, output_fields=None, include_vector=false, reranker=None))]
    #[allow(clippy::too_many_arguments)]
    fn query<'py>(
        &self,
        py: Python<'py>,
        routes: Vec<Route<'py>>,
        topk: usize,
        filter: Option<String>,
        ef: Option<usize>,
        output_fields: Option<Vec<String>>,
        include_vector: bool,
        reranker: Option<(String, Vec<f32>)>,
    ) -> PyResult<Bound<'py, PyList>> {
        let c = self.get()?;
        let q = build_query(
            routes,
            topk,
            filter,
            ef,
            output_fields,
            include_vector,
            reranker,
        )?;
        let docs = py.detach(|| c.query(&q)).map_err(to_py)?;
        docs_to_py(py, &c.schema(), &docs)
    }

    /// Returns `[(group_value, [doc tuples])]`.
    #[pyo3(signature = (route, field, group_count=2, topk_per_group=3, filter=None, ef=None, output_fields=None, include_vector=false))]
    #[allow(clippy::too_many_arguments)]
    fn group_by_query<'py>(
        &self,
        py: Python<'py>,
        route: Route<'py>,
        field: String,
        group_count: usize,
        topk_per_group: usize,
        filter: Option<String>,
        ef: Option<usize>,
        output_fields: Option<Vec<String>>,
        include_vector: bool,
    ) -> PyResult<Vec<(String, Bound<'py, PyList>)>> {
        let c = self.get()?;
        let q = build_query(
            vec![route],
            10,
            filter,
            ef,
            output_fields,
            include_vector,
            None,
        )?;
        let group = GroupBy {
            field,
            group_count,
            topk_per_group,
        };
        let groups = py.detach(|| c.group_by_query(&q, &group)).map_err(to_py)?;
        let schema = c.schema();
        groups
            .iter()
            .map(|g| Ok((g.value.clone(), docs_to_py(py, &schema, &g.docs)?)))
            .collect()
    }

    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let c = self.get()?;
        py.detach(|| c.flush()).map_err(to_py)
    }

    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        let c = self.get()?;
        py.detach(|| c.sync()).map_err(to_py)
    }

    fn optimize(&self, py: Python<'_>) -> PyResult<()> {
        let c = self.get()?;
        py.detach(|| c.optimize()).map_err(to_py)
    }

    fn wait_idle(&self, py: Python<'_>) -> PyResult<()> {
        let c = self.get()?;
        py.detach(|| c.wait_idle()).map_err(to_py)
    }

    /// Closes the handle; later calls raise. Closing twice is fine.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = lock(&self.inner).take();
        match taken {
            Some(c) => py.detach(|| c.close()).map_err(to_py),
            None => Ok(()),
        }
    }

    fn is_closed(&self) -> bool {
        lock(&self.inner).is_none()
    }

    /// Closes the collection and deletes its directory.
    fn destroy(&self, py: Python<'_>) -> PyResult<()> {
        if self.read_only {
            return Err(to_py(Error::ReadOnly));
        }
        let taken = lock(&self.inner).take();
        let c = taken.ok_or_else(|| PyValueError::new_err("collection is already destroyed."))?;
        py.detach(|| match Arc::try_unwrap(c) {
            Ok(c) => c.destroy(),
            // Another thread is inside a call on this handle: close (which waits for the
            // background work) and remove the directory like `destroy` does.
            Err(c) => c.close().and_then(|()| {
                std::fs::remove_dir_all(c.path()).map_err(|e| Error::io("remove", c.path(), e))
            }),
        })
        .map_err(to_py)
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.get()?;
        let s = py.detach(|| c.stats());
        let d = PyDict::new(py);
        d.set_item("doc_count", s.doc_count)?;
        d.set_item("segments", s.segments)?;
        d.set_item("writing_rows", s.writing_rows)?;
        d.set_item("sealing_segments", s.sealing_segments)?;
        d.set_item("unindexed", s.unindexed)?;
        d.set_item("deleted", s.deleted)?;
        d.set_item("wal_bytes", s.wal_bytes)?;
        d.set_item("manifest_version", s.manifest_version)?;
        let stored = (s.doc_count + s.deleted).max(1) as f64;
        let completeness = PyDict::new(py);
        for v in &c.schema().vectors {
            let frac = match s.graphs.iter().find(|g| g.field == v.name) {
                Some(g) => (g.rows_covered as f64 / stored).min(1.0),
                None => 1.0,
            };
            completeness.set_item(&v.name, frac)?;
        }
        d.set_item("index_completeness", completeness)?;
        Ok(d)
    }

    /// What opening found and did: WAL recovery, leftovers removed, graph loads.
    fn open_report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.get()?;
        let r = c.open_report();
        let d = PyDict::new(py);
        let wals = PyList::empty(py);
        for w in &r.wals {
            let wd = PyDict::new(py);
            wd.set_item("path", w.path.display().to_string())?;
            wd.set_item("records", w.records)?;
            wd.set_item("docs", w.docs)?;
            wd.set_item("bytes", w.bytes)?;
            wd.set_item("truncated_bytes", w.truncated_bytes)?;
            wd.set_item("short_header", w.short_header)?;
            wd.set_item(
                "salvaged",
                w.salvaged.as_ref().map(|s| {
                    (
                        s.offset,
                        s.reason.clone(),
                        s.corrupt_path.display().to_string(),
                    )
                }),
            )?;
            wals.append(wd)?;
        }
        d.set_item("wals", wals)?;
        d.set_item("replayed_records", r.replayed_records)?;
        d.set_item("segments", r.segments)?;
        d.set_item("removed", r.removed.clone())?;
        let rebuilt: Vec<(u64, String, String)> = r
            .graphs
            .iter()
            .filter_map(|(seg, field, load)| match load {
                stratavec::GraphLoad::Rebuilt { reason } => {
                    Some((*seg, field.clone(), reason.clone()))
                }
                _ => None,
            })
            .collect();
        d.set_item("graphs_rebuilt", rebuilt)?;
        d.set_item("duration_s", r.duration.as_secs_f64())?;
        Ok(d)
    }
}

/// `(file, byte offset, reason)` of one problem `verify` found.
type ProblemTuple = (String, u64, String);

/// Checks every file of the collection at `path` without changing anything; returns
/// `(files_checked, [(path, offset, reason)])`.
#[pyfunction]
fn verify(py: Python<'_>, path: String) -> PyResult<(usize, Vec<ProblemTuple>)> {
    let report = py
        .detach(|| Collection::verify(&path, &OpenOptions::default()))
        .map_err(to_py)?;
    Ok((
        report.files,
        report
            .problems
            .iter()
            .map(|p| (p.path.display().to_string(), p.offset, p.reason.clone()))
            .collect(),
    ))
}

/// The distance kernel chosen for this CPU (`avx2+fma`, `scalar`, ...).
#[pyfunction]
fn kernel_name() -> &'static str {
    stratavec::kernel_name()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeCollection>()?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_name, m)?)?;
    m.add("CorruptionError", m.py().get_type::<CorruptionError>())?;
    m.add("PoisonedError", m.py().get_type::<PoisonedError>())?;
    m.add("LockError", m.py().get_type::<LockError>())?;
    m.add("MAX_BATCH", stratavec::collection::MAX_BATCH)?;
    Ok(())
}
