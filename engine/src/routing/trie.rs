//! `SubscriptionTrie`: subscriptions indexed by pattern token, in the shape of nats-server's
//! sublist: each level has literal children, a `*` child and the `>` subscribers. Matching a
//! subject walks one path per token plus the wildcard branches, so its cost follows the
//! subject's length and the wildcards in use, not the number of subscriptions. Maps a node may
//! not need (children, queue groups, `>` subscribers) are boxed and created on first use, and
//! one plain subscriber is kept inline: most nodes are leaves with one plain subscriber, and a
//! fleet of devices has one such node per device.

use crate::fast_map::FastMap;
use std::rc::Rc;

use smallvec::SmallVec;

/// Subscribers of one pattern: plain ones each get every message; each queue group gets one.
#[derive(Debug)]
struct Subscribers<V> {
    plain: SmallVec<[V; 1]>,
    queues: Option<Box<FastMap<Box<str>, Vec<V>>>>,
}

impl<V> Default for Subscribers<V> {
    fn default() -> Subscribers<V> {
        Subscribers {
            plain: SmallVec::new(),
            queues: None,
        }
    }
}

impl<V: Clone + PartialEq> Subscribers<V> {
    fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.queues.is_none()
    }

    fn insert(&mut self, queue: Option<&str>, value: V) {
        match queue {
            None => self.plain.push(value),
            Some(group) => self
                .queues
                .get_or_insert_with(Box::default)
                .entry(group.into())
                .or_default()
                .push(value),
        }
    }

    fn remove(&mut self, queue: Option<&str>, value: &V) -> bool {
        let Some(group) = queue else {
            let Some(at) = self.plain.iter().position(|v| v == value) else {
                return false;
            };
            self.plain.swap_remove(at);
            return true;
        };
        let Some(list) = self.queues.as_deref_mut().and_then(|q| q.get_mut(group)) else {
            return false;
        };
        let Some(at) = list.iter().position(|v| v == value) else {
            return false;
        };
        list.swap_remove(at);
        if list.is_empty()
            && let Some(queues) = self.queues.as_deref_mut()
        {
            queues.remove(group);
            if queues.is_empty() {
                self.queues = None;
            }
        }
        true
    }

    fn collect_into(&self, out: &mut Matches<V>) {
        out.plain.extend(self.plain.iter().cloned());
        for (group, members) in self.queues.iter().flat_map(|q| q.iter()) {
            match out.queues.iter_mut().find(|(g, _)| g == group) {
                Some((_, all)) => all.extend(members.iter().cloned()),
                None => out.queues.push((group.clone(), members.clone())),
            }
        }
    }
}

/// A node's literal children, by token.
type Children<V> = FastMap<Box<[u8]>, Node<V>>;

#[derive(Debug)]
struct Node<V> {
    literal: Option<Box<Children<V>>>,
    star: Option<Box<Node<V>>>,
    /// Subscribers of patterns ending in `>` at this level.
    tail: Option<Box<Subscribers<V>>>,
    /// Subscribers of patterns ending exactly here.
    here: Subscribers<V>,
}

impl<V> Default for Node<V> {
    fn default() -> Node<V> {
        Node {
            literal: None,
            star: None,
            tail: None,
            here: Subscribers::default(),
        }
    }
}

impl<V: Clone + PartialEq> Node<V> {
    fn is_empty(&self) -> bool {
        self.literal.is_none() && self.star.is_none() && self.tail.is_none() && self.here.is_empty()
    }
}

/// Everyone a subject reaches: plain subscribers, and the members of each queue group (the
/// caller picks one member per group).
#[derive(Debug, Clone, PartialEq)]
pub struct Matches<V> {
    /// Subscribers that each get the message.
    pub plain: Vec<V>,
    /// Queue groups and their members.
    pub queues: Vec<(Box<str>, Vec<V>)>,
}

impl<V> Default for Matches<V> {
    fn default() -> Matches<V> {
        Matches {
            plain: Vec::new(),
            queues: Vec::new(),
        }
    }
}

impl<V> Matches<V> {
    /// Whether nobody matched.
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.queues.is_empty()
    }
}

/// Subscriptions of one shard, by pattern. Patterns are assumed valid
/// (`shardbus_protocol::topic::validate_pattern`); the decoder has checked them.
#[derive(Debug)]
pub struct SubscriptionTrie<V> {
    root: Node<V>,
    len: usize,
}

impl<V> Default for SubscriptionTrie<V> {
    fn default() -> SubscriptionTrie<V> {
        SubscriptionTrie {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<V: Clone + PartialEq> SubscriptionTrie<V> {
    /// An empty trie.
    pub fn new() -> SubscriptionTrie<V> {
        SubscriptionTrie::default()
    }

    /// Subscriptions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no subscription is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `value` as a subscriber of `pattern`, in queue group `queue` if given.
    pub fn insert(&mut self, pattern: &[u8], queue: Option<&str>, value: V) {
        let mut node = &mut self.root;
        let mut tokens = pattern.split(|&b| b == b'.').peekable();
        while let Some(token) = tokens.next() {
            if token == b">" && tokens.peek().is_none() {
                node.tail
                    .get_or_insert_with(Box::default)
                    .insert(queue, value);
                self.len += 1;
                return;
            }
            node = if token == b"*" {
                node.star.get_or_insert_with(Box::default)
            } else {
                node.literal
                    .get_or_insert_with(Box::default)
                    .entry(token.into())
                    .or_default()
            };
        }
        node.here.insert(queue, value);
        self.len += 1;
    }

    /// Removes one subscription of `value` to `pattern` in `queue`, pruning emptied nodes.
    /// Returns whether it was there.
    pub fn remove(&mut self, pattern: &[u8], queue: Option<&str>, value: &V) -> bool {
        let tokens: Vec<&[u8]> = pattern.split(|&b| b == b'.').collect();
        let removed = remove_at(&mut self.root, &tokens, queue, value);
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// Everyone `subject` reaches.
    pub fn matches(&self, subject: &[u8]) -> Matches<V> {
        let mut out = Matches::default();
        match_level(&self.root, subject.split(|&b| b == b'.'), &mut out);
        out
    }

    /// [`SubscriptionTrie::matches`] shared behind an `Rc`, for the match cache.
    pub fn matches_shared(&self, subject: &[u8]) -> Rc<Matches<V>> {
        Rc::new(self.matches(subject))
    }
}

fn remove_at<V: Clone + PartialEq>(
    node: &mut Node<V>,
    tokens: &[&[u8]],
    queue: Option<&str>,
    value: &V,
) -> bool {
    let Some((&token, rest)) = tokens.split_first() else {
        return node.here.remove(queue, value);
    };
    if token == b">" && rest.is_empty() {
        let Some(tail) = node.tail.as_deref_mut() else {
            return false;
        };
        let removed = tail.remove(queue, value);
        if tail.is_empty() {
            node.tail = None;
        }
        return removed;
    }
    if token == b"*" {
        let Some(child) = node.star.as_deref_mut() else {
            return false;
        };
        let removed = remove_at(child, rest, queue, value);
        if child.is_empty() {
            node.star = None;
        }
        return removed;
    }
    let Some(children) = node.literal.as_deref_mut() else {
        return false;
    };
    let Some(child) = children.get_mut(token) else {
        return false;
    };
    let removed = remove_at(child, rest, queue, value);
    if child.is_empty() {
        children.remove(token);
        if children.is_empty() {
            node.literal = None;
        }
    }
    removed
}

/// Walks the subject's tokens; the splitter is cloned where the walk forks at a `*`, so no
/// token list is built.
fn match_level<'s, V, I>(node: &Node<V>, mut tokens: I, out: &mut Matches<V>)
where
    V: Clone + PartialEq,
    I: Iterator<Item = &'s [u8]> + Clone,
{
    let Some(token) = tokens.next() else {
        node.here.collect_into(out);
        return;
    };
    // `>` here takes this token and everything after it.
    if let Some(tail) = node.tail.as_deref() {
        tail.collect_into(out);
    }
    if let Some(star) = node.star.as_deref() {
        match_level(star, tokens.clone(), out);
    }
    if let Some(child) = node.literal.as_deref().and_then(|c| c.get(token)) {
        match_level(child, tokens, out);
    }
}
