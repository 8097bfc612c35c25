//! Routing: the subscription trie that answers "who here wants this subject", its bounded cache
//! of recent answers, and the cross-shard interest table that answers "which other shards do".

mod interest;
mod match_cache;
mod trie;

pub use interest::{InterestChange, InterestReplica, LocalInterest, ShardId};
pub use match_cache::MatchCache;
pub use trie::{Matches, SubscriptionTrie};
