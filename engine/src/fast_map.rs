//! `FastMap`: the hash map of the shard's hot paths (subject → matches, connection and
//! subscription ids, trie tokens). std's SipHash was a fifth of a shard's cycles under a 1:1
//! publish load (perf/RESULTS.md); aHash is several times faster and keeps per-process random
//! keys, so clients still cannot pick colliding subjects in advance.

/// A `HashMap` with aHash's randomly keyed hasher.
pub type FastMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
