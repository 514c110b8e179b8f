"""Multi-vector queries (RRF, weighted, Python rerankers), group_by, numpy inputs, HNSW params."""

import math

import numpy as np
import pytest

import stratavec as zvec
from conftest import doc, make_schema


def two_vector_schema():
    return zvec.CollectionSchema(
        "mv",
        fields=[zvec.FieldSchema("cat", zvec.DataType.STRING, nullable=True),
                zvec.FieldSchema("n", zvec.DataType.INT32)],
        vectors=[
            zvec.VectorSchema("a", zvec.DataType.VECTOR_FP32, 8,
                              zvec.HnswIndexParam(metric_type=zvec.MetricType.L2, m=16,
                                                  ef_construction=64)),
            zvec.VectorSchema("b", zvec.DataType.VECTOR_FP32, 8,
                              zvec.FlatIndexParam(metric_type=zvec.MetricType.COSINE)),
        ])


@pytest.fixture
def mv(path, rng):
    c = zvec.create_and_open(path, two_vector_schema())
    docs = [zvec.Doc(f"k{i}", vectors={"a": rng.standard_normal(8).astype(np.float32),
                                        "b": rng.standard_normal(8).astype(np.float32)},
                     fields={"cat": ["x", "y", "z"][i % 3] if i % 7 else None, "n": i})
            for i in range(200)]
    assert all(s.ok() for s in c.insert(docs))
    yield c, docs, rng
    c.close()


def test_rrf_scores_are_zvecs_formula(mv):
    c, _, rng = mv
    qa, qb = rng.standard_normal(8), rng.standard_normal(8)
    ra = c.query(zvec.Query("a", vector=qa), topk=10)
    rb = c.query(zvec.Query("b", vector=qb), topk=10)
    expect = {}
    for hits in (ra, rb):
        for rank, d in enumerate(hits):
            expect[d.id] = expect.get(d.id, 0.0) + 1.0 / (60 + rank + 1)
    got = c.query([zvec.Query("a", vector=qa), zvec.Query("b", vector=qb)], topk=5,
                  reranker=zvec.RrfReRanker())
    assert len(got) == 5
    best = sorted(expect.values(), reverse=True)[:5]
    assert [d.score for d in got] == pytest.approx(best, rel=1e-5)
    for d in got:
        assert d.score == pytest.approx(expect[d.id], rel=1e-5)
    # rank_constant is honoured
    got10 = c.query([zvec.Query("a", vector=qa), zvec.Query("b", vector=qb)], topk=1,
                    reranker=zvec.RrfReRanker(rank_constant=10))
    assert got10[0].score <= 2.0 / 11 + 1e-6 and got10[0].score >= 1.0 / 11 - 1e-6


def test_weighted_scores_are_zvecs_normalisation(mv):
    c, _, rng = mv
    qa, qb = rng.standard_normal(8), rng.standard_normal(8)
    ra = {d.id: d.score for d in c.query(zvec.Query("a", vector=qa), topk=10)}
    rb = {d.id: d.score for d in c.query(zvec.Query("b", vector=qb), topk=10)}
    expect = {}
    for k, d in ra.items():
        expect[k] = expect.get(k, 0.0) + 0.3 * (1 - 2 * math.atan(d) / math.pi)
    for k, d in rb.items():
        expect[k] = expect.get(k, 0.0) + 0.7 * (1 - d / 2)
    got = c.query([zvec.Query("a", vector=qa), zvec.Query("b", vector=qb)], topk=4,
                  reranker=zvec.WeightedReRanker([0.3, 0.7]))
    assert [d.score for d in got] == pytest.approx(sorted(expect.values(), reverse=True)[:4],
                                                   rel=1e-4)
    with pytest.raises(ValueError, match="weights"):
        c.query([zvec.Query("a", vector=qa), zvec.Query("b", vector=qb)],
                reranker=zvec.WeightedReRanker([1.0]))


def test_multi_query_needs_reranker_and_filter_applies_to_all_routes(mv):
    c, _, rng = mv
    qs = [zvec.Query("a", vector=rng.standard_normal(8)), zvec.Query("a", vector=rng.standard_normal(8))]
    with pytest.raises(ValueError, match="reranker is required"):
        c.query(qs)
    got = c.query(qs, topk=10, filter="n < 50", reranker=zvec.RrfReRanker())
    assert got and all(d.fields["n"] < 50 for d in got)


def test_python_reranker_subclass(mv):
    c, _, rng = mv

    class First(zvec.ReRanker):
        def rerank(self, query_results, topk):
            return query_results[0][:topk]

    qa = rng.standard_normal(8)
    got = c.query([zvec.Query("a", vector=qa), zvec.Query("b", vector=qa)], topk=3,
                  reranker=First())
    assert [d.id for d in got] == [d.id for d in c.query(zvec.Query("a", vector=qa), topk=3)]


def test_group_by_query(mv):
    c, docs, rng = mv
    q = zvec.Query("b", vector=rng.standard_normal(8))
    groups = c.group_by_query(q, "cat", group_count=3, topk_per_group=2)
    assert len(groups) == 3
    assert all(isinstance(g, zvec.GroupResult) and len(g.docs) == 2 for g in groups)
    values = {d.id: d.fields["cat"] for d in docs}
    for g in groups:
        for d in g.docs:
            assert (values[d.id] or "") == g.group_by_value
        assert g.docs[0].score <= g.docs[1].score  # cosine: ascending
    # groups are ordered by their best hit
    assert [g.docs[0].score for g in groups] == sorted(g.docs[0].score for g in groups)
    # NULL values form the group ''
    all_groups = c.group_by_query(q, "cat", group_count=10, topk_per_group=1)
    assert sorted(g.group_by_value for g in all_groups) == ["", "x", "y", "z"]
    # filter applies
    g = c.group_by_query(q, "cat", group_count=5, topk_per_group=5, filter="n < 10")
    assert all(d.fields["n"] < 10 for grp in g for d in grp.docs)
    with pytest.raises(ValueError):
        c.group_by_query(q, "cat", group_count=0)
    with pytest.raises(ValueError):
        c.group_by_query(q, "nope")


def test_numpy_inputs_everywhere(path, rng):
    c = zvec.create_and_open(path, make_schema(dim=16))
    base = rng.standard_normal((300, 16)).astype(np.float32)
    docs = [zvec.Doc(str(i), vectors={"v": base[i]}, fields={"n": i}) for i in range(300)]
    assert all(s.ok() for s in c.insert(docs))
    # float32 rows, a float64 array, a non-contiguous view, a list of ints: same answers
    for q in (base[17], base[17].astype(np.float64), np.repeat(base[17], 2)[::2],
              base[17].tolist()):
        got = c.query(zvec.Query("v", vector=q, param=zvec.HnswQueryParam(ef=64)), topk=1)
        assert got[0].id == "17"
    np.testing.assert_allclose(c.fetch("17")["17"].vector("v"), base[17], rtol=1e-6)
    with pytest.raises(ValueError, match="1-d"):
        c.query(zvec.Query("v", vector=base[:2]))
    # recall of the HNSW field against exact search
    queries = rng.standard_normal((20, 16)).astype(np.float32)
    hits = 0
    for q in queries:
        exact = np.argsort(((base - q) ** 2).sum(1))[:10]
        got = c.query(zvec.Query("v", vector=q, param=zvec.HnswQueryParam(ef=100)), topk=10)
        hits += len({int(d.id) for d in got} & set(exact.tolist()))
    assert hits / 200 >= 0.9
    c.close()


def test_hnsw_query_param_on_flat_field_is_refused(path):
    c = zvec.create_and_open(path, make_schema(index="flat"))
    c.insert(doc(1))
    with pytest.raises(ValueError, match="expected FLAT but got HNSW"):
        c.query(zvec.Query("v", vector=[1, 0, 0, 0], param=zvec.HnswQueryParam(ef=10)))
    c.close()


def test_filters_with_and_without_inverted_index_agree(path):
    results = []
    for inverted in (False, True):
        c = zvec.create_and_open(f"{path}{inverted}", make_schema(inverted=inverted))
        c.insert([doc(i, s=["a", "b", None][i % 3], tags=[["x"], [], None][i % 3]) for i in range(30)])
        out = []
        for f in ["n != 10 OR n != 20", "n NOT IN (1, 2, 3)", "s IS NULL", "s LIKE 'a%'",
                  "tags CONTAIN_ANY ('x')", "array_length(tags) = 0", "n < 2 OR n > 28 AND s = 'a'",
                  "s NOT IN ('a')"]:
            out.append([d.id for d in c.query(filter=f, topk=100)])
        results.append(out)
        c.close()
    assert results[0] == results[1]
    ids = results[0]
    assert ids[1] == [f"d{i}" for i in range(30) if i not in (1, 2, 3)]
    assert ids[2] == [f"d{i}" for i in range(30) if i % 3 == 2]
    assert ids[7] == [f"d{i}" for i in range(30) if i % 3 == 1]  # NULL excluded
