//! A sealed segment: immutable files (forward store, frozen graphs) mapped once and shared by
//! `Arc`, so that a reader's snapshot keeps the segments it reads alive across a merge.
//!
//! Opening one costs O(1) in its rows: the forward file's header and section table are
//! checked, its sections on first use (see [`ForwardFile`]).

use std::path::Path;
use std::sync::OnceLock;

use super::columns::{self, ForwardFile};
use super::graphs::{self, GraphLoad};
use super::{decode_block, DeleteSet, InvertedIndexes, Rows, SegmentMeta};
use crate::error::{Error, Result};
use crate::index::frozen::FrozenGraph;
use crate::schema::{CollectionSchema, IndexKind, VectorSchema};
use crate::storage::{Mapped, Storage};

/// A persisted, immutable segment.
#[derive(Debug)]
pub(crate) struct SealedSegment {
    pub(crate) id: u64,
    pub(crate) forward: ForwardFile,
    /// One frozen graph per vector field with an HNSW index (`None` for flat fields).
    graphs: Vec<Option<FrozenGraph>>,
    /// Per vector field: whether the graph agrees with the forward store's vectors, checked on
    /// first use; a graph that does not is rebuilt in memory then (`Some`).
    checked: Vec<OnceLock<Result<Option<FrozenGraph>, String>>>,
    /// Inverted indexes of the scalar fields that declare one, built on first use.
    pub(crate) inverted: InvertedIndexes,
}

impl SealedSegment {
    pub(crate) fn new(id: u64, forward: ForwardFile, graphs: Vec<Option<FrozenGraph>>) -> Self {
        SealedSegment {
            inverted: InvertedIndexes::new(forward.field_count()),
            checked: graphs.iter().map(|_| OnceLock::new()).collect(),
            id,
            forward,
            graphs,
        }
    }

    /// Loads the segment `meta` describes: its forward file (mapped; the checksummed prefix
    /// checked against the manifest) and its graphs (mapped, or rebuilt when missing or
    /// damaged). Returns how each HNSW field's graph was loaded.
    pub(crate) fn load(
        storage: &dyn Storage,
        dir: &Path,
        meta: &SegmentMeta,
        schema: &CollectionSchema,
        read_only: bool,
    ) -> Result<(Self, Vec<(String, GraphLoad)>)> {
        let path = dir.join(&meta.file.name);
        let forward = open_forward(storage, &path, meta, schema)?;
        if forward.len() as u64 != meta.rows {
            return Err(Error::corrupted(
                &path,
                16,
                format!("{} rows, the manifest says {}", forward.len(), meta.rows),
            ));
        }
        let mut frozen = Vec::with_capacity(schema.vectors.len());
        let mut loads = Vec::new();
        for (v, vs) in schema.vectors.iter().enumerate() {
            // A flat field, or a graph deferred until writes pause (see `graphs::seal`).
            let Some(name) = meta.graph_file(v, vs) else {
                frozen.push(None);
                continue;
            };
            let (graph, load) = match graphs::map(storage, dir, &name, vs, forward.len()) {
                Ok(graph) => (graph, GraphLoad::Mapped),
                Err(reason) => {
                    let vectors = forward.vectors(v)?;
                    let graph = graphs::rebuild(storage, dir, &name, vs, vectors, read_only)?;
                    (graph, GraphLoad::Rebuilt { reason })
                }
            };
            loads.push((vs.name.clone(), load));
            frozen.push(Some(graph));
        }
        Ok((SealedSegment::new(meta.id, forward, frozen), loads))
    }

    /// Rows stored (live, deleted and superseded).
    pub(crate) fn len(&self) -> usize {
        self.forward.len()
    }

    /// The rows, doc ids and pks checked.
    pub(crate) fn rows(&self) -> Result<Rows<'_>> {
        Rows::of_file(&self.forward)
    }

    /// The graph of vector field `v` (`None` for a flat field), once it is known to agree with
    /// the forward store: a cosine graph's stored inverse norms must be those of the vectors (a
    /// crafted file with recomputed checksums would otherwise skew every walk silently). A
    /// graph that does not agree is rebuilt in memory from the vectors on first use, as an
    /// open rebuilds a damaged graph file (`verify` reports the file).
    pub(crate) fn graph(&self, v: usize, vs: &VectorSchema) -> Result<Option<&FrozenGraph>> {
        let Some(stored) = self.graphs.get(v).and_then(Option::as_ref) else {
            return Ok(None);
        };
        let vectors = self.forward.vectors(v)?;
        let verdict = self.checked[v].get_or_init(|| {
            if graphs::check_norms(stored, vectors, vs.dimension).is_ok() {
                return Ok(None);
            }
            graphs::build(vs, vectors)
                .ok_or_else(|| "no HNSW index".to_string())
                .and_then(|data| {
                    FrozenGraph::open(Mapped::from_bytes(&data.encode()), vs.metric, self.len())
                        .map_err(|(_, reason)| reason)
                })
                .map(Some)
        });
        match verdict {
            Ok(None) => Ok(Some(stored)),
            Ok(Some(rebuilt)) => Ok(Some(rebuilt)),
            Err(reason) => Err(Error::corrupted(
                self.forward.path(),
                0,
                format!("graph of field {}: {reason}", vs.name),
            )),
        }
    }

    /// Packs every HNSW graph's layer 0 for the walk (see `PackedLevel0`), once: one pass over
    /// the vectors and lists, run off the query path. A graph that cannot be checked stays
    /// mapped; the query that needs it reports the problem.
    pub(crate) fn pack_graphs(&self, schema: &CollectionSchema) {
        for (v, vs) in schema.vectors.iter().enumerate() {
            // A flat field has nothing to pack: its vectors are not read (a whole-column check).
            let Ok(Some(graph)) = self.graph(v, vs) else {
                continue;
            };
            if let Ok(vectors) = self.forward.vectors(v) {
                graph.pack(vectors, vs.dimension);
            }
        }
    }

    /// Bytes of packed graph layers held in memory (beside the mapped files).
    pub(crate) fn packed_bytes(&self) -> usize {
        self.graphs
            .iter()
            .enumerate()
            .map(|(v, g)| {
                let rebuilt = self.checked[v]
                    .get()
                    .and_then(|c| c.as_ref().ok())
                    .and_then(Option::as_ref);
                rebuilt.or(g.as_ref()).map_or(0, FrozenGraph::packed_bytes)
            })
            .sum()
    }

    /// Graphs rebuilt in memory on first use because their file disagreed with the vectors.
    pub(crate) fn repaired_graphs(&self) -> usize {
        self.checked
            .iter()
            .filter(|c| matches!(c.get(), Some(Ok(Some(_)))))
            .count()
    }

    /// Whether vector field `v` (`vs`) has an HNSW index but no graph here yet: its rows are
    /// scored exactly until [`super::persist::build_deferred`] or a merge builds one.
    pub(crate) fn defers_graph(&self, v: usize, vs: &VectorSchema) -> bool {
        !matches!(vs.index, IndexKind::Flat) && self.stored_graph(v).is_none()
    }

    /// Whether some vector field of `schema` defers its graph here.
    pub(crate) fn defers_any_graph(&self, schema: &CollectionSchema) -> bool {
        schema
            .vectors
            .iter()
            .enumerate()
            .any(|(v, vs)| self.defers_graph(v, vs))
    }

    /// The graphs as stored, unchecked against the vectors (merges seed from them).
    pub(crate) fn stored_graph(&self, v: usize) -> Option<&FrozenGraph> {
        self.graphs.get(v).and_then(Option::as_ref)
    }

    /// Bytes served from memory maps, and bytes held in process memory.
    pub(crate) fn memory(&self) -> (u64, u64) {
        let mut mapped = 0u64;
        let mut resident = self.forward.resident_bytes() as u64
            + self.inverted.bytes() as u64
            + self.packed_bytes() as u64;
        let files = std::iter::once((self.forward.byte_len(), self.forward.is_mapped())).chain(
            self.graphs
                .iter()
                .flatten()
                .map(|g| (g.byte_len(), g.is_mapped())),
        );
        for (bytes, is_mapped) in files {
            if is_mapped {
                mapped += bytes as u64;
            } else {
                resident += bytes as u64;
            }
        }
        (mapped, resident)
    }

    /// Rows of this segment whose doc id is in `deleted`.
    pub(crate) fn deleted_rows(&self, deleted: &DeleteSet) -> Result<usize> {
        Ok(self
            .rows()?
            .doc_ids
            .iter()
            .filter(|&&id| deleted.contains(id))
            .count())
    }

    /// The row and doc id of `pk`'s row here (`hash` = [`super::keys::hash`] of it) that
    /// `deleted` does not hold, read in place. A row found is right; `None` proves the pk
    /// absent only once [`ForwardFile::prove_keys`] passed.
    pub(crate) fn live_row(
        &self,
        pk: &str,
        hash: u64,
        deleted: &DeleteSet,
    ) -> Result<Option<(usize, u64)>> {
        let mut live = None;
        for row in self.forward.rows_with_key(pk, hash)? {
            let id = self.forward.doc_id(row)?;
            if deleted.contains(id) {
                continue;
            }
            if let Some((_, first)) = live {
                // Writes delete a pk's row before they add another: two live rows mean a
                // damaged or crafted file (`verify` checks this across segments too).
                return Err(Error::corrupted(
                    self.forward.path(),
                    0,
                    format!("pk {pk:?} is live in doc ids {first} and {id}"),
                ));
            }
            live = Some((row, id));
        }
        Ok(live)
    }
}

/// Maps the forward file of `meta` and checks it against the manifest: a columnar file by
/// its checksummed prefix (the sections check themselves on first use), a version-1 file
/// (one MessagePack payload) whole, decoded and held in memory in the current layout.
pub(crate) fn open_forward(
    storage: &dyn Storage,
    path: &Path,
    meta: &SegmentMeta,
    schema: &CollectionSchema,
) -> Result<ForwardFile> {
    let file = &meta.file;
    let size = storage.size(path)?;
    if size != file.len {
        return Err(Error::corrupted(
            path,
            size.min(file.len),
            format!("file is {size} bytes, the manifest says {}", file.len),
        ));
    }
    let mapped = storage.map(path)?;
    if mapped.len() as u64 != file.len {
        return Err(Error::corrupted(
            path,
            0,
            format!(
                "file is {} bytes, the manifest says {}",
                mapped.len(),
                file.len
            ),
        ));
    }
    let checked = if columns::is_columnar(&mapped) {
        columns::prefix_len(&mapped).and_then(|n| mapped.get(..n))
    } else {
        Some(&mapped[..])
    };
    let crc = checked.map(crc32c::crc32c);
    if crc != Some(file.crc) {
        return Err(Error::corrupted(
            path,
            0,
            format!(
                "file checksum {crc:#010x?} differs from the manifest's {:#010x}",
                file.crc
            ),
        ));
    }
    if columns::is_columnar(&mapped) {
        return ForwardFile::open(path, mapped, schema);
    }
    let block = decode_block(path, &mapped, schema)?;
    let bytes = columns::encode(&block)?;
    ForwardFile::open(path, Mapped::from_bytes(&bytes), schema)
}
