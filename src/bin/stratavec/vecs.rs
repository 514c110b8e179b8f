//! A streaming `.fvecs` reader (each row: `i32 LE dim`, then `dim` LE `f32`), so that `import`
//! and `query --row` need not load a whole file; damage is named by file and offset.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// Rows of an `.fvecs` file, one at a time.
pub struct FvecsReader {
    path: PathBuf,
    reader: BufReader<File>,
    offset: u64,
    len: u64,
    first_dim: Option<usize>,
}

impl FvecsReader {
    /// Opens a file.
    pub fn open(path: &Path) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
        let len = file
            .metadata()
            .map_err(|e| format!("stat {}: {e}", path.display()))?
            .len();
        Ok(FvecsReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 20, file),
            offset: 0,
            len,
            first_dim: None,
        })
    }

    fn corrupted(&self, at: u64, reason: String) -> String {
        format!(
            "corrupted file {} at offset {at}: {reason}",
            self.path.display()
        )
    }

    /// Reads the next row's dimension, or `None` at the end of the file.
    fn header(&mut self) -> Result<Option<usize>, String> {
        if self.offset == self.len {
            return Ok(None);
        }
        if self.len - self.offset < 4 {
            return Err(self.corrupted(self.offset, "truncated row header".into()));
        }
        let mut head = [0u8; 4];
        self.reader
            .read_exact(&mut head)
            .map_err(|e| format!("read {}: {e}", self.path.display()))?;
        let dim = i32::from_le_bytes(head);
        if dim <= 0 || dim > 1 << 20 {
            return Err(self.corrupted(self.offset, format!("implausible dimension {dim}")));
        }
        let dim = dim as usize;
        if self.offset + 4 + dim as u64 * 4 > self.len {
            return Err(self.corrupted(
                self.offset,
                format!("row of dimension {dim} runs past the end of the file"),
            ));
        }
        self.first_dim.get_or_insert(dim);
        Ok(Some(dim))
    }

    /// The next row, or `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<Vec<f32>>, String> {
        let Some(dim) = self.header()? else {
            return Ok(None);
        };
        let mut body = vec![0u8; dim * 4];
        self.reader
            .read_exact(&mut body)
            .map_err(|e| format!("read {}: {e}", self.path.display()))?;
        self.offset += 4 + body.len() as u64;
        Ok(Some(
            body.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ))
    }

    /// Skips up to `n` rows; returns how many were skipped (fewer at the end of the file).
    pub fn skip(&mut self, n: usize) -> Result<usize, String> {
        for skipped in 0..n {
            let Some(dim) = self.header()? else {
                return Ok(skipped);
            };
            let bytes = dim as i64 * 4;
            self.reader
                .seek_relative(bytes)
                .map_err(|e| format!("seek {}: {e}", self.path.display()))?;
            self.offset += 4 + bytes as u64;
        }
        Ok(n)
    }

    /// Rows left, assuming every row has the dimension of the first one read.
    pub fn rows_left(&self) -> Option<u64> {
        self.first_dim
            .map(|d| (self.len - self.offset) / (4 + d as u64 * 4))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads up to `limit` rows from the start of a file.
pub fn read_fvecs_limit(path: &Path, limit: Option<usize>) -> Result<Vec<Vec<f32>>, String> {
    let mut r = FvecsReader::open(path)?;
    let mut rows = Vec::new();
    while limit.is_none_or(|l| rows.len() < l) {
        match r.next_row()? {
            Some(row) => rows.push(row),
            None => break,
        }
    }
    Ok(rows)
}
