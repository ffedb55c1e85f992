//! Bounded, sharded LRU cache keyed by the whole text's fingerprint.
//! Each shard is a `Mutex` around a slab-backed doubly linked list plus a
//! `HashMap` index; counters are `AtomicU64`. No global state.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const SHARDS: usize = 16;
const NIL: usize = usize::MAX;

struct Node<V> {
    key: u64,
    prev: usize,
    next: usize,
    value: V,
}

/// Hasher for integer keys (here fingerprints; the writer's transaction
/// ids too): one folded 128-bit multiply per 8 bytes with a per-map random
/// seed, so crafted texts cannot aim at one bucket, at a fraction of
/// SipHash's cost.
#[derive(Clone, Copy)]
pub(crate) struct KeyHash {
    seed: u64,
}

impl KeyHash {
    pub(crate) fn random() -> Self {
        KeyHash {
            seed: random_seed(),
        }
    }
}

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher {
            seed: self.seed,
            h: 0,
        }
    }
}

pub(crate) struct KeyHasher {
    seed: u64,
    h: u64,
}

impl Hasher for KeyHasher {
    #[inline]
    fn write_u64(&mut self, n: u64) {
        let m = u128::from(n ^ self.seed)
            * u128::from(0x9e37_79b9_7f4a_7c15 ^ self.seed.rotate_left(32));
        self.h ^= (m as u64) ^ ((m >> 64) as u64);
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.h
    }
}

/// Seeded hash of a whole text, 8 bytes at a time, each step one folded
/// 128-bit multiply (the key of exact-text entries; not a fingerprint: it
/// differs between processes).
pub(crate) fn text_hash(seed: u64, bytes: &[u8]) -> u64 {
    let k = u128::from(0x9e37_79b9_7f4a_7c15 ^ seed.rotate_left(32));
    let mix = |h: u64, x: u64| {
        let m = u128::from(h ^ x) * k;
        (m as u64) ^ ((m >> 64) as u64)
    };
    let mut h = mix(seed, bytes.len() as u64);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        h = mix(h, u64::from_le_bytes(b));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = mix(h, u64::from_le_bytes(b));
    }
    h
}

/// A random seed (from std's `RandomState`).
pub(crate) fn random_seed() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1
}

struct Lru<V> {
    map: HashMap<u64, usize, KeyHash>,
    nodes: Vec<Node<V>>,
    head: usize, // most recent
    tail: usize, // least recent
    cap: usize,
}

impl<V: Clone> Lru<V> {
    fn new(cap: usize) -> Self {
        Lru {
            map: HashMap::with_capacity_and_hasher(cap.min(1 << 16), KeyHash::random()),
            nodes: Vec::new(),
            head: NIL,
            tail: NIL,
            cap,
        }
    }

    fn unlink(&mut self, i: usize) {
        let (p, n) = (self.nodes[i].prev, self.nodes[i].next);
        if p != NIL {
            self.nodes[p].next = n;
        } else {
            self.head = n;
        }
        if n != NIL {
            self.nodes[n].prev = p;
        } else {
            self.tail = p;
        }
    }

    fn push_front(&mut self, i: usize) {
        self.nodes[i].prev = NIL;
        self.nodes[i].next = self.head;
        if self.head != NIL {
            self.nodes[self.head].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    fn get(&mut self, key: u64) -> Option<V> {
        self.get_with(key, V::clone)
    }

    fn get_with<R>(&mut self, key: u64, f: impl FnOnce(&V) -> R) -> Option<R> {
        let i = *self.map.get(&key)?;
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
        Some(f(&self.nodes[i].value))
    }

    fn put(&mut self, key: u64, value: V) {
        if self.cap == 0 {
            return;
        }
        if let Some(&i) = self.map.get(&key) {
            self.nodes[i].value = value;
            if self.head != i {
                self.unlink(i);
                self.push_front(i);
            }
            return;
        }
        let i = if self.nodes.len() < self.cap {
            self.nodes.push(Node {
                key,
                prev: NIL,
                next: NIL,
                value,
            });
            self.nodes.len() - 1
        } else {
            let t = self.tail;
            self.unlink(t);
            let old = self.nodes[t].key;
            self.map.remove(&old);
            self.nodes[t].key = key;
            self.nodes[t].value = value;
            t
        };
        self.map.insert(key, i);
        self.push_front(i);
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Cache statistics, and how the statements the cache did not answer were
/// parsed (the analyzer fills `fallback_*`; `Cache::stats` leaves them 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: u64,
    /// Statements sqlparser declined and pg_query parsed.
    pub fallback_pg_query: u64,
    /// Statements classified by the lexer path (no parser accepted them,
    /// or they were too large, too deep or not UTF-8).
    pub fallback_lexer: u64,
}

/// Thread-safe bounded LRU.
pub(crate) struct Cache<V> {
    shards: Vec<Mutex<Lru<V>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<V: Clone> Cache<V> {
    pub(crate) fn new(entries: usize) -> Self {
        let per = entries.div_ceil(SHARDS);
        Cache {
            shards: (0..SHARDS).map(|_| Mutex::new(Lru::new(per))).collect(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: u64) -> &Mutex<Lru<V>> {
        // high bits: the low bits of FNV are less mixed
        &self.shards[((key >> 59) as usize ^ (key as usize)) % SHARDS]
    }

    /// Look up without counting (the caller validates and counts).
    pub(crate) fn get(&self, key: u64) -> Option<V> {
        let mut g = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        g.get(key)
    }

    /// Look up and apply `f` to the value under the shard's lock (no clone
    /// of the value; without counting).
    pub(crate) fn get_with<R>(&self, key: u64, f: impl FnOnce(&V) -> R) -> Option<R> {
        let mut g = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        g.get_with(key, f)
    }

    pub(crate) fn put(&self, key: u64, value: V) {
        let mut g = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        g.put(key, value);
    }

    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let entries = self
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len() as u64)
            .sum();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries,
            ..CacheStats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_least_recent() {
        let mut l = Lru::new(2);
        l.put(1, "a");
        l.put(2, "b");
        assert_eq!(l.get(1), Some("a"));
        l.put(3, "c");
        assert_eq!(l.get(2), None);
        assert_eq!(l.get(1), Some("a"));
        assert_eq!(l.get(3), Some("c"));
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn cache_bounded() {
        let c = Cache::new(32);
        for k in 0..10_000u64 {
            c.put(k.wrapping_mul(0x9e37_79b9_7f4a_7c15), k);
        }
        assert!(c.stats().entries <= 32);
    }
}
