//! When an acknowledged write is durable.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// When appends are fsynced, and so what a power loss can take (DESIGN §4).
///
/// A killed process (SIGKILL) loses nothing acknowledged under any policy: every append
/// reaches the operating system before it returns.
///
/// The text form (`always`, `every:<N>`, `interval:<MS>`, `never`) is what the command-line
/// tool accepts:
///
/// ```
/// use std::time::Duration;
/// use stratavec::wal::FlushPolicy;
/// assert_eq!("every:100".parse::<FlushPolicy>().unwrap(), FlushPolicy::EveryDocs(100));
/// assert_eq!("interval:10".parse::<FlushPolicy>().unwrap(), FlushPolicy::Interval(Duration::from_millis(10)));
/// assert_eq!(FlushPolicy::Always.to_string(), "always");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum FlushPolicy {
    /// A write returns after its record is fsynced; concurrent writers share one fsync.
    /// A power loss loses nothing acknowledged.
    #[default]
    Always,
    /// fsync once at least `n` documents are unsynced (zvec's `max_docs_wal_flush`).
    /// A power loss loses fewer than `n` acknowledged documents.
    EveryDocs(u32),
    /// A background thread fsyncs every period. A power loss loses the writes of the last period.
    Interval(Duration),
    /// Never fsync on append (only on persist). A power loss loses what the OS had not written.
    Never,
}

impl fmt::Display for FlushPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushPolicy::Always => f.write_str("always"),
            FlushPolicy::EveryDocs(n) => write!(f, "every:{n}"),
            FlushPolicy::Interval(d) => write!(f, "interval:{}", d.as_millis()),
            FlushPolicy::Never => f.write_str("never"),
        }
    }
}

impl FromStr for FlushPolicy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidFlushPolicy {
            text: s.to_string(),
        };
        match s {
            "always" => Ok(FlushPolicy::Always),
            "never" => Ok(FlushPolicy::Never),
            _ => {
                if let Some(n) = s.strip_prefix("every:") {
                    match n.parse::<u32>() {
                        Ok(n) if n >= 1 => Ok(FlushPolicy::EveryDocs(n)),
                        _ => Err(bad()),
                    }
                } else if let Some(ms) = s.strip_prefix("interval:") {
                    match ms.parse::<u64>() {
                        Ok(ms) if ms >= 1 => Ok(FlushPolicy::Interval(Duration::from_millis(ms))),
                        _ => Err(bad()),
                    }
                } else {
                    Err(bad())
                }
            }
        }
    }
}
