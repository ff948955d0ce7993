//! Rule chains in the simulation: the inbound and outbound filters of ports, bridges and routers.
//!
//! Where they run (MidoNet's order): a port's inbound filter as a packet enters a device through
//! that port; the device's inbound filter as the device receives it (a router after its own ARP
//! handling, so a filter cannot cut the router off from its neighbours); the device's outbound
//! filter once the device chose the egress port (per branch of a flood; a router after its MAC
//! rewrite and TTL decrement); the egress port's outbound filter as the packet leaves by it.
//! Answers the devices generate pass the outbound filters of the ports they leave by too.
//!
//! A rule reads only the fields its condition names, in a fixed order, and stops at the first
//! that does not match: the flow matches exactly what decided (MidoNet read every field of every
//! rule it evaluated). Prefix conditions read the prefix, not the address. Ports, port groups
//! and the chain itself are not packet fields: they are decided by the path, and a change to a
//! chain, its rules or a group deletes the flows tagged with it.

use std::net::IpAddr;

use ipnet::IpNet;
use ofproto::packet::Icmpv4Error;
use topology::model::{Condition, FragmentPolicy, PortRange, RuleAction};
use uuid::Uuid;

use super::flowkey::Tracked;
use super::sim::{DropReason, Reply, Tag, Walk};
use super::trace::{FilterAt, FilterVerdict, Step};

/// How deep `jump`s may nest before the packet is dropped as a loop.
pub const MAX_JUMPS: usize = 16;

/// Where a filter runs: what `in_ports`/`out_ports` see, and where a reject answers from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hook {
    /// The port the packet entered the current device by (`None` for generated packets).
    pub in_port: Option<Uuid>,
    /// The port it leaves by, once known.
    pub out_port: Option<Uuid>,
    /// For a router: its ingress port's (MAC, address), the source of an ICMP reject.
    pub router_port: Option<([u8; 6], std::net::Ipv4Addr)>,
}

/// What a chain decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accept,
    Drop,
    Reject,
    /// Fell off the end, or `return`: the caller goes on.
    Return,
}

impl Walk<'_> {
    /// Runs filter `chain` (if any): `Ok` lets the packet on.
    pub(super) fn filter(
        &mut self,
        chain: Option<Uuid>,
        at: FilterAt,
        hook: Hook,
        pkt: &mut Tracked,
    ) -> Result<(), DropReason> {
        let Some(chain) = chain else {
            return Ok(());
        };
        let verdict = self.run_chain(chain, hook, pkt, 0)?;
        self.note(|| Step::Filter {
            chain,
            at,
            verdict: match verdict {
                Verdict::Accept => FilterVerdict::Accept,
                Verdict::Return => FilterVerdict::Continue,
                Verdict::Drop => FilterVerdict::Drop,
                Verdict::Reject => FilterVerdict::Reject,
            },
        });
        match verdict {
            Verdict::Accept | Verdict::Return => Ok(()),
            Verdict::Drop => Err(DropReason::Filtered),
            Verdict::Reject => {
                self.reject(hook, pkt);
                Err(DropReason::Rejected)
            }
        }
    }

    fn run_chain(
        &mut self,
        id: Uuid,
        hook: Hook,
        pkt: &mut Tracked,
        depth: usize,
    ) -> Result<Verdict, DropReason> {
        if depth > MAX_JUMPS {
            return Err(DropReason::Loop);
        }
        self.tag(Tag::Chain(id));
        let ctx = self.ctx;
        // A chain that is gone lets everything through: its deletion is a change like any
        // other (the tag), and a filter id can only name an existing chain.
        let Some(rules) = ctx.index.chain(id) else {
            return Ok(Verdict::Return);
        };
        for rule in rules.iter() {
            if !self.condition(&rule.condition, hook, pkt)? {
                continue;
            }
            self.note(|| Step::Rule {
                chain: id,
                rule: rule.id,
                action: rule.action,
            });
            match rule.action {
                RuleAction::Accept => return Ok(Verdict::Accept),
                RuleAction::Drop => return Ok(Verdict::Drop),
                RuleAction::Reject => return Ok(Verdict::Reject),
                RuleAction::Return => return Ok(Verdict::Return),
                RuleAction::Continue => {}
                RuleAction::Jump => {
                    if let Some(target) = rule.jump_chain_id {
                        match self.run_chain(target, hook, pkt, depth + 1)? {
                            Verdict::Return => {}
                            decided => return Ok(decided),
                        }
                    }
                }
                // NAT comes with conntrack: until then such a rule matches nothing.
                RuleAction::Dnat | RuleAction::Snat | RuleAction::RevDnat | RuleAction::RevSnat => {
                }
            }
        }
        Ok(Verdict::Return)
    }

    /// Whether the condition holds, reading only what it must, field by field.
    fn condition(
        &mut self,
        c: &Condition,
        hook: Hook,
        pkt: &mut Tracked,
    ) -> Result<bool, DropReason> {
        Ok(self.fields(c, hook, pkt)? != c.cond_invert)
    }

    fn fields(&mut self, c: &Condition, hook: Hook, pkt: &mut Tracked) -> Result<bool, DropReason> {
        // Each test: whether the field matches, against its `inv_*`.
        let pass = |hit: bool, inv: bool| hit != inv;
        if !c.in_ports.is_empty() {
            let hit = hook.in_port.is_some_and(|p| c.in_ports.contains(&p));
            if !pass(hit, c.inv_in_ports) {
                return Ok(false);
            }
        }
        if !c.out_ports.is_empty() {
            let hit = hook.out_port.is_some_and(|p| c.out_ports.contains(&p));
            if !pass(hit, c.inv_out_ports) {
                return Ok(false);
            }
        }
        if let Some(g) = c.port_group_id {
            self.tag(Tag::PortGroup(g));
            let index = self.ctx.index;
            let hit = [hook.in_port, hook.out_port]
                .into_iter()
                .flatten()
                .any(|p| index.in_port_group(g, p));
            if !pass(hit, c.inv_port_group) {
                return Ok(false);
            }
        }
        if let Some(t) = c.dl_type {
            if !pass(pkt.eth_type() == t, c.inv_dl_type) {
                return Ok(false);
            }
        }
        if let Some(m) = c.dl_src {
            if !pass(pkt.eth_src() == m.0, c.inv_dl_src) {
                return Ok(false);
            }
        }
        if let Some(m) = c.dl_dst {
            if !pass(pkt.eth_dst() == m.0, c.inv_dl_dst) {
                return Ok(false);
            }
        }
        let l3 = c.nw_src.is_some()
            || c.nw_dst.is_some()
            || c.nw_proto.is_some()
            || c.tp_src.is_some()
            || c.tp_dst.is_some()
            || c.ip_addr_group_src.is_some()
            || c.ip_addr_group_dst.is_some();
        if l3 && pkt.malformed() {
            // An IPv4 EtherType without a readable header: no flow may stand for it.
            pkt.eth_type();
            self.consumed = true;
            return Err(DropReason::Malformed);
        }
        if let Some(net) = c.nw_src {
            let hit = match net {
                IpNet::V4(n) => pkt
                    .ipv4_src_prefix(n.prefix_len())
                    .is_some_and(|a| n.contains(&a)),
                IpNet::V6(_) => {
                    pkt.eth_type();
                    false
                }
            };
            if !pass(hit, c.inv_nw_src) {
                return Ok(false);
            }
        }
        if let Some(net) = c.nw_dst {
            let hit = match net {
                IpNet::V4(n) => pkt
                    .ipv4_dst_prefix(n.prefix_len())
                    .is_some_and(|a| n.contains(&a)),
                IpNet::V6(_) => {
                    pkt.eth_type();
                    false
                }
            };
            if !pass(hit, c.inv_nw_dst) {
                return Ok(false);
            }
        }
        if let Some(p) = c.nw_proto {
            if !pass(pkt.ip_proto() == Some(p), c.inv_nw_proto) {
                return Ok(false);
            }
        }
        let in_range = |r: PortRange, p: Option<u16>| p.is_some_and(|p| r.start <= p && p <= r.end);
        if let Some(r) = c.tp_src {
            if !pass(in_range(r, pkt.tp_src()), c.inv_tp_src) {
                return Ok(false);
            }
        }
        if let Some(r) = c.tp_dst {
            if !pass(in_range(r, pkt.tp_dst()), c.inv_tp_dst) {
                return Ok(false);
            }
        }
        if c.fragment_policy != FragmentPolicy::Any {
            // Not IPv4 counts as unfragmented (MidoNet's reading).
            let frag = pkt.ip_frag().unwrap_or(0);
            let hit = match c.fragment_policy {
                FragmentPolicy::Any => true,
                FragmentPolicy::Header => frag & 2 == 0,
                FragmentPolicy::Nonheader => frag & 2 != 0,
                FragmentPolicy::Unfragmented => frag == 0,
            };
            if !hit {
                return Ok(false);
            }
        }
        if let Some(g) = c.ip_addr_group_src {
            self.tag(Tag::AddrGroup(g));
            let index = self.ctx.index;
            let hit = pkt
                .ipv4_src()
                .is_some_and(|a| index.in_addr_group(g, IpAddr::V4(a)));
            if !pass(hit, c.inv_ip_addr_group_src) {
                return Ok(false);
            }
        }
        if let Some(g) = c.ip_addr_group_dst {
            self.tag(Tag::AddrGroup(g));
            let index = self.ctx.index;
            let hit = pkt
                .ipv4_dst()
                .is_some_and(|a| index.in_addr_group(g, IpAddr::V4(a)));
            if !pass(hit, c.inv_ip_addr_group_dst) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Answers a rejected packet: TCP RST for TCP, else ICMP administratively prohibited — from
    /// the router port it came in by, or on a bridge as if from its destination.
    fn reject(&mut self, hook: Hook, pkt: &mut Tracked) {
        let Some(from) = hook.in_port else {
            return;
        };
        let h = *pkt.header();
        let Some(ip) = h.ipv4 else {
            return;
        };
        let reply = if matches!(h.l4, super::flowkey::L4::Tcp(..)) {
            Reply::TcpReset
        } else {
            let (mac, src) = hook.router_port.unwrap_or((h.eth_dst, ip.dst));
            Reply::IcmpError {
                error: Icmpv4Error::AdminProhibited,
                mac,
                ip: src,
            }
        };
        self.generate(from, reply);
    }
}
