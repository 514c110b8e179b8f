//! Dense `f32` vectors stored as little-endian bytes (MessagePack `bin`), not one float each.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Serializes a slice of floats as their little-endian bytes.
pub(crate) fn to_bytes(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Reads little-endian floats; `None` when the length is not a multiple of 4.
pub(crate) fn from_bytes(b: &[u8]) -> Option<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return None;
    }
    Some(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// `#[serde(with = "floats")]` for `Vec<f32>` fields.
pub(crate) mod floats {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        serde_bytes::Bytes::new(&to_bytes(v)).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        let b = serde_bytes::ByteBuf::deserialize(d)?;
        from_bytes(&b).ok_or_else(|| serde::de::Error::custom("vector bytes not a multiple of 4"))
    }
}

/// One vector, serialized as bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Vector(#[serde(with = "floats")] pub(crate) Vec<f32>);
