//! Bounded, sharded LRU cache keyed by the whole text's fingerprint.
//! Each shard is a `Mutex` around a slab-backed doubly linked list plus a
//! `HashMap` index; counters are `AtomicU64`. No global state.

use std::collections::HashMap;
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

struct Lru<V> {
    map: HashMap<u64, usize>,
    nodes: Vec<Node<V>>,
    head: usize, // most recent
    tail: usize, // least recent
    cap: usize,
}

impl<V: Clone> Lru<V> {
    fn new(cap: usize) -> Self {
        Lru {
            map: HashMap::with_capacity(cap.min(1 << 16)),
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
        let i = *self.map.get(&key)?;
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
        Some(self.nodes[i].value.clone())
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
/// parsed (the analyzer fills `fallback_*`; [`Cache::stats`] leaves them 0).
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
pub struct Cache<V> {
    shards: Vec<Mutex<Lru<V>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<V: Clone> Cache<V> {
    pub fn new(entries: usize) -> Self {
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
    pub fn get(&self, key: u64) -> Option<V> {
        let mut g = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        g.get(key)
    }

    pub fn put(&self, key: u64, value: V) {
        let mut g = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        g.put(key, value);
    }

    pub fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> CacheStats {
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
