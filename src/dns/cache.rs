//! The general path's answers, remembered per UDP serving thread (a packet cache, as
//! PowerDNS has, but private to one thread so it needs no lock).
//!
//! Names with data are pre-encoded in the snapshot (the fast path); what is left for the
//! general path are NXDOMAIN and NODATA answers, referrals and refusals, which have no
//! template because their names and types are unbounded. A resolver asks them again and
//! again (an AAAA for an A-only name, a mistyped name), so the first answer is kept: the
//! canonical bytes [`crate::snapshot::answer::answer_general`] produced, keyed by view, QTYPE, QCLASS
//! and lower-case QNAME, and emptied whenever a new snapshot is served. Bounded: when full it
//! starts over, so a flood of random names costs no more memory than [`CAPACITY`] answers.

use rustc_hash::FxHashMap;

/// Answers kept per thread.
pub const CAPACITY: usize = 2048;
/// View (2) + QTYPE (2) + QCLASS (2) + the longest QNAME (255).
const MAX_KEY: usize = 6 + 255;

/// One remembered general-path result: the RCODE and the canonical response, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    /// RCODE when there is no response to send but an error.
    pub rcode: u16,
    /// Canonical response bytes (ID 0, lower-case question, no OPT).
    pub canonical: Option<Box<[u8]>>,
}

/// A thread's cache of general-path answers for one snapshot generation.
#[derive(Debug, Default)]
pub struct PacketCache {
    generation: u64,
    entries: FxHashMap<Box<[u8]>, Cached>,
    hits: u64,
    misses: u64,
}

/// The lookup key, built on the stack.
pub struct Key {
    bytes: [u8; MAX_KEY],
    len: usize,
}

impl Key {
    /// Key of a question in a view (`lower_qname` is the wire form, at most 255 bytes).
    pub fn new(view: usize, qtype: u16, qclass: u16, lower_qname: &[u8]) -> Option<Key> {
        let view = u16::try_from(view).ok()?;
        if lower_qname.len() > 255 {
            return None;
        }
        let mut bytes = [0u8; MAX_KEY];
        bytes[..2].copy_from_slice(&view.to_be_bytes());
        bytes[2..4].copy_from_slice(&qtype.to_be_bytes());
        bytes[4..6].copy_from_slice(&qclass.to_be_bytes());
        bytes[6..6 + lower_qname.len()].copy_from_slice(lower_qname);
        Some(Key {
            bytes,
            len: 6 + lower_qname.len(),
        })
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl PacketCache {
    /// Forgets everything when `generation` is not the one the entries were made from.
    pub fn for_generation(&mut self, generation: u64) -> &mut Self {
        if self.generation != generation {
            self.entries.clear();
            self.generation = generation;
        }
        self
    }

    /// The remembered answer for `key`, or `compute`'s, remembered (starting over when
    /// full).
    pub fn get_or_insert_with(&mut self, key: &Key, compute: impl FnOnce() -> Cached) -> &Cached {
        let k = key.as_slice();
        if self.entries.contains_key(k) {
            self.hits += 1;
            return &self.entries[k];
        }
        self.misses += 1;
        if self.entries.len() >= CAPACITY {
            self.entries.clear();
        }
        self.entries.entry(k.into()).or_insert(compute())
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Lookups answered from the cache and not, since the thread started.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(view: usize, name: &[u8]) -> Key {
        Key::new(view, 1, 1, name).unwrap()
    }

    fn answer(b: u8) -> Cached {
        Cached {
            rcode: 0,
            canonical: Some(vec![b].into()),
        }
    }

    /// Looks `key` up; on a miss remembers `fill` and returns None.
    fn lookup(c: &mut PacketCache, key: &Key, fill: u8) -> Option<Cached> {
        let mut missed = false;
        let got = c
            .get_or_insert_with(key, || {
                missed = true;
                answer(fill)
            })
            .clone();
        (!missed).then_some(got)
    }

    #[test]
    fn keyed_by_view_and_question() {
        let mut c = PacketCache::default();
        c.for_generation(1);
        assert_eq!(lookup(&mut c, &key(0, b"\x01a\x00"), 1), None);
        assert_eq!(lookup(&mut c, &key(0, b"\x01a\x00"), 9), Some(answer(1)));
        assert_eq!(
            lookup(&mut c, &key(1, b"\x01a\x00"), 2),
            None,
            "another view"
        );
        let other_type = Key::new(0, 28, 1, b"\x01a\x00").unwrap();
        assert_eq!(lookup(&mut c, &other_type, 3), None, "another type");
        let other_class = Key::new(0, 1, 3, b"\x01a\x00").unwrap();
        assert_eq!(lookup(&mut c, &other_class, 4), None, "another class");
        assert_eq!(lookup(&mut c, &other_class, 5), Some(answer(4)));
        assert_eq!(c.hits_and_misses(), (2, 4));
    }

    #[test]
    fn a_new_snapshot_empties_it() {
        let mut c = PacketCache::default();
        lookup(c.for_generation(1), &key(0, b"\x00"), 1);
        assert_eq!(c.for_generation(1).len(), 1);
        assert!(c.for_generation(2).is_empty());
        assert_eq!(lookup(&mut c, &key(0, b"\x00"), 2), None);
    }

    #[test]
    fn bounded() {
        let mut c = PacketCache::default();
        for i in 0..(3 * CAPACITY) {
            let name = format!("\x08{i:08}\x00");
            lookup(&mut c, &key(0, name.as_bytes()), 0);
            assert!(c.len() <= CAPACITY);
        }
    }

    #[test]
    fn refuses_what_cannot_be_a_key() {
        assert!(Key::new(70_000, 1, 1, b"\x00").is_none());
        assert!(Key::new(0, 1, 1, &[1u8; 256]).is_none());
    }
}
