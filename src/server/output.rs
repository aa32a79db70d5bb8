//! A connection's pending output: answers waiting to be sent, in order.
//!
//! Small answers are appended to a growing tail buffer. A big value of the store's
//! paged classes is copied once, out of the store (whose lock cannot be held until the
//! send completes), into a segment of its own allocated at exactly its size
//! ([`Output::push_copy`]), so the tail never grows to hold it; a segment that is
//! already shared (`bytes::Bytes`) is queued as it is ([`Output::push_shared`]), and
//! a value of the store's large class is queued as the store shares it, counted at
//! the whole allocation it pins ([`Output::push_pinned`]): if the item is removed or
//! overwritten before the send completes, only this output still holds it. An engine sends from
//! the front either by borrowing the segments ([`Output::chunks`] + [`Output::advance`],
//! the reactor's `writev`) or by taking them ([`Output::take`], the proactor, whose send
//! op owns them until the kernel is done).
//!
//! Invariants:
//! - `len()` is the exact number of bytes not yet handed to an engine;
//! - `held()` adds the bytes an engine took and has not reported sent
//!   ([`Output::send_done`]): what the connection still pins, which its high-water
//!   mark bounds. A segment counts what it was allocated with (a pinned value: the
//!   allocation it keeps alive), from its queueing until the engine is done with it.

use bytes::{BufMut, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::IoSlice;

/// Initial capacity of the tail buffer.
const TAIL_BYTES: usize = 16 * 1024;

/// A fully sent tail larger than this is freed rather than reused, so a connection
/// that once sent a big answer does not keep megabytes while idle.
const TAIL_KEEP_BYTES: usize = 4 * TAIL_BYTES;

#[derive(Debug, Default)]
pub struct Output {
    /// Frozen segments, sent before `tail`, each with the bytes it pins (see
    /// `queued_alloc`).
    queue: VecDeque<(Bytes, usize)>,
    /// Where new small answers go.
    tail: BytesMut,
    /// Bytes in `queue`.
    queued_len: usize,
    /// Bytes the segments in `queue` were allocated with: a partly sent segment still
    /// pins its whole allocation, a pinned value its record's.
    queued_alloc: usize,
    /// Bytes taken by the engine's send in flight ([`Output::take`]) until
    /// [`Output::send_done`].
    in_flight: usize,
}

impl Output {
    pub fn new() -> Output {
        Output::default()
    }

    /// Bytes waiting to be sent.
    pub fn len(&self) -> usize {
        self.queued_len + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes this output still pins: pending (a partly sent segment counts whole),
    /// plus what a send not yet completed took.
    #[inline]
    pub fn held(&self) -> usize {
        self.queued_alloc + self.tail.len() + self.in_flight
    }

    /// Memory this output holds: the queued segments' allocations, the tail buffer's,
    /// and what a send in flight took.
    pub fn footprint(&self) -> usize {
        self.queued_alloc + self.tail.capacity() + self.in_flight
    }

    /// The engine finished the send of everything it last took ([`Output::take`]): those
    /// bytes are no longer held.
    pub fn send_done(&mut self) {
        self.in_flight = 0;
    }

    /// The buffer small answers are written into.
    #[inline]
    pub fn buf(&mut self) -> &mut BytesMut {
        if self.tail.capacity() == 0 {
            self.tail.reserve(TAIL_BYTES);
        }
        &mut self.tail
    }

    /// Appends bytes by copying them.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf().put_slice(bytes);
    }

    /// Queues a shared segment without copying it.
    pub fn push_shared(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        self.freeze_tail();
        self.enqueue(bytes);
    }

    /// Queues a value the store shares ([`crate::storage::SharedValue`]) without
    /// copying it, counted as the `pinned_bytes` it keeps allocated (at least its
    /// length).
    pub fn push_pinned(&mut self, bytes: Bytes, pinned_bytes: usize) {
        if bytes.is_empty() {
            return;
        }
        self.freeze_tail();
        let pinned = pinned_bytes.max(bytes.len());
        self.queued_len += bytes.len();
        self.queued_alloc += pinned;
        self.queue.push_back((bytes, pinned));
    }

    fn enqueue(&mut self, bytes: Bytes) {
        let len = bytes.len();
        self.queued_len += len;
        self.queued_alloc += len;
        self.queue.push_back((bytes, len));
    }

    /// Queues a copy of `bytes` as its own segment, allocated at exactly its size (a big
    /// value: copying it into the tail would grow the tail by doubling, to up to twice
    /// what is pending).
    pub fn push_copy(&mut self, bytes: &[u8]) {
        self.push_shared(Bytes::copy_from_slice(bytes));
    }

    fn freeze_tail(&mut self) {
        if !self.tail.is_empty() {
            let frozen = self.tail.split().freeze();
            self.enqueue(frozen);
        }
    }

    /// All pending bytes when they lie in one buffer (no shared segment queued), which
    /// is the common case: the engine then sends them with one plain write.
    pub fn contiguous(&self) -> Option<&[u8]> {
        (self.queue.is_empty() && !self.tail.is_empty()).then_some(&self.tail[..])
    }

    /// Fills `dst` with the pending segments from the front; returns how many it filled.
    pub fn chunks<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for seg in self
            .queue
            .iter()
            .map(|(b, _)| &b[..])
            .chain(Some(&self.tail[..]))
        {
            if n == dst.len() {
                break;
            }
            if !seg.is_empty() {
                dst[n] = IoSlice::new(seg);
                n += 1;
            }
        }
        n
    }

    /// Drops `n` bytes from the front: they have been sent.
    pub fn advance(&mut self, mut n: usize) {
        if self.queue.is_empty() && n == self.tail.len() {
            // Everything was sent: reuse the buffer from its start (no split, so the
            // buffer stays unshared and never needs a new allocation), unless a big
            // answer grew it.
            if self.tail.capacity() > TAIL_KEEP_BYTES {
                self.tail = BytesMut::new();
            } else {
                self.tail.clear();
            }
            return;
        }
        while n > 0 {
            let Some((front, pinned)) = self.queue.front_mut() else {
                break;
            };
            if n < front.len() {
                let _ = front.split_to(n);
                self.queued_len -= n;
                return;
            }
            n -= front.len();
            self.queued_len -= front.len();
            self.queued_alloc -= *pinned;
            self.queue.pop_front();
        }
        assert!(n <= self.tail.len(), "advanced past the end of the output");
        let _ = self.tail.split_to(n);
    }

    /// Moves every pending byte into `into` as frozen segments, leaving this empty.
    /// They count as [`Output::held`] until the engine calls [`Output::send_done`].
    pub fn take(&mut self, into: &mut Vec<Bytes>) {
        self.freeze_tail();
        into.extend(self.queue.drain(..).map(|(b, _)| b));
        self.in_flight += self.queued_alloc;
        self.queued_len = 0;
        self.queued_alloc = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(out: &Output) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); 8];
        let n = out.chunks(&mut slices);
        slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn keeps_order_across_copied_and_shared_segments() {
        let mut out = Output::new();
        out.extend(b"VALUE k 0 3\r\n");
        out.push_shared(Bytes::from_static(b"abc"));
        out.extend(b"\r\nEND\r\n");
        assert_eq!(out.len(), 23);
        assert_eq!(collect(&out), b"VALUE k 0 3\r\nabc\r\nEND\r\n");
        out.advance(14);
        assert_eq!(collect(&out), b"bc\r\nEND\r\n");
        assert_eq!(out.held(), 10, "the partly sent \"abc\" pins all of it");
        let mut taken = Vec::new();
        out.take(&mut taken);
        assert!(out.is_empty());
        assert!(
            out.held() >= 9,
            "taken bytes are held until the send is done"
        );
        out.send_done();
        assert_eq!(out.held(), 0);
        let all: Vec<u8> = taken.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(all, b"bc\r\nEND\r\n");
    }

    #[test]
    fn a_pinned_value_counts_what_it_pins_until_sent() {
        let mut out = Output::new();
        out.extend(b"VALUE k 0 5\r\n");
        out.push_pinned(Bytes::from_static(b"hello"), 4096);
        out.extend(b"\r\nEND\r\n");
        assert_eq!(out.len(), 13 + 5 + 7);
        assert_eq!(out.held(), 13 + 4096 + 7);
        assert_eq!(collect(&out), b"VALUE k 0 5\r\nhello\r\nEND\r\n");
        out.advance(15);
        assert_eq!(out.held(), 4096 + 7, "a partly sent value pins all of it");
        out.advance(3);
        assert_eq!(out.held(), 7);
        out.push_pinned(Bytes::from_static(b"again"), 8192);
        let mut taken = Vec::new();
        out.take(&mut taken);
        assert_eq!(out.held(), 7 + 8192, "held until the send is done");
        out.send_done();
        assert_eq!(out.held(), 0);
        // Never less than its length.
        out.push_pinned(Bytes::from_static(b"abc"), 1);
        assert_eq!(out.held(), 3);
    }

    #[test]
    fn a_fully_sent_tail_is_reused_in_place() {
        let mut out = Output::new();
        out.extend(b"END\r\n");
        assert_eq!(out.contiguous(), Some(&b"END\r\n"[..]));
        let (ptr, cap) = (out.tail.as_ptr(), out.tail.capacity());
        out.advance(5);
        assert!(out.is_empty() && out.contiguous().is_none());
        out.extend(b"STORED\r\n");
        // Same buffer from its start: no split, no new allocation.
        assert_eq!((out.tail.as_ptr(), out.tail.capacity()), (ptr, cap));
        out.push_shared(Bytes::from_static(b"v"));
        assert!(
            out.contiguous().is_none(),
            "a queued segment makes it non-contiguous"
        );
    }

    #[test]
    fn a_fully_sent_big_tail_is_freed() {
        let mut out = Output::new();
        out.extend(&vec![b'x'; 4 * TAIL_KEEP_BYTES]);
        out.advance(4 * TAIL_KEEP_BYTES);
        assert!(out.is_empty());
        assert_eq!(
            out.tail.capacity(),
            0,
            "an idle connection keeps no big buffer"
        );
    }

    #[test]
    fn advance_within_tail() {
        let mut out = Output::new();
        out.extend(b"STORED\r\n");
        out.advance(3);
        assert_eq!(collect(&out), b"RED\r\n");
        out.advance(5);
        assert!(out.is_empty());
    }
}
