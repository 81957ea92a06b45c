//! Declared values, copied into shared blocks: a large run holds 100,000 small values,
//! and one allocation each costs its allocator overhead plus, when the plan clones the
//! value, a second allocation (`Bytes` made from a `Vec` moves to a shared header on its
//! first clone). A slice of a shared block clones by a reference count alone.

use bytes::{Bytes, BytesMut};

/// Size of one block. Each loader run has its own blocks, and the last one is on
/// average half empty: small, next to a run's ~64 KiB of YAML.
const BLOCK: usize = 4096;

/// Values larger than this get an allocation of their own: the space they could leave
/// unused at the end of a block would matter more than the overhead they save.
const LARGEST_SHARED: usize = BLOCK / 8;

#[derive(Debug, Default)]
pub(super) struct ValueBlocks {
    block: BytesMut,
}

impl ValueBlocks {
    /// A copy of `value` that shares its allocation with the values kept before it.
    pub(super) fn keep(&mut self, value: &[u8]) -> Bytes {
        if value.len() > LARGEST_SHARED {
            return Bytes::copy_from_slice(value);
        }
        // Never grow a block: the values already handed out share it.
        if self.block.capacity() - self.block.len() < value.len() {
            self.block = BytesMut::with_capacity(BLOCK);
        }
        self.block.extend_from_slice(value);
        self.block.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_values_are_equal_to_their_source_and_share_blocks() {
        let mut blocks = ValueBlocks::default();
        let values: Vec<Vec<u8>> = (0..100)
            .map(|n| format!("value-{n}-{}", "x".repeat(n)).into_bytes())
            .collect();
        let kept: Vec<Bytes> = values.iter().map(|value| blocks.keep(value)).collect();
        for (value, kept) in values.iter().zip(&kept) {
            assert_eq!(kept.as_ref(), value.as_slice());
        }
        // Neighbours in one block are adjacent in memory.
        assert_eq!(
            kept[0].as_ptr().wrapping_add(kept[0].len()),
            kept[1].as_ptr()
        );
        let large = vec![7u8; LARGEST_SHARED + 1];
        assert_eq!(blocks.keep(&large).as_ref(), large.as_slice());
        assert_eq!(blocks.keep(b"").as_ref(), b"");
    }
}
