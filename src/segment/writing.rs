//! The writing segment: its WAL, its rows in memory and its live graphs. Every write call is
//! one WAL record; [`Segment::apply`] turns a record into rows and deletions, deterministically,
//! so that replaying the log in seq order reproduces the outcomes writers saw.

use std::sync::Arc;

use hashbrown::HashMap;

use super::{Batch, Block, DeleteSet, Elsewhere, IdTracker, Row};
use crate::doc::DocStatus;
use crate::index::distance::dot;
use crate::index::live::LiveGraph;
use crate::schema::{CollectionSchema, Metric};
use crate::wal::{Op, Wal};

/// Why a record could not be applied.
#[derive(Debug)]
pub(crate) enum ApplyError {
    /// The record does not fit the schema or its op (a damaged or crafted WAL record).
    Record(String),
    /// A file of another segment, read to apply the record, is damaged.
    Stored(crate::Error),
}

/// A segment that takes writes (or, once rotated out, waits in memory to be persisted).
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) id: u64,
    /// `<id>/0.wal`, created on the segment's first write (`None` for read-only handles).
    wal: Option<Arc<Wal<Batch>>>,
    /// The rows of every applied record, in doc-id order.
    pub(crate) rows: Block,
    /// Each pk's newest row here.
    keys: HashMap<String, u32>,
    /// One live graph per HNSW vector field, fed by the background indexer.
    pub(crate) graphs: Vec<Option<Arc<LiveGraph>>>,
    /// The seq of the last record applied (0 before the first).
    pub(crate) last_seq: u64,
    /// Per cosine vector field, `1 / |row|` of every row (empty for other metrics): rows the
    /// indexer has not reached are scored exactly, and this halves that work.
    inv_norms: Vec<Vec<f32>>,
    cosine: Vec<bool>,
}

impl Segment {
    /// An empty segment without a WAL yet.
    pub(crate) fn new(id: u64, schema: &CollectionSchema) -> Self {
        Segment {
            id,
            wal: None,
            rows: Block::new(schema),
            keys: HashMap::new(),
            graphs: super::graphs::new_live_graphs(schema),
            last_seq: 0,
            inv_norms: vec![Vec::new(); schema.vectors.len()],
            cosine: schema
                .vectors
                .iter()
                .map(|v| v.metric == Metric::Cosine)
                .collect(),
        }
    }

    /// Makes room for `rows` rows, so that applying a write never copies a whole column while
    /// readers wait for it.
    pub(crate) fn reserve(&mut self, rows: usize) {
        self.rows.reserve(rows);
        self.keys.reserve(rows);
        for (norms, &cosine) in self.inv_norms.iter_mut().zip(&self.cosine) {
            if cosine {
                norms.reserve(rows);
            }
        }
    }

    /// The segment's WAL, once it has one.
    pub(crate) fn wal(&self) -> Option<&Arc<Wal<Batch>>> {
        self.wal.as_ref()
    }

    pub(crate) fn set_wal(&mut self, wal: Arc<Wal<Batch>>) {
        self.wal = Some(wal);
    }

    /// Rows not yet in every live graph (they are scored exactly meanwhile).
    pub(crate) fn unindexed(&self) -> usize {
        self.graphs
            .iter()
            .flatten()
            .map(|g| self.rows.len().saturating_sub(g.indexed()))
            .max()
            .unwrap_or(0)
    }

    /// Checks a row from the log against the schema, so a damaged record can never make a
    /// malformed block.
    fn check_shape(&self, row: &Row) -> Result<(), String> {
        let ok = row.fields.len() == self.rows.fields.len()
            && row.vectors.len() == self.rows.vectors.len()
            && row
                .vectors
                .iter()
                .zip(&self.rows.vectors)
                .all(|(v, col)| v.0.len() == col.dim);
        if ok {
            Ok(())
        } else {
            Err(format!("row {:?} does not match the schema", row.pk))
        }
    }

    fn add(&mut self, ids: &mut IdTracker, row: Row) {
        for ((norms, cosine), v) in self
            .inv_norms
            .iter_mut()
            .zip(&self.cosine)
            .zip(&row.vectors)
        {
            if *cosine {
                let n = dot(&v.0, &v.0).sqrt();
                norms.push(if n > 0.0 { 1.0 / n } else { 0.0 });
            }
        }
        let id = ids.assign();
        self.keys.insert(row.pk.clone(), self.rows.len() as u32);
        self.rows.push(id, row);
    }

    /// The doc id of `pk`'s row here, when `deleted` does not hold it.
    pub(crate) fn live_doc(&self, pk: &str, deleted: &DeleteSet) -> Option<u64> {
        let &row = self.keys.get(pk)?;
        let id = *self.rows.doc_ids.get(row as usize)?;
        (!deleted.contains(id)).then_some(id)
    }

    fn find_live(
        &self,
        pk: &str,
        ids: &IdTracker,
        elsewhere: &Elsewhere<'_>,
    ) -> Result<Option<u64>, ApplyError> {
        match self.live_doc(pk, &ids.deleted) {
            Some(id) => Ok(Some(id)),
            None => elsewhere
                .live_doc(pk, &ids.deleted)
                .map_err(ApplyError::Stored),
        }
    }

    /// `1 / |row|` of every row of vector field `v`, for a cosine field.
    pub(crate) fn inv_norms(&self, v: usize) -> Option<&[f32]> {
        match self.cosine.get(v) {
            Some(true) => self.inv_norms.get(v).map(Vec::as_slice),
            _ => None,
        }
    }

    /// Applies the record `seq`. `elsewhere` are the other segments, where a pk may be live and
    /// an update finds the row it merges into. Fails when the op and the payload do not belong
    /// together or a row does not fit the schema (which a WAL written by this crate never
    /// holds), or when another segment's file turns out damaged.
    pub(crate) fn apply(
        &mut self,
        seq: u64,
        op: Op,
        batch: Batch,
        ids: &mut IdTracker,
        elsewhere: &Elsewhere<'_>,
    ) -> Result<Vec<DocStatus>, ApplyError> {
        let mut out = Vec::with_capacity(crate::wal::WalPayload::doc_count(&batch));
        match (op, batch) {
            (Op::Insert, Batch::Rows(rows)) => {
                for row in rows {
                    self.check_shape(&row).map_err(ApplyError::Record)?;
                    if self.find_live(&row.pk, ids, elsewhere)?.is_some() {
                        out.push(DocStatus::AlreadyExists);
                    } else {
                        self.add(ids, row);
                        out.push(DocStatus::Ok);
                    }
                }
            }
            (Op::Upsert, Batch::Rows(rows)) => {
                for row in rows {
                    self.check_shape(&row).map_err(ApplyError::Record)?;
                    if let Some(id) = self.find_live(&row.pk, ids, elsewhere)? {
                        ids.delete(id);
                    }
                    self.add(ids, row);
                    out.push(DocStatus::Ok);
                }
            }
            (Op::Update, Batch::Patches(patches)) => {
                for patch in patches {
                    let Some(id) = self.find_live(&patch.pk, ids, elsewhere)? else {
                        out.push(DocStatus::NotFound);
                        continue;
                    };
                    let current = match self.rows.find(id) {
                        Some(i) => Some(self.rows.row(i)),
                        None => elsewhere.row(id).map_err(ApplyError::Stored)?,
                    };
                    let Some(mut row) = current else {
                        return Err(ApplyError::Record(format!(
                            "live doc id {id} of {:?} has no row",
                            patch.pk
                        )));
                    };
                    for (f, value) in patch.fields {
                        let slot = row
                            .fields
                            .get_mut(f as usize)
                            .ok_or_else(|| ApplyError::Record("patch names no field".into()))?;
                        *slot = value;
                    }
                    for (v, vector) in patch.vectors {
                        let slot = row
                            .vectors
                            .get_mut(v as usize)
                            .ok_or_else(|| ApplyError::Record("patch names no vector".into()))?;
                        *slot = vector;
                    }
                    self.check_shape(&row).map_err(ApplyError::Record)?;
                    ids.delete(id);
                    self.add(ids, row);
                    out.push(DocStatus::Ok);
                }
            }
            (Op::Delete, Batch::Keys(keys)) => {
                for pk in keys {
                    out.push(match self.find_live(&pk, ids, elsewhere)? {
                        Some(id) => {
                            ids.delete(id);
                            DocStatus::Ok
                        }
                        None => DocStatus::NotFound,
                    });
                }
            }
            (op, _) => {
                return Err(ApplyError::Record(format!(
                    "a {op:?} record carries the wrong kind of payload"
                )))
            }
        }
        self.last_seq = seq;
        Ok(out)
    }
}
