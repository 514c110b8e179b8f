//! Readers for the `.fvecs` / `.ivecs` formats of ANN benchmarks (each row: `i32 LE dim`, then
//! `dim` little-endian `f32` or `i32` values), used by the example, the CLI and the benchmarks.

use std::path::Path;

use crate::error::{Error, Result};

fn rows<T>(path: &Path, bytes: &[u8], convert: impl Fn([u8; 4]) -> T) -> Result<Vec<Vec<T>>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let bad = |reason: String| Err(Error::corrupted(path, at as u64, reason));
        let Some(head) = bytes.get(at..at + 4) else {
            return bad("truncated row header".into());
        };
        let dim = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if dim <= 0 || dim > 1 << 20 {
            return bad(format!("implausible dimension {dim}"));
        }
        let end = at + 4 + dim as usize * 4;
        let Some(body) = bytes.get(at + 4..end) else {
            return bad(format!(
                "row of dimension {dim} runs past the end of the file"
            ));
        };
        out.push(
            body.chunks_exact(4)
                .map(|c| convert([c[0], c[1], c[2], c[3]]))
                .collect(),
        );
        at = end;
    }
    Ok(out)
}

/// Reads an `.fvecs` file: one `Vec<f32>` per row.
pub fn read_fvecs(path: impl AsRef<Path>) -> Result<Vec<Vec<f32>>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    rows(path, &bytes, f32::from_le_bytes)
}

/// Reads an `.ivecs` file: one `Vec<i32>` per row (ground-truth neighbour ids).
pub fn read_ivecs(path: impl AsRef<Path>) -> Result<Vec<Vec<i32>>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    rows(path, &bytes, i32::from_le_bytes)
}

/// recall@k of `found` (primary keys that parse as base row numbers) against ground truth.
pub fn recall_at_k(found: &[String], truth: &[i32], k: usize) -> f64 {
    let truth: std::collections::HashSet<i32> = truth.iter().take(k).copied().collect();
    let hits = found
        .iter()
        .take(k)
        .filter(|pk| pk.parse::<i32>().is_ok_and(|id| truth.contains(&id)))
        .count();
    hits as f64 / k.min(truth.len()).max(1) as f64
}
