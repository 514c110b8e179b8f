"""Shared fixtures: a fresh directory per test and the schemas the tests use."""

import numpy as np
import pytest

import stratavec as zvec


def make_schema(metric=zvec.MetricType.L2, index="hnsw", dim=4, inverted=False):
    """Scalar fields of several types and one vector field `v` (HNSW or FLAT)."""
    if index == "hnsw":
        p = zvec.HnswIndexParam(metric_type=metric, m=16, ef_construction=100)
    else:
        p = zvec.FlatIndexParam(metric_type=metric)
    return zvec.CollectionSchema(
        "test",
        fields=[
            zvec.FieldSchema("n", zvec.DataType.INT64,
                             index_param=zvec.InvertIndexParam() if inverted else None),
            zvec.FieldSchema("s", zvec.DataType.STRING, nullable=True),
            zvec.FieldSchema("f", zvec.DataType.DOUBLE, nullable=True),
            zvec.FieldSchema("tags", zvec.DataType.ARRAY_STRING, nullable=True),
        ],
        vectors=zvec.VectorSchema("v", zvec.DataType.VECTOR_FP32, dim, p),
    )


def doc(i, dim=4, **fields):
    """Doc `d<i>` with n=i and a vector that is one-hot-ish at position i % dim."""
    v = [0.0] * dim
    v[i % dim] = 1.0 + i / 100.0
    f = {"n": i}
    f.update(fields)
    return zvec.Doc(f"d{i}", vectors={"v": v}, fields=f)


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "coll")


@pytest.fixture
def coll(path):
    c = zvec.create_and_open(path, make_schema())
    yield c
    c.close()


@pytest.fixture
def rng():
    return np.random.default_rng(7)
