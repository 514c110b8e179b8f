"""``Collection``: zvec's collection API over stratavec's engine, plus stratavec's own calls
(``sync``, ``open_report``, ``flush_policy``, ``wait_idle``)."""

from __future__ import annotations

import os
import warnings
from typing import Any, Iterator, Optional, Union, overload

from . import _native
from .doc import Doc, GroupByQuery, GroupResult, Query, ReRanker, RrfReRanker, WeightedReRanker
from .param import CollectionOption, HnswIndexParam, HnswQueryParam, OptimizeOption
from .schema import CollectionSchema, CollectionStats, FieldSchema
from .typing import Status, StatusCode

__all__ = ["Collection", "create_and_open", "open"]

_OK = Status.OK()


def _require_positive_integer(value: Any, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer")


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

    # ---- what stratavec does not have ------------------------------------------------------
    def create_index(self, field_name: str, index_param: Any, option: Any = None) -> None:
        """Not supported: indexes are declared in the schema at create."""
        raise NotImplementedError("create_index (index DDL) is not supported by stratavec; "
                                  "declare indexes in the schema")

    def drop_index(self, field_name: str) -> None:
        """Not supported: indexes are declared in the schema at create."""
        raise NotImplementedError("drop_index (index DDL) is not supported by stratavec")

    def add_column(self, field_schema: FieldSchema, expression: str = "", option: Any = None) -> None:
        """Not supported (column DDL)."""
        raise NotImplementedError("add_column (column DDL) is not supported by stratavec")

    def drop_column(self, field_name: str) -> None:
        """Not supported (column DDL)."""
        raise NotImplementedError("drop_column (column DDL) is not supported by stratavec")

    def alter_column(self, old_name: str, new_name: Optional[str] = None,
                     field_schema: Optional[FieldSchema] = None, option: Any = None) -> None:
        """Not supported (column DDL)."""
        raise NotImplementedError("alter_column (column DDL) is not supported by stratavec")

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
