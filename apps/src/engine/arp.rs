//! Routers' ARP caches: next-hop resolution with bounded parking, retries with jitter, ageing.
//!
//! One entry per (router, IP). A simulation that needs an unknown next hop asks [`Cache::resolve`]
//! to park its packet; the first ask sends an ARP request, later asks only park (a few packets
//! per IP, a total cap) — at most one request per (router, IP) per retry interval, whatever the
//! packet rate (MidoNet sent one per simulation thread; OVN buffers 4 per IP, 1000 in all).
//! The answer releases the parked packets for a new simulation. No answer after
//! `attempts` requests: the entry is failed for `failed_hold`, its packets are released to be
//! answered with ICMP host unreachable, and a short drop flow holds the rest back.
//!
//! A reachable entry goes stale after `reachable` (jittered) and is refreshed by a new request;
//! unanswered, it is removed and the flows through it invalidated. Jitter is a hash of the
//! entry and the attempt, so the cache stays a deterministic function of its inputs (no clock,
//! no randomness: tests replay exactly) while entries learned together do not refresh together.
//!
//! Time is always an argument; the engine drives [`Cache::poll_timeout`] and
//! [`Cache::handle_timeout`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use uuid::Uuid;

use super::sim::Start;
use crate::{ArpEntry, ArpState};

/// Tunables (defaults: Linux-like retries, MidoNet-like ageing, OVN-like parking).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Between two requests for one entry (jittered ×0.75–1.25).
    pub retry: Duration,
    /// Requests before an entry fails.
    pub attempts: u8,
    /// How long an answer is trusted before a refresh (jittered).
    pub reachable: Duration,
    /// How long a failed entry answers host unreachable before it may be tried again.
    pub failed_hold: Duration,
    /// Packets parked per entry; more are dropped (and counted).
    pub park_per_ip: usize,
    /// Packets parked in all.
    pub park_total: usize,
    /// Entries in all routers together; beyond, unknown next hops are not resolved.
    pub max_entries: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            retry: Duration::from_secs(1),
            attempts: 3,
            reachable: Duration::from_secs(60),
            failed_hold: Duration::from_secs(5),
            park_per_ip: 4,
            park_total: 1000,
            max_entries: 1 << 16,
        }
    }
}

/// What the simulation sees of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Neighbour {
    /// The MAC is known (reachable or stale).
    Known([u8; 6]),
    /// Being resolved.
    Pending,
    /// Resolution failed recently.
    Failed,
}

/// `mac` answered for `ip` behind `router` on `port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heard {
    /// The router.
    pub router: Uuid,
    /// The router port it was heard on.
    pub port: Uuid,
    /// The neighbour's address.
    pub ip: Ipv4Addr,
    /// Its MAC.
    pub mac: [u8; 6],
    /// Whether an unknown entry may be created (an ARP addressed to the router may; a
    /// gratuitous one only refreshes).
    pub create: bool,
}

/// A packet waiting for a next hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// The switch it came from (it is simulated again there).
    pub dpid: u64,
    /// Where its simulation starts.
    pub start: Start,
    /// The whole frame.
    pub frame: bytes::Bytes,
}

/// Something the engine must do about the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Todo {
    /// Send an ARP request for `ip` out router port `port` (from datapath `dpid`).
    Request {
        /// The router.
        router: Uuid,
        /// The port to ask through.
        port: Uuid,
        /// The address asked for.
        ip: Ipv4Addr,
        /// The switch to send it from.
        dpid: u64,
    },
    /// What the simulation sees of (router, ip) changed: invalidate flows tagged with it.
    Changed {
        /// The router.
        router: Uuid,
        /// The address.
        ip: Ipv4Addr,
    },
    /// Simulate these packets again (their next hop answered, or failed).
    Release(Vec<Parked>),
}

/// Counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// ARP requests the routers sent.
    pub requests: u64,
    /// Packets parked.
    pub parked: u64,
    /// Packets dropped because the parking was full.
    pub park_drops: u64,
    /// Entries that failed.
    pub failures: u64,
    /// Entries learned or refreshed by an answer.
    pub learned: u64,
}

#[derive(Debug)]
struct Record {
    port: Uuid,
    mac: Option<[u8; 6]>,
    state: ArpState,
    attempts: u8,
    /// When the entry next changes state.
    deadline: Instant,
    /// Where requests go out from.
    dpid: u64,
    parked: VecDeque<Parked>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Cache {
    config: Config,
    records: FxHashMap<(Uuid, Ipv4Addr), Record>,
    timers: BinaryHeap<Reverse<(Instant, Uuid, Ipv4Addr)>>,
    parked_total: usize,
    stats: Stats,
}

impl Cache {
    /// An empty cache.
    pub fn new(config: Config) -> Cache {
        Cache {
            config,
            ..Cache::default()
        }
    }

    /// Replaces the tunables; entries are kept.
    pub fn set_config(&mut self, config: Config) {
        self.config = config;
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// What the simulation sees of `ip` behind `router`; `None`: never asked for.
    pub fn neighbour(&self, router: Uuid, ip: Ipv4Addr) -> Option<Neighbour> {
        let r = self.records.get(&(router, ip))?;
        Some(match (r.state, r.mac) {
            (ArpState::Failed, _) => Neighbour::Failed,
            (_, Some(mac)) => Neighbour::Known(mac),
            (_, None) => Neighbour::Pending,
        })
    }

    fn jitter(&self, d: Duration, router: Uuid, ip: Ipv4Addr, n: u8) -> Duration {
        use std::hash::BuildHasher;
        // 0.75 ..= 1.25 in 1/1024 steps.
        let f = 768 + (rustc_hash::FxBuildHasher.hash_one((router, ip, n)) % 513) as u32;
        d * f / 1024
    }

    fn arm(&mut self, key: (Uuid, Ipv4Addr), at: Instant) {
        if let Some(r) = self.records.get_mut(&key) {
            r.deadline = at;
            self.timers.push(Reverse((at, key.0, key.1)));
        }
    }

    /// Sends request number `attempt` for `key` and arms the retry: the one place a request
    /// leaves, so the one-per-interval bound holds by construction.
    fn ask(
        &mut self,
        now: Instant,
        key: (Uuid, Ipv4Addr),
        attempt: u8,
        port: Uuid,
        dpid: u64,
        todo: &mut Vec<Todo>,
    ) {
        let (router, ip) = key;
        let at = now + self.jitter(self.config.retry, router, ip, attempt);
        self.arm(key, at);
        self.stats.requests += 1;
        todo.push(Todo::Request {
            router,
            port,
            ip,
            dpid,
        });
    }

    /// A simulation needs `ip` behind `router` out `port` and it is not known: parks `packet`
    /// (when it fits) and says whether a request must go out now.
    pub fn resolve(
        &mut self,
        now: Instant,
        router: Uuid,
        port: Uuid,
        ip: Ipv4Addr,
        packet: Parked,
        todo: &mut Vec<Todo>,
    ) {
        let key = (router, ip);
        if !self.records.contains_key(&key) {
            if self.records.len() >= self.config.max_entries {
                self.stats.park_drops += 1;
                return;
            }
            self.records.insert(
                key,
                Record {
                    port,
                    mac: None,
                    state: ArpState::Resolving,
                    attempts: 1,
                    deadline: now,
                    dpid: packet.dpid,
                    parked: VecDeque::new(),
                },
            );
            self.ask(now, key, 1, port, packet.dpid, todo);
        }
        let full = self.parked_total >= self.config.park_total;
        let Some(r) = self.records.get_mut(&key) else {
            return;
        };
        if r.mac.is_some() || r.state == ArpState::Failed {
            // Answered meanwhile: simulate it again at once.
            todo.push(Todo::Release(vec![packet]));
            return;
        }
        if full || r.parked.len() >= self.config.park_per_ip {
            self.stats.park_drops += 1;
            return;
        }
        r.parked.push_back(packet);
        self.parked_total += 1;
        self.stats.parked += 1;
    }

    /// A router heard an ARP (see [`Heard`]).
    pub fn learn(&mut self, now: Instant, heard: Heard, todo: &mut Vec<Todo>) {
        let Heard {
            router,
            port,
            ip,
            mac,
            create,
        } = heard;
        let key = (router, ip);
        let before = self.neighbour(router, ip);
        let room = self.records.len() < self.config.max_entries;
        match self.records.get_mut(&key) {
            Some(r) => {
                r.mac = Some(mac);
                r.port = port;
                r.state = ArpState::Reachable;
                r.attempts = 0;
            }
            None if create && room => {
                self.records.insert(
                    key,
                    Record {
                        port,
                        mac: Some(mac),
                        state: ArpState::Reachable,
                        attempts: 0,
                        deadline: now,
                        dpid: 0,
                        parked: VecDeque::new(),
                    },
                );
            }
            None => return,
        }
        self.stats.learned += 1;
        let at = now + self.jitter(self.config.reachable, router, ip, 0);
        self.arm(key, at);
        // Flows exist only for a known or failed entry: pending ones park, install nothing.
        if before.is_some_and(|b| b != Neighbour::Known(mac) && b != Neighbour::Pending) {
            todo.push(Todo::Changed { router, ip });
        }
        self.release(key, todo);
    }

    fn release(&mut self, key: (Uuid, Ipv4Addr), todo: &mut Vec<Todo>) {
        if let Some(r) = self.records.get_mut(&key) {
            if !r.parked.is_empty() {
                self.parked_total -= r.parked.len();
                todo.push(Todo::Release(r.parked.drain(..).collect()));
            }
        }
    }

    /// When [`Cache::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Retries, failures, refreshes and expiries due by `now`.
    pub fn handle_timeout(&mut self, now: Instant, todo: &mut Vec<Todo>) {
        while let Some(Reverse((at, router, ip))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let key = (router, ip);
            let Some(r) = self.records.get_mut(&key) else {
                continue;
            };
            if r.deadline != at {
                continue; // re-armed since
            }
            let (port, dpid) = (r.port, r.dpid);
            match r.state {
                ArpState::Resolving | ArpState::Stale if r.attempts < self.config.attempts => {
                    r.attempts += 1;
                    let n = r.attempts;
                    self.ask(now, key, n, port, dpid, todo);
                }
                ArpState::Resolving => {
                    r.state = ArpState::Failed;
                    self.stats.failures += 1;
                    let at = now + self.config.failed_hold;
                    self.arm(key, at);
                    todo.push(Todo::Changed { router, ip });
                    self.release(key, todo);
                }
                ArpState::Reachable => {
                    r.state = ArpState::Stale;
                    r.attempts = 1;
                    self.ask(now, key, 1, port, dpid, todo);
                }
                ArpState::Stale | ArpState::Failed => {
                    self.remove(key, todo);
                }
            }
        }
    }

    fn remove(&mut self, key: (Uuid, Ipv4Addr), todo: &mut Vec<Todo>) {
        if let Some(r) = self.records.remove(&key) {
            self.parked_total -= r.parked.len();
            todo.push(Todo::Changed {
                router: key.0,
                ip: key.1,
            });
        }
    }

    /// Forgets entries whose router or port is gone (their parked packets are dropped).
    pub fn retain(&mut self, mut keep: impl FnMut(Uuid, Uuid) -> bool, todo: &mut Vec<Todo>) {
        let gone: Vec<_> = self
            .records
            .iter()
            .filter(|((router, _), r)| !keep(*router, r.port))
            .map(|(k, _)| *k)
            .collect();
        for k in gone {
            self.remove(k, todo);
        }
    }

    /// A router's entries for the REST view, in address order.
    pub fn table(&self, now: Instant, router: Uuid) -> Vec<ArpEntry> {
        let mut v: Vec<ArpEntry> = self
            .records
            .iter()
            .filter(|((r, _), _)| *r == router)
            .map(|((_, ip), r)| ArpEntry {
                ip: *ip,
                mac: r.mac,
                port_id: r.port,
                state: r.state,
                expires_in_secs: r.deadline.saturating_duration_since(now).as_secs(),
                parked: r.parked.len(),
            })
            .collect();
        v.sort_by_key(|e| e.ip);
        v
    }

    /// Packets parked in all.
    pub fn parked(&self) -> usize {
        self.parked_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(n: u8) -> Parked {
        Parked {
            dpid: 1,
            start: Start::Ingress {
                port: Uuid::nil(),
                in_port: 1,
            },
            frame: bytes::Bytes::from(vec![n]),
        }
    }

    const IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);

    fn heard(router: Uuid, port: Uuid, mac: [u8; 6], create: bool) -> Heard {
        Heard {
            router,
            port,
            ip: IP,
            mac,
            create,
        }
    }

    #[test]
    fn a_hundred_packets_while_unresolved_send_one_request_and_park_four() {
        let mut c = Cache::new(Config::default());
        let (r, p, t0) = (Uuid::new_v4(), Uuid::new_v4(), Instant::now());
        let mut todo = vec![];
        for i in 0..100 {
            c.resolve(t0, r, p, IP, pkt(i), &mut todo);
        }
        let requests = todo
            .iter()
            .filter(|t| matches!(t, Todo::Request { .. }))
            .count();
        assert_eq!(requests, 1);
        assert_eq!(c.parked(), 4);
        assert_eq!(c.stats().park_drops, 96);
        assert_eq!(c.neighbour(r, IP), Some(Neighbour::Pending));
        todo.clear();
        c.learn(t0, heard(r, p, [2, 0, 0, 0, 0, 9], true), &mut todo);
        let released: Vec<_> = todo
            .iter()
            .filter_map(|t| match t {
                Todo::Release(v) => Some(v.len()),
                _ => None,
            })
            .collect();
        assert_eq!(released, vec![4]);
        // Pending → known is no change any flow saw (none was installed while pending).
        assert!(!todo.iter().any(|t| matches!(t, Todo::Changed { .. })));
        assert_eq!(c.parked(), 0);
        assert_eq!(
            c.neighbour(r, IP),
            Some(Neighbour::Known([2, 0, 0, 0, 0, 9]))
        );
    }

    #[test]
    fn retries_are_jittered_then_the_entry_fails_and_releases() {
        let cfg = Config::default();
        let mut c = Cache::new(cfg.clone());
        let (r, p, t0) = (Uuid::new_v4(), Uuid::new_v4(), Instant::now());
        let mut todo = vec![];
        c.resolve(t0, r, p, IP, pkt(1), &mut todo);
        let mut requests = vec![t0];
        let mut now = t0;
        while let Some(at) = c.poll_timeout() {
            if c.neighbour(r, IP) == Some(Neighbour::Failed) || at > t0 + Duration::from_secs(30) {
                break;
            }
            now = at;
            todo.clear();
            c.handle_timeout(now, &mut todo);
            if todo.iter().any(|t| matches!(t, Todo::Request { .. })) {
                requests.push(now);
            }
        }
        assert_eq!(requests.len(), usize::from(cfg.attempts));
        for w in requests.windows(2) {
            let gap = w[1] - w[0];
            assert!(
                gap >= cfg.retry * 3 / 4 && gap <= cfg.retry * 5 / 4,
                "{gap:?}"
            );
        }
        assert_eq!(c.neighbour(r, IP), Some(Neighbour::Failed));
        assert!(todo
            .iter()
            .any(|t| matches!(t, Todo::Release(v) if v.len() == 1)));
        assert!(todo.iter().any(|t| matches!(t, Todo::Changed { .. })));
        // Held failed, then forgotten so a new packet tries again.
        c.handle_timeout(now + cfg.failed_hold, &mut todo);
        assert_eq!(c.neighbour(r, IP), None);
    }

    #[test]
    fn reachable_goes_stale_is_refreshed_or_removed() {
        let cfg = Config::default();
        let mut c = Cache::new(cfg.clone());
        let (r, p, t0) = (Uuid::new_v4(), Uuid::new_v4(), Instant::now());
        let mut todo = vec![];
        let mac = [2, 0, 0, 0, 0, 7];
        c.learn(t0, heard(r, p, mac, true), &mut todo);
        assert!(todo.is_empty(), "a new entry changes no flow");
        let t1 = c.poll_timeout().unwrap();
        assert!(t1 >= t0 + cfg.reachable * 3 / 4);
        c.handle_timeout(t1, &mut todo);
        assert!(matches!(todo[..], [Todo::Request { .. }]));
        assert_eq!(c.table(t1, r)[0].state, ArpState::Stale);
        // Still used while stale.
        assert_eq!(c.neighbour(r, IP), Some(Neighbour::Known(mac)));
        // An answer with a new MAC: flows through the old one must go.
        todo.clear();
        c.learn(t1, heard(r, p, [2, 0, 0, 0, 0, 8], true), &mut todo);
        assert!(matches!(todo[..], [Todo::Changed { .. }]));
        // Unanswered refreshes remove it.
        let mut now = t1;
        for _ in 0..10 {
            let Some(at) = c.poll_timeout() else { break };
            now = at;
            c.handle_timeout(now, &mut todo);
        }
        assert_eq!(c.neighbour(r, IP), None);
        let _ = now;
    }

    #[test]
    fn gratuitous_arp_only_updates() {
        let mut c = Cache::new(Config::default());
        let (r, p, t0) = (Uuid::new_v4(), Uuid::new_v4(), Instant::now());
        let mut todo = vec![];
        c.learn(t0, heard(r, p, [2, 0, 0, 0, 0, 1], false), &mut todo);
        assert_eq!(c.neighbour(r, IP), None);
    }

    #[test]
    fn parking_has_a_total_cap() {
        let mut c = Cache::new(Config {
            park_total: 6,
            ..Config::default()
        });
        let (r, p, t0) = (Uuid::new_v4(), Uuid::new_v4(), Instant::now());
        let mut todo = vec![];
        for i in 0..4u8 {
            for _ in 0..4 {
                c.resolve(t0, r, p, Ipv4Addr::new(10, 0, 1, i), pkt(i), &mut todo);
            }
        }
        assert_eq!(c.parked(), 6);
    }
}
