//! The automatic merge policy: which sealed segments a background merge takes.

use std::sync::Arc;

use super::options::MergePolicy;
use crate::segment::{DeleteSet, SealedSegment};

/// The segments to merge now, or none. Too many segments: the smallest ones, so that about
/// half of `max_segments` remain. Otherwise a segment whose deleted fraction (as of the
/// manifest) reached the threshold, merged with nothing else.
pub(super) fn pick(
    sealed: &[Arc<SealedSegment>],
    deleted: &DeleteSet,
    policy: &MergePolicy,
) -> Vec<Arc<SealedSegment>> {
    let max = policy.max_segments.max(2);
    if sealed.len() > max {
        let mut by_size: Vec<&Arc<SealedSegment>> = sealed.iter().collect();
        by_size.sort_by_key(|s| s.len());
        let take = sealed.len() - max / 2 + 1;
        return by_size.into_iter().take(take).cloned().collect();
    }
    sealed
        .iter()
        .find(|s| {
            // A segment whose doc ids cannot be read is left alone: reads report it.
            let gone = s.deleted_rows(deleted).unwrap_or(0);
            gone > 0 && gone as f32 >= policy.max_deleted_fraction * s.len() as f32
        })
        .cloned()
        .into_iter()
        .collect()
}
