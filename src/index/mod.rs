//! Vector indexes: hnsw_rs feeds the writing segment's graph as rows arrive ([`live`]), our
//! own builder builds graphs in bulk ([`builder`]), sealed segments serve them in a frozen
//! format we own ([`frozen`]), and all share the distance kernels.

mod beam;
pub(crate) mod builder;
pub(crate) mod distance;
pub(crate) mod frozen;
mod halves;
pub(crate) mod live;
pub(crate) mod packed;
mod reach;
pub(crate) mod throttle;
mod visited;

pub use distance::kernel_name;
