//! The shard's hash table: item ids (`u32`, the arena's) in 64-byte buckets of 12, each
//! bucket holding the tag bytes of its ids beside them, so a lookup reads one cache line
//! of table (two when its key overflowed its home bucket) before the record it names.
//!
//! Owns where ids sit and their tags. Knows nothing of records, keys or the arena: the
//! shard gives each key's hash (`Shard::slot_hash`), compares the keys of the ids
//! [`Table::candidates`] gives, and a growth rehashes ids through a closure that reads
//! their records (the table keeps only 8 bits of each hash).
//!
//! Layout: a bucket is 12 tag bytes, a 4-byte overflow count and 12 ids (64 bytes,
//! 64-aligned). A hash's home bucket is its bits 24..56 scaled to the bucket count by a
//! multiply-shift (so the count need not be a power of two); its tag is its top byte,
//! 0 and 1 made 2 (tag 0 marks an empty slot). An id whose home bucket is full goes to
//! the next bucket with room (wrapping round), and every bucket it passes on the way
//! counts it in its overflow count (the scheme of folly's F14).
//!
//! Invariants:
//! - a slot is empty (tag 0, id [`NIL`]) or holds an id with its hash's tag; no id is in
//!   the table twice (the shard inserts each id once, see [`Table::insert_unique`]);
//! - an id sits in its home bucket or in a later one (cyclically), and each bucket from
//!   its home up to (not including) the one it sits in counts it in its overflow count.
//!   So a lookup that has not found its key by the end of a bucket whose count is 0 can
//!   stop, and a removal, which takes the id off the counts of its path, leaves no
//!   tombstone: the slot is free at once and each count counts exactly the ids held
//!   that passed its bucket, so churn at a constant count never fills the table;
//! - `len` is at most 7/8 of the slots ([`Table::capacity`]) once an insert returns. A
//!   growth multiplies the bucket count by 5/4 (at least one more bucket) and rehashes
//!   every id, so from one growth to the next the table is 7/10 to 7/8 full: 6.1 to 7.6
//!   bytes per id once it has more than a few buckets, never the doubling's 2x.

use super::NIL;

/// Ids (and tags) per bucket.
const SLOTS: usize = 12;

/// The tag of an empty slot.
const EMPTY: u8 = 0;

/// Bytes of one bucket: one cache line.
pub(crate) const BUCKET_BYTES: usize = 64;

/// Twelve tags and the count of ids that overflowed past this bucket (little-endian, in
/// `tags[12..]`: read with the last four tags, and masked off their matches), twelve
/// ids.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    tags: [u8; 16],
    ids: [u32; SLOTS],
}

const _: () = assert!(std::mem::size_of::<Bucket>() == BUCKET_BYTES);

impl Bucket {
    const EMPTY: Bucket = Bucket {
        tags: [EMPTY; 16],
        ids: [NIL; SLOTS],
    };

    /// The ids that overflowed past this bucket.
    #[inline(always)]
    fn overflow(&self) -> u32 {
        let t = &self.tags;
        u32::from_le_bytes([t[12], t[13], t[14], t[15]])
    }

    fn set_overflow(&mut self, overflow: u32) {
        self.tags[SLOTS..].copy_from_slice(&overflow.to_le_bytes());
    }

    /// Slots 0 to 7 whose tag is `tag` (see [`byte_matches`]): bit `8i + 7` for slot
    /// `i`. A lookup reads the low half first and often needs no more: slots fill
    /// lowest first.
    #[inline(always)]
    fn matches_low(&self, tag: u8) -> u64 {
        let t = &self.tags;
        let low = u64::from_le_bytes([t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]]);
        byte_matches(low, tag)
    }

    /// Slots 8 to 11 whose tag is `tag`: bit `8(i - 8) + 7` for slot `i` (the overflow
    /// count's bytes masked out).
    #[inline(always)]
    fn matches_high(&self, tag: u8) -> u64 {
        let t = &self.tags;
        let high = u64::from_le_bytes([t[8], t[9], t[10], t[11], t[12], t[13], t[14], t[15]]);
        byte_matches(high, tag) & 0x8080_8080
    }

    /// The first empty slot, if any.
    #[inline]
    fn free_slot(&self) -> Option<usize> {
        let low = self.matches_low(EMPTY);
        if low != 0 {
            return Some((low.trailing_zeros() >> 3) as usize);
        }
        let high = self.matches_high(EMPTY);
        (high != 0).then(|| 8 + (high.trailing_zeros() >> 3) as usize)
    }
}

/// What [`Table::candidates`] reads on a table with no bucket: no tag, no overflow.
static NO_BUCKET: Bucket = Bucket::EMPTY;

/// Bit `8i + 7` set: byte `i` (little-endian) of `word` is `tag`, or (a false match)
/// is `tag ^ 1` and a lower byte is `tag`. The classic zero-byte test on `word ^
/// tag…`: a byte is 0 there, or is 1 and a borrow from a 0 below reaches it. As tags are
/// never 0 or 1, a false match is never an empty slot (tag 0) when looking for a tag,
/// and never happens when looking for an empty slot: it only ever names an occupied slot
/// of another tag, whose key or id the caller compares anyway.
#[inline(always)]
fn byte_matches(word: u64, tag: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let x = word ^ (u64::from(tag) * ONES);
    x.wrapping_sub(ONES) & !x & (ONES << 7)
}

/// The tag of a hash: its top byte, 0 and 1 made 2 (see [`byte_matches`]).
#[inline(always)]
fn tag_of(hash: u64) -> u8 {
    ((hash >> 56) as u8).max(2)
}

/// The most ids `buckets` buckets hold: 7/8 of their slots.
fn capacity_of(buckets: usize) -> usize {
    buckets * SLOTS * 7 / 8
}

pub(crate) struct Table {
    buckets: Vec<Bucket>,
    len: usize,
}

impl Table {
    /// An empty table; allocates nothing until the first insert.
    pub(crate) fn new() -> Table {
        Table {
            buckets: Vec::new(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The most ids the table holds before it grows.
    pub(crate) fn capacity(&self) -> usize {
        capacity_of(self.buckets.len())
    }

    /// Slots of all buckets (12 per bucket).
    pub(crate) fn slots(&self) -> usize {
        self.buckets.len() * SLOTS
    }

    /// Bytes the table allocated.
    pub(crate) fn allocation_bytes(&self) -> usize {
        self.buckets.capacity() * BUCKET_BYTES
    }

    /// The home bucket of `hash`: bits 24..56 scaled to the bucket count (0 when there
    /// is no bucket).
    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        ((u64::from((hash >> 24) as u32) * self.buckets.len() as u64) >> 32) as usize
    }

    #[inline(always)]
    fn next(&self, bucket: usize) -> usize {
        if bucket + 1 == self.buckets.len() {
            0
        } else {
            bucket + 1
        }
    }

    /// The ids under `hash`'s tag, in probe order: the candidates whose keys a lookup
    /// compares.
    #[inline(always)]
    pub(crate) fn candidates(&self, hash: u64) -> Candidates<'_> {
        let (tag, at) = (tag_of(hash), self.home(hash));
        let bucket = self.buckets.get(at).unwrap_or(&NO_BUCKET);
        Candidates {
            table: self,
            tag,
            at,
            matches: bucket.matches_low(tag),
            high: false,
            bucket,
            left: self.buckets.len(),
        }
    }

    /// The first id under `hash`'s tag for which `eq` holds, trying them in probe order.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        self.candidates(hash).find(|&id| eq(id))
    }

    /// The first id under `hash`'s tag in its home bucket, if any: the first of
    /// [`Table::candidates`] unless the key overflowed its home bucket (for a hint).
    #[inline(always)]
    pub(crate) fn first_at_home(&self, hash: u64) -> Option<u32> {
        let bucket = self.buckets.get(self.home(hash))?;
        let tag = tag_of(hash);
        let low = bucket.matches_low(tag);
        if low != 0 {
            return Some(bucket.ids[(low.trailing_zeros() >> 3) as usize & 7]);
        }
        let high = bucket.matches_high(tag);
        (high != 0).then(|| bucket.ids[8 + ((high.trailing_zeros() >> 3) as usize & 3)])
    }

    /// An id in the bucket a lookup of `hash` reads first (`None`: no bucket), to name
    /// that cache line to a prefetch without reading it.
    #[inline(always)]
    pub(crate) fn home_line(&self, hash: u64) -> Option<&u32> {
        self.buckets
            .get(self.home(hash))
            .map(|bucket| &bucket.ids[0])
    }

    /// Adds `id` (not in the table, not [`NIL`]) under `hash`, growing the table first if
    /// it is full; `rehash` gives the hash of an id already in it.
    #[inline]
    pub(crate) fn insert_unique(&mut self, hash: u64, id: u32, rehash: impl Fn(u32) -> u64) {
        debug_assert_ne!(id, NIL);
        if self.len >= self.capacity() {
            self.grow(self.len + 1, rehash);
        }
        self.place(hash, id);
        self.len += 1;
    }

    /// Makes room for `additional` more ids without growing again.
    pub(crate) fn reserve(&mut self, additional: usize, rehash: impl Fn(u32) -> u64) {
        let wanted = self.len.saturating_add(additional);
        if wanted > self.capacity() {
            self.grow(wanted, rehash);
        }
    }

    /// Puts `id` in the first slot free from `hash`'s home bucket on, counting it in
    /// the overflow count of every full bucket it passes. There is a free slot: `len`
    /// is below the slots.
    #[inline]
    fn place(&mut self, hash: u64, id: u32) {
        let tag = tag_of(hash);
        let mut b = self.home(hash);
        for _ in 0..self.buckets.len() {
            let bucket = &mut self.buckets[b];
            if let Some(slot) = bucket.free_slot() {
                bucket.tags[slot] = tag;
                bucket.ids[slot] = id;
                return;
            }
            bucket.set_overflow(bucket.overflow() + 1);
            b = self.next(b);
        }
        unreachable!("the table is at most 7/8 full");
    }

    /// Grows to the first bucket count of the 5/4 steps that holds `wanted` ids, and
    /// puts every id back in (with the hash `rehash` gives).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, wanted: usize, rehash: impl Fn(u32) -> u64) {
        let mut count = self.buckets.len();
        while capacity_of(count) < wanted {
            count = (count + count / 4).max(count + 1);
        }
        let old = std::mem::replace(&mut self.buckets, vec![Bucket::EMPTY; count]);
        for bucket in &old {
            for (slot, &tag) in bucket.tags[..SLOTS].iter().enumerate() {
                if tag != EMPTY {
                    let id = bucket.ids[slot];
                    self.place(rehash(id), id);
                }
            }
        }
    }

    /// Where `id` sits under `hash`: (bucket, slot).
    #[inline]
    fn position(&self, hash: u64, id: u32) -> Option<(usize, usize)> {
        let mut candidates = self.candidates(hash);
        while let Some(slot) = candidates.next_slot() {
            if candidates.bucket.ids[slot] == id {
                return Some((candidates.at, slot));
            }
        }
        None
    }

    /// Takes `id` (under `hash`) out; false if it was not in the table.
    pub(crate) fn remove(&mut self, hash: u64, id: u32) -> bool {
        let Some((at, slot)) = self.position(hash, id) else {
            return false;
        };
        self.buckets[at].tags[slot] = EMPTY;
        self.buckets[at].ids[slot] = NIL;
        let mut b = self.home(hash);
        while b != at {
            let bucket = &mut self.buckets[b];
            bucket.set_overflow(bucket.overflow() - 1);
            b = self.next(b);
        }
        self.len -= 1;
        true
    }

    /// Puts `to` in the slot of `from` (under `hash`); false if `from` was not in the
    /// table.
    pub(crate) fn repoint(&mut self, hash: u64, from: u32, to: u32) -> bool {
        match self.position(hash, from) {
            Some((at, slot)) => {
                self.buckets[at].ids[slot] = to;
                true
            }
            None => false,
        }
    }

    /// Asserts the invariants in the module header (tests), `rehash` giving each id's
    /// hash.
    #[cfg(test)]
    pub(crate) fn check(&self, rehash: impl Fn(u32) -> u64) {
        let mut overflow = vec![0u32; self.buckets.len()];
        let mut seen = std::collections::HashSet::new();
        for (at, bucket) in self.buckets.iter().enumerate() {
            for slot in 0..SLOTS {
                let (tag, id) = (bucket.tags[slot], bucket.ids[slot]);
                if tag == EMPTY {
                    assert_eq!(id, NIL);
                    continue;
                }
                assert!(seen.insert(id), "{id} twice");
                let hash = rehash(id);
                assert_eq!(tag, tag_of(hash));
                let mut b = self.home(hash);
                while b != at {
                    overflow[b] += 1;
                    b = self.next(b);
                }
            }
        }
        assert_eq!(seen.len(), self.len);
        assert!(self.len <= self.capacity());
        let counted: Vec<u32> = self.buckets.iter().map(Bucket::overflow).collect();
        assert_eq!(counted, overflow);
    }
}

/// The ids under one tag in probe order (see [`Table::candidates`]).
pub(crate) struct Candidates<'a> {
    table: &'a Table,
    tag: u8,
    /// The bucket being read ([`NO_BUCKET`] when the table has none) and its index.
    bucket: &'a Bucket,
    at: usize,
    /// Its slots still to give whose tag matches, in the half `high` says (see
    /// [`Bucket::matches_low`]).
    matches: u64,
    high: bool,
    /// Buckets not yet left.
    left: usize,
}

impl Candidates<'_> {
    /// The next candidate's slot in `self.bucket`.
    #[inline(always)]
    fn next_slot(&mut self) -> Option<usize> {
        loop {
            if self.matches != 0 {
                let slot = (self.matches.trailing_zeros() >> 3) as usize;
                self.matches &= self.matches - 1;
                return Some(slot | usize::from(self.high) << 3);
            }
            if !self.high {
                self.high = true;
                self.matches = self.bucket.matches_high(self.tag);
                continue;
            }
            if self.bucket.overflow() == 0 || self.left <= 1 {
                return None;
            }
            self.left -= 1;
            self.at = self.table.next(self.at);
            self.bucket = &self.table.buckets[self.at];
            self.matches = self.bucket.matches_low(self.tag);
            self.high = false;
        }
    }
}

impl Iterator for Candidates<'_> {
    type Item = u32;

    #[inline(always)]
    fn next(&mut self) -> Option<u32> {
        let slot = self.next_slot()?;
        Some(self.bucket.ids[slot])
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// A hash from a few tags and a few home positions, so that tags collide and
    /// buckets fill and overflow; or any hash.
    fn hash() -> impl Strategy<Value = u64> {
        prop_oneof![
            (0u64..3, 0u64..4).prop_map(|(tag, home)| (tag << 56) | (home << 54)),
            any::<u64>(),
        ]
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64),
        Remove(usize),
        Repoint(usize),
        /// Removes an id and inserts a new one under another hash (churn).
        Replace(usize, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => hash().prop_map(Op::Insert),
            2 => any::<usize>().prop_map(Op::Remove),
            1 => any::<usize>().prop_map(Op::Repoint),
            2 => (any::<usize>(), hash()).prop_map(|(i, h)| Op::Replace(i, h)),
        ]
    }

    /// The `pick`th id of the model, in id order.
    fn pick(model: &HashMap<u32, u64>, pick: usize) -> Option<u32> {
        let mut ids: Vec<u32> = model.keys().copied().collect();
        ids.sort_unstable();
        (!ids.is_empty()).then(|| ids[pick % ids.len()])
    }

    fn check(table: &Table, model: &HashMap<u32, u64>, gone: &[(u32, u64)]) {
        table.check(|id| model[&id]);
        assert_eq!(table.len(), model.len());
        for (&id, &hash) in model {
            assert_eq!(table.find(hash, |i| i == id), Some(id));
            // The first candidate carries the hash's tag.
            let first = table.find(hash, |_| true).expect("a candidate");
            assert_eq!(tag_of(model[&first]), tag_of(hash));
            assert!(table.home_line(hash).is_some());
        }
        for &(id, hash) in gone {
            if !model.contains_key(&id) {
                assert_eq!(table.find(hash, |i| i == id), None);
            }
        }
    }

    proptest! {
        #[test]
        fn the_table_holds_what_a_map_holds(ops in proptest::collection::vec(op(), 1..400)) {
            let (mut table, mut model) = (Table::new(), HashMap::new());
            let (mut next, mut gone) = (0u32, Vec::new());
            for op in ops {
                match op {
                    Op::Insert(hash) => {
                        model.insert(next, hash);
                        table.insert_unique(hash, next, |i| model[&i]);
                        next += 1;
                    }
                    Op::Remove(i) => {
                        if let Some(id) = pick(&model, i) {
                            let hash = model.remove(&id).unwrap();
                            prop_assert!(table.remove(hash, id));
                            prop_assert!(!table.remove(hash, id));
                            gone.push((id, hash));
                        }
                    }
                    Op::Repoint(i) => {
                        if let Some(id) = pick(&model, i) {
                            let hash = model.remove(&id).unwrap();
                            model.insert(next, hash);
                            prop_assert!(table.repoint(hash, id, next));
                            prop_assert!(!table.repoint(hash, id, next));
                            gone.push((id, hash));
                            next += 1;
                        }
                    }
                    Op::Replace(i, new_hash) => {
                        if let Some(id) = pick(&model, i) {
                            let hash = model.remove(&id).unwrap();
                            prop_assert!(table.remove(hash, id));
                            gone.push((id, hash));
                            model.insert(next, new_hash);
                            table.insert_unique(new_hash, next, |i| model[&i]);
                            next += 1;
                        }
                    }
                }
                check(&table, &model, &gone);
            }
        }
    }

    /// A hash spread like foldhash's (splitmix64 of `i`).
    fn spread(i: u64) -> u64 {
        let mut z = i
            .wrapping_add(0x9e37_79b9_7f4a_7c15)
            .wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 30)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn growth_keeps_every_id_and_steps_by_a_quarter() {
        let mut table = Table::new();
        assert_eq!((table.allocation_bytes(), table.slots()), (0, 0));
        assert_eq!(table.find(1, |_| true), None);
        assert_eq!(table.home_line(1), None);
        let mut model = HashMap::new();
        let mut buckets = 0;
        for id in 0..60_000u32 {
            model.insert(id, spread(u64::from(id)));
            table.insert_unique(model[&id], id, |i| model[&i]);
            let now = table.slots() / SLOTS;
            if now != buckets {
                // Grown: by a quarter (one bucket while small), every id still found.
                assert_eq!(now, (buckets + buckets / 4).max(buckets + 1), "at {id}");
                buckets = now;
                table.check(|i| model[&i]);
                for (&id, &hash) in &model {
                    assert_eq!(table.find(hash, |i| i == id), Some(id));
                }
                // 7/10 full or more right after growth, past the first steps.
                if buckets >= 40 {
                    assert!(table.len() * 10 >= table.slots() * 7 - 10 * SLOTS);
                }
            }
            assert!(table.len() <= table.capacity());
            assert_eq!(table.allocation_bytes(), buckets * BUCKET_BYTES);
        }
    }

    #[test]
    fn churn_at_a_constant_count_never_grows_the_table() {
        const HELD: u64 = 20_000;
        let (mut table, mut model) = (Table::new(), HashMap::new());
        for i in 0..HELD {
            model.insert(i as u32, spread(i));
            table.insert_unique(spread(i), i as u32, |id| model[&id]);
        }
        let bytes = table.allocation_bytes();
        // Each round removes the oldest id and inserts a new one: 25 times the ids held.
        for i in HELD..HELD * 26 {
            let old = (i - HELD) as u32;
            assert!(table.remove(spread(u64::from(old)), old));
            model.remove(&old);
            model.insert(i as u32, spread(i));
            table.insert_unique(spread(i), i as u32, |id| model[&id]);
            assert_eq!(table.allocation_bytes(), bytes, "at {i}");
        }
        table.check(|id| model[&id]);
        for (&id, &hash) in &model {
            assert_eq!(table.find(hash, |i| i == id), Some(id));
        }
    }

    #[test]
    fn a_full_bucket_overflows_into_the_next_and_back() {
        // 30 ids under one home bucket and one tag: past 12 they overflow.
        let (mut table, mut model) = (Table::new(), HashMap::new());
        table.reserve(60, |_| unreachable!("empty"));
        let buckets = table.slots() / SLOTS;
        for id in 0..30u32 {
            model.insert(id, 7 << 56);
            table.insert_unique(7 << 56, id, |i| model[&i]);
        }
        assert_eq!(table.slots() / SLOTS, buckets, "reserved");
        table.check(|i| model[&i]);
        for id in 0..30 {
            assert_eq!(table.find(7 << 56, |i| i == id), Some(id));
        }
        assert_eq!(table.find(7 << 56, |_| false), None);
        // Removing them empties the counts again.
        for id in 0..30u32 {
            assert!(table.remove(7 << 56, id));
            model.remove(&id);
            table.check(|i| model[&i]);
        }
        assert!(table.buckets.iter().all(|b| b.overflow() == 0));
    }

    /// The slots whose tag matches `tag` in `bucket`, in order.
    fn slots(bucket: &Bucket, tag: u8) -> Vec<usize> {
        let mut slots = Vec::new();
        for (high, mut mask) in [(0, bucket.matches_low(tag)), (8, bucket.matches_high(tag))] {
            while mask != 0 {
                slots.push(high + (mask.trailing_zeros() >> 3) as usize);
                mask &= mask - 1;
            }
        }
        slots
    }

    #[test]
    fn tags_are_exact_bytes() {
        let mut bucket = Bucket::EMPTY;
        let tags = [2, 0x81, 0, 3, 0xff, 0x80, 2, 0x7f, 3, 0, 0x02, 0xfe];
        bucket.tags[..SLOTS].copy_from_slice(&tags);
        // The overflow count's bytes are no tags.
        bucket.set_overflow(0x0100_0001);
        assert_eq!(bucket.overflow(), 0x0100_0001);
        for tag in (2..=255u8).chain([EMPTY]) {
            // Every slot of the tag, and at most slots of tag ^ 1 beside (never empty).
            let got = slots(&bucket, tag);
            for (i, &t) in tags.iter().enumerate() {
                if t == tag {
                    assert!(got.contains(&i), "{tag}: {i} missing");
                } else if got.contains(&i) {
                    assert!(t == tag ^ 1 && t != EMPTY, "{tag}: {i}");
                }
            }
        }
        // Empty slots are found exactly, whatever the tags around them.
        assert_eq!(slots(&bucket, EMPTY), [2, 9]);
        assert_eq!(bucket.free_slot(), Some(2));
        bucket.tags[2] = 5;
        assert_eq!(bucket.free_slot(), Some(9));
        bucket.tags[9] = 5;
        assert_eq!(bucket.free_slot(), None);
        assert_eq!((tag_of(0), tag_of(1 << 56), tag_of(2 << 56)), (2, 2, 2));
        assert_eq!(tag_of(0xab << 56), 0xab);
    }
}
