//! The provided-buffer ring a worker's multishot receives draw from.
//!
//! Owns: the ring of `io_uring_buf` entries shared with the kernel (page-aligned,
//! zeroed) and one block of `count` equal receive buffers; the local tail and its
//! publication to the kernel.
//!
//! Must not know: connections or what the bytes mean. The worker asks for the bytes of
//! a buffer the kernel handed it and gives the buffer back at once.
//!
//! Bundles (`IORING_RECVSEND_BUNDLE`): one completion names only the first buffer; the
//! kernel filled it and the ones after it in ring order, each whole but the last. So the
//! ring remembers which id it put at each position ([`BufRing::bundle`] reads them).
//!
//! Invariants: every buffer id is either on the ring (the kernel may write into it) or
//! handed out by exactly one completion and not yet recycled (only we read it); no id is
//! ever put on the ring twice. The memory outlives the registration: the owner drops
//! the ring (or unregisters the group) with no receive in flight before dropping this.
//! A bundle is read before any buffer the kernel took after it is recycled: the owner
//! handles completions in the order the kernel posted them (one thread, DEFER_TASKRUN),
//! so the positions of a bundle are not overwritten until it was handled.

use io_uring::types::BufRingEntry;
use io_uring::Submitter;
use std::alloc::{self, Layout};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

pub struct BufRing {
    /// `count` entries shared with the kernel; the tail lives in entry 0's `resv`.
    entries: NonNull<BufRingEntry>,
    entries_layout: Layout,
    /// `count * buf_bytes` bytes of receive buffers; buffer `bid` starts at
    /// `bid * buf_bytes`.
    data: NonNull<u8>,
    data_layout: Layout,
    count: u16,
    buf_bytes: usize,
    /// Our copy of the tail: how many entries we have ever published (wrapping).
    tail: u16,
    /// The id put at each ring position (position `& (count - 1)`).
    bid_at: Box<[u16]>,
    /// The position (wrapping, unmasked) each id was last put at.
    pos_of: Box<[u16]>,
}

impl BufRing {
    /// Allocates `count` (a power of two, at most 32768) buffers of `buf_bytes` each and
    /// puts them all on the ring. Not yet registered.
    pub fn new(count: u16, buf_bytes: usize) -> io::Result<BufRing> {
        if !count.is_power_of_two() || count > 1 << 15 || buf_bytes == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer ring: count must be a power of two ≤ 32768, buffers non-empty",
            ));
        }
        let page = page_size();
        let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "buffer ring too large");
        let layout = |bytes: Option<usize>| {
            bytes
                .and_then(|b| Layout::from_size_align(b, page).ok())
                .ok_or_else(too_big)
        };
        let entries_layout = layout(usize::from(count).checked_mul(size_of::<BufRingEntry>()))?;
        let data_layout = layout(usize::from(count).checked_mul(buf_bytes))?;
        let entries = zeroed(entries_layout)?.cast::<BufRingEntry>();
        let data = match zeroed(data_layout) {
            Ok(data) => data,
            Err(e) => {
                // SAFETY: `entries` came from `zeroed` (alloc_zeroed) with exactly this
                // layout, is not registered with any ring yet, and is freed only here.
                unsafe { alloc::dealloc(entries.as_ptr().cast(), entries_layout) };
                return Err(e);
            }
        };
        let mut ring = BufRing {
            entries,
            entries_layout,
            data,
            data_layout,
            count,
            buf_bytes,
            tail: 0,
            bid_at: vec![0; usize::from(count)].into_boxed_slice(),
            pos_of: vec![0; usize::from(count)].into_boxed_slice(),
        };
        for bid in 0..count {
            ring.put(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// Registers the ring as buffer group `bgid` of the ring `submitter` belongs to.
    ///
    /// # Safety
    ///
    /// `self` must not be dropped while the registration lasts: the caller unregisters
    /// the group, or drops the io_uring, with no op using the group in flight first.
    pub unsafe fn register(&self, submitter: &Submitter<'_>, bgid: u16) -> io::Result<()> {
        // SAFETY: `entries` is page-aligned (its layout's alignment is the page size)
        // and holds `count` entries, all filled by `put` in `new`; `count` is a power of
        // two ≤ 32768 as the kernel requires; by this function's contract the memory
        // (entries and the buffers they point at) outlives the registration.
        unsafe {
            submitter.register_buf_ring_with_flags(
                self.entries.as_ptr() as u64,
                self.count,
                bgid,
                0,
            )
        }
    }

    /// The first `len` bytes of buffer `bid`, which a completion just reported filled.
    ///
    /// # Safety
    ///
    /// A completion handed buffer `bid` to us with `len` bytes in it, and it has not been
    /// [recycled](BufRing::recycle) since (so the kernel cannot write into it).
    pub unsafe fn filled(&self, bid: u16, len: usize) -> &[u8] {
        assert!(
            bid < self.count && len <= self.buf_bytes,
            "bad buffer {bid}/{len}"
        );
        let start = usize::from(bid) * self.buf_bytes;
        // SAFETY: `start + len <= count * buf_bytes`, inside the data block (checked
        // above); the bytes are initialised (zeroed at allocation, then written by the
        // kernel). By the contract the kernel owns no more of buffer `bid`, and it can
        // only get it back through `recycle`, which needs `&mut self` and so cannot run
        // while the returned slice (borrowing `self`) lives.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().add(start), len) }
    }

    /// The ids of the buffers a completion filled with `len` bytes, `first` being the
    /// one it names: `first` alone unless `len` is more than one buffer holds (a
    /// bundle), then the ids after it in ring order.
    pub fn bundle(&self, first: u16, len: usize) -> impl Iterator<Item = u16> + '_ {
        assert!(first < self.count, "bad buffer id {first}");
        let n = len
            .div_ceil(self.buf_bytes)
            .clamp(1, usize::from(self.count));
        let start = self.pos_of[usize::from(first)];
        (0..n as u16).map(move |i| {
            let pos = start.wrapping_add(i) & (self.count - 1);
            self.bid_at[usize::from(pos)]
        })
    }

    /// The size of every buffer.
    pub fn buf_bytes(&self) -> usize {
        self.buf_bytes
    }

    /// Gives buffer `bid`, handed out by a completion, back to the kernel.
    pub fn recycle(&mut self, bid: u16) {
        assert!(bid < self.count, "bad buffer id {bid}");
        self.put(bid);
        self.publish();
    }

    /// Gives back every buffer a completion of `len` bytes handed out, `first` first
    /// (see [`BufRing::bundle`]), publishing them once.
    pub fn recycle_bundle(&mut self, first: u16, len: usize) {
        let n = self.bundle(first, len).count() as u16;
        let start = self.pos_of[usize::from(first)];
        for i in 0..n {
            // Read before `put` writes: the bundle's positions are behind the tail by
            // at least its length and at most `count`, so `put` overwrites a position
            // of it only once that position was read.
            let bid = self.bid_at[usize::from(start.wrapping_add(i) & (self.count - 1))];
            self.put(bid);
        }
        self.publish();
    }

    /// Writes the entry for `bid` at the local tail (not yet visible to the kernel).
    fn put(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (self.count - 1));
        // SAFETY: `slot < count` (masked by `count - 1`, a power of two), so the entry
        // is inside the allocation. The kernel only reads entries between its head and
        // the published tail; this slot is at our unpublished tail, and since at most
        // `count` ids are ever on the ring (each once), the kernel has already consumed
        // the entry it held before. `&mut self` makes this the only reference.
        let entry = unsafe { &mut *self.entries.as_ptr().add(slot) };
        let addr = self
            .data
            .as_ptr()
            .wrapping_add(usize::from(bid) * self.buf_bytes);
        entry.set_addr(addr as u64);
        entry.set_len(self.buf_bytes as u32);
        entry.set_bid(bid);
        self.bid_at[slot] = bid;
        self.pos_of[usize::from(bid)] = self.tail;
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every entry written so far visible to the kernel.
    fn publish(&self) {
        // SAFETY: `entries` points at the first entry of the ring (allocated in `new`),
        // which is what `tail` requires; it only computes the address of the tail field.
        let tail = unsafe { BufRingEntry::tail(self.entries.as_ptr()) } as *mut u16;
        // SAFETY: the tail is a 2-byte-aligned u16 inside our allocation, live as long as
        // `self`; the kernel only reads it (with acquire loads) and we only access it
        // through this atomic, so there are no non-atomic concurrent accesses.
        let tail = unsafe { AtomicU16::from_ptr(tail) };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: both blocks came from `zeroed` (alloc_zeroed) with these layouts and
        // are freed only here. By the contract of `register` the kernel no longer uses
        // them: owners drop a registered ring only after unregistering its group or
        // closing its io_uring with no op in flight, and leak it otherwise.
        unsafe {
            alloc::dealloc(self.entries.as_ptr().cast(), self.entries_layout);
        }
        // SAFETY: as for `entries` just above.
        unsafe {
            alloc::dealloc(self.data.as_ptr(), self.data_layout);
        }
    }
}

fn zeroed(layout: Layout) -> io::Result<NonNull<u8>> {
    // SAFETY: both layouts built in `new` have a non-zero size (`count` ≥ 1 and
    // `buf_bytes` ≥ 1 are checked there), as alloc_zeroed requires.
    let p = unsafe { alloc::alloc_zeroed(layout) };
    NonNull::new(p).ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))
}

fn page_size() -> usize {
    // SAFETY: sysconf takes an integer name and has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}
