//! `SidMap`: a connection's subscriptions by sid. Most connections (a device, a browser tab)
//! hold one or a few: those stay in a short inline list searched in order, with no heap block
//! for one; past `FEW` the list becomes a hash map, so a connection with thousands of
//! subscriptions still finds a sid in O(1). A hash map per connection cost an idle device
//! ~160 bytes for its one entry.

use smallvec::SmallVec;

use crate::fast_map::FastMap;

/// Entries kept in the list before it becomes a map.
const FEW: usize = 8;

/// Values by sid.
#[derive(Debug)]
pub(crate) enum SidMap<V> {
    Few(SmallVec<[(u64, V); 1]>),
    Many(Box<FastMap<u64, V>>),
}

impl<V> Default for SidMap<V> {
    fn default() -> SidMap<V> {
        SidMap::Few(SmallVec::new())
    }
}

impl<V> SidMap<V> {
    pub(crate) fn len(&self) -> usize {
        match self {
            SidMap::Few(list) => list.len(),
            SidMap::Many(map) => map.len(),
        }
    }

    /// Every value, in no particular order.
    pub(crate) fn values(&self) -> Vec<&V> {
        match self {
            SidMap::Few(list) => list.iter().map(|(_, v)| v).collect(),
            SidMap::Many(map) => map.values().collect(),
        }
    }

    pub(crate) fn contains_key(&self, sid: u64) -> bool {
        self.get(sid).is_some()
    }

    pub(crate) fn get(&self, sid: u64) -> Option<&V> {
        match self {
            SidMap::Few(list) => list.iter().find(|(s, _)| *s == sid).map(|(_, v)| v),
            SidMap::Many(map) => map.get(&sid),
        }
    }

    /// Sets `sid` to `value`; returns the value it replaces.
    pub(crate) fn insert(&mut self, sid: u64, value: V) -> Option<V> {
        match self {
            SidMap::Few(list) => {
                if let Some((_, old)) = list.iter_mut().find(|(s, _)| *s == sid) {
                    return Some(std::mem::replace(old, value));
                }
                if list.len() < FEW {
                    list.push((sid, value));
                    return None;
                }
                let mut map: FastMap<u64, V> = list.drain(..).collect();
                map.insert(sid, value);
                *self = SidMap::Many(Box::new(map));
                None
            }
            SidMap::Many(map) => map.insert(sid, value),
        }
    }

    pub(crate) fn remove(&mut self, sid: u64) -> Option<V> {
        match self {
            SidMap::Few(list) => {
                let at = list.iter().position(|(s, _)| *s == sid)?;
                Some(list.swap_remove(at).1)
            }
            SidMap::Many(map) => map.remove(&sid),
        }
    }

    /// Takes every value out, leaving the map empty.
    pub(crate) fn take_all(&mut self) -> Vec<V> {
        match std::mem::take(self) {
            SidMap::Few(list) => list.into_iter().map(|(_, v)| v).collect(),
            SidMap::Many(map) => map.into_values().collect(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map_below_and_above_the_switch() {
        let mut map = SidMap::default();
        for sid in 0..20u64 {
            assert_eq!(map.insert(sid, sid * 10), None);
            assert_eq!(map.insert(sid, sid * 10 + 1), Some(sid * 10), "replaces");
            assert_eq!(map.len(), sid as usize + 1);
            assert!(map.contains_key(sid));
            assert!(!map.contains_key(sid + 1));
        }
        assert!(matches!(map, SidMap::Many(_)));
        assert_eq!(map.get(7), Some(&71));
        assert_eq!(map.remove(7), Some(71));
        assert_eq!(map.remove(7), None);
        let mut all = map.take_all();
        all.sort_unstable();
        assert_eq!(all.len(), 19);
        assert_eq!(map.len(), 0);

        let mut few = SidMap::default();
        few.insert(3, 'a');
        few.insert(5, 'b');
        assert_eq!(few.remove(3), Some('a'));
        assert_eq!(few.get(5), Some(&'b'));
        assert!(matches!(few, SidMap::Few(_)));
    }
}
