//! Vector indexes and the distance kernels they share.

pub(crate) mod distance;
