//! The collection's contents in memory, and how each logged write changes them.
//!
//! `apply` is deterministic: replaying the same records on the same starting state gives the
//! same doc ids and outcomes, which is what makes WAL replay reproduce what writers saw.

use std::sync::Arc;

use hashbrown::HashMap;

use super::batch::Batch;
use super::deletes::DeleteSet;
use crate::doc::DocStatus;
use crate::index::live::LiveGraph;
use crate::schema::CollectionSchema;
use crate::segment::{Block, Row, Segment};
use crate::wal::Op;

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) schema: Arc<CollectionSchema>,
    pub(crate) sealed: Vec<Arc<Segment>>,
    /// Rows of the writing segment, not yet persisted.
    pub(crate) writing: Block,
    /// The writing segment's live graph per vector field (`None` for flat fields).
    pub(crate) live_graphs: Vec<Option<LiveGraph>>,
    /// Live primary keys and the doc id of their current row.
    pub(crate) live: HashMap<String, u64>,
    pub(crate) deleted: DeleteSet,
    pub(crate) next_doc_id: u64,
}

impl State {
    pub(crate) fn new(
        schema: Arc<CollectionSchema>,
        sealed: Vec<Arc<Segment>>,
        deleted: DeleteSet,
        next_doc_id: u64,
    ) -> Self {
        let rows: usize = sealed.iter().map(|s| s.block.len()).sum();
        let mut live = HashMap::with_capacity(rows);
        for seg in &sealed {
            for (i, &id) in seg.block.doc_ids.iter().enumerate() {
                if !deleted.contains(id) {
                    live.insert(seg.block.pks[i].clone(), id);
                }
            }
        }
        State {
            writing: Block::new(&schema),
            live_graphs: super::graphs::new_live_graphs(&schema, 0),
            schema,
            sealed,
            live,
            deleted,
            next_doc_id,
        }
    }

    /// Every block, sealed ones first, the writing block last.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.sealed
            .iter()
            .map(|s| &s.block)
            .chain(std::iter::once(&self.writing))
    }

    /// Adds the writing block's new rows to its live graphs, so they are searchable through
    /// the graph when the write returns. Needs only a read lock: hnsw_rs inserts through `&self`.
    pub(crate) fn index_new_rows(&self) {
        for (v, live) in self.live_graphs.iter().enumerate() {
            if let Some(live) = live {
                live.catch_up(
                    &self.writing.vectors[v].data,
                    self.schema.vectors[v].dimension,
                );
            }
        }
    }

    /// The block and position of a stored row.
    pub(crate) fn locate(&self, doc_id: u64) -> Option<(&Block, usize)> {
        self.blocks()
            .filter(|b| {
                b.doc_ids.first().is_some_and(|&f| f <= doc_id)
                    && b.doc_ids.last().is_some_and(|&l| l >= doc_id)
            })
            .find_map(|b| b.find(doc_id).map(|i| (b, i)))
    }

    /// Checks a row from the log against the schema, so a damaged record can never make a
    /// malformed block.
    fn check_shape(&self, row: &Row) -> Result<(), String> {
        let ok = row.fields.len() == self.schema.fields.len()
            && row.vectors.len() == self.schema.vectors.len()
            && row
                .vectors
                .iter()
                .zip(&self.schema.vectors)
                .all(|(v, s)| v.0.len() == s.dimension);
        if ok {
            Ok(())
        } else {
            Err(format!("row {:?} does not match the schema", row.pk))
        }
    }

    fn add(&mut self, row: Row) {
        let id = self.next_doc_id;
        self.next_doc_id += 1;
        self.live.insert(row.pk.clone(), id);
        self.writing.push(id, row);
    }

    fn remove(&mut self, pk: &str) -> bool {
        match self.live.remove(pk) {
            Some(id) => {
                self.deleted.insert(id);
                true
            }
            None => false,
        }
    }

    /// Applies one logged write. Fails only when the op and the payload do not belong
    /// together, which a WAL written by this crate never contains.
    pub(crate) fn apply(&mut self, op: Op, batch: Batch) -> Result<Vec<DocStatus>, String> {
        let mut out = Vec::with_capacity(batch_len(&batch));
        match (op, batch) {
            (Op::Insert, Batch::Rows(rows)) => {
                for row in rows {
                    self.check_shape(&row)?;
                    if self.live.contains_key(&row.pk) {
                        out.push(DocStatus::AlreadyExists);
                    } else {
                        self.add(row);
                        out.push(DocStatus::Ok);
                    }
                }
            }
            (Op::Upsert, Batch::Rows(rows)) => {
                for row in rows {
                    self.check_shape(&row)?;
                    self.remove(&row.pk);
                    self.add(row);
                    out.push(DocStatus::Ok);
                }
            }
            (Op::Update, Batch::Patches(patches)) => {
                for patch in patches {
                    let Some(&id) = self.live.get(&patch.pk) else {
                        out.push(DocStatus::NotFound);
                        continue;
                    };
                    let Some((block, i)) = self.locate(id) else {
                        return Err(format!("live doc id {id} of {:?} has no row", patch.pk));
                    };
                    let mut row = block.row(i);
                    for (f, value) in patch.fields {
                        let slot = row
                            .fields
                            .get_mut(f as usize)
                            .ok_or("patch names no field")?;
                        *slot = value;
                    }
                    for (v, vector) in patch.vectors {
                        let slot = row
                            .vectors
                            .get_mut(v as usize)
                            .ok_or("patch names no vector")?;
                        *slot = vector;
                    }
                    self.check_shape(&row)?;
                    self.remove(&patch.pk);
                    self.add(row);
                    out.push(DocStatus::Ok);
                }
            }
            (Op::Delete, Batch::Keys(keys)) => {
                for pk in keys {
                    out.push(if self.remove(&pk) {
                        DocStatus::Ok
                    } else {
                        DocStatus::NotFound
                    });
                }
            }
            (op, _) => return Err(format!("a {op:?} record carries the wrong kind of payload")),
        }
        Ok(out)
    }
}

fn batch_len(b: &Batch) -> usize {
    crate::wal::WalPayload::doc_count(b)
}
