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
//! - A record keeps its match as the OXM bytes the switch keys it by ([`MatchKey`]): about 75
//!   bytes for a routed, filtered flow, against some 350 for the `Match` (its fields are 40-byte
//!   enums, on the heap), and one memcmp to compare. The bytes are inline in the record, so a
//!   probe reads the record and its key in one place.
//! - Tags are interned: the cache numbers each distinct tag it holds (a table of tags, each
//!   with its list and count), and a record keeps its tags as 4-byte ids inline (a routed,
//!   filtered flow carries 13 tags: 52 bytes in the record, against 312 on the heap as
//!   24-byte `Tag`s). The re-install check reads them beside the record; a removal indexes
//!   the table instead of hashing each tag. An id is freed with its tag's last live flow.
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

/// A tag's number in one cache's tag table.
type TagId = u32;

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
    /// What it depends on, each once, as ids of the cache's tag table (read them with
    /// [`FlowCache::tags_of`]); a flow built outside the cache has none yet.
    tags: smallvec::SmallVec<[TagId; 14]>,
    /// The MAC entry this flow keeps alive (its source, learned on its ingress port).
    pub learned: Option<(Uuid, [u8; 6])>,
    /// Why it drops, for a drop flow (per-port drop counters).
    pub drop: Option<DropReason>,
}

impl Flow {
    /// A flow to [insert](FlowCache::insert) (its tags are given there).
    pub fn new(
        cookie: u64,
        dpid: u64,
        priority: u16,
        match_: MatchKey,
        learned: Option<(Uuid, [u8; 6])>,
        drop: Option<DropReason>,
    ) -> Flow {
        Flow {
            cookie,
            dpid,
            priority,
            match_,
            tags: smallvec::SmallVec::new(),
            learned,
            drop,
        }
    }
}

/// A match as the switch keys a flow: its OXM fields encoded in (class, field) order. A match
/// holds each field once, so equal matches have equal keys whatever order their fields came in
/// (OpenFlow leaves the order of a switch's `FLOW_REMOVED` and `FLOW_STATS` to the switch), and
/// unequal ones do not.
///
/// Kept inline up to [`MATCH_INLINE`] bytes (a routed, filtered flow's eight fields take about
/// 75): building a key allocates nothing, and a record's key sits beside the record, so the
/// re-install path's probe reads one place, not a record and then a heap block (at hundreds of
/// thousands of flows, each is a memory miss).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MatchKey(smallvec::SmallVec<[u8; MATCH_INLINE]>);

/// Bytes of a match key held inline (see [`MatchKey`]).
pub const MATCH_INLINE: usize = 96;

impl MatchKey {
    /// The key of `m`.
    pub fn of(m: &Match) -> MatchKey {
        // Fields of a known type take at most 36 bytes (a masked IPv6 address): a match of up
        // to 14 of them fits the stack buffer whatever they are.
        const STACK: usize = 512;
        let small = m.fields.len() <= STACK / 36
            && !m
                .fields
                .iter()
                .any(|f| matches!(f, ofproto::OxmField::Unknown { .. }));
        if !small {
            return MatchKey::sorted_then_emitted(m);
        }
        // Emitted once in the match's order, then the TLVs put in (class, field) order by their
        // headers: each field's enum is matched once (to emit it) instead of three times (its
        // key, its length, its emit), a twentieth of a routed packet-in.
        let mut buf = [0u8; STACK];
        let mut w = &mut buf[..];
        for f in &m.fields {
            f.emit(&mut w);
        }
        let written = STACK - w.len();
        // (class << 8 | field, start, end) of each TLV.
        let mut tlvs: smallvec::SmallVec<[(u32, usize, usize); 14]> = smallvec::SmallVec::new();
        let mut at = 0;
        while at + 4 <= written {
            let h = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
            let end = at + 4 + (h & 0xff) as usize;
            tlvs.push(((h >> 16) << 8 | (h >> 9) & 0x7f, at, end));
            at = end;
        }
        tlvs.sort_unstable_by_key(|t| t.0);
        let mut key = smallvec::SmallVec::<[u8; MATCH_INLINE]>::new();
        for (_, start, end) in tlvs {
            key.extend_from_slice(&buf[start..end.min(written)]);
        }
        MatchKey(key)
    }

    /// [`MatchKey::of`] the plain way: the fields sorted by their key, then emitted.
    fn sorted_then_emitted(m: &Match) -> MatchKey {
        let mut fields: smallvec::SmallVec<[&ofproto::OxmField; 12]> = m.fields.iter().collect();
        fields.sort_unstable_by_key(|f| f.key());
        let mut v = Vec::with_capacity(fields.iter().map(|f| f.encoded_len()).sum());
        for f in fields {
            f.emit(&mut v);
        }
        MatchKey(smallvec::SmallVec::from_vec(v))
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

/// A tag's row in the table (its id is its index).
struct Tagged {
    tag: Tag,
    /// Live flows carrying it; 0: the row is free (its id is in `free_tags`).
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
    /// Tag → id, for the tags some live flow carries.
    tag_ids: FxHashMap<Tag, TagId>,
    /// By id.
    tags: Vec<Tagged>,
    free_tags: Vec<TagId>,
    /// The `Dst` tags of live flows, ordered per router (what a new route captures).
    decided: Decided,
}

impl std::fmt::Debug for FlowCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowCache")
            .field("flows", &self.len)
            .field("tags", &self.tag_ids.len())
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
    /// A record sized for `flows` flows (see `Config::flow_capacity`).
    pub fn with_capacity(flows: usize) -> FlowCache {
        let mut c = FlowCache::default();
        c.slots.reserve(flows);
        c.origins.reserve(flows);
        c.by_cookie.reserve(flows);
        c.by_match.reserve(flows, |e| spread(e.hash));
        c
    }

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
    pub fn insert(&mut self, mut flow: Flow, tags: &[Tag], origin: Origin) -> bool {
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
        flow.tags.clear();
        for t in tags {
            let id = self.intern(*t);
            let tagged = &mut self.tags[id as usize];
            tagged.live += 1;
            tagged.entries.push((slot, generation));
            flow.tags.push(id);
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
        for &id in &flow.tags {
            let Some(tagged) = self.tags.get_mut(id as usize) else {
                continue;
            };
            tagged.live = tagged.live.saturating_sub(1);
            if tagged.live == 0 {
                let t = tagged.tag;
                tagged.entries = Vec::new();
                self.tag_ids.remove(&t);
                self.free_tags.push(id);
                if let Tag::Dst(r, net) = t {
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
            .filter_map(|t| self.tag_ids.get(t))
            .flat_map(|&id| self.tags[id as usize].entries.iter())
            .filter(|&&(s, g)| live(&self.slots, s, g))
            .filter_map(|&(s, _)| self.flow(s).map(|f| f.cookie))
            .collect();
        cookies.sort_unstable();
        cookies.dedup();
        cookies
    }

    /// How many live flows carry `tag`.
    pub fn count_tagged(&self, tag: &Tag) -> usize {
        self.tag_ids
            .get(tag)
            .map_or(0, |&id| self.tags[id as usize].live as usize)
    }

    /// The tags of `flow` (a record of this cache), in the order it was recorded with.
    pub fn tags_of<'a>(&'a self, flow: &'a Flow) -> impl Iterator<Item = Tag> + 'a {
        flow.tags.iter().map(|&id| self.tags[id as usize].tag)
    }

    /// Whether `flow` (a record of this cache) carries exactly `tags` (each once, as recorded).
    pub fn same_tags(&self, flow: &Flow, tags: &[Tag]) -> bool {
        if flow.tags.len() != tags.len() {
            return false;
        }
        // The same walk records its tags in the same order: the common case reads the ids
        // beside the record and the table's rows, and allocates nothing.
        if self.tags_of(flow).zip(tags).all(|(a, b)| a == *b) {
            return true;
        }
        let mut a: Vec<Tag> = self.tags_of(flow).collect();
        let mut b = tags.to_vec();
        a.sort_unstable();
        b.sort_unstable();
        a == b
    }

    /// The id of `t`, numbered now if no live flow carries it.
    fn intern(&mut self, t: Tag) -> TagId {
        if let Some(&id) = self.tag_ids.get(&t) {
            return id;
        }
        let row = Tagged {
            tag: t,
            live: 0,
            entries: Vec::new(),
        };
        let id = match self.free_tags.pop() {
            Some(id) => {
                self.tags[id as usize] = row;
                id
            }
            None => {
                self.tags.push(row);
                // More distinct tags than u32 ids would need more memory than the machine has.
                TagId::try_from(self.tags.len() - 1).expect("fewer than 2^32 tags")
            }
        };
        self.tag_ids.insert(t, id);
        if let Tag::Dst(r, net) = t {
            self.decided.insert(r, net);
        }
        id
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

    /// A flow and the tags it is inserted with.
    fn flow(cookie: u64, dpid: u64, m: u32, tags: &[u8]) -> (Flow, Vec<Tag>) {
        let router = Uuid::from_u128(7);
        let f = Flow::new(
            cookie,
            dpid,
            100,
            MatchKey::of(&Match {
                fields: [OxmField::InPort(m)].into_iter().collect(),
            }),
            None,
            None,
        );
        let tags = tags
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
            .collect();
        (f, tags)
    }

    /// What a record says, its tags read through the table.
    type View = (u64, u64, u16, MatchKey, Vec<Tag>);
    fn view(cache: &FlowCache, f: &Flow) -> View {
        (
            f.cookie,
            f.dpid,
            f.priority,
            f.match_.clone(),
            cache.tags_of(f).collect(),
        )
    }
    fn model_view((f, tags): &(Flow, Vec<Tag>)) -> View {
        (f.cookie, f.dpid, f.priority, f.match_.clone(), tags.clone())
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

    #[test]
    fn match_keys_built_either_way_agree() {
        use super::super::flowkey::{Field, Seen};
        // A routed, filtered flow's match (eight fields, out of key order) and a few others.
        let frame = crate::harness::frames::udp(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            [10, 0, 1, 10],
            [10, 0, 2, 20],
            1000,
            2000,
        );
        let h = Header::parse(&frame).expect("a UDP frame");
        let mut seen = Seen::EMPTY;
        for f in [
            Field::EthSrc,
            Field::EthDst,
            Field::Ipv4Src,
            Field::Ipv4Dst,
            Field::TpDst,
        ] {
            seen.fields.insert(f);
        }
        seen.nw_src_len = 32;
        seen.nw_dst_len = 28;
        let routed = h.to_match(7, seen);
        assert_eq!(routed.fields.len(), 8);
        let meta = OxmField::Metadata {
            value: 7,
            mask: Some(0xffff),
        };
        for m in [
            routed,
            Match::default(),
            Match {
                fields: [OxmField::InPort(3), meta.clone()].into_iter().collect(),
            },
            Match {
                fields: [meta, OxmField::EthType(0x806), OxmField::ArpOp(1)]
                    .into_iter()
                    .rev()
                    .collect(),
            },
        ] {
            assert_eq!(MatchKey::of(&m), MatchKey::sorted_then_emitted(&m), "{m:?}");
        }
    }

    proptest! {
        /// Against a plain model (cookie → flow): lookups by cookie and by match, the tagged
        /// cookies and counts, and the decided prefixes agree after any sequence of inserts,
        /// removals and invalidations — the slab's reuse and the lists' compaction included.
        #[test]
        fn agrees_with_a_plain_model(ops in prop::collection::vec(op(), 1..300)) {
            let mut cache = FlowCache::default();
            let mut model: BTreeMap<u64, (Flow, Vec<Tag>)> = BTreeMap::new();
            let mut next = 1u64;
            for op in ops {
                match op {
                    Op::Insert { dpid, m, tags } => {
                        let (f, tags) = flow(next, dpid, m, &tags);
                        next += 1;
                        // The switch replaces the same (dpid, priority, match).
                        if let Some(old) = cache.find(f.dpid, f.priority, &f.match_).map(|f| f.cookie) {
                            prop_assert!(cache.remove(old).is_some());
                            model.remove(&old);
                        }
                        prop_assert!(cache.insert(f.clone(), &tags, (Uuid::nil(), m, header())));
                        prop_assert!(cache.get(f.cookie).is_some_and(|r| cache.same_tags(r, &tags)));
                        model.insert(f.cookie, (f, tags));
                    }
                    Op::Remove(i) => {
                        if let Some(&c) = model.keys().nth(i % model.len().max(1)) {
                            let got = cache.remove(c).map(|f| (f.cookie, f.dpid, f.priority, f.match_));
                            let want = model.remove(&c).map(|(f, _)| (f.cookie, f.dpid, f.priority, f.match_));
                            prop_assert_eq!(got, want);
                        }
                    }
                    Op::Invalidate(tags) => {
                        let tags: Vec<Tag> = flow(0, 0, 0, &tags).1;
                        let want: Vec<u64> = model.values()
                            .filter(|(_, ft)| ft.iter().any(|t| tags.contains(t)))
                            .map(|(f, _)| f.cookie).collect();
                        prop_assert_eq!(cache.tagged(&tags), want.clone());
                        for c in want {
                            prop_assert!(cache.remove(c).is_some());
                            model.remove(&c);
                        }
                    }
                }
                prop_assert_eq!(cache.len(), model.len());
                for m in model.values() {
                    let f = &m.0;
                    prop_assert_eq!(cache.get(f.cookie).map(|r| view(&cache, r)), Some(model_view(m)));
                    prop_assert_eq!(
                        cache.find(f.dpid, f.priority, &f.match_).map(|r| view(&cache, r)),
                        Some(model_view(m))
                    );
                }
                let mut all: BTreeMap<Tag, usize> = BTreeMap::new();
                for (_, ft) in model.values() {
                    for t in ft.iter() {
                        *all.entry(*t).or_default() += 1;
                    }
                }
                for (t, n) in &all {
                    prop_assert_eq!(cache.count_tagged(t), *n);
                    prop_assert_eq!(cache.tagged(std::slice::from_ref(t)).len(), *n);
                }
                prop_assert_eq!(cache.tag_ids.len(), all.len());
                // The table holds a row per live tag plus the free ones, nothing more.
                prop_assert_eq!(cache.tags.len(), cache.tag_ids.len() + cache.free_tags.len());
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
                for t in &cache.tags {
                    prop_assert!(t.entries.len() <= 2 * t.live as usize + 17);
                }
            }
        }
    }
}
