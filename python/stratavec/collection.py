"""``Collection``: zvec's collection API over stratavec's engine, plus stratavec's own calls
(``sync``, ``open_report``, ``flush_policy``, ``wait_idle``)."""

from __future__ import annotations

import os
import warnings
from typing import Any, Iterator, Optional, Union, overload

from . import _native
from .doc import Doc, GroupByQuery, GroupResult, Query, ReRanker, RrfReRanker, WeightedReRanker
from .param import (
    AddColumnOption,
    AlterColumnOption,
    CollectionOption,
    FlatIndexParam,
    HnswIndexParam,
    HnswQueryParam,
    IndexOption,
    InvertIndexParam,
    OptimizeOption,
)
from .schema import CollectionSchema, CollectionStats, FieldSchema
from .typing import Status, StatusCode

__all__ = ["Collection", "create_and_open", "open"]

_OK = Status.OK()


# The scalar types an inverted index can be built on (the engine's rule).
_INVERTIBLE = frozenset({"BOOL", "INT32", "INT64", "UINT32", "UINT64", "STRING"})


def _require_positive_integer(value: Any, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer")


def _check_option(option: Any, cls: type) -> None:
    if option is not None and not isinstance(option, cls):
        raise TypeError(f"option must be a {cls.__name__}, got {type(option).__name__}")


def _check_str(value: Any, what: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, got {type(value).__name__}")


def _from_tuples(tuples: list) -> list:
    make = Doc._from_tuple
    return [make(t) for t in tuples]


class Collection:
    """An open collection. Obtain one with ``create_and_open()`` or ``open()``.

    Every call that does I/O or search releases the GIL, so Python threads can query while
    another thread writes. Writes return one ``Status`` per document (a list for a list, a
    single ``Status`` for a single document or id).
    """

    def __init__(self, native: _native.NativeCollection, option: CollectionOption) -> None:
        self._obj = native
        self._option = option
        self._schema = CollectionSchema._from_spec(native.schema())
        self._destroyed = False

    # ---- properties -------------------------------------------------------------------
    @property
    def path(self) -> str:
        """The collection's directory."""
        return self._obj.path

    @property
    def option(self) -> CollectionOption:
        """The options the collection was opened with."""
        return self._option

    @property
    def schema(self) -> CollectionSchema:
        """The collection's schema."""
        return self._schema

    @property
    def stats(self) -> CollectionStats:
        """``doc_count``, ``index_completeness`` and stratavec's own counts."""
        self._check()
        return CollectionStats(**self._obj.stats())

    @property
    def flush_policy(self) -> str:
        """stratavec: the flush policy in force (``always``, ``every:N``, ``interval:MS``,
        ``never``)."""
        self._check()
        return self._obj.flush_policy()

    @property
    def open_report(self) -> dict:
        """stratavec: what opening found and did (WAL records replayed, torn bytes cut off,
        leftovers removed, graphs rebuilt, duration)."""
        self._check()
        return self._obj.open_report()

    def _check(self) -> None:
        if self._destroyed:
            raise ValueError("collection is already destroyed.")

    # ---- lifecycle ----------------------------------------------------------------------
    def close(self) -> None:
        """Persist the writing segment, wait for background work and release the lock.
        Later calls on this object raise ``ValueError``; closing twice is fine."""
        self._obj.close()

    def destroy(self) -> None:
        """Close the collection and delete its directory (irreversible)."""
        self._check()
        if self._obj.read_only:
            raise ValueError("Collection is opened in read-only mode")
        self._obj.destroy()
        self._destroyed = True

    def flush(self) -> None:
        """Persist the writing segment (its WAL is then removed). Writes are already durable
        under the default flush policy; this bounds recovery time."""
        self._check()
        self._obj.flush()

    def sync(self) -> None:
        """stratavec: make every acknowledged write durable now, whatever the flush policy."""
        self._check()
        self._obj.sync()

    def optimize(self, option: Optional[OptimizeOption] = None) -> None:
        """Persist the writing segment, then merge the sealed segments into one without the
        deleted rows and with a freshly built graph. Reads and writes go on meanwhile."""
        self._check()
        self._obj.optimize()

    def wait_idle(self) -> None:
        """stratavec: wait until background indexing and persists queued so far are done
        (for measurements; reads never need it)."""
        self._check()
        self._obj.wait_idle()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._destroyed:
            self.close()

    # ---- writes -------------------------------------------------------------------------
    @staticmethod
    def _statuses(codes: list, ids: list, op: str) -> list:
        out = []
        for code, pk in zip(codes, ids):
            if code == 0:
                out.append(_OK)
            elif code == 2:
                out.append(Status(StatusCode.ALREADY_EXISTS,
                                  f"{op} failed: doc_id[{pk}] already exists in collection"))
            elif op == "delete":
                out.append(Status(StatusCode.NOT_FOUND, f"primary key: {pk} not found"))
            else:
                out.append(Status(StatusCode.NOT_FOUND, "Document not found"))
        return out

    def _write(self, docs: Union[Doc, list], op: str) -> Union[Status, list]:
        self._check()
        single = isinstance(docs, Doc)
        doc_list = [docs] if single else docs
        codes = getattr(self._obj, op)(doc_list)
        statuses = self._statuses(codes, [d.id for d in doc_list], op)
        return statuses[0] if single else statuses

    @overload
    def insert(self, docs: Doc) -> Status: ...
    @overload
    def insert(self, docs: list[Doc]) -> list[Status]: ...
    def insert(self, docs):
        """Insert documents (at most 1024 per call). A live id gets ``ALREADY_EXISTS``.

        The batch is validated whole first: one invalid document raises and nothing is
        written. Otherwise the batch is one WAL record: after a crash all of it is there or
        none of it."""
        return self._write(docs, "insert")

    @overload
    def upsert(self, docs: Doc) -> Status: ...
    @overload
    def upsert(self, docs: list[Doc]) -> list[Status]: ...
    def upsert(self, docs):
        """Insert or wholly replace documents (every non-nullable field and every vector
        required)."""
        return self._write(docs, "upsert")

    @overload
    def update(self, docs: Doc) -> Status: ...
    @overload
    def update(self, docs: list[Doc]) -> list[Status]: ...
    def update(self, docs):
        """Merge the given fields and vectors into live documents (others are kept; a field
        set to None is cleared). A missing id gets ``NOT_FOUND``."""
        return self._write(docs, "update")

    @overload
    def delete(self, ids: str) -> Status: ...
    @overload
    def delete(self, ids: list[str]) -> list[Status]: ...
    def delete(self, ids):
        """Delete documents by id; a missing id gets ``NOT_FOUND``."""
        self._check()
        single = isinstance(ids, str)
        id_list = [ids] if single else list(ids)
        statuses = self._statuses(self._obj.delete(id_list), id_list, "delete")
        return statuses[0] if single else statuses

    def delete_by_filter(self, filter: str) -> None:
        """Delete every document matching ``filter`` (``""`` deletes everything, like zvec).
        Unlike zvec 0.8.0, the deleted ids can be inserted again."""
        self._check()
        if not isinstance(filter, str):
            raise TypeError("filter must be a str")
        self._obj.delete_by_filter(filter)

    # ---- reads --------------------------------------------------------------------------
    def fetch(
        self,
        ids: Union[str, list[str]],
        *,
        output_fields: Optional[list[str]] = None,
        include_vector: bool = True,
    ) -> dict[str, Doc]:
        """The live documents with these ids, as ``{id: Doc}`` (missing ids left out, score
        0.0)."""
        self._check()
        ids = [ids] if isinstance(ids, str) else list(ids)
        tuples = self._obj.fetch(ids, output_fields, include_vector)
        return {t[0]: Doc._from_tuple(t) for t in tuples}

    def _route(self, q: Query) -> tuple:
        if not isinstance(q, Query):
            raise TypeError(f"queries must be Query objects, got {type(q).__name__}")
        q._validate()
        vs = self._schema.vector(q.field_name)
        if vs is None:
            raise ValueError(f"Vector field '{q.field_name}' not found in schema")
        if q.has_vector():
            return (q.field_name, q.vector, None)
        if q.has_id():
            return (q.field_name, None, q.id)
        raise ValueError("Query needs a vector or a document id")

    def _ef(self, queries: list) -> Optional[int]:
        ef = None
        for q in queries:
            p = q.param
            if p is None:
                continue
            vs = self._schema.vector(q.field_name)
            expected = "HNSW" if isinstance(vs.index_param, HnswIndexParam) else "FLAT"
            if not isinstance(p, HnswQueryParam) or expected != "HNSW":
                got = getattr(getattr(p, "type", None), "name", type(p).__name__)
                raise ValueError(
                    "Invalid query: query params type does not match the index type of vector "
                    f"field[{q.field_name}], expected {expected} but got {got}"
                )
            if p.radius != 0.0:
                raise NotImplementedError("HnswQueryParam.radius is not supported by stratavec")
            if p.is_linear:
                raise NotImplementedError("HnswQueryParam.is_linear is not supported by stratavec")
            if p.is_using_refiner:
                raise NotImplementedError(
                    "HnswQueryParam.is_using_refiner (quantization refiner) is not supported "
                    "by stratavec")
            ef = max(ef or 0, p.ef)
        return ef

    def query(
        self,
        queries: Optional[Union[Query, list[Query]]] = None,
        *,
        vectors: Optional[Union[Query, list[Query]]] = None,
        topk: int = 10,
        filter: Optional[str] = None,
        include_vector: bool = False,
        output_fields: Optional[list[str]] = None,
        reranker: Optional[ReRanker] = None,
    ) -> list[Doc]:
        """Vector search with optional filter; several routes are merged by ``reranker``.

        No query: the live documents matching ``filter`` in insertion order, score 0.
        One query: its nearest documents, best first (L2: squared distance ascending; IP: dot
        product descending; COSINE: ``1 - cos`` ascending). Several: ``RrfReRanker``,
        ``WeightedReRanker`` or a Python ``ReRanker`` subclass merges them.
        """
        self._check()
        _require_positive_integer(topk, "topk")
        if vectors is not None:
            warnings.warn("The 'vectors' parameter is deprecated; use 'queries' instead.",
                          DeprecationWarning, stacklevel=2)
            if queries is not None:
                raise ValueError("Cannot specify both 'queries' and 'vectors'.")
            queries = vectors
        qs = [] if queries is None else [queries] if isinstance(queries, Query) else list(queries)
        routes = [self._route(q) for q in qs]
        ef = self._ef(qs)
        if len(routes) > 1:
            if reranker is None:
                raise ValueError(
                    "A reranker is required to merge results from multiple queries; "
                    "specify the 'reranker' argument.")
            spec = reranker._native() if isinstance(reranker, ReRanker) else None
            if spec is None:
                # A reranker written in Python: run each route, then merge in Python.
                per_route = [
                    _from_tuples(self._obj.query([r], max(topk, 10), filter, ef, output_fields,
                                                 include_vector, None))
                    for r in routes
                ]
                return reranker.rerank(per_route, topk)
        else:
            spec = None
        return _from_tuples(
            self._obj.query(routes, topk, filter, ef, output_fields, include_vector, spec))

    def group_by_query(
        self,
        query: Query,
        group_by_field_name: str,
        group_count: int = 2,
        topk_per_group: int = 3,
        *,
        filter: Optional[str] = None,
        include_vector: bool = False,
        output_fields: Optional[list[str]] = None,
    ) -> list[GroupResult]:
        """A vector query whose hits are grouped by a scalar field's value: up to
        ``group_count`` groups ordered by their best hit, ``topk_per_group`` hits each."""
        self._check()
        if not group_by_field_name:
            raise ValueError("group_by_field_name cannot be empty")
        _require_positive_integer(group_count, "group_count")
        _require_positive_integer(topk_per_group, "topk_per_group")
        route = self._route(query)
        ef = self._ef([query])
        groups = self._obj.group_by_query(route, group_by_field_name, group_count,
                                          topk_per_group, filter or None, ef, output_fields,
                                          include_vector)
        return [GroupResult(group_by_value=v, docs=_from_tuples(d)) for v, d in groups]

    def groupby_query(self, query: GroupByQuery) -> list[GroupResult]:
        """Newer zvec releases' spelling of ``group_by_query``, with a ``GroupByQuery``."""
        q = Query(query.field_name, id=query.id, vector=query.vector, param=query.param)
        return self.group_by_query(q, query.group_by_field_name, query.group_count,
                                   query.group_topk, filter=query.filter,
                                   include_vector=query.include_vector,
                                   output_fields=query.output_fields)

    # ---- schema and index changes (DDL) ----------------------------------------------------
    # Each change is committed atomically (after a crash the collection has the old or the new
    # schema); writes wait while it runs, reads do not.

    def _refresh_schema(self) -> None:
        self._schema = CollectionSchema._from_spec(self._obj.schema())

    def create_index(
        self,
        field_name: str,
        index_param: Union[HnswIndexParam, FlatIndexParam, InvertIndexParam],
        option: Optional[IndexOption] = None,
    ) -> None:
        """Create an index: ``InvertIndexParam`` on a scalar field (bool, integer, string),
        ``HnswIndexParam`` or ``FlatIndexParam`` on a vector field (graphs are built for every
        stored document before it returns). Asking for the index the field has is a no-op.

        A vector field keeps its metric: ``index_param.metric_type`` must be the field's (zvec
        switches the metric; stratavec stores cosine vectors normalised, so it cannot)."""
        self._check()
        _check_str(field_name, "field_name")
        _check_option(option, IndexOption)
        if self._schema.field(field_name) is None and self._schema.vector(field_name) is None:
            raise KeyError(f"field[{field_name}] not found in schema")
        vs = self._schema.vector(field_name)
        if isinstance(index_param, InvertIndexParam):
            self._obj.create_index(field_name, "INVERT", None)
        elif isinstance(index_param, (HnswIndexParam, FlatIndexParam)):
            if vs is not None and index_param.metric_type != vs.index_param.metric_type:
                raise NotImplementedError(
                    f"changing the metric of vector field[{field_name}] "
                    f"({vs.index_param.metric_type.name} to {index_param.metric_type.name}) is "
                    "not supported by stratavec; pass the field's metric_type"
                )
            if isinstance(index_param, HnswIndexParam):
                hnsw = (index_param.m, index_param.ef_construction)
                self._obj.create_index(field_name, "HNSW", hnsw)
            else:
                self._obj.create_index(field_name, "FLAT", None)
        else:
            raise TypeError(
                "index_param must be a HnswIndexParam, FlatIndexParam or InvertIndexParam, got "
                f"{type(index_param).__name__}"
            )
        self._refresh_schema()

    def drop_index(self, field_name: str) -> None:
        """Drop a field's index: a scalar field loses its inverted index; a vector field goes
        back to FLAT (exact) search **keeping its metric** (zvec 0.8.0 resets it to IP). A
        field without an index: no-op."""
        self._check()
        _check_str(field_name, "field_name")
        if self._schema.field(field_name) is None and self._schema.vector(field_name) is None:
            raise KeyError(f"field[{field_name}] not found in schema")
        self._obj.drop_index(field_name)
        self._refresh_schema()

    def add_column(
        self,
        field_schema: FieldSchema,
        expression: str = "",
        option: Optional[AddColumnOption] = None,
    ) -> None:
        """Add a numeric column (INT32, INT64, UINT32, UINT64, FLOAT, DOUBLE).

        Existing documents get ``expression``'s value, computed from their own columns:
        numbers, numeric fields, ``+ - * / %``, unary minus and parentheses (``"n * 2"``,
        ``"a + b / 2"``, ``"5"``); integer arithmetic when both operands are integers, NULL
        where an operand is NULL. ``""``: NULL (the field must then be nullable).

        Raises ``ValueError`` for an invalid field or expression (an integer field takes only
        an integer expression) and ``RuntimeError`` when a stored document has no value
        (division by zero, overflow, out of the field's range, NULL for a non-nullable field;
        zvec wraps overflows and truncates floats): the collection is then unchanged."""
        self._check()
        if not isinstance(field_schema, FieldSchema):
            raise TypeError(
                f"field_schema must be a FieldSchema, got {type(field_schema).__name__}")
        _check_str(expression, "expression")
        _check_option(option, AddColumnOption)
        self._obj.add_column(field_schema._spec(), expression or None)
        self._refresh_schema()

    def drop_column(self, field_name: str, option: Any = None) -> None:
        """Drop a scalar column and its index (any scalar type; zvec: numeric only). Vector
        fields cannot be dropped."""
        self._check()
        _check_str(field_name, "field_name")
        self._obj.drop_column(field_name)
        self._refresh_schema()

    def alter_column(
        self,
        old_name: str,
        new_name: Optional[str] = None,
        field_schema: Optional[FieldSchema] = None,
        option: Optional[AlterColumnOption] = None,
    ) -> None:
        """Rename a column (``new_name``) or redefine it (``field_schema``: its name, type and
        index; not both at once).

        A type changes only where no value can be lost (INT32 to INT64 or DOUBLE, UINT32 to
        UINT64, INT64 or DOUBLE, FLOAT to DOUBLE), and only for numeric columns. A nullable
        field cannot become non-nullable (``ValueError``); making a field nullable is not
        supported (``NotImplementedError``). Renames work for any scalar column."""
        self._check()
        _check_str(old_name, "old_name")
        if new_name is not None and not isinstance(new_name, str):
            raise TypeError("Invalid schema: new column name must be str")
        if field_schema is not None and not isinstance(field_schema, FieldSchema):
            raise TypeError("Invalid schema: field_schema must be a FieldSchema")
        _check_option(option, AlterColumnOption)
        if new_name and field_schema is not None:
            raise ValueError("Invalid schema: cannot specify both rename and new column schema")
        if field_schema is None:
            if not new_name:
                raise ValueError("Invalid schema: field schema must not be null")
            self._obj.alter_column(old_name, new_name, None)
            self._refresh_schema()
            return
        current = self._schema.field(old_name)
        if current is None:
            # Unknown or a vector field: the engine refuses it with zvec's message.
            self._obj.alter_column(old_name, field_schema.name, field_schema.data_type.name)
            self._refresh_schema()
            return
        if current.nullable and not field_schema.nullable:
            raise ValueError("Invalid schema: cannot make a nullable field non-nullable")
        if field_schema.nullable and not current.nullable:
            raise NotImplementedError(
                f"making field[{old_name}] nullable is not supported by stratavec")
        # The definition may take two engine changes (type or name, then index): refuse up
        # front what the second would refuse, so that a refusal leaves the field as it was.
        index = field_schema.index_param
        if index is not None:
            if not isinstance(index, InvertIndexParam):
                raise ValueError(f"Invalid schema: scalar field[{field_schema.name}] does not "
                                 "support vector index params")
            if field_schema.data_type.name not in _INVERTIBLE:
                raise ValueError(f"Invalid schema: field[{field_schema.name}]: an inverted index "
                                 "needs a bool, integer or string field, not "
                                 f"{field_schema.data_type.name}")
        name = field_schema.name
        try:
            if name != old_name or field_schema.data_type != current.data_type:
                new_type = (field_schema.data_type.name
                            if field_schema.data_type != current.data_type else None)
                self._obj.alter_column(old_name, name if name != old_name else None, new_type)
            # The definition includes the index (as in zvec): one present is built, one left
            # out dropped, as a second change after the first.
            if (field_schema.index_param is None) != (current.index_param is None):
                if field_schema.index_param is None:
                    self._obj.drop_index(name)
                else:
                    self._obj.create_index(name, "INVERT", None)
        finally:
            self._refresh_schema()

    # ---- reads, continued ----------------------------------------------------------------
    def iter_docs(self, *, output_fields: Optional[list[str]] = None,
                  include_vector: bool = True, filter: Optional[str] = None,
                  batch_size: int = 1000) -> Iterator[Doc]:
        """Every live document (matching ``filter``, a stratavec addition) in insertion order,
        read ``batch_size`` at a time. Each document comes once; documents written after the
        iteration began are not returned, and documents deleted or replaced while it runs are
        left out of later batches."""
        self._check()
        cursor: Optional[str] = None
        while True:
            tuples, cursor = self._obj.scan(filter, output_fields, include_vector, batch_size,
                                            cursor)
            for t in tuples:
                yield Doc._from_tuple(t)
            if cursor is None:
                return

    def count(self, filter: Optional[str] = None) -> int:
        """stratavec: how many live documents match ``filter`` (all when ``None``)."""
        self._check()
        return self._obj.count(filter)

    # ---- what stratavec does not have ------------------------------------------------------
    def query_internal_ids(self, *args: Any, **kwargs: Any) -> Any:
        """Not supported: stratavec has no stable internal ids."""
        raise NotImplementedError("query_internal_ids is not supported by stratavec")

    def resolve_internal_ids(self, *args: Any, **kwargs: Any) -> Any:
        """Not supported: stratavec has no stable internal ids."""
        raise NotImplementedError("resolve_internal_ids is not supported by stratavec")

    def __repr__(self) -> str:
        return f"Collection(path={self._obj.path!r}, read_only={self._obj.read_only})"


def create_and_open(
    path: str, schema: CollectionSchema, option: Optional[CollectionOption] = None
) -> Collection:
    """Create a collection at ``path`` (which must not exist; parents are created) and open
    it for reading and writing."""
    if not isinstance(schema, CollectionSchema):
        raise TypeError(f"schema must be a CollectionSchema, got {type(schema).__name__}")
    option = option or CollectionOption()
    if option.read_only:
        raise ValueError("Unable to create collection with read-only mode.")
    native = _native.NativeCollection.create(os.fspath(path), schema._spec(), option.flush_policy)
    return Collection(native, option)


def open(path: str, option: Optional[CollectionOption] = None) -> Collection:  # noqa: A001
    """Open an existing collection, recovering writes from its WAL after a crash.

    With ``CollectionOption(read_only=True)`` nothing on disk changes and several read-only
    handles (in several processes) may share the collection."""
    option = option or CollectionOption()
    native = _native.NativeCollection.open(
        os.fspath(path), option.read_only, option.flush_policy, option.salvage)
    return Collection(native, option)
