//! Reading a whole collection: pages of live documents in doc-id order, resumable from a
//! cursor, and counts of the documents a filter matches.
//!
//! Every block holds its rows in ascending doc-id order (rows are appended with fresh ids,
//! merges write them sorted, and the forward-store decoder refuses anything else), so a page
//! is a k-way merge that starts in each block by binary search: its cost follows the page,
//! not the collection.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::Collection;
use crate::doc::Doc;
use crate::error::{Error, Result};
use crate::query::{flat, Filter, MAX_TOPK};

/// What [`Collection::scan`] returns per page, and which documents.
///
/// ```
/// use stratavec::ScanOptions;
/// let page = ScanOptions::default().filter("year >= 2020").output_fields(["year"]).limit(500);
/// # let _ = page;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ScanOptions {
    /// Only documents matching this filter (zvec's filter language); `None`: every document.
    pub filter: Option<String>,
    /// Scalar (or vector) fields to return; `None` returns every scalar field.
    pub output_fields: Option<Vec<String>>,
    /// Whether documents carry their vectors (default true: a scan is usually an export).
    pub include_vector: bool,
    /// Documents per page (default 1,000; at most 100,000).
    pub limit: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            filter: None,
            output_fields: None,
            include_vector: true,
            limit: 1000,
        }
    }
}

impl ScanOptions {
    /// Only documents matching `filter`.
    pub fn filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = Some(filter.into());
        self
    }

    /// Returns only these fields.
    pub fn output_fields<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.output_fields = Some(fields.into_iter().map(Into::into).collect());
        self
    }

    /// Whether documents carry their vectors.
    pub fn include_vector(mut self, include: bool) -> Self {
        self.include_vector = include;
        self
    }

    /// Documents per page.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
}

/// Where the next page of a scan starts. It can be kept as text ([`ScanCursor::to_token`]) and
/// resumed later, also from another process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanCursor {
    /// The smallest doc id the next page may return.
    next: u64,
    /// Doc ids at or above this were assigned after the scan began and are never returned.
    end: u64,
}

impl ScanCursor {
    /// The cursor as text (two hexadecimal numbers).
    pub fn to_token(&self) -> String {
        format!("{:x}-{:x}", self.next, self.end)
    }

    /// Reads a cursor written by [`ScanCursor::to_token`].
    pub fn from_token(token: &str) -> Result<Self> {
        let bad = || Error::InvalidCursor {
            token: token.to_string(),
        };
        let (next, end) = token.split_once('-').ok_or_else(bad)?;
        let hex = |s: &str| u64::from_str_radix(s, 16).map_err(|_| bad());
        let (next, end) = (hex(next)?, hex(end)?);
        if next > end {
            return Err(bad());
        }
        Ok(ScanCursor { next, end })
    }
}

/// One page of a scan.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanPage {
    /// Live documents in doc-id (insertion) order, with score 0.
    pub docs: Vec<Doc>,
    /// Where the next page starts; `None` when the scan is complete. (A page that ends
    /// exactly at the last document still carries a cursor: the next page is then empty.)
    pub next: Option<ScanCursor>,
}

impl Collection {
    /// One page of the live documents, in doc-id (insertion) order, starting at `cursor`
    /// (`None`: the first page).
    ///
    /// A scan returns each document at most once and never a document written after its
    /// first page was read. A document deleted or replaced (upsert, update) while the scan is
    /// under way is not returned by later pages: no page shows a state older than the one it
    /// was read from. Each page is one consistent read of the collection.
    ///
    /// ```
    /// # use stratavec::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let schema = CollectionSchema::new("s").vector(VectorSchema::new("v", 2));
    /// # let coll = Collection::create(dir.path().join("c"), schema, CollectionOptions::default())?;
    /// # coll.insert(&(0..5).map(|i| Doc::new(format!("k{i}")).vector("v", vec![i as f32, 1.0])).collect::<Vec<_>>())?;
    /// let options = ScanOptions::default().limit(2);
    /// let mut cursor = None;
    /// let mut seen = Vec::new();
    /// loop {
    ///     let page = coll.scan(&options, cursor)?;
    ///     seen.extend(page.docs.into_iter().map(|d| d.pk));
    ///     match page.next {
    ///         Some(next) => cursor = Some(next),
    ///         None => break,
    ///     }
    /// }
    /// assert_eq!(seen, ["k0", "k1", "k2", "k3", "k4"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scan(&self, options: &ScanOptions, cursor: Option<ScanCursor>) -> Result<ScanPage> {
        self.inner.check_open()?;
        if options.limit == 0 || options.limit > MAX_TOPK {
            return Err(Error::ScanLimitOutOfRange {
                limit: options.limit,
                max: MAX_TOPK,
            });
        }
        let st = self.inner.state.read();
        let schema = &*st.schema;
        let projection = Self::projection(
            schema,
            options.output_fields.as_deref(),
            options.include_vector,
        )?;
        let filter = Filter::compile(schema, options.filter.as_deref().unwrap_or(""))?;
        let filter = filter.as_ref();
        let (start, end) = match cursor {
            Some(c) => (c.next, c.end),
            None => (0, st.ids.next_doc_id),
        };
        let segments = st.rows()?;
        let columns = segments
            .iter()
            .map(|rows| flat::filter_columns(filter, rows))
            .collect::<Result<Vec<_>>>()?;
        // The smallest unread doc id of each segment, smallest first.
        let mut heads: BinaryHeap<Reverse<(u64, usize, usize)>> = segments
            .iter()
            .enumerate()
            .filter_map(|(b, rows)| {
                let at = rows.doc_ids.partition_point(|&d| d < start);
                rows.doc_ids.get(at).map(|&d| Reverse((d, b, at)))
            })
            .collect();
        let mut docs = Vec::new();
        let mut last = None;
        while let Some(Reverse((doc_id, b, at))) = heads.pop() {
            if doc_id >= end {
                break;
            }
            let rows = segments[b];
            if let Some(&next) = rows.doc_ids.get(at + 1) {
                heads.push(Reverse((next, b, at + 1)));
            }
            if st.ids.deleted.contains(doc_id) || !flat::matches(filter, &columns[b], at) {
                continue;
            }
            docs.push(rows.doc(schema, at, &projection)?);
            last = Some(doc_id);
            if docs.len() == options.limit {
                break;
            }
        }
        let next = match last {
            Some(d) if docs.len() == options.limit && d + 1 < end => {
                Some(ScanCursor { next: d + 1, end })
            }
            _ => None,
        };
        Ok(ScanPage { docs, next })
    }

    /// How many live documents match `filter` (`None`: all of them).
    ///
    /// ```
    /// # use stratavec::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let schema = CollectionSchema::new("s").field(FieldSchema::new("n", DataType::Int32)).vector(VectorSchema::new("v", 2));
    /// # let coll = Collection::create(dir.path().join("c"), schema, CollectionOptions::default())?;
    /// # coll.insert(&(0..5).map(|i| Doc::new(format!("k{i}")).set("n", i).vector("v", vec![1.0, 0.0])).collect::<Vec<_>>())?;
    /// assert_eq!(coll.count(None)?, 5);
    /// assert_eq!(coll.count(Some("n >= 3"))?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn count(&self, filter: Option<&str>) -> Result<u64> {
        self.inner.check_open()?;
        let st = self.inner.state.read();
        let filter = Filter::compile(&st.schema, filter.unwrap_or(""))?;
        let Some(filter) = filter.as_ref() else {
            return st.live_docs();
        };
        let mut matching = 0u64;
        for rows in st.rows()? {
            let columns = flat::filter_columns(Some(filter), &rows)?;
            matching += rows
                .doc_ids
                .iter()
                .enumerate()
                .filter(|&(i, &id)| {
                    !st.ids.deleted.contains(id) && flat::matches(Some(filter), &columns, i)
                })
                .count() as u64;
        }
        Ok(matching)
    }
}
