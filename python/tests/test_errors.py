"""Every error path of the API, with zvec's exception types (ValueError for bad input,
TypeError for wrong Python types, RuntimeError for the environment) and NotImplementedError
for features stratavec does not have."""

import numpy as np
import pytest

import stratavec as zvec
from conftest import doc, make_schema


def vdoc(pk="x", v=(1, 0, 0, 0), **fields):
    fields.setdefault("n", 1)
    return zvec.Doc(pk, vectors={"v": list(v)}, fields=fields)


@pytest.mark.parametrize("bad, exc, match", [
    (lambda: vdoc(v=(1, 2, 3)), ValueError, r"Invalid doc\[x\]: field\[v\] dimension mismatch, expected 4 but got 3"),
    (lambda: vdoc(v=()), ValueError, "dimension mismatch"),
    (lambda: vdoc(n="str"), TypeError, r"Field 'n': expected INT64, got <class 'str'> \(document at index 1\)"),
    (lambda: vdoc(n=1.5), TypeError, "expected INT64, got <class 'float'>"),
    (lambda: vdoc(n=2**63), TypeError, "expected INT64"),
    (lambda: vdoc(n=None), ValueError, "Field 'n': expected non-nullable type"),
    (lambda: zvec.Doc("x", vectors={"v": [1, 0, 0, 0]}), ValueError, r"field\[n\] is required but not provided"),
    (lambda: zvec.Doc("x", fields={"n": 1}), ValueError, r"field\[v\] is required but not provided"),
    (lambda: vdoc(zzz=1), ValueError, "'zzz' not found in collection schema"),
    (lambda: zvec.Doc("x", vectors={"v": [1, 0, 0, 0], "w": [1]}, fields={"n": 1}), ValueError, "'w' not found"),
    (lambda: vdoc(s=5), TypeError, "expected STRING"),
    (lambda: vdoc(tags="abc"), TypeError, "expected ARRAY_STRING"),
    (lambda: vdoc(tags=["a", None]), TypeError, "expected ARRAY_STRING"),
    (lambda: vdoc(f="1.0"), TypeError, "expected DOUBLE"),
    (lambda: vdoc(pk=""), ValueError, "id must not be empty"),
    (lambda: vdoc(pk="a" * 1025), ValueError, "exceeds 1024 bytes"),
    (lambda: vdoc(pk="a\0b"), ValueError, "null character"),
    (lambda: vdoc(pk="a\nb"), ValueError, "newline"),
    (lambda: vdoc(pk=None), TypeError, "id must be str"),
    (lambda: vdoc(pk=5), TypeError, "id must be str"),
    (lambda: zvec.Doc("x", vectors={"v": "abcd"}, fields={"n": 1}), TypeError, "list of floats"),
    (lambda: zvec.Doc("x", vectors={"v": [1, 0, 0, float("nan")]}, fields={"n": 1}), ValueError, "finite"),
])
def test_invalid_documents_raise_and_write_nothing(coll, bad, exc, match):
    with pytest.raises(exc, match=match):
        coll.insert([doc(100), bad()])  # the valid first doc is not written either
    assert coll.stats.doc_count == 0
    with pytest.raises(exc):
        coll.upsert(bad())


def test_batch_limit(coll):
    assert len(coll.insert([doc(i) for i in range(1024)])) == 1024
    with pytest.raises(ValueError, match="Too many docs: 1025 exceeds max write batch size of 1024"):
        coll.insert([doc(i) for i in range(2000, 3025)])
    with pytest.raises(ValueError, match="Too many docs"):
        coll.delete([f"d{i}" for i in range(1025)])


def test_update_type_errors(coll):
    coll.insert(doc(1))
    with pytest.raises(TypeError, match="expected INT64"):
        coll.update(zvec.Doc("d1", fields={"n": "x"}))
    with pytest.raises(ValueError, match="dimension mismatch"):
        coll.update(zvec.Doc("d1", vectors={"v": [1]}))
    with pytest.raises(ValueError):
        coll.update(zvec.Doc("d1", fields={"n": None}))  # non-nullable cannot be cleared


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(queries=zvec.Query("v", vector=[1, 2, 3])), ValueError, "Invalid query: dimension mismatch, expected 4 but got 3"),
    (dict(queries=zvec.Query("nope", vector=[1, 2, 3, 4])), ValueError, "'nope' not found"),
    (dict(queries=zvec.Query("v", id="missing")), ValueError, "Document with id 'missing' not found"),
    (dict(queries=zvec.Query("v", id="d1", vector=[1, 2, 3, 4])), ValueError, "both id and vector"),
    (dict(queries=zvec.Query("", vector=[1, 2, 3, 4])), ValueError, "non-empty"),
    (dict(queries=zvec.Query("v")), ValueError, "vector or a document id"),
    (dict(queries="v"), TypeError, "Query objects"),
    (dict(topk=0), ValueError, "topk must be a positive integer"),
    (dict(topk=-1), ValueError, "topk must be a positive integer"),
    (dict(topk=True), ValueError, "topk must be a positive integer"),
    (dict(topk=100001), ValueError, "topk"),
    (dict(filter="n == 1"), ValueError, r"Invalid filter \[n == 1\]"),
    (dict(filter="n = 3.5"), ValueError, "Invalid filter"),
    (dict(filter="nope = 1"), ValueError, "Invalid filter"),
    (dict(filter="id = 'd1'"), ValueError, "Invalid filter"),
    (dict(output_fields=["zz"]), ValueError, "zz not defined in schema"),
    (dict(queries=zvec.Query("v", vector=[1, 0, 0, 0]), vectors=zvec.Query("v", vector=[1, 0, 0, 0])), ValueError, "both"),
    (dict(queries=zvec.Query("v", vector=[1, 0, 0, 0], param=zvec.HnswQueryParam(radius=1.0))), NotImplementedError, "radius"),
    (dict(queries=zvec.Query("v", vector=[1, 0, 0, 0], param=zvec.HnswQueryParam(is_linear=True))), NotImplementedError, "is_linear"),
    (dict(queries=zvec.Query("v", vector=[1, 0, 0, 0], fts=zvec.Fts(match_string="x"))), NotImplementedError, "full-text"),
])
def test_invalid_queries(coll, kwargs, exc, match):
    coll.insert(doc(1))
    with pytest.raises(exc, match=match):
        coll.query(**kwargs)


def test_delete_by_filter_errors(coll):
    with pytest.raises(ValueError, match="Invalid filter"):
        coll.delete_by_filter("n >>> 1")
    with pytest.raises(TypeError):
        coll.delete_by_filter(None)


def test_fetch_unknown_output_field(coll):
    coll.insert(doc(1))
    with pytest.raises(ValueError, match="not defined in schema"):
        coll.fetch("d1", output_fields=["zz"])


def test_lifecycle_errors(path, tmp_path):
    schema = make_schema()
    with pytest.raises(ValueError, match="Unable to create collection with read-only mode."):
        zvec.create_and_open(path, schema, zvec.CollectionOption(read_only=True))
    c = zvec.create_and_open(path, schema)
    with pytest.raises(ValueError, match="path validate failed: .* exists"):
        zvec.create_and_open(path, schema)
    with pytest.raises(RuntimeError, match="Can't lock read-write collection"):
        zvec.open(path)
    with pytest.raises(zvec.LockError):
        zvec.open(path, zvec.CollectionOption(read_only=True))
    with pytest.raises(zvec.LockError):
        zvec.verify(path)
    c.close()
    with pytest.raises(ValueError, match="closed"):
        c.insert(doc(1))
    with pytest.raises(ValueError, match="closed"):
        c.query()
    with pytest.raises(ValueError, match=r"collection path\{.*\} not exist."):
        zvec.open(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="not exist"):
        zvec.verify(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="flush policy"):
        zvec.open(path, zvec.CollectionOption(flush_policy="sometimes"))
    with pytest.raises(TypeError):
        zvec.create_and_open(str(tmp_path / "x"), "not a schema")


def test_corrupted_manifest_is_a_corruption_error(path):
    import glob
    import os
    c = zvec.create_and_open(path, make_schema())
    c.insert([doc(i) for i in range(10)])
    c.close()
    for m in glob.glob(os.path.join(path, "manifest.*")):
        with open(m, "r+b") as fh:
            fh.seek(30)
            b = fh.read(1)
            fh.seek(30)
            fh.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(RuntimeError) as err:
        zvec.open(path)
    assert isinstance(err.value, zvec.CorruptionError)
    report = zvec.verify(path)
    assert not report["ok"] and report["problems"][0]["path"].startswith(path)


@pytest.mark.parametrize("make, match", [
    (lambda: zvec.CollectionSchema("c", vectors=zvec.VectorSchema("v", zvec.DataType.VECTOR_FP32, 0)), "dimension"),
    (lambda: zvec.CollectionSchema("c", vectors=zvec.VectorSchema("v", zvec.DataType.VECTOR_FP32, 20001)), "dimension"),
    (lambda: zvec.CollectionSchema("c", vectors=[zvec.VectorSchema(f"v{i}", zvec.DataType.VECTOR_FP32, 2) for i in range(6)]), "vector field size"),
    (lambda: zvec.CollectionSchema("c", fields=zvec.FieldSchema("a b", zvec.DataType.INT32)), "field name"),
    (lambda: zvec.CollectionSchema("c", vectors=zvec.VectorSchema("v", zvec.DataType.VECTOR_FP32, 2, zvec.HnswIndexParam(m=1))), "m must be"),
    (lambda: zvec.CollectionSchema("c", fields=zvec.FieldSchema("f", zvec.DataType.DOUBLE, index_param=zvec.InvertIndexParam())), "inverted index"),
    (lambda: zvec.CollectionSchema("", fields=zvec.FieldSchema("f", zvec.DataType.DOUBLE)), "name"),
])
def test_invalid_schemas_are_refused_at_create(path, make, match):
    with pytest.raises(ValueError, match=match):
        zvec.create_and_open(path, make())


def test_schema_construction_errors():
    T = zvec.DataType
    with pytest.raises(ValueError, match="duplicate"):
        zvec.CollectionSchema("c", fields=[zvec.FieldSchema("a", T.INT32)],
                              vectors=zvec.VectorSchema("a", T.VECTOR_FP32, 2))
    with pytest.raises(ValueError, match="data_type"):
        zvec.FieldSchema("a", T.VECTOR_FP32)
    with pytest.raises(ValueError, match="data_type"):
        zvec.VectorSchema("a", T.INT32, 2)
    with pytest.raises(ValueError, match="field name must be str"):
        zvec.FieldSchema(None, T.INT32)
    with pytest.raises(ValueError, match="dimension must be >= 0"):
        zvec.VectorSchema("a", T.VECTOR_FP32, -1)
    with pytest.raises(TypeError):
        zvec.CollectionSchema("c", fields="a")
    with pytest.raises(TypeError):
        zvec.CollectionSchema("c", vectors=[1])
    with pytest.raises(ValueError, match="vector index params"):
        zvec.FieldSchema("a", T.INT32, index_param=zvec.HnswIndexParam())
    with pytest.raises(ValueError, match=r"field name\['\\ud800'\] is not valid UTF-8"):
        zvec.FieldSchema("\ud800", T.INT32)


def test_surrogate_id_is_a_value_error_naming_the_document(coll):
    with pytest.raises(ValueError, match=r"^Invalid doc: id\['\\ud800'\] is not valid UTF-8 \(document at index 1\)$"):
        coll.insert([doc(1), zvec.Doc("\ud800", vectors={"v": [1, 0, 0, 0]}, fields={"n": 1})])
    assert coll.stats.doc_count == 0


@pytest.mark.parametrize("make, feature", [
    (lambda: zvec.VectorSchema("s", zvec.DataType.SPARSE_VECTOR_FP32), "sparse"),
    (lambda: zvec.VectorSchema("s", zvec.DataType.VECTOR_FP16, 4), "VECTOR_FP16"),
    (lambda: zvec.VectorSchema("s", zvec.DataType.VECTOR_INT8, 4), "VECTOR_INT8"),
    (lambda: zvec.HnswIndexParam(quantize_type=zvec.QuantizeType.INT8), "quantization"),
    (lambda: zvec.FlatIndexParam(quantize_type=zvec.QuantizeType.FP16), "quantization"),
    (lambda: zvec.IVFIndexParam(), "IVF"),
    (lambda: zvec.IVFQueryParam(nprobe=4), "IVF"),
    (lambda: zvec.HnswRabitqIndexParam(), "RABITQ"),
    (lambda: zvec.IvfRabitqIndexParam(), "IVF_RABITQ"),
    (lambda: zvec.VamanaIndexParam(), "VAMANA"),
    (lambda: zvec.DiskAnnIndexParam(), "DISKANN"),
    (lambda: zvec.FtsIndexParam(), "full-text"),
    (lambda: zvec.FtsQueryParam(), "full-text"),
])
def test_unsupported_features_name_themselves(make, feature):
    with pytest.raises(NotImplementedError, match=feature):
        make()


@pytest.mark.parametrize("call, feature", [
    (lambda c: c.query_internal_ids(zvec.Query("v", vector=[1, 0, 0, 0])), "query_internal_ids"),
    (lambda c: c.resolve_internal_ids([0]), "resolve_internal_ids"),
    # DDL exists; what stratavec cannot do in it names itself (test_ddl.py has the rest).
    (lambda c: c.create_index("v", zvec.HnswIndexParam()), "metric"),
    (lambda c: c.alter_column("n", field_schema=zvec.FieldSchema(
        "n", zvec.DataType.INT64, nullable=True)), "nullable"),
])
def test_unsupported_collection_calls(coll, call, feature):
    with pytest.raises(NotImplementedError, match=feature):
        call(coll)


def test_init_names_the_settings_it_ignores():
    import warnings

    import stratavec as zvec

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zvec.init()  # nothing passed, nothing to warn about
    with pytest.warns(RuntimeWarning, match="memory_limit_mb"):
        zvec.init(memory_limit_mb=512)
