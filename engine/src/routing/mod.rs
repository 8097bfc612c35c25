//! Routing: the subscription trie that answers "who here wants this subject", its bounded cache
//! of recent answers, the cross-shard interest table that answers "which other shards do", and
//! the router that combines them into delivery decisions.

mod interest;
mod match_cache;
pub mod options;
mod router;
mod trie;

pub use interest::{InterestChange, InterestReplica, LocalInterest, ShardId};
pub use match_cache::{MatchCache, SubjectCache};
pub use options::RoutingConfig;
pub use router::{Responder, Route, Router, SubKey, Subscriber};
pub use trie::{Matches, SubscriptionTrie};
