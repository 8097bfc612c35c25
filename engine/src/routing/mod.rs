//! Routing inside one shard: the subscription trie that answers "who here wants this subject",
//! with a bounded cache of recent answers. (The cross-shard interest table is issue #3's next
//! step.)

mod match_cache;
mod trie;

pub use match_cache::MatchCache;
pub use trie::{Matches, SubscriptionTrie};
