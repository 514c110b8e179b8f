//! Queries over a collection: options, projections and exact search.

pub mod filter;
pub(crate) mod flat;
pub(crate) mod plan;
mod request;
mod rerank;

pub use filter::Filter;
pub use plan::DEFAULT_EF;
pub use request::{Query, VectorQuery, VectorSource};
pub(crate) use rerank::fuse;
pub use rerank::ReRanker;

/// The largest `topk` a query may ask for (zvec's limit).
pub const MAX_TOPK: usize = 100_000;

/// Options of [`crate::Collection::search`].
///
/// ```
/// use stratavec::SearchOptions;
/// let opts = SearchOptions::new().topk(5).output_fields(["year"]).include_vector(true);
/// assert_eq!(opts.topk, 5);
/// ```
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// How many hits to return, 1..=100000 (default 10).
    pub topk: usize,
    /// Scalar (or vector) fields to return; `None` returns every scalar field.
    pub output_fields: Option<Vec<String>>,
    /// Whether hits carry their vectors.
    pub include_vector: bool,
    /// Beam width of graph search; ignored by exact (flat) search.
    pub ef: Option<usize>,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            topk: 10,
            output_fields: None,
            include_vector: false,
            ef: None,
        }
    }
}

impl SearchOptions {
    /// Defaults: topk 10, every scalar field, no vectors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets topk.
    pub fn topk(mut self, topk: usize) -> Self {
        self.topk = topk;
        self
    }

    /// Sets the returned fields.
    pub fn output_fields<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.output_fields = Some(fields.into_iter().map(Into::into).collect());
        self
    }

    /// Whether hits carry vectors.
    pub fn include_vector(mut self, include: bool) -> Self {
        self.include_vector = include;
        self
    }

    /// Sets the graph search beam width.
    pub fn ef(mut self, ef: usize) -> Self {
        self.ef = Some(ef);
        self
    }
}

/// Options of [`crate::Collection::fetch_with`].
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Scalar (or vector) fields to return; `None` returns every scalar field.
    pub output_fields: Option<Vec<String>>,
    /// Whether documents carry their vectors (default true, like zvec).
    pub include_vector: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            output_fields: None,
            include_vector: true,
        }
    }
}

/// How [`crate::Collection::group_by_query`] groups hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupBy {
    /// The scalar field whose value names the group.
    pub field: String,
    /// How many groups to return (zvec's default 2).
    pub group_count: usize,
    /// How many hits per group (zvec's default 3).
    pub topk_per_group: usize,
}

impl GroupBy {
    /// Groups by `field` with zvec's defaults: 2 groups of 3.
    pub fn new(field: impl Into<String>) -> Self {
        GroupBy {
            field: field.into(),
            group_count: 2,
            topk_per_group: 3,
        }
    }
}

/// One group of a grouped query: the field's value (as text; NULL is `""`) and its hits.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The grouping field's value, as zvec shows it.
    pub value: String,
    /// The group's hits, best first.
    pub docs: Vec<crate::Doc>,
}
