"""Schema and index changes (zvec's DDL): add_column with an expression, drop_column,
alter_column, create_index, drop_index — their effect before and after a reopen, and the
refused cases with zvec's exception types."""

import pytest

import stratavec as zvec
from conftest import doc, make_schema

T = zvec.DataType


def fields(coll, pk):
    return coll.fetch(pk)[pk].fields


def names(coll):
    return [f.name for f in coll.schema.fields]


@pytest.fixture
def filled(path):
    """d0..d9 (f = n / 4 except d3: NULL), half flushed, half in the writing segment; d9
    deleted."""
    c = zvec.create_and_open(path, make_schema())
    c.insert([doc(i, f=(None if i == 3 else i / 4)) for i in range(5)])
    c.flush()
    c.insert([doc(i, f=i / 4) for i in range(5, 10)])
    c.delete("d9")
    yield c
    c.close()


def test_add_column_with_an_expression(filled, path):
    c = filled
    c.add_column(zvec.FieldSchema("twice", T.INT64), "n * 2")
    c.add_column(zvec.FieldSchema("half", T.INT32), expression="n / 2")  # integer division
    c.add_column(zvec.FieldSchema("g", T.DOUBLE, nullable=True), "(f + n) * 2")
    c.add_column(zvec.FieldSchema("five", T.UINT32), "5", zvec.AddColumnOption())
    c.add_column(zvec.FieldSchema("empty", T.FLOAT, nullable=True))
    assert names(c) == ["n", "s", "f", "tags", "twice", "half", "g", "five", "empty"]
    assert c.schema.field("g").nullable and not c.schema.field("twice").nullable

    def check(c):
        for i in range(9):
            got = fields(c, f"d{i}")
            assert got["twice"] == 2 * i
            assert got["half"] == i // 2
            assert got["five"] == 5
            assert got.get("empty") is None
            if i == 3:
                assert got.get("g") is None  # NULL operand, NULL value
            else:
                assert got["g"] == pytest.approx((i / 4 + i) * 2)
        assert c.count("twice >= 10 AND n < 20") == 4
        assert c.count("g IS NULL AND n < 20") == 1
        assert [d.id for d in c.query(filter="half = 2")] == ["d4", "d5"]
        assert c.fetch("d9") == {}

    check(c)
    # New documents must give the non-nullable columns.
    with pytest.raises(ValueError, match="twice"):
        c.insert(doc(20))
    assert c.insert(doc(20, twice=0, half=0, five=1)).ok()
    c.close()
    c = zvec.open(path)
    check(c)
    assert names(c) == ["n", "s", "f", "tags", "twice", "half", "g", "five", "empty"]
    assert fields(c, "d20")["five"] == 1
    c.close()


def test_add_column_refusals_change_nothing(filled):
    c = filled
    before = names(c)
    add = c.add_column
    with pytest.raises(ValueError, match=r"non-nullable field\[x\] requires an expression when added"):
        add(zvec.FieldSchema("x", T.INT32))
    with pytest.raises(ValueError, match=r"requires a numeric field; field\[x\] has type STRING"):
        add(zvec.FieldSchema("x", T.STRING, nullable=True))
    with pytest.raises(ValueError, match=r"field\[n\] already exists"):
        add(zvec.FieldSchema("n", T.INT32, nullable=True))
    with pytest.raises(ValueError, match="Column not found in schema: zz"):
        add(zvec.FieldSchema("x", T.INT32, nullable=True), "zz * 2")
    with pytest.raises(ValueError, match=r"field\[s\] has type STRING"):
        add(zvec.FieldSchema("x", T.INT32, nullable=True), "s * 2")
    for bad in ["n +", "n > 1", "'a'", "  ", "n / 2.0", "1 / 0", "5000000000"]:
        with pytest.raises(ValueError, match="parse expression failed"):
            add(zvec.FieldSchema("x", T.INT32, nullable=True), bad)
    # The rows refuse it: zvec's RuntimeError, naming the document.
    with pytest.raises(RuntimeError, match=r"divide by zero for field\[x\] of doc\[d4\]"):
        add(zvec.FieldSchema("x", T.INT64, nullable=True), "100 / (n - 4)")
    with pytest.raises(RuntimeError, match="out of range for int32"):
        add(zvec.FieldSchema("x", T.INT32, nullable=True), "n * 1000000000")
    with pytest.raises(RuntimeError, match=r"NULL.*doc\[d3\]"):
        add(zvec.FieldSchema("x", T.DOUBLE), "f * 2")
    # Wrong Python types.
    with pytest.raises(TypeError, match="FieldSchema"):
        add("x", "1")
    with pytest.raises(TypeError, match="expression"):
        add(zvec.FieldSchema("x", T.INT32, nullable=True), 5)
    with pytest.raises(TypeError, match="option"):
        add(zvec.FieldSchema("x", T.INT32, nullable=True), "", zvec.IndexOption())
    assert names(c) == before
    assert c.stats.doc_count == 9
    # Not poisoned: writes and changes go on.
    assert c.insert(doc(30)).ok()
    c.add_column(zvec.FieldSchema("x", T.INT64, nullable=True), "n - 1")
    assert fields(c, "d30")["x"] == 29


def test_drop_column(filled, path):
    c = filled
    c.drop_column("f")
    c.drop_column("s", None)  # any scalar type, beyond zvec
    assert names(c) == ["n", "tags"]
    with pytest.raises(ValueError, match=r"'f' not found"):
        c.drop_column("f")
    with pytest.raises(ValueError, match=r"field\[v\] has type VECTOR_FP32"):
        c.drop_column("v")
    with pytest.raises(ValueError, match="not found in collection schema"):
        c.insert(doc(40, f=1.0))
    assert "f" not in fields(c, "d1")
    c.close()
    c = zvec.open(path)
    assert names(c) == ["n", "tags"]
    assert fields(c, "d2") == {"n": 2}
    c.close()


def test_alter_column(filled, path):
    c = filled
    c.alter_column("n", "num")  # rename only
    assert names(c) == ["num", "s", "f", "tags"]
    assert c.count("num >= 5") == 4
    c.alter_column("s", new_name="label", option=zvec.AlterColumnOption(concurrency=2))
    # Redefine: the field schema's name renames, its type widens, its index is built.
    c.alter_column("num", field_schema=zvec.FieldSchema(
        "n", T.INT64, index_param=zvec.InvertIndexParam()))
    assert c.schema.field("n").index_param == zvec.InvertIndexParam()
    c.add_column(zvec.FieldSchema("small", T.INT32), "n")
    c.alter_column("small", "", zvec.FieldSchema("small", T.DOUBLE))
    assert c.schema.field("small").data_type == T.DOUBLE
    assert fields(c, "d7")["small"] == 7.0
    # The same definition again changes nothing; one without the index drops it.
    c.alter_column("n", field_schema=zvec.FieldSchema("n", T.INT64, index_param=zvec.InvertIndexParam()))
    c.alter_column("n", field_schema=zvec.FieldSchema("n", T.INT64))
    assert c.schema.field("n").index_param is None

    with pytest.raises(ValueError, match="cannot specify both rename and new column schema"):
        c.alter_column("n", "m", zvec.FieldSchema("m", T.INT64))
    with pytest.raises(ValueError, match="field schema must not be null"):
        c.alter_column("n")
    with pytest.raises(ValueError, match="field schema must not be null"):
        c.alter_column("n", "")
    with pytest.raises(ValueError, match=r"field\[f\] already exists"):
        c.alter_column("n", "f")
    with pytest.raises(ValueError, match="cannot make a nullable field non-nullable"):
        c.alter_column("f", field_schema=zvec.FieldSchema("f", T.DOUBLE))
    with pytest.raises(NotImplementedError, match="nullable"):
        c.alter_column("n", field_schema=zvec.FieldSchema("n", T.INT64, nullable=True))
    with pytest.raises(ValueError, match="without loss"):
        c.alter_column("n", field_schema=zvec.FieldSchema("n", T.INT32))
    with pytest.raises(ValueError, match=r"field\[label\] has type STRING"):
        c.alter_column("label", field_schema=zvec.FieldSchema("label", T.INT64, nullable=True))
    with pytest.raises(ValueError, match=r"field\[v\] has type VECTOR_FP32"):
        c.alter_column("v", "w")
    with pytest.raises(ValueError, match="'zz' not found"):
        c.alter_column("zz", "yy")
    with pytest.raises(TypeError, match="new column name must be str"):
        c.alter_column("n", 5)
    with pytest.raises(TypeError, match="field_schema must be a FieldSchema"):
        c.alter_column("n", field_schema="x")
    # A definition whose index the new type cannot take is refused whole: nothing changes.
    with pytest.raises(ValueError, match="inverted index needs"):
        c.alter_column("small", field_schema=zvec.FieldSchema(
            "small2", T.DOUBLE, index_param=zvec.InvertIndexParam()))
    with pytest.raises(ValueError, match="does not support vector index params"):
        c.alter_column("small", field_schema=zvec.FieldSchema(
            "small2", T.DOUBLE, index_param=zvec.HnswIndexParam()))
    assert c.schema.field("small2") is None
    expected = ["n", "label", "f", "tags", "small"]
    assert names(c) == expected
    c.close()
    c = zvec.open(path)
    assert names(c) == expected
    assert c.schema.field("n").data_type == T.INT64
    assert [d.id for d in c.query(filter="n = 6")] == ["d6"]
    c.close()


def test_create_and_drop_index(path):
    c = zvec.create_and_open(path, make_schema(index="flat"))
    c.insert([doc(i) for i in range(40)])
    q = zvec.Query("v", vector=[1.0, 0.0, 0.0, 0.0])
    exact = [d.id for d in c.query(q, topk=5)]
    c.create_index("n", zvec.InvertIndexParam())
    assert c.schema.field("n").index_param == zvec.InvertIndexParam()
    assert [d.id for d in c.query(filter="n = 7")] == ["d7"]
    c.create_index("v", zvec.HnswIndexParam(metric_type=zvec.MetricType.L2, m=8,
                                            ef_construction=64), zvec.IndexOption())
    p = c.schema.vector("v").index_param
    assert isinstance(p, zvec.HnswIndexParam) and (p.m, p.ef_construction) == (8, 64)
    assert p.metric_type == zvec.MetricType.L2
    assert [d.id for d in c.query(q, topk=5)] == exact
    assert c.stats.index_completeness["v"] == 1.0
    c.close()
    c = zvec.open(path)
    assert isinstance(c.schema.vector("v").index_param, zvec.HnswIndexParam)
    assert c.schema.field("n").index_param == zvec.InvertIndexParam()
    assert [d.id for d in c.query(q, topk=5)] == exact

    with pytest.raises(KeyError, match=r"field\[zz\] not found in schema"):
        c.create_index("zz", zvec.InvertIndexParam())
    with pytest.raises(KeyError, match=r"field\[zz\] not found in schema"):
        c.drop_index("zz")
    with pytest.raises(ValueError, match=r"scalar field\[n\] does not support vector index params"):
        c.create_index("n", zvec.HnswIndexParam())
    with pytest.raises(ValueError, match=r"vector field\[v\] does not support scalar index params"):
        c.create_index("v", zvec.InvertIndexParam())
    with pytest.raises(NotImplementedError, match="metric"):
        c.create_index("v", zvec.HnswIndexParam())  # IP on an L2 field
    with pytest.raises(TypeError, match="index_param"):
        c.create_index("v", "hnsw")
    with pytest.raises(ValueError):
        c.create_index("f", zvec.InvertIndexParam())  # no inverted index on a double field

    # Back to flat, keeping the metric (zvec 0.8.0 resets it to IP).
    c.drop_index("v")
    p = c.schema.vector("v").index_param
    assert isinstance(p, zvec.FlatIndexParam) and p.metric_type == zvec.MetricType.L2
    c.drop_index("n")
    c.drop_index("n")  # no index: no-op
    assert c.schema.field("n").index_param is None
    assert [d.id for d in c.query(q, topk=5)] == exact
    c.create_index("v", zvec.FlatIndexParam(metric_type=zvec.MetricType.L2))
    c.close()
    c = zvec.open(path)
    assert isinstance(c.schema.vector("v").index_param, zvec.FlatIndexParam)
    assert c.schema.field("n").index_param is None
    assert [d.id for d in c.query(q, topk=5)] == exact
    c.close()


def test_ddl_on_read_only_and_closed_handles(filled, path):
    filled.close()
    ro = zvec.open(path, zvec.CollectionOption(read_only=True))
    for call in [
        lambda: ro.add_column(zvec.FieldSchema("x", T.INT32, nullable=True)),
        lambda: ro.drop_column("f"),
        lambda: ro.alter_column("n", "m"),
        lambda: ro.create_index("n", zvec.InvertIndexParam()),
        lambda: ro.drop_index("v"),
    ]:
        with pytest.raises(ValueError, match="read-only mode"):
            call()
    assert names(ro) == ["n", "s", "f", "tags"]
    ro.close()
    with pytest.raises(ValueError, match="closed"):
        ro.add_column(zvec.FieldSchema("x", T.INT32, nullable=True))
