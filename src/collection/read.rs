//! The read path: fetch, query, search and grouped queries. Every read holds the state's read
//! lock for the call: it never waits for a WAL fsync, a graph insertion, a persist or a merge,
//! only for a writer applying a batch in memory.

use std::collections::HashSet;

use super::state::State;
use super::Collection;
use crate::doc::Doc;
use crate::error::{Error, FieldUsage, Result};
use crate::query::{
    flat, plan, FetchOptions, Filter, Query, SearchOptions, VectorSource, MAX_TOPK,
};
use crate::schema::CollectionSchema;
use crate::segment::Projection;

impl Collection {
    /// Returns the live documents with these primary keys, in request order, duplicates and
    /// missing keys left out. Every scalar field and vector is included.
    pub fn fetch<S: AsRef<str>>(&self, pks: &[S]) -> Result<Vec<Doc>> {
        self.fetch_with(pks, &FetchOptions::default())
    }

    /// [`Collection::fetch`] with a choice of fields and vectors.
    pub fn fetch_with<S: AsRef<str>>(&self, pks: &[S], options: &FetchOptions) -> Result<Vec<Doc>> {
        self.inner.check_open()?;
        let st = self.inner.state.read();
        let projection = Self::projection(
            &st.schema,
            options.output_fields.as_deref(),
            options.include_vector,
        )?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for pk in pks {
            let pk = pk.as_ref();
            if !seen.insert(pk) {
                continue;
            }
            if let Some(row) = st.live_row(pk, &st.schema)? {
                out.push(row.doc(&st.schema, &projection)?);
            }
        }
        Ok(out)
    }

    /// The `topk` live documents nearest to `query` in vector field `field`, best first, with
    /// zvec's scores (L2: squared distance, ascending; IP: dot product, descending; Cosine:
    /// `1 − cos`, ascending); ties are broken by primary key.
    pub fn search(&self, field: &str, query: &[f32], options: &SearchOptions) -> Result<Vec<Doc>> {
        let mut q = Query::vector(field, query.to_vec()).topk(options.topk);
        q.ef = options.ef;
        q.output_fields = options.output_fields.clone();
        q.include_vector = options.include_vector;
        self.query(&q)
    }

    /// zvec's general query: no vector (live documents in insertion order, score 0), one
    /// vector, the vector of a stored document ([`Query::by_id`]), or several routes merged by
    /// a [`crate::ReRanker`]; with an optional filter.
    pub fn query(&self, query: &Query) -> Result<Vec<Doc>> {
        self.inner.check_open()?;
        if query.topk == 0 || query.topk > MAX_TOPK {
            return Err(Error::TopkOutOfRange {
                topk: query.topk,
                max: MAX_TOPK,
            });
        }
        // The schema of the snapshot read: a schema change never shows a reader a mix.
        let st = self.inner.state.read();
        let projection = Self::projection(
            &st.schema,
            query.output_fields.as_deref(),
            query.include_vector,
        )?;
        let filter = Filter::compile(&st.schema, query.filter.as_deref().unwrap_or(""))?;
        let filter = filter.as_ref();
        match query.vectors.as_slice() {
            [] => {
                let mut out = Vec::new();
                'segments: for rows in st.rows()? {
                    let columns = flat::filter_columns(filter, &rows)?;
                    for (i, &id) in rows.doc_ids.iter().enumerate() {
                        if out.len() == query.topk {
                            break 'segments;
                        }
                        if !st.ids.deleted.contains(id) && flat::matches(filter, &columns, i) {
                            out.push(rows.doc(&st.schema, i, &projection)?);
                        }
                    }
                }
                Ok(out)
            }
            [route] => Ok(self
                .route(&st, route, query.topk, query.ef, filter, &projection)?
                .1),
            routes => {
                let reranker = query.reranker.as_ref().ok_or(Error::RerankerRequired {
                    routes: routes.len(),
                })?;
                if let crate::ReRanker::Weighted { weights } = reranker {
                    if weights.len() != routes.len() {
                        return Err(Error::RerankerWeightsMismatch {
                            weights: weights.len(),
                            routes: routes.len(),
                        });
                    }
                }
                // Like zvec, each route contributes max(topk, 10) candidates.
                let candidates = query.topk.max(10);
                let results = routes
                    .iter()
                    .map(|r| self.route(&st, r, candidates, query.ef, filter, &projection))
                    .collect::<Result<Vec<_>>>()?;
                Ok(crate::query::fuse(results, reranker, query.topk))
            }
        }
    }

    /// The best `k` documents of one vector route, with the route's metric.
    fn route(
        &self,
        st: &State,
        route: &crate::query::VectorQuery,
        k: usize,
        ef: Option<usize>,
        filter: Option<&Filter>,
        projection: &Projection,
    ) -> Result<(crate::Metric, Vec<Doc>)> {
        let schema = &*st.schema;
        let v = Self::vector_field(schema, &route.field)?;
        let by_id;
        let vector: &[f32] = match &route.source {
            VectorSource::Vector(x) => x,
            VectorSource::ById(pk) => {
                by_id = st
                    .live_row(pk, schema)?
                    .ok_or_else(|| Error::DocNotFound { pk: pk.clone() })?
                    .vector(v, schema.vectors[v].dimension)?;
                &by_id
            }
        };
        let (parts, hits) = self.hits(st, v, vector, k, ef, filter)?;
        let docs = hits
            .iter()
            .map(|h| {
                let mut doc = parts[h.block].rows.doc(schema, h.row, projection)?;
                doc.score = h.score;
                Ok(doc)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((schema.vectors[v].metric, docs))
    }

    fn vector_field(schema: &CollectionSchema, field: &str) -> Result<usize> {
        schema
            .vector_index(field)
            .ok_or_else(|| Error::UnknownField {
                field: field.to_string(),
                usage: FieldUsage::QueryVector,
            })
    }

    /// The best `k` rows for `vector` in vector field `v`, and the segments they index.
    fn hits<'s>(
        &self,
        st: &'s State,
        v: usize,
        vector: &[f32],
        k: usize,
        ef: Option<usize>,
        filter: Option<&Filter>,
    ) -> Result<(Vec<plan::Part<'s>>, Vec<flat::Hit>)> {
        let vs = &st.schema.vectors[v];
        if vector.len() != vs.dimension {
            return Err(Error::DimensionMismatch {
                field: vs.name.clone(),
                expected: vs.dimension,
                got: vector.len(),
            });
        }
        if vector.iter().any(|x| !x.is_finite()) {
            return Err(Error::NonFiniteVector {
                field: vs.name.clone(),
            });
        }
        let parts = st.parts(v, vs)?;
        let hits = plan::search(
            &parts,
            &st.ids.deleted,
            &st.schema,
            vs,
            vector,
            k,
            ef,
            filter,
        )?;
        Ok((parts, hits))
    }

    /// The engine-bound form of [`Collection::search`]: calls `visit(pk, score)` for each of the
    /// `topk` nearest live documents, best first, without building documents (no fields, no
    /// vectors, no allocation per hit). Returns the number of hits. `output_fields` and
    /// `include_vector` of `options` are ignored.
    ///
    /// ```
    /// # use stratavec::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let schema = CollectionSchema::new("s").vector(VectorSchema::new("v", 2));
    /// # let coll = Collection::create(dir.path().join("c"), schema, CollectionOptions::default())?;
    /// coll.insert(&[Doc::new("a").vector("v", vec![1.0, 0.0]), Doc::new("b").vector("v", vec![0.0, 1.0])])?;
    /// let mut best = Vec::new();
    /// coll.search_keys("v", &[0.9, 0.1], &SearchOptions::new().topk(1), |pk, score| {
    ///     best.push((pk.to_string(), score))
    /// })?;
    /// assert_eq!(best[0].0, "a");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn search_keys(
        &self,
        field: &str,
        query: &[f32],
        options: &SearchOptions,
        mut visit: impl FnMut(&str, f32),
    ) -> Result<usize> {
        self.inner.check_open()?;
        if options.topk == 0 || options.topk > MAX_TOPK {
            return Err(Error::TopkOutOfRange {
                topk: options.topk,
                max: MAX_TOPK,
            });
        }
        let st = self.inner.state.read();
        let v = Self::vector_field(&st.schema, field)?;
        let (parts, hits) = self.hits(&st, v, query, options.topk, options.ef, None)?;
        for h in &hits {
            visit(parts[h.block].rows.pk(h.row), h.score);
        }
        Ok(hits.len())
    }

    /// A vector query whose hits are grouped by the value of a scalar field: up to
    /// `group_count` groups, ordered by their best hit, of up to `topk_per_group` hits each.
    /// NULL values form the group `""`. Works the same before and after a reopen (zvec's
    /// returns nothing after a reopen until `optimize`). `query.topk` is ignored.
    pub fn group_by_query(
        &self,
        query: &Query,
        group: &crate::GroupBy,
    ) -> Result<Vec<crate::Group>> {
        let schema = self.schema();
        let f = schema
            .field_index(&group.field)
            .ok_or_else(|| Error::UnknownField {
                field: group.field.clone(),
                usage: FieldUsage::GroupBy,
            })?;
        if group.group_count == 0 || group.topk_per_group == 0 {
            return Err(Error::GroupSizeOutOfRange {
                group_count: group.group_count,
                topk_per_group: group.topk_per_group,
            });
        }
        let name = &schema.fields[f].name;
        let mut q = query.clone();
        // The grouping field must come back, whatever the caller asked to see.
        if let Some(fields) = q.output_fields.as_mut() {
            if !fields.contains(name) {
                fields.push(name.clone());
            }
        }
        let live = self.inner.state.read().live_docs()?.max(1) as usize;
        let mut want = (group.group_count * group.topk_per_group * 4).min(MAX_TOPK);
        loop {
            q.topk = want.min(live).max(1);
            let hits = self.query(&q)?;
            let exhausted = hits.len() < q.topk || q.topk >= live || q.topk >= MAX_TOPK;
            let mut groups: Vec<crate::Group> = Vec::new();
            for mut doc in hits {
                let value = doc.fields.get(name).map_or(String::new(), value_text);
                if query
                    .output_fields
                    .as_ref()
                    .is_some_and(|o| !o.contains(name))
                {
                    doc.fields.remove(name);
                }
                match groups.iter().position(|g| g.value == value) {
                    Some(g) if groups[g].docs.len() < group.topk_per_group => {
                        groups[g].docs.push(doc)
                    }
                    Some(_) => {}
                    None if groups.len() < group.group_count => groups.push(crate::Group {
                        value,
                        docs: vec![doc],
                    }),
                    None => {}
                }
            }
            let full = groups.len() == group.group_count
                && groups.iter().all(|g| g.docs.len() == group.topk_per_group);
            if full || exhausted {
                return Ok(groups);
            }
            want = (want * 4).min(MAX_TOPK);
        }
    }

    pub(super) fn projection(
        schema: &CollectionSchema,
        output_fields: Option<&[String]>,
        include_vector: bool,
    ) -> Result<Projection> {
        let mut p = Projection::default();
        match output_fields {
            None => p.fields = (0..schema.fields.len()).collect(),
            Some(names) => {
                for name in names {
                    if let Some(f) = schema.field_index(name) {
                        if !p.fields.contains(&f) {
                            p.fields.push(f);
                        }
                    } else if let Some(v) = schema.vector_index(name) {
                        if !p.vectors.contains(&v) {
                            p.vectors.push(v);
                        }
                    } else {
                        return Err(Error::UnknownField {
                            field: name.clone(),
                            usage: FieldUsage::Output,
                        });
                    }
                }
            }
        }
        if include_vector {
            p.vectors = (0..schema.vectors.len()).collect();
        }
        Ok(p)
    }
}

/// A scalar value as zvec shows a group key.
fn value_text(v: &crate::Value) -> String {
    use crate::Value as V;
    match v {
        V::Null => String::new(),
        V::Bool(x) => x.to_string(),
        V::Int32(x) => x.to_string(),
        V::Int64(x) => x.to_string(),
        V::UInt32(x) => x.to_string(),
        V::UInt64(x) => x.to_string(),
        V::Float(x) => x.to_string(),
        V::Double(x) => x.to_string(),
        V::String(x) => x.clone(),
        other => format!("{other:?}"),
    }
}
