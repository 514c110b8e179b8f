"""zvec's enums (``DataType``, ``MetricType``, ``IndexType``, ``QuantizeType``) and the
per-document ``Status`` / ``StatusCode`` returned by writes.

Enum members have zvec's names and integer values, so ``int(DataType.INT32) == 4`` and
``DataType(4) is DataType.INT32``.
"""

from __future__ import annotations

import enum
import json

__all__ = ["DataType", "IOBackendType", "IndexType", "LogLevel", "LogType", "MetricType",
           "QuantizeType", "Status", "StatusCode"]


class _ZEnum(enum.Enum):
    """An enum that prints like zvec's (``DataType.INT32``) and converts to ``int``."""

    def __int__(self) -> int:
        return int(self.value)

    def __index__(self) -> int:
        return int(self.value)

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.name}: {self.value}>"


class DataType(_ZEnum):
    """Field and vector types (zvec's values). stratavec stores dense ``VECTOR_FP32`` vectors;
    the other vector types and sparse vectors raise ``NotImplementedError`` in a schema."""

    STRING = 2
    BOOL = 3
    INT32 = 4
    INT64 = 5
    UINT32 = 6
    UINT64 = 7
    FLOAT = 8
    DOUBLE = 9
    VECTOR_FP16 = 22
    VECTOR_FP32 = 23
    VECTOR_FP64 = 24
    VECTOR_INT8 = 26
    VECTOR_UINT8 = 28
    SPARSE_VECTOR_FP16 = 30
    SPARSE_VECTOR_FP32 = 31
    ARRAY_STRING = 41
    ARRAY_BOOL = 42
    ARRAY_INT32 = 43
    ARRAY_INT64 = 44
    ARRAY_UINT32 = 45
    ARRAY_UINT64 = 46
    ARRAY_FLOAT = 47
    ARRAY_DOUBLE = 48


class MetricType(_ZEnum):
    """Vector similarity: ``L2`` (squared distance, ascending), ``IP`` (dot product,
    descending), ``COSINE`` (``1 - cos``, ascending)."""

    L2 = 1
    IP = 2
    COSINE = 3


class IndexType(_ZEnum):
    """Index kinds (zvec's values). stratavec has ``HNSW``, ``FLAT`` and ``INVERT``."""

    UNDEFINED = 0
    HNSW = 1
    IVF = 2
    FLAT = 3
    HNSW_RABITQ = 4
    DISKANN = 5
    VAMANA = 6
    IVF_RABITQ = 7
    INVERT = 10
    FTS = 11


class QuantizeType(_ZEnum):
    """Vector quantization kinds. stratavec supports only ``UNDEFINED`` (full precision)."""

    UNDEFINED = 0
    FP16 = 1
    INT8 = 2
    INT4 = 3
    RABITQ = 4
    UNIFORM_UINT7 = 5
    UNIFORM_UINT8 = 6
    UNIFORM_UINT4 = 7


class IOBackendType(_ZEnum):
    """zvec's I/O backends (for DiskANN). stratavec reads with plain reads and memory maps:
    ``io_backend_type()`` is ``PREAD``."""

    PREAD = 0
    LIBAIO = 1
    IO_URING = 2
    WINDOWS_OVERLAPPED = 3


class LogLevel(_ZEnum):
    """zvec's log levels (accepted by ``init``; stratavec does not log)."""

    DEBUG = 0
    INFO = 1
    WARN = 2
    ERROR = 3
    FATAL = 4


class LogType(_ZEnum):
    """zvec's log destinations (accepted by ``init``; stratavec does not log)."""

    CONSOLE = 0
    FILE = 1


class StatusCode(_ZEnum):
    """The outcome codes of zvec's ``Status``."""

    OK = 0
    NOT_FOUND = 1
    ALREADY_EXISTS = 2
    INVALID_ARGUMENT = 3
    PERMISSION_DENIED = 4
    FAILED_PRECONDITION = 5
    RESOURCE_EXHAUSTED = 6
    UNAVAILABLE = 7
    INTERNAL_ERROR = 8
    NOT_SUPPORTED = 9
    UNKNOWN = 10


class Status:
    """The outcome of one document of a write: ``code()``, ``message()``, ``ok()``."""

    __slots__ = ("_code", "_message")

    def __init__(self, code: StatusCode = StatusCode.OK, message: str = "") -> None:
        self._code = StatusCode(code)
        self._message = message

    def code(self) -> StatusCode:
        """The status code."""
        return self._code

    def message(self) -> str:
        """The message ('' when OK)."""
        return self._message

    def ok(self) -> bool:
        """Whether the code is ``OK``."""
        return self._code is StatusCode.OK

    @staticmethod
    def OK() -> Status:  # noqa: N802 - zvec's name
        return Status(StatusCode.OK)

    @staticmethod
    def NotFound(message: str) -> Status:  # noqa: N802
        return Status(StatusCode.NOT_FOUND, message)

    @staticmethod
    def AlreadyExists(message: str) -> Status:  # noqa: N802
        return Status(StatusCode.ALREADY_EXISTS, message)

    @staticmethod
    def InvalidArgument(message: str) -> Status:  # noqa: N802
        return Status(StatusCode.INVALID_ARGUMENT, message)

    @staticmethod
    def InternalError(message: str) -> Status:  # noqa: N802
        return Status(StatusCode.INTERNAL_ERROR, message)

    @staticmethod
    def PermissionDenied(message: str) -> Status:  # noqa: N802
        return Status(StatusCode.PERMISSION_DENIED, message)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self._code is other._code and self._message == other._message

    def __hash__(self) -> int:
        return hash((self._code, self._message))

    def __repr__(self) -> str:
        if self._code is StatusCode.OK:
            return '{"code":0}'
        return '{"code":%d, "message":%s}' % (self._code.value, json.dumps(self._message))

    __str__ = __repr__
