//! zvec's general query form: by vector, by the vector of a stored document, or no vector at
//! all (a scan in insertion order).

/// Where a query's vector comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum VectorSource {
    /// This vector.
    Vector(Vec<f32>),
    /// The vector of the live document with this primary key.
    ById(String),
}

/// One vector route of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorQuery {
    /// The vector field searched.
    pub field: String,
    /// The query vector.
    pub source: VectorSource,
}

/// A query for [`crate::Collection::query`].
///
/// ```
/// use stratavec::Query;
/// let q = Query::vector("embedding", vec![0.1, 0.2]).topk(5).include_vector(true);
/// let scan = Query::new().topk(100); // no vector: live documents in insertion order, score 0
/// let similar = Query::by_id("embedding", "doc-7");
/// # let _ = (q, scan, similar);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The vector routes (none: a scan).
    pub vectors: Vec<VectorQuery>,
    /// How many documents to return, 1..=100000 (default 10).
    pub topk: usize,
    /// A filter expression in zvec's language (`year >= 2020 AND tag IN ('a', 'b')`);
    /// `None` or an empty string filters nothing.
    pub filter: Option<String>,
    /// Beam width of graph search.
    pub ef: Option<usize>,
    /// Scalar (or vector) fields to return; `None` returns every scalar field.
    pub output_fields: Option<Vec<String>>,
    /// Whether documents carry their vectors (default false).
    pub include_vector: bool,
    /// How several vector routes are merged (required when there are two or more).
    pub reranker: Option<super::ReRanker>,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            vectors: Vec::new(),
            topk: 10,
            filter: None,
            ef: None,
            output_fields: None,
            include_vector: false,
            reranker: None,
        }
    }
}

impl Query {
    /// A query without a vector: live documents in insertion order, score 0.
    pub fn new() -> Self {
        Query::default()
    }

    /// A nearest-neighbour query.
    pub fn vector(field: impl Into<String>, vector: impl Into<Vec<f32>>) -> Self {
        Query {
            vectors: vec![VectorQuery {
                field: field.into(),
                source: VectorSource::Vector(vector.into()),
            }],
            ..Query::default()
        }
    }

    /// A nearest-neighbour query with the vector of a stored document.
    pub fn by_id(field: impl Into<String>, pk: impl Into<String>) -> Self {
        Query {
            vectors: vec![VectorQuery {
                field: field.into(),
                source: VectorSource::ById(pk.into()),
            }],
            ..Query::default()
        }
    }

    /// Adds another vector route (same or another field); several routes need a
    /// [`Query::reranker`].
    pub fn and_vector(mut self, field: impl Into<String>, vector: impl Into<Vec<f32>>) -> Self {
        self.vectors.push(VectorQuery {
            field: field.into(),
            source: VectorSource::Vector(vector.into()),
        });
        self
    }

    /// Sets how the routes of a multi-vector query are merged.
    pub fn reranker(mut self, reranker: super::ReRanker) -> Self {
        self.reranker = Some(reranker);
        self
    }

    /// Sets topk.
    pub fn topk(mut self, topk: usize) -> Self {
        self.topk = topk;
        self
    }

    /// Sets the filter expression.
    pub fn filter(mut self, expr: impl Into<String>) -> Self {
        self.filter = Some(expr.into());
        self
    }

    /// Sets the graph search beam width.
    pub fn ef(mut self, ef: usize) -> Self {
        self.ef = Some(ef);
        self
    }

    /// Sets the returned fields.
    pub fn output_fields<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.output_fields = Some(fields.into_iter().map(Into::into).collect());
        self
    }

    /// Whether documents carry their vectors.
    pub fn include_vector(mut self, include: bool) -> Self {
        self.include_vector = include;
        self
    }
}
