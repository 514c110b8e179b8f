"""Index, query and collection parameters with zvec's names, argument names and defaults.

Parameters of features stratavec does not have (IVF, RaBitQ, Vamana, DiskANN, full-text
search, quantization) exist so that code naming them imports, but constructing them raises
``NotImplementedError`` naming the feature.
"""

from __future__ import annotations

from typing import Any, Optional

from .typing import DataType, IndexType, MetricType, QuantizeType

__all__ = [
    "AddColumnOption",
    "AlterColumnOption",
    "CollectionOption",
    "DiskAnnIndexParam",
    "DiskAnnQueryParam",
    "FlatIndexParam",
    "FtsIndexParam",
    "FtsQueryParam",
    "HnswIndexParam",
    "HnswQueryParam",
    "HnswRabitqIndexParam",
    "HnswRabitqQueryParam",
    "IVFIndexParam",
    "IVFQueryParam",
    "IndexOption",
    "InvertIndexParam",
    "IvfRabitqIndexParam",
    "IvfRabitqQueryParam",
    "OptimizeOption",
    "QuantizerParam",
    "VamanaIndexParam",
    "VamanaQueryParam",
]


def _no_quantization(quantize_type: Any) -> None:
    if quantize_type not in (None, QuantizeType.UNDEFINED, 0):
        raise NotImplementedError(
            f"quantization ({quantize_type}) is not supported by stratavec: vectors are "
            "stored and searched in full precision (use QuantizeType.UNDEFINED)"
        )


def _metric(metric_type: Any) -> MetricType:
    if isinstance(metric_type, MetricType):
        return metric_type
    try:
        return MetricType(int(metric_type))
    except (TypeError, ValueError):
        raise ValueError(f"Invalid metric_type: {metric_type!r}") from None


class QuantizerParam:
    """zvec's quantizer options; only meaningful with quantization, which stratavec lacks."""

    def __init__(self, enable_rotate: bool = False) -> None:
        self.enable_rotate = enable_rotate

    def to_dict(self) -> dict[str, Any]:
        return {"enable_rotate": self.enable_rotate}


class _Param:
    type: IndexType = IndexType.UNDEFINED

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type.name}
        for k, v in vars(self).items():
            if isinstance(v, (MetricType, QuantizeType, DataType)):
                v = v.name
            elif isinstance(v, QuantizerParam):
                v = v.to_dict()
            out[k] = v
        return out

    def clone(self):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.to_dict().items(), key=str))))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class HnswIndexParam(_Param):
    """An HNSW graph index on a vector field.

    Args:
        metric_type: similarity (default ``MetricType.IP``, like zvec).
        m: links per node (layer 0 keeps twice as many); 2..256. Default 50.
        ef_construction: beam width while building; 1..4096. Default 500.
        quantize_type: only ``QuantizeType.UNDEFINED``; others raise ``NotImplementedError``.
        use_contiguous_memory, quantizer_param, use_flat_contiguous_memory, flat_data_type:
            accepted for compatibility; they have no effect on stratavec's storage.
    """

    type = IndexType.HNSW

    def __init__(
        self,
        metric_type: MetricType = MetricType.IP,
        m: int = 50,
        ef_construction: int = 500,
        quantize_type: QuantizeType = QuantizeType.UNDEFINED,
        use_contiguous_memory: bool = False,
        quantizer_param: Optional[QuantizerParam] = None,
        use_flat_contiguous_memory: bool = False,
        flat_data_type: DataType = DataType.VECTOR_FP32,
    ) -> None:
        _no_quantization(quantize_type)
        if flat_data_type is not DataType.VECTOR_FP32:
            raise NotImplementedError(
                f"flat_data_type {flat_data_type} is not supported by stratavec (VECTOR_FP32 only)"
            )
        self.metric_type = _metric(metric_type)
        self.m = int(m)
        self.ef_construction = int(ef_construction)
        self.quantize_type = QuantizeType.UNDEFINED
        self.use_contiguous_memory = bool(use_contiguous_memory)
        self.use_flat_contiguous_memory = bool(use_flat_contiguous_memory)
        self.flat_data_type = DataType.VECTOR_FP32


class FlatIndexParam(_Param):
    """Exact (brute-force) search on a vector field.

    Args:
        metric_type: similarity (default ``MetricType.IP``, like zvec).
        quantize_type: only ``QuantizeType.UNDEFINED``.
    """

    type = IndexType.FLAT

    def __init__(
        self,
        metric_type: MetricType = MetricType.IP,
        quantize_type: QuantizeType = QuantizeType.UNDEFINED,
        quantizer_param: Optional[QuantizerParam] = None,
        use_contiguous_memory: bool = False,
    ) -> None:
        _no_quantization(quantize_type)
        self.metric_type = _metric(metric_type)
        self.quantize_type = QuantizeType.UNDEFINED
        self.use_contiguous_memory = bool(use_contiguous_memory)


class InvertIndexParam(_Param):
    """An inverted index (posting lists per value) on a bool, integer or string field.

    ``enable_range_optimization`` and ``enable_extended_wildcard`` are accepted for
    compatibility; stratavec's filters give the same results with or without them.
    """

    type = IndexType.INVERT

    def __init__(
        self, enable_range_optimization: bool = False, enable_extended_wildcard: bool = False
    ) -> None:
        self.enable_range_optimization = bool(enable_range_optimization)
        self.enable_extended_wildcard = bool(enable_extended_wildcard)


class HnswQueryParam(_Param):
    """Search options of an HNSW field.

    Args:
        ef: beam width of the graph search (default 300, like zvec).
        radius, is_linear, is_using_refiner: not supported; a non-default value raises
            ``NotImplementedError`` when the query runs.
    """

    type = IndexType.HNSW

    def __init__(
        self,
        ef: int = 300,
        radius: float = 0.0,
        is_linear: bool = False,
        is_using_refiner: bool = False,
        extra_params: Optional[dict] = None,
        scale_factor: float = 0.0,
    ) -> None:
        self.ef = int(ef)
        self.radius = float(radius)
        self.is_linear = bool(is_linear)
        self.is_using_refiner = bool(is_using_refiner)
        self.scale_factor = float(scale_factor)
        self.prefetch_offset = int((extra_params or {}).get("prefetch_offset", 8))
        self.prefetch_lines = int((extra_params or {}).get("prefetch_lines", 0))


class CollectionOption:
    """Options of ``create_and_open`` / ``open``.

    Args:
        read_only: open without write access (many read-only handles may share a collection).
        enable_mmap: accepted for compatibility (stratavec always memory-maps its graphs).
        flush_policy: stratavec's own: when writes are fsynced. ``"always"`` (default: a
            write returns once it is on disk), ``"every:N"``, ``"interval:MS"`` or ``"never"``.
            Stored at create; on open, overrides the stored one for this handle.
        salvage: stratavec's own: on open, recover the valid prefix of a corrupted WAL
            (keeping the damaged file as ``.wal.corrupt``) instead of failing.
    """

    def __init__(
        self,
        read_only: bool = False,
        enable_mmap: bool = True,
        *,
        flush_policy: Optional[str] = None,
        salvage: bool = False,
    ) -> None:
        self.read_only = bool(read_only)
        self.enable_mmap = bool(enable_mmap)
        self.flush_policy = flush_policy
        self.salvage = bool(salvage)

    def __repr__(self) -> str:
        return (
            f'{{"enable_mmap":{int(self.enable_mmap)}, "read_only":{int(self.read_only)}, '
            f'"flush_policy":{self.flush_policy!r}}}'
        )


class OptimizeOption:
    """Options of ``Collection.optimize``; ``concurrency`` is accepted (stratavec builds on
    every core)."""

    def __init__(self, concurrency: int = 0) -> None:
        self.concurrency = int(concurrency)


class _Concurrency:
    """``concurrency`` (threads; 0 = automatic) is accepted for compatibility: stratavec sizes
    its own pools."""

    def __init__(self, concurrency: int = 0) -> None:
        if not isinstance(concurrency, int) or isinstance(concurrency, bool):
            raise TypeError(f"concurrency must be an int, got {type(concurrency).__name__}")
        self.concurrency = concurrency

    def __repr__(self) -> str:
        return f"{type(self).__name__}(concurrency={self.concurrency})"


class IndexOption(_Concurrency):
    """Options of ``Collection.create_index``: ``concurrency`` (accepted, no effect)."""


class AddColumnOption(_Concurrency):
    """Options of ``Collection.add_column``: ``concurrency`` (accepted, no effect)."""


class AlterColumnOption(_Concurrency):
    """Options of ``Collection.alter_column``: ``concurrency`` (accepted, no effect)."""


class _Unsupported:
    _feature = "this feature"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"{self._feature} is not supported by stratavec")


def _unsupported(name: str, feature: str) -> type:
    return type(name, (_Unsupported,), {"_feature": feature, "__doc__": f"Not supported: {feature}."})


IVFIndexParam = _unsupported("IVFIndexParam", "the IVF index")
IVFQueryParam = _unsupported("IVFQueryParam", "the IVF index")
HnswRabitqIndexParam = _unsupported("HnswRabitqIndexParam", "the HNSW_RABITQ index (RaBitQ quantization)")
HnswRabitqQueryParam = _unsupported("HnswRabitqQueryParam", "the HNSW_RABITQ index (RaBitQ quantization)")
IvfRabitqIndexParam = _unsupported("IvfRabitqIndexParam", "the IVF_RABITQ index")
IvfRabitqQueryParam = _unsupported("IvfRabitqQueryParam", "the IVF_RABITQ index")
VamanaIndexParam = _unsupported("VamanaIndexParam", "the VAMANA index")
VamanaQueryParam = _unsupported("VamanaQueryParam", "the VAMANA index")
DiskAnnIndexParam = _unsupported("DiskAnnIndexParam", "the DISKANN index")
DiskAnnQueryParam = _unsupported("DiskAnnQueryParam", "the DISKANN index")
FtsIndexParam = _unsupported("FtsIndexParam", "full-text search (FTS index)")
FtsQueryParam = _unsupported("FtsQueryParam", "full-text search")
