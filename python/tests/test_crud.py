"""Create, open, insert, upsert, update, delete, fetch, reopen, read-only: zvec's semantics."""

import numpy as np
import pytest

import stratavec as zvec
from conftest import doc, make_schema


def test_insert_returns_status_per_doc_and_duplicates_are_already_exists(coll):
    st = coll.insert([doc(1), doc(2)])
    assert [s.code() for s in st] == [zvec.StatusCode.OK, zvec.StatusCode.OK]
    assert all(s.ok() for s in st)
    single = coll.insert(doc(1))
    assert isinstance(single, zvec.Status)
    assert single.code() == zvec.StatusCode.ALREADY_EXISTS
    assert single.message() == "insert failed: doc_id[d1] already exists in collection"
    assert coll.stats.doc_count == 2


def test_duplicate_within_one_batch(coll):
    st = coll.insert([doc(5), doc(5)])
    assert [s.code() for s in st] == [zvec.StatusCode.OK, zvec.StatusCode.ALREADY_EXISTS]
    assert coll.stats.doc_count == 1


def test_fetch_returns_dict_by_id_with_score_zero_and_values(coll):
    coll.insert([doc(1, s="one", f=1.5, tags=["a", "b"]), doc(2)])
    got = coll.fetch(["d1", "d2", "missing", "d1"])
    assert set(got) == {"d1", "d2"}
    d1 = got["d1"]
    assert d1.id == "d1" and d1.score == 0.0
    assert d1.fields == {"n": 1, "s": "one", "f": 1.5, "tags": ["a", "b"]}
    assert d1.vector("v") == pytest.approx([0.0, 1.01, 0.0, 0.0])
    assert coll.fetch([]) == {}
    assert coll.fetch("missing") == {}
    assert list(coll.fetch("d1", include_vector=False)["d1"].vectors) == []
    assert coll.fetch("d1", output_fields=["s"])["d1"].fields == {"s": "one"}


def test_upsert_replaces_whole_document(coll):
    coll.insert(doc(1, s="old", f=2.0))
    st = coll.upsert([zvec.Doc("d1", vectors={"v": [9, 9, 9, 9]}, fields={"n": 7}),
                      doc(2)])
    assert all(s.ok() for s in st)
    d1 = coll.fetch("d1")["d1"]
    assert d1.fields["n"] == 7 and "s" not in d1.fields  # replaced, not merged
    assert d1.vector("v") == [9.0, 9.0, 9.0, 9.0]
    assert coll.stats.doc_count == 2


def test_update_merges_fields_and_keeps_vector(coll):
    coll.insert(doc(1, s="keep"))
    assert coll.update(zvec.Doc("d1", fields={"n": 5})).ok()
    d1 = coll.fetch("d1")["d1"]
    assert d1.fields["n"] == 5 and d1.fields["s"] == "keep"
    assert d1.vector("v") == pytest.approx([0.0, 1.01, 0.0, 0.0])
    # None clears a nullable field
    assert coll.update(zvec.Doc("d1", fields={"s": None})).ok()
    assert "s" not in coll.fetch("d1")["d1"].fields
    missing = coll.update(zvec.Doc("zz", fields={"n": 1}))
    assert missing.code() == zvec.StatusCode.NOT_FOUND
    assert missing.message() == "Document not found"


def test_delete_then_reinsert(coll):
    coll.insert([doc(1), doc(2)])
    st = coll.delete(["d1", "zz"])
    assert st[0].ok()
    assert st[1].code() == zvec.StatusCode.NOT_FOUND
    assert st[1].message() == "primary key: zz not found"
    assert coll.delete("d1").code() == zvec.StatusCode.NOT_FOUND  # second delete
    assert coll.fetch("d1") == {}
    assert coll.insert(doc(1, s="again")).ok()
    assert coll.fetch("d1")["d1"].fields["s"] == "again"


def test_delete_by_filter_and_reinsert(coll):
    coll.insert([doc(i) for i in range(10)])
    assert coll.delete_by_filter("n >= 5") is None
    assert coll.stats.doc_count == 5
    assert sorted(coll.fetch([f"d{i}" for i in range(10)])) == [f"d{i}" for i in range(5)]
    # unlike zvec 0.8.0, the ids can be inserted again
    assert coll.insert(doc(7)).ok()
    coll.delete_by_filter("")  # zvec: an empty filter deletes everything
    assert coll.stats.doc_count == 0


def test_filter_only_query_in_insertion_order(coll):
    coll.insert([doc(i, s="even" if i % 2 == 0 else "odd") for i in range(8)])
    got = coll.query(filter="s = 'even'", topk=3)
    assert [d.id for d in got] == ["d0", "d2", "d4"]
    assert all(d.score == 0.0 for d in got)
    assert [d.id for d in coll.query()] == [f"d{i}" for i in range(8)]
    assert [d.id for d in coll.query(filter="")] == [f"d{i}" for i in range(8)]


def test_vector_query_with_filter_and_l2_scores(coll):
    coll.insert([doc(i) for i in range(20)])
    q = zvec.Query("v", vector=[1.0, 0.0, 0.0, 0.0])
    got = coll.query(q, topk=3, filter="n > 3")
    assert [d.id for d in got] == ["d4", "d8", "d12"]
    # L2 is the squared distance: d4 = (1.04, 0, 0, 0)
    assert got[0].score == pytest.approx(0.04 ** 2, abs=1e-5)
    assert all(d.fields["n"] > 3 for d in got)
    # output_fields and include_vector
    got = coll.query(q, topk=1, output_fields=["s"], include_vector=True)
    assert got[0].fields == {} and got[0].vector("v") == pytest.approx([1.0, 0, 0, 0])


def test_query_by_id(coll):
    coll.insert([doc(i) for i in range(8)])
    got = coll.query(zvec.Query("v", id="d4"), topk=2)
    assert [d.id for d in got] == ["d4", "d0"]
    assert got[0].score == pytest.approx(0.0)


def test_ip_and_cosine_scores(path):
    for metric, expect in [(zvec.MetricType.IP, 2.0), (zvec.MetricType.COSINE, 0.0)]:
        c = zvec.create_and_open(f"{path}-{metric.name}", make_schema(metric=metric))
        c.insert([zvec.Doc("a", vectors={"v": [2, 0, 0, 0]}, fields={"n": 1}),
                  zvec.Doc("b", vectors={"v": [0, 1, 0, 0]}, fields={"n": 2})])
        got = c.query(zvec.Query("v", vector=[1, 0, 0, 0]), topk=2)
        assert got[0].id == "a" and got[0].score == pytest.approx(expect, abs=1e-5)
        assert got[1].score == pytest.approx(0.0 if metric == zvec.MetricType.IP else 1.0, abs=1e-5)
        c.close()


def test_reopen_after_close_keeps_everything(path):
    c = zvec.create_and_open(path, make_schema())
    c.insert([doc(i, s=f"s{i}") for i in range(50)])
    c.delete("d3")
    c.update(zvec.Doc("d4", fields={"n": 400}))
    c.close()
    c.close()  # idempotent
    with pytest.raises(ValueError):
        c.fetch("d1")
    c = zvec.open(path)
    assert c.stats.doc_count == 49
    assert c.fetch("d3") == {}
    assert c.fetch("d4")["d4"].fields["n"] == 400
    assert c.schema.vector("v").dimension == 4
    assert c.schema.field("s").nullable
    assert isinstance(c.schema.vector("v").index_param, zvec.HnswIndexParam)
    assert c.schema.vector("v").index_param.metric_type == zvec.MetricType.L2
    got = c.query(zvec.Query("v", vector=[0, 1, 0, 0]), topk=1)
    assert got[0].id == "d1"
    c.close()


def test_read_only_open_reads_and_refuses_writes(path):
    c = zvec.create_and_open(path, make_schema())
    c.insert([doc(i) for i in range(5)])
    c.close()
    ro = zvec.open(path, zvec.CollectionOption(read_only=True))
    ro2 = zvec.open(path, zvec.CollectionOption(read_only=True))  # shared
    assert ro.stats.doc_count == 5 and ro2.stats.doc_count == 5
    assert ro.option.read_only
    for write in (lambda: ro.insert(doc(9)), lambda: ro.upsert(doc(1)),
                  lambda: ro.update(doc(1)), lambda: ro.delete("d1"),
                  lambda: ro.delete_by_filter("n > 1"), ro.flush, ro.optimize, ro.destroy):
        with pytest.raises(ValueError, match="read-only"):
            write()
    with pytest.raises(RuntimeError, match="Can't lock"):
        zvec.open(path)  # a writer while readers hold it
    ro.close()
    ro2.close()


def test_flush_optimize_stats_and_destroy(path):
    c = zvec.create_and_open(path, make_schema())
    c.insert([doc(i) for i in range(100)])
    c.flush()
    s = c.stats
    assert s.doc_count == 100 and s.segments >= 1 and s.writing_rows == 0
    c.delete([f"d{i}" for i in range(50)])
    c.optimize()
    s = c.stats
    assert s.doc_count == 50 and s.deleted == 0
    assert s.index_completeness == {"v": 1.0}
    c.destroy()
    import os
    assert not os.path.exists(path)
    with pytest.raises(ValueError, match="already destroyed"):
        c.destroy()


def test_sync_open_report_flush_policy(path):
    c = zvec.create_and_open(path, make_schema(), zvec.CollectionOption(flush_policy="never"))
    assert c.flush_policy == "never"
    c.insert([doc(i) for i in range(10)])
    c.sync()
    c.close()
    # the stored policy is the default of later opens; an open may override it
    c = zvec.open(path, zvec.CollectionOption(flush_policy="every:10"))
    assert c.flush_policy == "every:10"
    assert c.open_report["segments"] == 1
    c.close()
    assert zvec.verify(path) == {"ok": True, "files": zvec.verify(path)["files"], "problems": []}


def test_context_manager_closes(path):
    with zvec.create_and_open(path, make_schema()) as c:
        c.insert(doc(1))
    c2 = zvec.open(path)  # the lock was released
    assert c2.stats.doc_count == 1
    c2.close()


def test_type_coercion_like_zvec(coll):
    # bool accepted for INT, int for DOUBLE, numpy scalars for both
    st = coll.insert([zvec.Doc("a", vectors={"v": [1, 2, 3, 4]}, fields={"n": True, "f": 3}),
                      zvec.Doc("b", vectors={"v": [1, 2, 3, 4]},
                               fields={"n": np.int32(9), "f": np.float64(0.5)})])
    assert all(s.ok() for s in st)
    got = coll.fetch(["a", "b"])
    assert got["a"].fields["n"] == 1 and got["a"].fields["f"] == 3.0
    assert got["b"].fields["n"] == 9 and got["b"].fields["f"] == 0.5


def test_unicode_and_long_ids(coll):
    ids = [" ", "订单:2026", "a" * 1024, "x/y!@#$%+=.-_"]
    st = coll.insert([zvec.Doc(i, vectors={"v": [1, 0, 0, 0]}, fields={"n": 1}) for i in ids])
    assert all(s.ok() for s in st)
    assert set(coll.fetch(ids)) == set(ids)


def test_all_scalar_types_round_trip(path):
    T = zvec.DataType
    types = {"b": (T.BOOL, True), "i32": (T.INT32, -5), "i64": (T.INT64, 2**40),
             "u32": (T.UINT32, 2**32 - 1), "u64": (T.UINT64, 2**64 - 1), "fl": (T.FLOAT, 0.5),
             "db": (T.DOUBLE, 0.1), "st": (T.STRING, "héllo"),
             "ab": (T.ARRAY_BOOL, [True, False]), "ai32": (T.ARRAY_INT32, [1, -2]),
             "ai64": (T.ARRAY_INT64, [2**40]), "au32": (T.ARRAY_UINT32, [7]),
             "au64": (T.ARRAY_UINT64, [2**63]), "afl": (T.ARRAY_FLOAT, [0.25]),
             "adb": (T.ARRAY_DOUBLE, [0.1, 0.2]), "ast": (T.ARRAY_STRING, ["x", ""])}
    schema = zvec.CollectionSchema(
        "types", fields=[zvec.FieldSchema(k, t) for k, (t, _) in types.items()],
        vectors=zvec.VectorSchema("v", T.VECTOR_FP32, 2))
    c = zvec.create_and_open(path, schema)
    values = {k: v for k, (_, v) in types.items()}
    assert c.insert(zvec.Doc("a", vectors={"v": [1, 2]}, fields=values)).ok()
    c.close()
    c = zvec.open(path)
    assert c.fetch("a")["a"].fields == values
    # default vector index: FLAT with metric IP, like zvec
    p = c.schema.vector("v").index_param
    assert isinstance(p, zvec.FlatIndexParam) and p.metric_type == zvec.MetricType.IP
    c.close()


def test_iter_docs_reads_every_live_document_once_in_insertion_order(coll):
    coll.insert([doc(i) for i in range(25)])
    coll.flush()
    coll.insert([doc(i) for i in range(25, 40)])
    coll.upsert(doc(3, s="moved"))  # a replaced document moves to the end
    coll.delete(["d7"])
    want = [f"d{i}" for i in range(40) if i not in (3, 7)] + ["d3"]
    got = list(coll.iter_docs(batch_size=6))
    assert [d.id for d in got] == want
    assert got[-1].fields["s"] == "moved"
    assert got[0].vectors["v"] == pytest.approx([1.0, 0.0, 0.0, 0.0])
    bare = list(coll.iter_docs(output_fields=["n"], include_vector=False, filter="n >= 30"))
    assert [d.id for d in bare] == [f"d{i}" for i in range(30, 40)]
    assert all(not d.vectors and set(d.fields) == {"n"} for d in bare)
    assert coll.count() == 39
    assert coll.count("n >= 30") == 10
    with pytest.raises(ValueError):
        list(coll.iter_docs(batch_size=0))
