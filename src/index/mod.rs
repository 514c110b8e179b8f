//! Vector indexes: hnsw_rs builds every graph ([`live`]), sealed segments serve a frozen copy
//! in a format we own ([`frozen`]), and both share the distance kernels.

pub(crate) mod distance;
pub(crate) mod frozen;
pub(crate) mod live;
mod visited;

pub use distance::kernel_name;
