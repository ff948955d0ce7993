//! Route tables of virtual routers: longest-prefix match over static routes, connected subnets
//! and the router's own addresses, and the prefix a flow must match for the decision to hold.
//!
//! A lookup returns the winning routes and how many leading bits of the destination decided
//! it. That is the route's prefix, lengthened just enough to exclude every more specific route
//! the address is *not* in (OVS's classifier does the same with its prefix tries): any address
//! sharing those bits takes the same route, so the flow can match the prefix instead of the
//! address — one flow per (source, next-hop network) instead of MidoNet's one per destination.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use smallvec::SmallVec;
use topology::model::{Port, RouteType};
use topology::Snapshot;
use uuid::Uuid;

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Forward out `port`, to `gateway` or (on-link) to the destination itself.
    Forward {
        /// The router port.
        port: Uuid,
        /// The next hop; `None` when the destination is on the port's link.
        gateway: Option<Ipv4Addr>,
    },
    /// Drop silently.
    Blackhole,
    /// Drop and answer ICMP administratively prohibited.
    Reject,
    /// One of the router's own addresses, on `port`.
    Local {
        /// The router port holding the address.
        port: Uuid,
    },
}

/// One entry of a router's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The route it comes from; `None` for connected subnets and own addresses.
    pub route: Option<Uuid>,
    /// Destination prefix.
    pub dst: Ipv4Net,
    /// Source prefix (policy routing).
    pub src: Ipv4Net,
    /// What it does.
    pub target: Target,
    /// Lower wins among equal prefixes; equal weights share the traffic (ECMP).
    pub weight: u32,
}

/// A router's routes, longest prefix first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    entries: Vec<Entry>,
    /// The longest source prefix of any entry: how much of the source a lookup reads.
    src_len: u8,
}

/// The result of a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup<'a> {
    /// The winning entries (several: ECMP); empty: no route.
    pub chosen: SmallVec<[&'a Entry; 2]>,
    /// Leading bits of the destination that decided it.
    pub dst_len: u8,
}

impl Table {
    /// The table of `router` in `snapshot`: its routes (IPv4), its ports' connected subnets
    /// and its ports' own addresses.
    pub fn build(snapshot: &Snapshot, router: Uuid) -> Table {
        let mut entries = Vec::new();
        for p in snapshot.ports_of(router) {
            let Some((ip, net)) = port_v4(p) else {
                continue;
            };
            entries.push(Entry {
                route: None,
                dst: net,
                src: Ipv4Net::default(),
                target: Target::Forward {
                    port: p.id,
                    gateway: None,
                },
                weight: 0,
            });
            entries.push(Entry {
                route: None,
                dst: Ipv4Net::from(ip),
                src: Ipv4Net::default(),
                target: Target::Local { port: p.id },
                weight: 0,
            });
        }
        for r in snapshot.routes_of(router) {
            let (IpNet::V4(dst), IpNet::V4(src)) = (r.dst.trunc(), r.src.trunc()) else {
                continue;
            };
            let target = match r.route_type {
                RouteType::Blackhole => Target::Blackhole,
                RouteType::Reject => Target::Reject,
                RouteType::Normal => {
                    let Some(port) = r.next_hop_port else {
                        continue;
                    };
                    let gateway = match r.next_hop_gateway {
                        Some(IpAddr::V4(g)) if !g.is_unspecified() => Some(g),
                        Some(_) => continue,
                        None => None,
                    };
                    Target::Forward { port, gateway }
                }
            };
            entries.push(Entry {
                route: Some(r.id),
                dst,
                src,
                target,
                weight: r.weight,
            });
        }
        // Deterministic order: longest prefix, lowest weight, then by route id, so ECMP picks
        // the same member for the same hash on every controller and after every restart.
        entries.sort_by(|a, b| {
            b.dst
                .prefix_len()
                .cmp(&a.dst.prefix_len())
                .then(a.weight.cmp(&b.weight))
                .then(a.route.cmp(&b.route))
                .then(a.dst.cmp(&b.dst))
        });
        let src_len = entries
            .iter()
            .map(|e| e.src.prefix_len())
            .max()
            .unwrap_or(0);
        Table { entries, src_len }
    }

    /// How many leading bits of the source any lookup reads (0: no policy routes).
    pub fn src_len(&self) -> u8 {
        self.src_len
    }

    /// The entries, longest prefix first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The routes for `dst` from `src`.
    pub fn lookup(&self, dst: Ipv4Addr, src: Ipv4Addr) -> Lookup<'_> {
        let mut chosen: SmallVec<[&Entry; 2]> = SmallVec::new();
        let mut best: Option<(u8, u32)> = None;
        for e in &self.entries {
            if let Some((len, _)) = best {
                if e.dst.prefix_len() < len {
                    break;
                }
            }
            if !(e.dst.contains(&dst) && e.src.contains(&src)) {
                continue;
            }
            match best {
                None => {
                    best = Some((e.dst.prefix_len(), e.weight));
                    chosen.push(e);
                }
                Some((_, w)) if e.weight < w => {
                    best = Some((e.dst.prefix_len(), e.weight));
                    chosen.clear();
                    chosen.push(e);
                }
                Some((_, w)) if e.weight == w => chosen.push(e),
                Some(_) => {}
            }
        }
        let len = best.map_or(0, |(l, _)| l);
        // Lengthen the prefix until it excludes every more specific entry: an address
        // outside such an entry must not share the flow with addresses inside it.
        let mut dst_len = len;
        for e in &self.entries {
            let l = e.dst.prefix_len();
            if l <= len {
                break;
            }
            let common = common_prefix(dst, e.dst.network()).min(l);
            dst_len = dst_len.max(if common >= l { l } else { common + 1 });
        }
        Lookup { chosen, dst_len }
    }
}

/// How many leading bits two addresses share.
fn common_prefix(a: Ipv4Addr, b: Ipv4Addr) -> u8 {
    (u32::from(a) ^ u32::from(b)).leading_zeros() as u8
}

/// A port's IPv4 address and subnet, if it has one.
pub fn port_v4(p: &Port) -> Option<(Ipv4Addr, Ipv4Net)> {
    match p.address? {
        IpNet::V4(n) => Some((n.addr(), n.trunc())),
        IpNet::V6(_) => None,
    }
}

/// The destination prefixes routers decided for installed flows, per router (the `Dst` tags in
/// the flow index): which ones a new or changed route overlaps. Ordered by (network, length), so
/// the prefixes inside a route are one range and those containing it one lookup per shorter
/// length — a prefix trie's answers without a scan of every flow's tags.
#[derive(Debug, Default)]
pub struct Decided {
    by_router: rustc_hash::FxHashMap<Uuid, std::collections::BTreeSet<(u32, u8)>>,
}

impl Decided {
    /// Records that some flow depends on `router`'s decision for `net`.
    pub fn insert(&mut self, router: Uuid, net: Ipv4Net) {
        self.by_router
            .entry(router)
            .or_default()
            .insert((u32::from(net.network()), net.prefix_len()));
    }

    /// Forgets it (no flow depends on it any more).
    pub fn remove(&mut self, router: Uuid, net: Ipv4Net) {
        if let Some(set) = self.by_router.get_mut(&router) {
            set.remove(&(u32::from(net.network()), net.prefix_len()));
            if set.is_empty() {
                self.by_router.remove(&router);
            }
        }
    }

    /// Every recorded prefix of `router` that overlaps `net` (contains it or lies inside it).
    pub fn overlapping(&self, router: Uuid, net: Ipv4Net, mut f: impl FnMut(Ipv4Net)) {
        let Some(set) = self.by_router.get(&router) else {
            return;
        };
        let base = u32::from(net.network());
        let len = net.prefix_len();
        let prefix = |n: u32, l: u8| Ipv4Net::new(Ipv4Addr::from(n), l).ok();
        // Shorter prefixes containing it: one per length.
        for l in 0..len {
            let mask = u32::MAX.checked_shl(32 - u32::from(l)).unwrap_or(0);
            if set.contains(&(base & mask, l)) {
                f(prefix(base & mask, l).unwrap_or_default());
            }
        }
        // It and everything inside it: networks in its range, aligned at least as finely (a
        // coarser prefix in the range would start at `base`, with a length below `len`).
        let last = u32::from(net.broadcast());
        for &(n, l) in set.range((base, len)..=(last, 32)) {
            if l >= len {
                f(prefix(n, l).unwrap_or_default());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dst: &str, target: Target) -> Entry {
        Entry {
            route: Some(Uuid::new_v4()),
            dst: dst.parse().unwrap(),
            src: Ipv4Net::default(),
            target,
            weight: 100,
        }
    }

    fn table(mut entries: Vec<Entry>) -> Table {
        entries.sort_by_key(|e| std::cmp::Reverse(e.dst.prefix_len()));
        let src_len = entries
            .iter()
            .map(|e| e.src.prefix_len())
            .max()
            .unwrap_or(0);
        Table { entries, src_len }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins_and_the_mask_excludes_longer_routes() {
        let t = table(vec![
            entry("10.0.0.0/8", Target::Blackhole),
            entry("10.1.0.0/16", Target::Reject),
            entry("0.0.0.0/0", Target::Blackhole),
        ]);
        let any = Ipv4Addr::UNSPECIFIED;
        let l = t.lookup(ip("10.1.2.3"), any);
        assert_eq!(l.chosen[0].target, Target::Reject);
        assert_eq!(l.dst_len, 16);
        // 10.200.0.1 diverges from 10.1.0.0 at bit 8: /9 is enough to keep it out.
        let l = t.lookup(ip("10.200.0.1"), any);
        assert_eq!(l.chosen[0].dst.prefix_len(), 8);
        assert_eq!(l.dst_len, 9);
        // 10.0.0.5 shares 15 bits with 10.1.0.0.
        assert_eq!(t.lookup(ip("10.0.0.5"), any).dst_len, 16);
        // The default route: 11.x diverges from 10.x at bit 7.
        assert_eq!(t.lookup(ip("11.0.0.1"), any).dst_len, 8);
        assert_eq!(t.lookup(ip("192.168.0.1"), any).dst_len, 1);
    }

    #[test]
    fn every_address_under_the_mask_takes_the_same_route() {
        // The property the flows rely on, checked exhaustively over a small space.
        let t = table(vec![
            entry("10.0.0.0/8", Target::Blackhole),
            entry("10.1.0.0/16", Target::Reject),
            entry("10.1.2.0/24", Target::Blackhole),
            entry("10.1.2.128/25", Target::Reject),
            entry("10.64.0.0/10", Target::Reject),
        ]);
        let any = Ipv4Addr::UNSPECIFIED;
        for probe in 0..4096u32 {
            let a = Ipv4Addr::from(0x0a00_0000 | probe.wrapping_mul(0x9e37_79b9) >> 8);
            let l = t.lookup(a, any);
            let mask = u32::MAX.checked_shl(32 - u32::from(l.dst_len)).unwrap_or(0);
            for k in 0..16u32 {
                let b =
                    Ipv4Addr::from((u32::from(a) & mask) | (k.wrapping_mul(0x2545_f491) & !mask));
                let m = t.lookup(b, any);
                assert_eq!(
                    l.chosen.first().map(|e| e.dst),
                    m.chosen.first().map(|e| e.dst),
                    "{a} and {b} share /{} but route differently",
                    l.dst_len
                );
            }
        }
    }

    #[test]
    fn lower_weight_wins_and_equal_weights_are_ecmp() {
        let mut a = entry("0.0.0.0/0", Target::Blackhole);
        a.weight = 10;
        let mut b = entry("0.0.0.0/0", Target::Reject);
        b.weight = 10;
        let mut c = entry("0.0.0.0/0", Target::Reject);
        c.weight = 20;
        let t = table(vec![c, a, b]);
        let l = t.lookup(ip("1.2.3.4"), Ipv4Addr::UNSPECIFIED);
        assert_eq!(l.chosen.len(), 2);
        assert!(l.chosen.iter().all(|e| e.weight == 10));
    }

    #[test]
    fn source_prefixes_select_routes() {
        let mut from_a = entry("0.0.0.0/0", Target::Reject);
        from_a.src = "10.0.0.0/24".parse().unwrap();
        let t = table(vec![from_a, entry("0.0.0.0/0", Target::Blackhole)]);
        assert_eq!(t.src_len(), 24);
        let l = t.lookup(ip("8.8.8.8"), ip("10.0.0.7"));
        assert_eq!(
            l.chosen.len(),
            2,
            "both defaults match a source in 10.0.0.0/24"
        );
        let l = t.lookup(ip("8.8.8.8"), ip("10.0.1.7"));
        assert_eq!(l.chosen.len(), 1);
        assert_eq!(l.chosen[0].target, Target::Blackhole);
    }

    #[test]
    fn no_route_reads_enough_to_stay_out_of_every_route() {
        let t = table(vec![entry("10.0.0.0/8", Target::Blackhole)]);
        let l = t.lookup(ip("11.0.0.1"), Ipv4Addr::UNSPECIFIED);
        assert!(l.chosen.is_empty());
        assert_eq!(l.dst_len, 8);
    }

    /// The ordered index answers exactly what a scan of every recorded prefix would.
    #[test]
    fn decided_prefixes_overlapping_a_route_match_a_scan() {
        use proptest::prelude::*;
        let net = (any::<u32>(), 0u8..=32)
            .prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc());
        // Few high bits vary, so prefixes nest and collide often.
        let near = (0u32..16, 0u8..=32).prop_map(|(a, l)| {
            Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 | a << 20), l)
                .unwrap()
                .trunc()
        });
        proptest!(|(recorded in proptest::collection::vec(prop_oneof![net.clone(), near.clone()], 0..40),
                    removed in proptest::collection::vec(0usize..40, 0..10),
                    route in prop_oneof![net, near])| {
            let r = Uuid::from_u128(7);
            let mut d = Decided::default();
            let mut all = std::collections::BTreeSet::new();
            for n in &recorded {
                d.insert(r, *n);
                all.insert(*n);
            }
            for i in removed {
                if let Some(n) = recorded.get(i) {
                    d.remove(r, *n);
                    all.remove(n);
                }
            }
            let mut got = Vec::new();
            d.overlapping(r, route, |n| got.push(n));
            got.sort();
            let want: Vec<Ipv4Net> = all
                .into_iter()
                .filter(|n| n.contains(&route.network()) || route.contains(&n.network()))
                .collect();
            prop_assert_eq!(got, want);
            let mut other = Vec::new();
            d.overlapping(Uuid::from_u128(8), route, |n| other.push(n));
            prop_assert!(other.is_empty());
        });
    }
}
