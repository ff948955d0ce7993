//! The engine's record of the flows it installed: by cookie, by (datapath, priority, match), and
//! by tag, and the destination prefixes routers decided for them.
//!
//! Why its own layout: with hundreds of thousands of flows every index is far bigger than the
//! CPU caches, so a packet-in pays a memory miss for each index it touches. What it touches is
//! kept small and touched once:
//!
//! - Records live in a slab (`slots`); the indexes hold 4-byte slot numbers, not records. A
//!   match-index entry is 8 bytes (slot, 32 bits of the match's hash), so the table a re-install
//!   probes is a few MB, and its growth moves those, never the records.
//! - A tag keeps an append-only list of (slot, generation) and a count of live flows instead of
//!   a set: an install appends to each of its tags' lists (the tail of a list is warm, however
//!   long it is: a device's or a chain's tag is carried by every flow through it), a removal
//!   only counts down. A list is compacted when its dead entries outnumber the live ones, and
//!   dropped with its last live flow, so memory stays proportional to the live flows and every
//!   operation stays O(1) amortized. Invalidation checks each entry's generation: a slot reused
//!   by a later flow is not that flow.
//! - A record keeps its match as the OXM bytes the switch keys it by ([`MatchKey`]): about 70
//!   bytes for a routed, filtered flow, against some 350 for the `Match` (its fields are 40-byte
//!   enums, on the heap), and one memcmp to compare.
//! - What only explanations read (the packet that made a flow) is in a parallel cold vector.
//!
//! Invariants (property-tested against a plain model below): one record per cookie and per
//! (datapath, priority, match); a tag's lists name exactly the live flows carrying it;
//! `decided` holds exactly the `Dst` tags of live flows.

use hashbrown::HashTable;
use ipnet::Ipv4Net;
use ofproto::Match;
use rustc_hash::FxHashMap;
use uuid::Uuid;

use super::flowkey::Header;
use super::route::Decided;
use super::sim::{DropReason, Tag};

/// A flow the engine installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// Its cookie (unique among the records).
    pub cookie: u64,
    /// The switch that has it.
    pub dpid: u64,
    /// Its priority in the flow cache.
    pub priority: u16,
    /// Its match.
    pub match_: MatchKey,
    /// What it depends on, each once.
    pub tags: Box<[Tag]>,
    /// The MAC entry this flow keeps alive (its source, learned on its ingress port).
    pub learned: Option<(Uuid, [u8; 6])>,
    /// Why it drops, for a drop flow (per-port drop counters).
    pub drop: Option<DropReason>,
}

/// A match as the switch keys a flow: its OXM fields encoded in (class, field) order. A match
/// holds each field once, so equal matches have equal keys whatever order their fields came in
/// (OpenFlow leaves the order of a switch's `FLOW_REMOVED` and `FLOW_STATS` to the switch), and
/// unequal ones do not.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MatchKey(Box<[u8]>);

impl MatchKey {
    /// The key of `m`.
    pub fn of(m: &Match) -> MatchKey {
        let mut fields: smallvec::SmallVec<[&ofproto::OxmField; 12]> = m.fields.iter().collect();
        fields.sort_unstable_by_key(|f| f.key());
        let len = fields.iter().map(|f| f.encoded_len()).sum();
        let mut b = bytes::BytesMut::with_capacity(len);
        for f in fields {
            f.emit(&mut b);
        }
        MatchKey(Vec::from(b).into_boxed_slice())
    }
}

/// The packet whose simulation made a flow: (ingress port, its OpenFlow port, header). What
/// `explain` and the tests' oracle simulate again.
pub type Origin = (Uuid, u32, Header);

struct Slot {
    /// Bumped when the slot is freed: a tag list's entry with an older generation is dead.
    generation: u32,
    flow: Option<Flow>,
}

/// A match-index entry: the record's slot and 32 bits of its match hash (enough to skip almost
/// every other record without reading it, and to rehash without reading any).
#[derive(Clone, Copy)]
struct ByMatch {
    slot: u32,
    hash: u32,
}

#[derive(Default)]
struct Tagged {
    live: u32,
    /// (slot, generation) of every flow recorded with the tag since the last compaction.
    entries: Vec<(u32, u32)>,
}

/// See the module docs.
#[derive(Default)]
pub struct FlowCache {
    slots: Vec<Slot>,
    origins: Vec<Option<Origin>>,
    free: Vec<u32>,
    len: usize,
    by_cookie: FxHashMap<u64, u32>,
    by_match: HashTable<ByMatch>,
    by_tag: FxHashMap<Tag, Tagged>,
    /// The `Dst` tags of live flows, ordered per router (what a new route captures).
    decided: Decided,
}

impl std::fmt::Debug for FlowCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowCache")
            .field("flows", &self.len)
            .field("tags", &self.by_tag.len())
            .finish_non_exhaustive()
    }
}

/// The 32 bits of a match's hash the index keeps.
fn match_hash(dpid: u64, priority: u16, m: &MatchKey) -> u32 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    (dpid, priority).hash(&mut h);
    m.hash(&mut h);
    // Fx's high bits are its best mixed.
    (h.finish() >> 32) as u32
}

/// The table's 64-bit hash from the kept 32 bits: spread over the word, as hashbrown takes
/// its bucket from the low bits and its tag from the top seven.
fn spread(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl FlowCache {
    /// How many flows are recorded.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn flow(&self, slot: u32) -> Option<&Flow> {
        self.slots.get(slot as usize)?.flow.as_ref()
    }

    /// The flow with this cookie.
    pub fn get(&self, cookie: u64) -> Option<&Flow> {
        self.flow(*self.by_cookie.get(&cookie)?)
    }

    /// The packet that made the flow with this cookie.
    pub fn origin(&self, cookie: u64) -> Option<&Origin> {
        let slot = *self.by_cookie.get(&cookie)?;
        self.origins.get(slot as usize)?.as_ref()
    }

    /// The flow installed on `dpid` with this priority and match (the switch holds one).
    pub fn find(&self, dpid: u64, priority: u16, m: &MatchKey) -> Option<&Flow> {
        let hash = match_hash(dpid, priority, m);
        let e = self.by_match.find(spread(hash), |e| {
            e.hash == hash
                && self
                    .flow(e.slot)
                    .is_some_and(|f| f.dpid == dpid && f.priority == priority && f.match_ == *m)
        })?;
        self.flow(e.slot)
    }

    /// Every flow, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Flow> + '_ {
        self.slots.iter().filter_map(|s| s.flow.as_ref())
    }

    /// The cookies of the flows on `dpid`.
    pub fn cookies_on(&self, dpid: u64) -> Vec<u64> {
        self.iter()
            .filter(|f| f.dpid == dpid)
            .map(|f| f.cookie)
            .collect()
    }

    /// Records `flow`, made by the packet `origin`. The caller has removed any flow with the
    /// same cookie or the same (datapath, priority, match): the switch holds one of each.
    /// False, recording nothing, when the slab is full (2³² records): the caller installs
    /// nothing it could not record.
    pub fn insert(&mut self, flow: Flow, origin: Origin) -> bool {
        debug_assert!(!self.by_cookie.contains_key(&flow.cookie));
        debug_assert!(self.find(flow.dpid, flow.priority, &flow.match_).is_none());
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                let Ok(s) = u32::try_from(self.slots.len()) else {
                    return false;
                };
                self.slots.push(Slot {
                    generation: 0,
                    flow: None,
                });
                self.origins.push(None);
                s
            }
        };
        let generation = self.slots[slot as usize].generation;
        let hash = match_hash(flow.dpid, flow.priority, &flow.match_);
        self.by_match
            .insert_unique(spread(hash), ByMatch { slot, hash }, |e| spread(e.hash));
        self.by_cookie.insert(flow.cookie, slot);
        for t in flow.tags.iter() {
            let tagged = self.by_tag.entry(*t).or_default();
            tagged.live += 1;
            tagged.entries.push((slot, generation));
            if tagged.live == 1 {
                if let Tag::Dst(r, net) = *t {
                    self.decided.insert(r, net);
                }
            }
        }
        self.slots[slot as usize].flow = Some(flow);
        self.origins[slot as usize] = Some(origin);
        self.len += 1;
        true
    }

    /// Forgets the flow with this cookie and returns it.
    pub fn remove(&mut self, cookie: u64) -> Option<Flow> {
        let slot = self.by_cookie.remove(&cookie)?;
        let s = &mut self.slots[slot as usize];
        let flow = s.flow.take()?;
        s.generation = s.generation.wrapping_add(1);
        self.origins[slot as usize] = None;
        self.free.push(slot);
        self.len -= 1;
        let hash = match_hash(flow.dpid, flow.priority, &flow.match_);
        if let Ok(e) = self.by_match.find_entry(spread(hash), |e| e.slot == slot) {
            e.remove();
        }
        for t in flow.tags.iter() {
            let Some(tagged) = self.by_tag.get_mut(t) else {
                continue;
            };
            tagged.live = tagged.live.saturating_sub(1);
            if tagged.live == 0 {
                self.by_tag.remove(t);
                if let Tag::Dst(r, net) = *t {
                    self.decided.remove(r, net);
                }
            } else if tagged.entries.len() > 2 * tagged.live as usize + 16 {
                let slots = &self.slots;
                tagged.entries.retain(|&(s, g)| live(slots, s, g));
            }
        }
        Some(flow)
    }

    /// The cookies of the flows carrying any of `tags`, each once, in order.
    pub fn tagged(&self, tags: &[Tag]) -> Vec<u64> {
        let mut cookies: Vec<u64> = tags
            .iter()
            .filter_map(|t| self.by_tag.get(t))
            .flat_map(|t| t.entries.iter())
            .filter(|&&(s, g)| live(&self.slots, s, g))
            .filter_map(|&(s, _)| self.flow(s).map(|f| f.cookie))
            .collect();
        cookies.sort_unstable();
        cookies.dedup();
        cookies
    }

    /// How many live flows carry `tag`.
    pub fn count_tagged(&self, tag: &Tag) -> usize {
        self.by_tag.get(tag).map_or(0, |t| t.live as usize)
    }

    /// Every decided destination of `router` that `net` overlaps (see [`Decided`]).
    pub fn overlapping(&self, router: Uuid, net: Ipv4Net, f: impl FnMut(Ipv4Net)) {
        self.decided.overlapping(router, net, f);
    }
}

fn live(slots: &[Slot], slot: u32, generation: u32) -> bool {
    slots
        .get(slot as usize)
        .is_some_and(|s| s.generation == generation && s.flow.is_some())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::net::Ipv4Addr;

    use ofproto::OxmField;
    use proptest::prelude::*;

    use super::*;

    fn header() -> Header {
        Header::parse(&[0u8; 14]).expect("an Ethernet header")
    }

    fn flow(cookie: u64, dpid: u64, m: u32, tags: &[u8]) -> Flow {
        let router = Uuid::from_u128(7);
        Flow {
            cookie,
            dpid,
            priority: 100,
            match_: MatchKey::of(&Match {
                fields: [OxmField::InPort(m)].into_iter().collect(),
            }),
            tags: tags
                .iter()
                .map(|t| match t % 3 {
                    0 => Tag::Device(Uuid::from_u128(u128::from(*t))),
                    1 => Tag::Port(Uuid::from_u128(u128::from(*t))),
                    _ => Tag::Dst(
                        router,
                        Ipv4Net::new(Ipv4Addr::new(10, 0, *t, 0), 24).expect("a prefix"),
                    ),
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            learned: None,
            drop: None,
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert { dpid: u64, m: u32, tags: Vec<u8> },
        Remove(usize),
        Invalidate(Vec<u8>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..3, 0u32..40, prop::collection::vec(0u8..12, 0..5))
                .prop_map(|(dpid, m, tags)| Op::Insert { dpid, m, tags }),
            2 => any::<usize>().prop_map(Op::Remove),
            1 => prop::collection::vec(0u8..12, 1..3).prop_map(Op::Invalidate),
        ]
    }

    #[test]
    fn match_keys_ignore_field_order_only() {
        let m = |f: Vec<OxmField>| {
            MatchKey::of(&Match {
                fields: f.into_iter().collect(),
            })
        };
        let meta = OxmField::Metadata {
            value: 7,
            mask: None,
        };
        let dst = OxmField::Ipv4Dst {
            value: Ipv4Addr::new(10, 0, 2, 0),
            mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
        };
        assert_eq!(
            m(vec![meta.clone(), OxmField::EthType(0x800), dst.clone()]),
            m(vec![dst.clone(), meta.clone(), OxmField::EthType(0x800)])
        );
        assert_ne!(
            m(vec![meta.clone(), OxmField::EthType(0x800), dst.clone()]),
            m(vec![meta.clone(), OxmField::EthType(0x800)])
        );
        let unmasked = OxmField::Ipv4Dst {
            value: Ipv4Addr::new(10, 0, 2, 0),
            mask: None,
        };
        assert_ne!(m(vec![meta.clone(), dst]), m(vec![meta, unmasked]));
    }

    proptest! {
        /// Against a plain model (cookie → flow): lookups by cookie and by match, the tagged
        /// cookies and counts, and the decided prefixes agree after any sequence of inserts,
        /// removals and invalidations — the slab's reuse and the lists' compaction included.
        #[test]
        fn agrees_with_a_plain_model(ops in prop::collection::vec(op(), 1..300)) {
            let mut cache = FlowCache::default();
            let mut model: BTreeMap<u64, Flow> = BTreeMap::new();
            let mut next = 1u64;
            for op in ops {
                match op {
                    Op::Insert { dpid, m, tags } => {
                        let f = flow(next, dpid, m, &tags);
                        next += 1;
                        // The switch replaces the same (dpid, priority, match).
                        if let Some(old) = cache.find(f.dpid, f.priority, &f.match_).map(|f| f.cookie) {
                            prop_assert!(cache.remove(old).is_some());
                            model.remove(&old);
                        }
                        prop_assert!(cache.insert(f.clone(), (Uuid::nil(), m, header())));
                        model.insert(f.cookie, f);
                    }
                    Op::Remove(i) => {
                        if let Some(&c) = model.keys().nth(i % model.len().max(1)) {
                            prop_assert_eq!(cache.remove(c), model.remove(&c));
                        }
                    }
                    Op::Invalidate(tags) => {
                        let tags: Vec<Tag> = flow(0, 0, 0, &tags).tags.into_vec();
                        let want: Vec<u64> = model.values()
                            .filter(|f| f.tags.iter().any(|t| tags.contains(t)))
                            .map(|f| f.cookie).collect();
                        prop_assert_eq!(cache.tagged(&tags), want.clone());
                        for c in want {
                            prop_assert!(cache.remove(c).is_some());
                            model.remove(&c);
                        }
                    }
                }
                prop_assert_eq!(cache.len(), model.len());
                for f in model.values() {
                    prop_assert_eq!(cache.get(f.cookie), Some(f));
                    prop_assert_eq!(cache.find(f.dpid, f.priority, &f.match_), Some(f));
                }
                let mut all: BTreeMap<Tag, usize> = BTreeMap::new();
                for f in model.values() {
                    for t in f.tags.iter() {
                        *all.entry(*t).or_default() += 1;
                    }
                }
                for (t, n) in &all {
                    prop_assert_eq!(cache.count_tagged(t), *n);
                    prop_assert_eq!(cache.tagged(std::slice::from_ref(t)).len(), *n);
                }
                prop_assert_eq!(cache.by_tag.len(), all.len());
                // Decided: every /24 of the model's Dst tags, and nothing else.
                let router = Uuid::from_u128(7);
                let mut decided = BTreeSet::new();
                cache.overlapping(router, "10.0.0.0/8".parse().expect("a prefix"), |n| {
                    decided.insert(n);
                });
                let want: BTreeSet<Ipv4Net> = all.keys().filter_map(|t| match t {
                    Tag::Dst(_, n) => Some(*n),
                    _ => None,
                }).collect();
                prop_assert_eq!(decided, want);
                // Lists stay proportional to the live flows.
                for t in cache.by_tag.values() {
                    prop_assert!(t.entries.len() <= 2 * t.live as usize + 17);
                }
            }
        }
    }
}
