"""Documents and query objects: ``Doc``, ``GroupResult``, ``Query``, rerankers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional, Union

from .param import HnswQueryParam

__all__ = ["Doc", "DocList", "GroupByQuery", "GroupResult", "Query", "VectorQuery", "Fts", "ReRanker",
           "RrfReRanker", "WeightedReRanker"]


def _normalize_vectors(vectors: Optional[dict]) -> dict:
    if vectors is None:
        return {}
    return {name: (v.tolist() if hasattr(v, "tolist") else v) for name, v in vectors.items()}


class Doc:
    """A document: an id (primary key), scalar fields, vectors, and a score for search hits.

    Vectors given as numpy arrays are kept as lists (like zvec), but a write reads float32
    arrays directly: pass ``vectors={"v": array}`` and no Python list is built.

    Args:
        id: primary key: a str of 1..1024 UTF-8 bytes without NUL or newline.
        score: set on results (0.0 for fetches and filter-only queries).
        vectors: ``{field: list of floats or 1-d numpy array}``.
        fields: ``{field: value}``; None clears a nullable field in ``update``.
    """

    __slots__ = ("id", "score", "vectors", "fields")

    def __init__(
        self,
        id: str,
        score: Optional[float] = None,
        vectors: Optional[dict[str, Any]] = None,
        fields: Optional[dict[str, Any]] = None,
    ) -> None:
        self.id = id
        self.score = score
        # numpy arrays stay arrays until a write reads them in place; `vector()` lists them.
        self.vectors = vectors if vectors is not None else {}
        self.fields = fields if fields is not None else {}

    def has_field(self, name: str) -> bool:
        """Whether the document has scalar field ``name``."""
        return name in self.fields

    def has_vector(self, name: str) -> bool:
        """Whether the document has vector ``name``."""
        return name in self.vectors

    def vector(self, name: str):
        """Vector ``name`` as a list, or None."""
        v = self.vectors.get(name) if self.vectors else None
        return v.tolist() if hasattr(v, "tolist") else v

    def field(self, name: str):
        """Scalar field ``name``, or None."""
        return self.fields.get(name) if self.fields else None

    def vector_names(self) -> list[str]:
        """Names of the vectors present."""
        return list(self.vectors) if self.vectors else []

    def field_names(self) -> list[str]:
        """Names of the scalar fields present."""
        return list(self.fields) if self.fields else []

    def _replace(self, **changes: Any) -> Doc:
        return Doc(
            changes.get("id", self.id),
            changes.get("score", self.score),
            changes.get("vectors", dict(self.vectors)),
            changes.get("fields", dict(self.fields)),
        )

    @classmethod
    def _from_tuple(cls, t: tuple) -> Doc:
        obj = object.__new__(cls)
        obj.id, obj.score, obj.fields, obj.vectors = t
        return obj

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Doc):
            return NotImplemented
        return (self.id, self.score, self.fields, _normalize_vectors(self.vectors)) == (
            other.id, other.score, other.fields, _normalize_vectors(other.vectors))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        try:
            return json.dumps(
                {"id": self.id, "score": self.score, "fields": self.fields,
                 "vectors": _normalize_vectors(self.vectors)},
                indent=2, ensure_ascii=False)
        except Exception as e:  # noqa: BLE001 - repr must not raise
            return f"<Doc error during repr: {e}>"


#: A list of documents, best first.
DocList = list


@dataclass(frozen=True)
class GroupResult:
    """One group of ``group_by_query``: the field's value as text (NULL is ``''``) and its
    documents, best first."""

    group_by_value: str
    docs: list

    def __getitem__(self, key: str):
        """``group["group_by_value"]`` / ``group["docs"]`` (newer zvec releases)."""
        if key not in ("group_by_value", "docs"):
            raise KeyError(key)
        return getattr(self, key)


@dataclass(frozen=True)
class GroupByQuery:
    """The grouped query of newer zvec releases (``Collection.groupby_query``); the same as
    ``Collection.group_by_query`` with its arguments in one object."""

    field_name: str
    group_by_field_name: str
    id: Optional[str] = None
    vector: Any = None
    param: Optional[HnswQueryParam] = None
    filter: Optional[str] = None
    group_count: int = 2
    group_topk: int = 3
    include_vector: bool = False
    output_fields: Optional[list] = None


@dataclass(frozen=True)
class Fts:
    """zvec's full-text search clause. Not supported: a query using it raises
    ``NotImplementedError``."""

    query_string: Optional[str] = None
    match_string: Optional[str] = None


@dataclass(frozen=True)
class Query:
    """One route of a query: a vector field and either a vector or the id of a stored
    document whose vector is used.

    Args:
        field_name: the vector field searched.
        id: use the vector of this live document.
        vector: a list of floats or a 1-d numpy array (float32 is read without a copy).
        param: ``HnswQueryParam(ef=...)`` for an HNSW field; None for defaults.
        fts: full-text search; not supported (``NotImplementedError``).
    """

    field_name: str
    id: Optional[str] = None
    vector: Any = None
    param: Optional[HnswQueryParam] = None
    fts: Optional[Fts] = None

    def has_id(self) -> bool:
        """Whether the route searches with a stored document's vector."""
        return self.id is not None

    def has_vector(self) -> bool:
        """Whether the route has an explicit vector."""
        return self.vector is not None and len(self.vector) > 0

    def has_fts(self) -> bool:
        """Whether the route is a full-text search (unsupported)."""
        return self.fts is not None and bool(self.fts.query_string or self.fts.match_string)

    def _validate(self) -> None:
        if not isinstance(self.field_name, str) or not self.field_name.strip():
            raise ValueError("Field name must be a non-empty string")
        if self.fts is not None:
            raise NotImplementedError("full-text search (Fts) is not supported by stratavec")
        if self.has_id() and self.has_vector():
            raise ValueError("Cannot provide both id and vector")


class VectorQuery(Query):
    """Deprecated alias of ``Query`` (as in zvec)."""


class ReRanker:
    """Base of the rerankers that merge several query routes. Subclass it and implement
    ``rerank(query_results: list[list[Doc]], topk) -> list[Doc]`` for a reranker in Python."""

    def rerank(self, query_results: list, topk: int) -> list:  # pragma: no cover - abstract
        raise NotImplementedError

    def _native(self) -> Optional[tuple]:
        return None


class RrfReRanker(ReRanker):
    """Reciprocal rank fusion: ``score = sum over routes of 1 / (rank_constant + rank + 1)``,
    rank 0-based (zvec's formula)."""

    def __init__(self, rank_constant: int = 60) -> None:
        self.rank_constant = rank_constant

    def _native(self) -> tuple:
        return ("rrf", [float(self.rank_constant)])

    def rerank(self, query_results: list, topk: int = 10) -> list:
        scores: dict[str, float] = {}
        docs: dict[str, Doc] = {}
        for hits in query_results:
            for rank, d in enumerate(hits):
                scores[d.id] = scores.get(d.id, 0.0) + 1.0 / (self.rank_constant + rank + 1)
                docs.setdefault(d.id, d)
        order = sorted(scores, key=lambda k: (-scores[k], k))[:topk]
        return [docs[k]._replace(score=scores[k]) for k in order]


class WeightedReRanker(ReRanker):
    """Weighted sum of per-route normalised scores (zvec's: L2 ``1 - 2·atan(d)/π``, cosine
    ``1 - d/2``, IP ``0.5 + atan(s)/π``); one weight per route."""

    def __init__(self, weights: Union[list, tuple]) -> None:
        self.weights = list(weights)

    def _native(self) -> tuple:
        return ("weighted", [float(w) for w in self.weights])
