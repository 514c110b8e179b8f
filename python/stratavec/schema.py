"""Schemas with zvec's classes: ``CollectionSchema``, ``FieldSchema``, ``VectorSchema``, and
``CollectionStats``."""

from __future__ import annotations

import json
from typing import Any, Optional, Union

from .param import FlatIndexParam, HnswIndexParam, InvertIndexParam, _Unsupported
from .typing import DataType, MetricType

__all__ = ["CollectionSchema", "CollectionStats", "FieldSchema", "VectorSchema"]

SUPPORT_SCALAR_DATA_TYPE = [
    DataType.INT32,
    DataType.INT64,
    DataType.UINT32,
    DataType.UINT64,
    DataType.FLOAT,
    DataType.DOUBLE,
    DataType.STRING,
    DataType.BOOL,
    DataType.ARRAY_INT32,
    DataType.ARRAY_INT64,
    DataType.ARRAY_UINT32,
    DataType.ARRAY_UINT64,
    DataType.ARRAY_FLOAT,
    DataType.ARRAY_DOUBLE,
    DataType.ARRAY_STRING,
    DataType.ARRAY_BOOL,
]
SUPPORT_VECTOR_DATA_TYPE = [
    DataType.VECTOR_FP16,
    DataType.VECTOR_FP32,
    DataType.VECTOR_FP64,
    DataType.VECTOR_INT8,
    DataType.SPARSE_VECTOR_FP16,
    DataType.SPARSE_VECTOR_FP32,
]


def _fmt_name(name: str) -> str:
    """A name as error messages show it: escaped, and cut after 32 characters."""
    shown = name.encode("unicode_escape").decode("ascii")
    return shown[:32] + "..." if len(shown) > 32 else shown


def _check_name(name: Any, what: str = "field") -> None:
    if name is None or not isinstance(name, str):
        raise ValueError(f"Invalid schema: {what} name must be str, got {type(name).__name__}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"Invalid schema: {what} name[{name!r}] is not valid UTF-8") from None


class FieldSchema:
    """A scalar field: name, type, nullability, optional inverted index.

    Args:
        name: unique among all fields and vectors; 1..64 characters of ``[A-Za-z0-9_-]``.
        data_type: a scalar or array ``DataType``.
        nullable: whether documents may omit the field (NULL). Default False.
        index_param: ``InvertIndexParam()`` for an inverted index (bool, integer and string
            fields), or None. ``FtsIndexParam`` (full-text search) is not supported.
    """

    __slots__ = ("_name", "_data_type", "_nullable", "_index_param")

    def __init__(
        self,
        name: str,
        data_type: DataType,
        nullable: bool = False,
        index_param: Optional[InvertIndexParam] = None,
    ) -> None:
        _check_name(name)
        if data_type not in SUPPORT_SCALAR_DATA_TYPE:
            raise ValueError(
                "Invalid schema: scalar_field's data_type must be one of "
                f"{', '.join(str(dt) for dt in SUPPORT_SCALAR_DATA_TYPE)}, "
                f"but field[{name}]'s data_type is {data_type}"
            )
        if index_param is not None and not isinstance(index_param, InvertIndexParam):
            if isinstance(index_param, (HnswIndexParam, FlatIndexParam)):
                raise ValueError(
                    f"Invalid schema: scalar field[{name}] does not support vector index params"
                )
            raise NotImplementedError(
                f"index {type(index_param).__name__} on scalar field[{name}] is not supported "
                "by stratavec (only InvertIndexParam)"
            )
        self._name = name
        self._data_type = data_type
        self._nullable = bool(nullable)
        self._index_param = index_param

    @property
    def name(self) -> str:
        """The field's name."""
        return self._name

    @property
    def data_type(self) -> DataType:
        """The field's type."""
        return self._data_type

    @property
    def nullable(self) -> bool:
        """Whether the field may be NULL."""
        return self._nullable

    @property
    def index_param(self) -> Optional[InvertIndexParam]:
        """The field's index, if any."""
        return self._index_param

    def _spec(self) -> tuple:
        return (self._name, self._data_type.name, self._nullable, self._index_param is not None)

    def _to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "data_type": self.data_type.name,
            "nullable": self.nullable,
            "index_param": self.index_param.to_dict() if self.index_param else None,
        }

    def __repr__(self) -> str:
        return json.dumps(self._to_dict(), indent=2, ensure_ascii=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSchema) and self._to_dict() == other._to_dict()

    def __hash__(self) -> int:
        return hash((self.name, self.data_type, self.nullable))


class VectorSchema:
    """A dense vector field.

    Args:
        name: unique among all fields and vectors.
        data_type: ``DataType.VECTOR_FP32`` (other vector types and sparse vectors raise
            ``NotImplementedError``).
        dimension: 1..20000.
        index_param: ``HnswIndexParam(...)`` or ``FlatIndexParam(...)`` (default
            ``FlatIndexParam()``, metric IP, like zvec).
    """

    __slots__ = ("_name", "_data_type", "_dimension", "_index_param")

    def __init__(
        self,
        name: str,
        data_type: DataType,
        dimension: Optional[int] = 0,
        index_param: Optional[Union[HnswIndexParam, FlatIndexParam]] = None,
    ) -> None:
        _check_name(name)
        if dimension is None:  # documented as None-able (sparse vectors)
            dimension = 0
        if not isinstance(dimension, int) or isinstance(dimension, bool) or dimension < 0:
            raise ValueError("Invalid schema: vector's dimension must be >= 0")
        if data_type not in SUPPORT_VECTOR_DATA_TYPE:
            raise ValueError(
                "Invalid schema: vector's data_type must be one of "
                f"{', '.join(str(dt) for dt in SUPPORT_VECTOR_DATA_TYPE)}, "
                f"but field[{name}]'s data_type is {data_type}"
            )
        if data_type in (DataType.SPARSE_VECTOR_FP16, DataType.SPARSE_VECTOR_FP32):
            raise NotImplementedError(
                f"sparse vectors ({data_type}) are not supported by stratavec (VECTOR_FP32 only)"
            )
        if data_type is not DataType.VECTOR_FP32:
            raise NotImplementedError(
                f"vector type {data_type} is not supported by stratavec (VECTOR_FP32 only)"
            )
        if index_param is None:
            index_param = FlatIndexParam()
        if isinstance(index_param, _Unsupported) or not isinstance(
            index_param, (HnswIndexParam, FlatIndexParam)
        ):
            if isinstance(index_param, InvertIndexParam):
                raise ValueError(
                    f"Invalid schema: vector field[{name}] does not support scalar index params"
                )
            raise NotImplementedError(
                f"index {type(index_param).__name__} is not supported by stratavec "
                "(HnswIndexParam or FlatIndexParam)"
            )
        self._name = name
        self._data_type = data_type
        self._dimension = dimension
        self._index_param = index_param

    @property
    def name(self) -> str:
        """The field's name."""
        return self._name

    @property
    def data_type(self) -> DataType:
        """Always ``DataType.VECTOR_FP32``."""
        return self._data_type

    @property
    def dimension(self) -> int:
        """Number of components."""
        return self._dimension

    @property
    def index_param(self) -> Union[HnswIndexParam, FlatIndexParam]:
        """The field's index and metric."""
        return self._index_param

    def _spec(self) -> tuple:
        p = self._index_param
        index = (p.m, p.ef_construction) if isinstance(p, HnswIndexParam) else None
        return (self._name, self._dimension, p.metric_type.name, index)

    def _to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "data_type": self.data_type.name,
            "dimension": self.dimension,
            "index_param": self.index_param.to_dict(),
        }

    def __repr__(self) -> str:
        return json.dumps(self._to_dict(), indent=2, ensure_ascii=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VectorSchema) and self._to_dict() == other._to_dict()

    def __hash__(self) -> int:
        return hash((self.name, self.data_type, self.dimension))


class CollectionSchema:
    """A collection's name, scalar fields and vector fields (names unique across both).

    Args:
        name: the collection's name.
        fields: a ``FieldSchema`` or a list of them.
        vectors: a ``VectorSchema`` or a list of them (at most 5).
    """

    def __init__(
        self,
        name: str,
        fields: Optional[Union[FieldSchema, list[FieldSchema]]] = None,
        vectors: Optional[Union[VectorSchema, list[VectorSchema]]] = None,
    ) -> None:
        _check_name(name, "collection")
        self._name = name
        self._fields = self._items(fields, FieldSchema, "fields")
        self._vectors = self._items(vectors, VectorSchema, "vectors")
        seen: set[str] = set()
        for f in self._fields:
            if f.name in seen:
                raise ValueError(
                    f"Invalid schema: duplicate field name {_fmt_name(f.name)}: field names must be unique"
                )
            seen.add(f.name)
        for v in self._vectors:
            if v.name in seen:
                raise ValueError(
                    f"Invalid schema: duplicate vector name {_fmt_name(v.name)}, vector names must be unique "
                    "(conflicts with existing field or vector)"
                )
            seen.add(v.name)

    @staticmethod
    def _items(items: Any, cls: type, what: str) -> list:
        if items is None:
            return []
        if isinstance(items, cls):
            return [items]
        if not isinstance(items, list):
            raise TypeError(
                f"Invalid schema: invalid '{what}' type, expected {cls.__name__} or "
                f"list[{cls.__name__}], got {type(items).__name__}"
            )
        for i, item in enumerate(items):
            if not isinstance(item, cls):
                raise TypeError(
                    f"Invalid schema: invalid {what[:-1]} type in '{what}' list, expected "
                    f"{cls.__name__}, got {type(item).__name__} at index {i}"
                )
        return list(items)

    @property
    def name(self) -> str:
        """The collection's name."""
        return self._name

    @property
    def fields(self) -> list[FieldSchema]:
        """The scalar fields, in declaration order."""
        return list(self._fields)

    @property
    def vectors(self) -> list[VectorSchema]:
        """The vector fields, in declaration order."""
        return list(self._vectors)

    def field(self, name: str) -> Optional[FieldSchema]:
        """The scalar field named ``name``, or None."""
        return next((f for f in self._fields if f.name == name), None)

    def vector(self, name: str) -> Optional[VectorSchema]:
        """The vector field named ``name``, or None."""
        return next((v for v in self._vectors if v.name == name), None)

    def _spec(self) -> tuple:
        return (self._name, [f._spec() for f in self._fields], [v._spec() for v in self._vectors])

    @classmethod
    def _from_spec(cls, spec: tuple) -> CollectionSchema:
        name, fields, vectors = spec
        fs = [
            FieldSchema(n, DataType[t], nullable, InvertIndexParam() if inv else None)
            for (n, t, nullable, inv) in fields
        ]
        vs = []
        for n, dim, metric, index in vectors:
            m = MetricType[metric]
            p = (
                FlatIndexParam(metric_type=m)
                if index is None
                else HnswIndexParam(metric_type=m, m=index[0], ef_construction=index[1])
            )
            vs.append(VectorSchema(n, DataType.VECTOR_FP32, dim, p))
        return cls(name, fs, vs)

    def __repr__(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "fields": {f.name: f._to_dict() for f in self._fields},
                "vectors": {v.name: v._to_dict() for v in self._vectors},
            },
            indent=2,
            ensure_ascii=False,
        )

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CollectionSchema) and repr(self) == repr(other)

    __hash__ = None  # type: ignore[assignment]


class CollectionStats:
    """Counts that describe a collection now.

    ``doc_count`` and ``index_completeness`` (per vector field, the fraction of stored rows
    reachable through a graph; FLAT fields are always complete) are zvec's; the others are
    stratavec's own: ``segments``, ``writing_rows``, ``sealing_segments``, ``unindexed``,
    ``deleted``, ``wal_bytes``, ``manifest_version``.
    """

    __slots__ = (
        "doc_count",
        "index_completeness",
        "segments",
        "writing_rows",
        "sealing_segments",
        "unindexed",
        "deleted",
        "wal_bytes",
        "manifest_version",
    )

    def __init__(self, **values: Any) -> None:
        for k in self.__slots__:
            setattr(self, k, values.get(k, 0))

    def __repr__(self) -> str:
        return json.dumps({k: getattr(self, k) for k in self.__slots__})
