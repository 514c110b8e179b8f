//! `Segment::recover`: rebuilds a segment from its WAL after a crash or a clean close.

use std::path::Path;
use std::sync::Arc;

use super::writing::ApplyError;
use super::{rules, wal_id, wal_path, Batch, Elsewhere, IdTracker, Segment};
use crate::error::{Error, Result};
use crate::schema::CollectionSchema;
use crate::storage::Storage;
use crate::wal::{FlushPolicy, RecoveryReport, Wal, WalOpenOptions, WalRecord};

/// How [`Segment::recover`] treats the log.
#[derive(Debug, Clone)]
pub(crate) struct RecoverOptions {
    /// The flush policy of later appends.
    pub(crate) policy: FlushPolicy,
    /// Keep the valid prefix of a corrupted log instead of failing.
    pub(crate) salvage: bool,
    /// Read the log without opening it for appends or repairing it.
    pub(crate) read_only: bool,
    /// Records up to this seq are already reflected elsewhere (the manifest's applied seq, or
    /// the last record of the previous segment's log) and are skipped.
    pub(crate) applied_seq: u64,
}

/// A recovered segment and what its recovery found.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) segment: Segment,
    pub(crate) report: RecoveryReport,
    /// Records applied (those after `applied_seq`).
    pub(crate) replayed: usize,
}

impl Segment {
    /// Replays the WAL `<dir>/<id>/0.wal`: every record with a seq after
    /// `options.applied_seq` is applied in order, as it was when it was written, and the
    /// segment comes back with its WAL open for appends (unless read-only).
    pub(crate) fn recover(
        storage: &Arc<dyn Storage>,
        dir: &Path,
        id: u64,
        schema: &CollectionSchema,
        options: &RecoverOptions,
        ids: &mut IdTracker,
        elsewhere: &Elsewhere<'_>,
    ) -> Result<Recovered> {
        let path = wal_path(dir, id);
        let mut segment = Segment::new(id, schema);
        // Every record is checked before anything is applied, with the rules a write checks:
        // a damaged or crafted record is corruption at its offset (refused, or salvaged up to
        // it), never a row in memory.
        let applied_seq = options.applied_seq;
        let check = |r: &WalRecord<Batch>| -> std::result::Result<(), String> {
            if r.seq <= applied_seq {
                // Only WALs whose records the manifest does not cover replay; a covered record
                // here means the manifest or the log is wrong, and skipping it would silently
                // drop an acknowledged write (which the next persist would make permanent).
                return Err(format!(
                    "is at or below the applied seq {applied_seq} of the manifest, although \
                     segment {id} still replays"
                ));
            }
            rules::check_batch(schema, r.op, &r.payload)
        };
        let recovered = if options.read_only {
            Wal::<Batch>::read_checked(&**storage, &path, wal_id(id), &check)?
        } else {
            let open = WalOpenOptions {
                policy: options.policy,
                salvage: options.salvage,
                next_seq: options.applied_seq + 1,
            };
            let (wal, recovered) =
                Wal::<Batch>::open_checked(storage.clone(), &path, wal_id(id), &open, &check)?;
            segment.set_wal(Arc::new(wal));
            recovered
        };
        let mut replayed = 0;
        for (record, offset) in recovered.records.into_iter().zip(recovered.offsets) {
            let seq = record.seq;
            segment
                .apply(seq, record.op, record.payload, ids, elsewhere)
                .map_err(|e| match e {
                    ApplyError::Record(reason) => {
                        Error::corrupted(&path, offset, format!("record seq {seq}: {reason}"))
                    }
                    ApplyError::Stored(e) => e,
                })?;
            replayed += 1;
        }
        Ok(Recovered {
            segment,
            report: recovered.report,
            replayed,
        })
    }
}
