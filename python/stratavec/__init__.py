"""stratavec: an embedded, durable vector database in Rust, with zvec's Python API.

``import stratavec as zvec`` and use it as zvec 0.8.0::

    import numpy as np
    import stratavec as zvec

    schema = zvec.CollectionSchema(
        "docs",
        fields=zvec.FieldSchema("year", zvec.DataType.INT32),
        vectors=zvec.VectorSchema("emb", zvec.DataType.VECTOR_FP32, 4,
                                  zvec.HnswIndexParam(metric_type=zvec.MetricType.COSINE)),
    )
    coll = zvec.create_and_open("/tmp/docs", schema)
    coll.insert(zvec.Doc("a", vectors={"emb": np.ones(4, np.float32)}, fields={"year": 2024}))
    hits = coll.query(zvec.Query("emb", vector=[1, 0, 0, 0]), topk=5, filter="year > 2000")

Features zvec has and stratavec does not (sparse vectors, full-text search, quantization,
IVF/RaBitQ/Vamana/DiskANN indexes, column and index DDL) raise ``NotImplementedError``.
"""

from __future__ import annotations

from . import _native
from ._native import CorruptionError, LockError, PoisonedError
from .collection import Collection, create_and_open, open
from .doc import (
    Doc,
    DocList,
    Fts,
    GroupByQuery,
    GroupResult,
    Query,
    ReRanker,
    RrfReRanker,
    VectorQuery,
    WeightedReRanker,
)
from .param import (
    AddColumnOption,
    AlterColumnOption,
    CollectionOption,
    DiskAnnIndexParam,
    DiskAnnQueryParam,
    FlatIndexParam,
    FtsIndexParam,
    FtsQueryParam,
    HnswIndexParam,
    HnswQueryParam,
    HnswRabitqIndexParam,
    HnswRabitqQueryParam,
    IndexOption,
    InvertIndexParam,
    IVFIndexParam,
    IVFQueryParam,
    IvfRabitqIndexParam,
    IvfRabitqQueryParam,
    OptimizeOption,
    QuantizerParam,
    VamanaIndexParam,
    VamanaQueryParam,
)
from .schema import CollectionSchema, CollectionStats, FieldSchema, VectorSchema
from .typing import (
    DataType,
    IndexType,
    IOBackendType,
    LogLevel,
    LogType,
    MetricType,
    QuantizeType,
    Status,
    StatusCode,
)

__version__ = "0.1.0"

#: Most documents (or ids) one write call may carry.
MAX_BATCH: int = _native.MAX_BATCH


def init(**kwargs: object) -> None:
    """zvec's global configuration (logging, thread pools, memory limit). stratavec has no
    global state to configure: the call is accepted so that zvec programs run unchanged, and
    each setting passed is named in a ``RuntimeWarning`` (it has no effect here)."""
    if kwargs:
        import warnings

        warnings.warn(
            "stratavec.init ignores " + ", ".join(sorted(kwargs)) + ": stratavec has no global "
            "configuration (threads follow the machine's cores; there is no memory limit)",
            RuntimeWarning,
            stacklevel=2,
        )


def verify(path: str) -> dict:
    """stratavec: check every file of the collection at ``path`` (manifest, delete set,
    forward stores, graphs, WALs, and the consistency between them) without changing anything.

    Returns ``{"ok": bool, "files": int, "problems": [{"path", "offset", "reason"}]}``.
    Raises ``ValueError`` when there is no collection, ``LockError`` when a writer holds it.
    """
    import os

    files, problems = _native.verify(os.fspath(path))
    return {
        "ok": not problems,
        "files": files,
        "problems": [{"path": p, "offset": o, "reason": r} for p, o, r in problems],
    }


def io_backend_type() -> IOBackendType:
    """zvec's I/O backend query: stratavec reads files with plain reads and memory maps."""
    return IOBackendType.PREAD


def io_backend_description() -> str:
    """A description of the I/O backend."""
    return "pread and mmap (std::fs, memmap2)"


def kernel_name() -> str:
    """stratavec: the distance kernel chosen for this CPU (``avx2+fma``, ``scalar``, ...)."""
    return _native.kernel_name()


__all__ = [
    "AddColumnOption",
    "AlterColumnOption",
    "Collection",
    "CollectionOption",
    "CollectionSchema",
    "CollectionStats",
    "CorruptionError",
    "DataType",
    "DiskAnnIndexParam",
    "DiskAnnQueryParam",
    "Doc",
    "DocList",
    "FieldSchema",
    "FlatIndexParam",
    "Fts",
    "FtsIndexParam",
    "FtsQueryParam",
    "GroupByQuery",
    "GroupResult",
    "HnswIndexParam",
    "HnswQueryParam",
    "HnswRabitqIndexParam",
    "HnswRabitqQueryParam",
    "IOBackendType",
    "IVFIndexParam",
    "IVFQueryParam",
    "IndexOption",
    "IndexType",
    "InvertIndexParam",
    "IvfRabitqIndexParam",
    "IvfRabitqQueryParam",
    "LockError",
    "LogLevel",
    "LogType",
    "MAX_BATCH",
    "MetricType",
    "OptimizeOption",
    "PoisonedError",
    "QuantizeType",
    "QuantizerParam",
    "Query",
    "ReRanker",
    "RrfReRanker",
    "Status",
    "StatusCode",
    "VamanaIndexParam",
    "VamanaQueryParam",
    "VectorQuery",
    "VectorSchema",
    "WeightedReRanker",
    "create_and_open",
    "init",
    "io_backend_description",
    "io_backend_type",
    "kernel_name",
    "open",
    "verify",
]
