//! Seeing what the network does: traces, flow provenance and per-port counters.
//!
//! - `POST /trace` runs the engine's simulation with effects off (see `apps::engine::trace`) and
//!   answers every step, where the copies go and the exact flow the ingress host would get.
//! - `GET /flows/{cookie}` explains an installed flow: the packet that made it traced again now,
//!   beside the flow the switch really has; `consistent` says whether they agree (the oracle).
//! - `GET /switches/{dpid}/flows` gains a `provenance` per engine flow ([`provenance`]).
//! - `GET /ports/{id}/stats`: packets and bytes that entered by a port through installed flows,
//!   and drops by reason, from the switches' flow statistics.
//!
//! The engine gives ids; naming them (device names, port addresses and interfaces) and the text
//! are here. [`render`] prints a trace for the CLI, in full or `--minimal`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::Arc;

use apps::engine::flowkey::{Arp, Header, Ipv4, L4};
use apps::engine::pipeline::TABLE_CACHE;
use apps::engine::sim::{FlowKind, Reply, Tag};
use apps::engine::trace::{
    Delivery, FilterAt, FilterVerdict, FlowInfo, NextHop, RouteTarget, Step, Trace, Via,
};
use apps::Bindings;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Json;
use ofproto::display::{Dpid, FlowText, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use topology::model::{Bridge, Chain, DhcpSubnet, MacAddr, Port, Route, Router, RuleAction};
use topology::{DeviceKind, Network, Snapshot};
use utoipa::ToSchema;
use uuid::Uuid;

use super::switches::flow_stats;
use super::topology::extract::Body;
use super::topology::Runtime;
use crate::api::ApiError;
use crate::openflow::Switches;

/// What the handlers share.
#[derive(Clone)]
struct Ctx {
    net: Network,
    rt: Runtime,
    switches: Switches,
}

/// `/trace`, `/flows/{cookie}` and `/ports/{id}/stats`.
pub fn routes(net: Network, rt: Runtime, switches: Switches) -> axum::Router {
    axum::Router::new()
        .route("/trace", post(trace))
        .route("/flows/{cookie}", get(explain))
        .route("/ports/{id}/stats", get(port_stats))
        .with_state(Ctx { net, rt, switches })
}

/// Per flow of one switch, by cookie: what produced it (for `GET /switches/{dpid}/flows`).
pub type Provenance = Arc<dyn Fn(u64) -> HashMap<u64, Value> + Send + Sync>;

/// The [`Provenance`] of the engine's flows, named from the topology now.
pub fn provenance(net: Network, rt: Runtime) -> Provenance {
    Arc::new(move |dpid| {
        let Some(apps::Answer::Flows(flows)) = rt.query(&apps::Query::Flows { dpid: Some(dpid) })
        else {
            return HashMap::new();
        };
        let snap = net.snapshot();
        let bindings = rt.bindings();
        let names = Names::new(&snap, &bindings);
        flows
            .iter()
            .map(|f| (f.cookie, names.provenance(f)))
            .collect()
    })
}

// ---- names ----

/// Names ids from the topology and bindings, for people: device names, router ports by address,
/// VIF ports by interface and host.
struct Names<'a> {
    snap: &'a Snapshot,
    bindings: &'a Bindings,
}

fn short(id: Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}

impl<'a> Names<'a> {
    fn new(snap: &'a Snapshot, bindings: &'a Bindings) -> Self {
        Names { snap, bindings }
    }

    fn device(&self, id: Uuid) -> String {
        if let Some(b) = self.snap.get::<Bridge>(id) {
            return b.name.clone();
        }
        if let Some(r) = self.snap.get::<Router>(id) {
            return r.name.clone();
        }
        short(id)
    }

    fn host(&self, id: Uuid) -> String {
        self.snap
            .hosts()
            .find(|h| h.id == id)
            .map_or_else(|| short(id), |h| h.name.clone())
    }

    /// `r1:10.0.1.1/24`, `net1:tap1@hv1`, `net1:to-r1`, or `net1:1a2b3c4d`.
    fn port(&self, id: Uuid) -> String {
        let Some(p) = self.snap.get::<Port>(id) else {
            return short(id);
        };
        let dev = self.device(p.device_id);
        if let Some(a) = p.address {
            return format!("{dev}:{a}");
        }
        if let Some(l) = self.bindings.port(id) {
            return format!("{dev}:{}@{}", l.interface, self.host(l.host));
        }
        if let Some(peer) = p.peer_id.and_then(|q| self.snap.get::<Port>(q)) {
            return format!("{dev}:to-{}", self.device(peer.device_id));
        }
        format!("{dev}:{}", short(id))
    }

    fn chain(&self, id: Uuid) -> String {
        self.snap
            .get::<Chain>(id)
            .map_or_else(|| short(id), |c| c.name.clone())
    }

    fn rule(&self, id: Uuid) -> String {
        match self.snap.rule_with_position(id) {
            Some(r) => format!("{}#{}", self.chain(r.chain_id), r.position),
            None => short(id),
        }
    }

    fn route(&self, id: Uuid) -> String {
        let Some(r) = self.snap.get::<Route>(id) else {
            return short(id);
        };
        match r.next_hop_gateway {
            Some(g) => format!("{} via {g}", r.dst),
            None => r.dst.to_string(),
        }
    }

    fn reply(&self, r: &Reply) -> String {
        match r {
            Reply::ArpReply { mac } => format!("ARP reply: is-at {}", Mac(*mac)),
            Reply::EchoReply => "ICMP echo reply".into(),
            Reply::IcmpError { error, ip, .. } => {
                use ofproto::packet::Icmpv4Error as E;
                let what = match error {
                    E::NetUnreachable => "network unreachable".to_owned(),
                    E::HostUnreachable => "host unreachable".to_owned(),
                    E::ProtocolUnreachable => "protocol unreachable".to_owned(),
                    E::PortUnreachable => "port unreachable".to_owned(),
                    E::FragmentationNeeded { next_hop_mtu } => {
                        format!("fragmentation needed (MTU {next_hop_mtu})")
                    }
                    E::AdminProhibited => "administratively prohibited".to_owned(),
                    E::TtlExceeded => "time exceeded".to_owned(),
                    E::ReassemblyTimeExceeded => "reassembly time exceeded".to_owned(),
                };
                format!("ICMP {what} from {ip}")
            }
            Reply::Dhcp { bridge } => format!("DHCP from {}'s server", self.device(*bridge)),
            Reply::TcpReset => "TCP RST".into(),
        }
    }

    /// One step as a line, and its kind.
    fn step(&self, s: &Step) -> (&'static str, String) {
        match *s {
            Step::Enter { port, device, kind } => {
                let kind = match kind {
                    DeviceKind::Bridge => "bridge",
                    DeviceKind::Router => "router",
                };
                (
                    "ingress",
                    format!("{kind} {}: in by {}", self.device(device), self.port(port)),
                )
            }
            Step::Filter { chain, at, verdict } => {
                let at = match at {
                    FilterAt::PortIn(_) => "port inbound",
                    FilterAt::DeviceIn(_) => "inbound",
                    FilterAt::DeviceOut(_) => "outbound",
                    FilterAt::PortOut(_) => "port outbound",
                };
                let verdict = match verdict {
                    FilterVerdict::Accept => "accept",
                    FilterVerdict::Continue => "no rule decided: go on",
                    FilterVerdict::Drop => "DROP",
                    FilterVerdict::Reject => "REJECT",
                };
                (
                    "filter",
                    format!("{at} filter {}: {verdict}", self.chain(chain)),
                )
            }
            Step::Rule { rule, action, .. } => (
                "rule",
                format!("rule {} matches: {}", self.rule(rule), action_name(action)),
            ),
            Step::Learn { mac, port, .. } => (
                "learn",
                format!(
                    "source {} is on {} (learned by real packets, not by a trace)",
                    Mac(mac),
                    self.port(port)
                ),
            ),
            Step::MacHit {
                mac, port, learned, ..
            } => (
                "mac",
                if learned {
                    format!("destination {} learned on {}", Mac(mac), self.port(port))
                } else {
                    let router = self
                        .snap
                        .get::<Port>(port)
                        .and_then(|p| self.snap.get::<Port>(p.peer_id?))
                        .map_or_else(|| "a router".to_owned(), |r| self.port(r.id));
                    format!("destination {} is router port {router}", Mac(mac))
                },
            ),
            Step::Flood { mac, .. } => (
                "flood",
                if mac == [0xff; 6] {
                    "broadcast: flood".into()
                } else {
                    format!("destination {} unknown: flood", Mac(mac))
                },
            ),
            Step::Route {
                dst,
                prefix,
                route,
                ecmp,
                target,
                ..
            } => {
                let by = match route {
                    Some(r) => format!("route {}", self.route(r)),
                    None if target == RouteTarget::None => "no route".into(),
                    None => "connected".into(),
                };
                let to = match target {
                    RouteTarget::None => "ICMP network unreachable".into(),
                    RouteTarget::Local => "to the router itself".into(),
                    RouteTarget::Blackhole => "blackhole".into(),
                    RouteTarget::Reject => "reject".into(),
                    RouteTarget::Forward { port, gateway } => match gateway {
                        Some(g) => format!("out {} via {g}", self.port(port)),
                        None => format!("out {}", self.port(port)),
                    },
                };
                let ecmp = if ecmp > 1 {
                    format!(" (one of {ecmp} equal-cost routes)")
                } else {
                    String::new()
                };
                (
                    "route",
                    format!("lookup {dst}: {by}, {to}{ecmp} (decided for {prefix})"),
                )
            }
            Step::NextHop { ip, mac, .. } => (
                "next_hop",
                match mac {
                    NextHop::Topology(m) => format!("next hop {ip} is {} (topology)", Mac(m)),
                    NextHop::Arp(m) => format!("next hop {ip} is {} (ARP cache)", Mac(m)),
                    NextHop::Failed => {
                        format!("next hop {ip}: ARP failed, ICMP host unreachable")
                    }
                    NextHop::Unresolved => {
                        format!("next hop {ip} unknown: the packet would wait for ARP")
                    }
                },
            ),
            Step::Rewrite {
                eth_src,
                eth_dst,
                ttl,
            } => {
                let mut t = format!("eth_src={},eth_dst={}", Mac(eth_src), Mac(eth_dst));
                if let Some(ttl) = ttl {
                    let _ = write!(t, ",ttl={ttl}");
                }
                ("rewrite", t)
            }
            Step::Leave { port, .. } => ("egress", format!("out by {}", self.port(port))),
            Step::Deliver { port } => ("output", format!("output to {}", self.port(port))),
            Step::Unbound { port } => (
                "unbound",
                format!("{} is not bound to an interface: no copy", self.port(port)),
            ),
            Step::Answer { from, reply } => (
                "answer",
                format!("answer {} out of {}", self.reply(&reply), self.port(from)),
            ),
            Step::Drop { reason } => ("drop", format!("drop: {}", reason.as_str())),
        }
    }

    fn delivery(&self, d: &Delivery) -> Value {
        let host = d.host.map(|h| self.host(h));
        let (via, text) = match d.via {
            Via::Local { ofport } => ("local", format!("output:{ofport}")),
            Via::Tunnel { ofport, key } => (
                "tunnel",
                format!(
                    "tunnel to {}: tun_id={key:#x}, output:{ofport}",
                    host.as_deref().unwrap_or("?")
                ),
            ),
            Via::Hairpin => ("hairpin", "the port it came in by: not sent".into()),
            Via::NoTunnel => ("no_tunnel", "no tunnel to its host yet: not sent".into()),
            Via::Unbound => ("unbound", "not bound: not sent".into()),
            Via::NoIngressHost => ("no_ingress_host", "the ingress port is not bound".into()),
        };
        let mut v = json!({
            "port_id": d.port,
            "port": self.port(d.port),
            "host": host,
            "dpid": d.dpid.map(|x| Dpid(x).to_string()),
            "via": via,
            "text": text,
        });
        if let Via::Tunnel { ofport, key } = d.via {
            v["ofport"] = json!(ofport);
            v["tun_id"] = json!(key);
        } else if let Via::Local { ofport } = d.via {
            v["ofport"] = json!(ofport);
        }
        v
    }

    fn tag(&self, t: &Tag) -> Value {
        let (kind, id, name) = match *t {
            Tag::Port(p) => ("port", Some(p), self.port(p)),
            Tag::Device(d) => ("device", Some(d), self.device(d)),
            Tag::Mac(b, m) => ("mac", Some(b), format!("{} {}", self.device(b), Mac(m))),
            Tag::Flood(b, m) => (
                "flood",
                Some(b),
                format!("{} unknown {}", self.device(b), Mac(m)),
            ),
            Tag::Arp(r, ip) => ("arp", Some(r), format!("{} {ip}", self.device(r))),
            Tag::Chain(c) => ("chain", Some(c), self.chain(c)),
            Tag::Route(r) => ("route", Some(r), self.route(r)),
            Tag::Dst(r, n) => ("destination", Some(r), format!("{} {n}", self.device(r))),
            Tag::PortGroup(g) => ("port_group", Some(g), short(g)),
            Tag::AddrGroup(g) => ("ip_addr_group", Some(g), short(g)),
            Tag::Tunnel(from, to) => (
                "tunnel",
                Some(to),
                format!("{} → {}", self.host(from), self.host(to)),
            ),
        };
        json!({"kind": kind, "id": id, "name": name})
    }

    /// What produced a flow: its ingress, the packet, the devices on its path and everything it
    /// depends on.
    fn provenance(&self, f: &FlowInfo) -> Value {
        let mut path: Vec<String> = Vec::new();
        let mut depends = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for t in &f.tags {
            if !seen.insert(*t) {
                continue;
            }
            if let Tag::Device(d) = t {
                path.push(self.device(*d));
            }
            depends.push(self.tag(t));
        }
        json!({
            "ingress_port_id": f.port,
            "ingress_port": self.port(f.port),
            "packet": packet_text(&f.header),
            "path": path,
            "depends_on": depends,
            "drop_reason": f.drop.map(|d| d.as_str()),
        })
    }
}

fn action_name(a: RuleAction) -> &'static str {
    match a {
        RuleAction::Accept => "accept",
        RuleAction::Drop => "drop",
        RuleAction::Reject => "reject",
        RuleAction::Continue => "continue",
        RuleAction::Return => "return",
        RuleAction::Jump => "jump",
        RuleAction::Dnat => "dnat (not yet: matches nothing)",
        RuleAction::Snat => "snat (not yet: matches nothing)",
        RuleAction::RevDnat => "rev_dnat (not yet: matches nothing)",
        RuleAction::RevSnat => "rev_snat (not yet: matches nothing)",
    }
}

/// A header in `ovs-ofctl` flow syntax (what `strowger trace` takes back).
pub fn packet_text(h: &Header) -> String {
    let mut t = String::new();
    let proto = h.ipv4.map(|i| i.proto);
    match (h.eth_type, proto) {
        (0x0800, Some(1)) => t.push_str("icmp"),
        (0x0800, Some(6)) => t.push_str("tcp"),
        (0x0800, Some(17)) => t.push_str("udp"),
        (0x0800, _) => t.push_str("ip"),
        (0x0806, _) => t.push_str("arp"),
        (other, _) => {
            let _ = write!(t, "dl_type={other:#06x}");
        }
    }
    let _ = write!(t, ",dl_src={},dl_dst={}", Mac(h.eth_src), Mac(h.eth_dst));
    if let Some(ip) = h.ipv4 {
        let _ = write!(t, ",nw_src={},nw_dst={}", ip.src, ip.dst);
        if !matches!(ip.proto, 1 | 6 | 17) {
            let _ = write!(t, ",nw_proto={}", ip.proto);
        }
        let _ = write!(t, ",nw_ttl={}", ip.ttl);
        match ip.frag {
            0 => {}
            1 => t.push_str(",nw_frag=first"),
            _ => t.push_str(",nw_frag=later"),
        }
    }
    if let Some(a) = h.arp {
        let _ = write!(
            t,
            ",arp_op={},arp_spa={},arp_tpa={},arp_sha={}",
            a.op,
            a.spa,
            a.tpa,
            Mac(a.sha)
        );
    }
    match h.l4 {
        L4::Tcp(s, d) | L4::Udp(s, d) => {
            let _ = write!(t, ",tp_src={s},tp_dst={d}");
        }
        L4::Icmp(ty, code) => {
            let _ = write!(t, ",icmp_type={ty},icmp_code={code}");
        }
        L4::Other => {}
    }
    t
}

// ---- the packet to trace ----

/// Parses `ovs-ofctl` flow syntax (`icmp,nw_src=10.0.0.2,nw_dst=10.0.1.5`) into the trace
/// API's packet fields.
pub fn packet_from_flow(flow: &str) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for item in flow.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = match item.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (item, None),
        };
        let proto = |out: &mut Map<String, Value>, p: &str| {
            out.insert("proto".into(), json!(p));
        };
        match (k, v) {
            ("ip", None) => {
                out.insert("eth_type".into(), json!(0x0800));
            }
            ("icmp" | "tcp" | "udp", None) => proto(&mut out, k),
            ("arp", None) => {
                out.insert("eth_type".into(), json!(0x0806));
            }
            (k, Some(v)) => {
                let key = match k {
                    "dl_src" | "eth_src" => "eth_src",
                    "dl_dst" | "eth_dst" => "eth_dst",
                    "dl_type" | "eth_type" => "eth_type",
                    "dl_vlan" | "vlan_vid" | "vlan" => "vlan",
                    "nw_src" | "ip_src" | "ipv4_src" => "ip_src",
                    "nw_dst" | "ip_dst" | "ipv4_dst" => "ip_dst",
                    "nw_proto" | "ip_proto" | "proto" => "proto",
                    "nw_ttl" | "ttl" => "ttl",
                    "tp_src" | "tcp_src" | "udp_src" => "tp_src",
                    "tp_dst" | "tcp_dst" | "udp_dst" => "tp_dst",
                    "icmp_type" | "icmpv4_type" => "icmp_type",
                    "icmp_code" | "icmpv4_code" => "icmp_code",
                    "arp_op" => "arp_op",
                    "arp_spa" => "arp_spa",
                    "arp_tpa" => "arp_tpa",
                    "arp_sha" => "arp_sha",
                    "ip_len" | "nw_len" | "len" => "ip_len",
                    "df" => "df",
                    "nw_frag" | "frag" => "frag",
                    other => return Err(format!("{other}: not a field a trace takes")),
                };
                let value = match v.parse::<u64>() {
                    Ok(n) if key != "eth_src" && key != "eth_dst" => json!(n),
                    _ if v.starts_with("0x") => u64::from_str_radix(&v[2..], 16)
                        .map(|n| json!(n))
                        .map_err(|_| format!("{k}={v}: bad hex number"))?,
                    _ if v == "true" || v == "false" => json!(v == "true"),
                    _ => json!(v),
                };
                out.insert(key.into(), value);
            }
            (k, None) => return Err(format!("{k}: expected a protocol or key=value")),
        }
    }
    Ok(out)
}

/// `POST /trace`: where the packet enters and what it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceRequest {
    /// The ingress port; or give `host_id` and `interface_name` of a bound VIF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_port_id: Option<Uuid>,
    /// The host (id or name) of the ingress VIF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    /// The ingress VIF's interface name on that host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
    /// The packet's fields; missing ones get defaults (the answer lists them in `assumed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet: Option<TracePacket>,
    /// The packet in `ovs-ofctl` flow syntax instead (`icmp,nw_dst=10.0.1.5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
}

/// An IPv4 protocol: a name or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Proto {
    /// `icmp`, `tcp` or `udp`.
    Name(ProtoName),
    /// Any protocol number.
    Number(u8),
}

/// A protocol name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProtoName {
    /// 1.
    Icmp,
    /// 6.
    Tcp,
    /// 17.
    Udp,
}

/// Which fragment an IPv4 packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Frag {
    /// Not a fragment.
    No,
    /// The first fragment (it carries the transport header).
    First,
    /// A later fragment (no transport header).
    Later,
}

/// The fields of a packet to trace. Giving any IPv4 field makes it IPv4, any ARP field ARP.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TracePacket {
    /// Source MAC (default: the port's, or the one learned on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eth_src: Option<MacAddr>,
    /// Destination MAC (default: the destination's lease, or the gateway's when off-link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eth_dst: Option<MacAddr>,
    /// EtherType (default: IPv4, or ARP when ARP fields are given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eth_type: Option<u16>,
    /// A VLAN id: ignored (VIFs carry untagged frames); the answer says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 4095)]
    pub vlan: Option<u16>,
    /// IPv4 source (default: the source MAC's DHCP lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Ipv4)]
    pub ip_src: Option<Ipv4Addr>,
    /// IPv4 destination (default: the gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Ipv4)]
    pub ip_dst: Option<Ipv4Addr>,
    /// IPv4 protocol (default: icmp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<Proto>,
    /// TTL (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
    /// TCP/UDP source port (default 40000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tp_src: Option<u16>,
    /// TCP/UDP destination port (default 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tp_dst: Option<u16>,
    /// ICMP type (default 8, echo request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    /// ICMP code (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<u8>,
    /// ARP operation (default 1, request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arp_op: Option<u16>,
    /// ARP sender address (default: `ip_src`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Ipv4)]
    pub arp_spa: Option<Ipv4Addr>,
    /// ARP target address (default: `ip_dst`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Ipv4)]
    pub arp_tpa: Option<Ipv4Addr>,
    /// ARP sender MAC (default: `eth_src`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arp_sha: Option<MacAddr>,
    /// IPv4 total length (default 84, a ping's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_len: Option<u16>,
    /// Don't fragment (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub df: Option<bool>,
    /// Which fragment (default: no).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frag: Option<Frag>,
}

/// What the defaults are taken from: the ingress port's segment.
struct Segment {
    /// The ingress port's own MAC (a router port), or the MAC learned on it, or a lease's.
    mac: Option<([u8; 6], &'static str)>,
    /// DHCP leases of the ingress bridge: (MAC, address).
    leases: Vec<([u8; 6], Ipv4Addr)>,
    /// The gateway (router port) of the ingress bridge: (MAC, address, subnet).
    gateway: Option<([u8; 6], ipnet::Ipv4Net)>,
}

impl Segment {
    fn of(snap: &Snapshot, rt: &Runtime, port: &Port) -> Segment {
        let mut leases = Vec::new();
        for s in snap.dhcp_subnets_of(port.device_id) {
            let s: &DhcpSubnet = s;
            for h in &s.hosts {
                if let std::net::IpAddr::V4(a) = h.ip {
                    leases.push((h.mac.0, a));
                }
            }
        }
        let gateway = snap
            .ports_of(port.device_id)
            .filter_map(|p| snap.get::<Port>(p.peer_id?))
            .find_map(|r| match (r.mac, r.address) {
                (Some(m), Some(ipnet::IpNet::V4(n))) => Some((m.0, n)),
                _ => None,
            });
        let learned = match rt.query(&apps::Query::MacTable {
            bridge: port.device_id,
        }) {
            Some(apps::Answer::MacTable(v)) => {
                v.into_iter().find(|e| e.port_id == port.id).map(|e| e.mac)
            }
            _ => None,
        };
        let mac = port
            .mac
            .map(|m| (m.0, "the port's MAC"))
            .or(learned.map(|m| (m, "the MAC learned on the port")));
        Segment {
            mac,
            leases,
            gateway,
        }
    }
}

/// The header to trace from the API's packet fields; and what was assumed, in words.
fn header_from(p: &TracePacket, seg: &Segment) -> (Header, Vec<String>) {
    let mut assumed = Vec::new();
    let mut assume = |text: String| assumed.push(text);
    let proto = p.proto.map(|x| match x {
        Proto::Name(ProtoName::Icmp) => 1,
        Proto::Name(ProtoName::Tcp) => 6,
        Proto::Name(ProtoName::Udp) => 17,
        Proto::Number(n) => n,
    });
    let arp_fields =
        p.arp_op.is_some() || p.arp_spa.is_some() || p.arp_tpa.is_some() || p.arp_sha.is_some();
    let eth_type = match p.eth_type {
        Some(t) => t,
        None if arp_fields => 0x0806,
        None => {
            if p.ip_src.is_none() && p.ip_dst.is_none() && p.proto.is_none() {
                assume("eth_type=0x0800 (IPv4)".into());
            }
            0x0800
        }
    };
    if let Some(v) = p.vlan {
        assume(format!(
            "vlan {v} ignored: the virtual network carries untagged frames (VIFs are access ports)"
        ));
    }
    let eth_src = match p.eth_src {
        Some(m) => m.0,
        None => {
            let by_ip = p.ip_src.and_then(|a| seg.leases.iter().find(|l| l.1 == a));
            let (m, why) = match (seg.mac, by_ip) {
                (Some(m), _) => m,
                (None, Some(l)) => (l.0, "the DHCP lease of ip_src"),
                (None, None) => ([0x02, 0, 0, 0, 0, 0x01], "a made-up local MAC"),
            };
            assume(format!("eth_src={} ({why})", Mac(m)));
            m
        }
    };
    let mut h = Header::ethernet(eth_src, [0xff; 6], eth_type);
    match eth_type {
        0x0800 => {
            let src = p.ip_src.unwrap_or_else(|| {
                let (a, why) = seg
                    .leases
                    .iter()
                    .find(|l| l.0 == eth_src)
                    .map_or((Ipv4Addr::UNSPECIFIED, "unknown"), |l| {
                        (l.1, "eth_src's DHCP lease")
                    });
                assume(format!("ip_src={a} ({why})"));
                a
            });
            let dst = p.ip_dst.unwrap_or_else(|| {
                let g = seg.gateway.map_or(Ipv4Addr::BROADCAST, |g| g.1.addr());
                assume(format!("ip_dst={g} (the gateway)"));
                g
            });
            let proto = proto.unwrap_or_else(|| {
                assume("proto=icmp".into());
                1
            });
            let ttl = p.ttl.unwrap_or_else(|| {
                assume("ttl=64".into());
                64
            });
            let l4 = match proto {
                6 | 17 => {
                    let sp = p.tp_src.unwrap_or_else(|| {
                        assume("tp_src=40000".into());
                        40000
                    });
                    let dp = p.tp_dst.unwrap_or_else(|| {
                        assume("tp_dst=80".into());
                        80
                    });
                    if proto == 6 {
                        L4::Tcp(sp, dp)
                    } else {
                        L4::Udp(sp, dp)
                    }
                }
                1 => {
                    let ty = p.icmp_type.unwrap_or_else(|| {
                        assume("icmp_type=8 (echo request)".into());
                        8
                    });
                    L4::Icmp(ty, p.icmp_code.unwrap_or(0))
                }
                _ => L4::Other,
            };
            let frag = match p.frag {
                None | Some(Frag::No) => 0,
                Some(Frag::First) => 1,
                Some(Frag::Later) => 3,
            };
            h.ipv4 = Some(Ipv4 {
                src,
                dst,
                proto,
                ttl,
                total_len: p.ip_len.unwrap_or(84),
                df: p.df.unwrap_or(false),
                frag,
            });
            h.l4 = if frag & 2 != 0 { L4::Other } else { l4 };
            h.eth_dst = match p.eth_dst {
                Some(m) => m.0,
                None => {
                    let on_link = seg.gateway.is_some_and(|g| g.1.contains(&dst));
                    let lease = seg.leases.iter().find(|l| l.1 == dst).map(|l| l.0);
                    let (m, why) = match (lease, seg.gateway) {
                        (Some(m), _) if on_link || seg.gateway.is_none() => {
                            (m, "ip_dst's DHCP lease")
                        }
                        (_, Some(g)) if !on_link => (g.0, "the gateway: ip_dst is off-link"),
                        (_, Some(g)) if dst == g.1.addr() => (g.0, "the gateway"),
                        _ => ([0xff; 6], "broadcast: ip_dst's MAC is unknown"),
                    };
                    assume(format!("eth_dst={} ({why})", Mac(m)));
                    m
                }
            };
        }
        0x0806 => {
            h.arp = Some(Arp {
                op: p.arp_op.unwrap_or(1),
                sha: p.arp_sha.map_or(eth_src, |m| m.0),
                spa: p.arp_spa.or(p.ip_src).unwrap_or(Ipv4Addr::UNSPECIFIED),
                tpa: p.arp_tpa.or(p.ip_dst).unwrap_or(Ipv4Addr::UNSPECIFIED),
            });
            h.eth_dst = p.eth_dst.map_or([0xff; 6], |m| m.0);
        }
        _ => {
            h.eth_dst = p.eth_dst.map_or_else(
                || {
                    assume("eth_dst=ff:ff:ff:ff:ff:ff".into());
                    [0xff; 6]
                },
                |m| m.0,
            );
        }
    }
    (h, assumed)
}

// ---- handlers ----

async fn trace(
    State(cx): State<Ctx>,
    Body(req): Body<TraceRequest>,
) -> Result<Json<Value>, ApiError> {
    let snap = cx.net.snapshot();
    let bindings = cx.rt.bindings();
    let port = ingress(&snap, &bindings, &req)?;
    let packet = match (req.packet, req.flow) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "flow",
                "give `packet` or `flow`, not both",
            ))
        }
        (Some(p), None) => p,
        (None, Some(f)) => {
            let fields = packet_from_flow(&f).map_err(|e| ApiError::invalid("flow", e))?;
            serde_json::from_value(Value::Object(fields))
                .map_err(|e| ApiError::invalid("flow", e.to_string()))?
        }
        (None, None) => TracePacket::default(),
    };
    let seg = Segment::of(&snap, &cx.rt, &port);
    let (header, assumed) = header_from(&packet, &seg);
    let query = apps::Query::Trace {
        port: port.id,
        header,
    };
    let t = match cx.rt.query(&query) {
        Some(apps::Answer::Trace(t)) => t,
        _ => {
            return Err(ApiError::unavailable(
                "the running app does not trace (run the engine: --app engine)",
            ))
        }
    };
    let names = Names::new(&snap, &bindings);
    let mut v = trace_json(&names, port.id, &header, &t);
    v["assumed"] = json!(assumed);
    Ok(Json(v))
}

/// The ingress port named by `ingress_port_id`, or by `host_id` (id or name) and
/// `interface_name` through the bindings.
fn ingress(snap: &Snapshot, bindings: &Bindings, req: &TraceRequest) -> Result<Port, ApiError> {
    if let Some(id) = req.ingress_port_id {
        return snap.get::<Port>(id).map(|p| Port::clone(p)).ok_or_else(|| {
            ApiError::not_found(format!("no port {id}")).with_field("ingress_port_id")
        });
    }
    let (Some(host), Some(iface)) = (req.host_id.as_deref(), req.interface_name.as_deref()) else {
        return Err(ApiError::invalid(
            "ingress_port_id",
            "give ingress_port_id, or host_id and interface_name",
        ));
    };
    let host = snap
        .hosts()
        .find(|h| h.name == host || h.id.to_string() == host)
        .ok_or_else(|| ApiError::not_found(format!("no host {host:?}")).with_field("host_id"))?;
    let id = bindings
        .bound()
        .find(|(_, l)| l.host == host.id && l.interface == iface)
        .map(|(id, _)| id)
        .or_else(|| snap.port_by_binding(host.id, iface).map(|p| p.id))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no port is bound to interface {iface:?} on host {}",
                host.name
            ))
            .with_field("interface_name")
        })?;
    snap.get::<Port>(id)
        .map(|p| Port::clone(p))
        .ok_or_else(|| ApiError::not_found(format!("no port {id}")))
}

/// A trace as the API answers it.
fn trace_json(names: &Names<'_>, port: Uuid, header: &Header, t: &Trace) -> Value {
    let loc = names.bindings.port(port);
    let steps: Vec<Value> = t
        .steps
        .iter()
        .map(|s| {
            let (kind, text) = names.step(&s.step);
            json!({"depth": s.depth.saturating_sub(1), "kind": kind, "text": text})
        })
        .collect();
    let sim = &t.compiled.simulation;
    let verdict = if !sim.egress.is_empty() {
        "forwarded"
    } else if sim.resolve.is_some() {
        "parked"
    } else if !sim.generated.is_empty() {
        "answered"
    } else {
        "dropped"
    };
    let kind = match sim.flow {
        FlowKind::Cache => "cache",
        FlowKind::Short => "short",
        FlowKind::Answer => "answer",
        FlowKind::None => "none",
    };
    let flow = match t.dpid {
        None => Value::Null,
        Some(dpid) => {
            let host = loc.map(|l| names.host(l.host));
            let mut f = json!({
                "host": host,
                "dpid": Dpid(dpid).to_string(),
                "kind": kind,
            });
            if sim.flow == FlowKind::None {
                f["text"] = json!(
                    "no flow: the controller must see every such packet (an answer, a parked \
                     packet, an expired TTL or a malformed header)"
                );
            } else {
                let ins = t.compiled.instructions();
                f["table_id"] = json!(TABLE_CACHE);
                f["priority"] = json!(t.compiled.priority);
                f["match"] = json!(t.compiled.match_.to_string());
                f["ofctl"] = json!(FlowText {
                    table_id: TABLE_CACHE,
                    priority: t.compiled.priority,
                    match_: &t.compiled.match_,
                    instructions: &ins,
                }
                .to_string());
                if sim.flow == FlowKind::Answer {
                    f["text"] = json!(
                        "an answer's flow: every packet it matches comes to the controller, \
                         which answers it; it makes OVS cache exactly these fields"
                    );
                }
            }
            f
        }
    };
    json!({
        "ingress": {
            "port_id": port,
            "port": names.port(port),
            "host": loc.map(|l| names.host(l.host)),
            "dpid": loc.map(|l| Dpid(l.dpid).to_string()),
            "ofport": loc.map(|l| l.ofport),
        },
        "packet": packet_text(header),
        "steps": steps,
        "result": {
            "verdict": verdict,
            "drop_reason": sim.drop.filter(|_| sim.egress.is_empty()).map(|d| d.as_str()),
            "outputs": t.deliveries.iter().map(|d| names.delivery(d)).collect::<Vec<_>>(),
        },
        "flow": flow,
    })
}

/// Whether two matches hold the same fields: a switch answers them in its own order.
fn same_fields(a: &ofproto::Match, b: &ofproto::Match) -> bool {
    a.fields.len() == b.fields.len() && a.fields.iter().all(|f| b.fields.contains(f))
}

fn parse_cookie(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

async fn explain(
    State(cx): State<Ctx>,
    Path(cookie): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = parse_cookie(&cookie).ok_or_else(|| {
        ApiError::bad_request(format!("{cookie:?} is not a cookie (decimal or 0x-hex)"))
            .with_field("cookie")
    })?;
    let (info, t) = match cx.rt.query(&apps::Query::Explain { cookie: c }) {
        Some(apps::Answer::Explain(Some(e))) => *e,
        Some(apps::Answer::Explain(None)) => {
            return Err(ApiError::not_found(format!(
                "the engine installed no flow with cookie {c:#x} (or it is gone)"
            )))
        }
        _ => {
            return Err(ApiError::unavailable(
                "the running app does not explain flows (run the engine: --app engine)",
            ))
        }
    };
    let snap = cx.net.snapshot();
    let bindings = cx.rt.bindings();
    let names = Names::new(&snap, &bindings);
    let mut v = json!({
        "cookie": format!("{c:#x}"),
        "dpid": Dpid(info.dpid).to_string(),
        "provenance": names.provenance(&info),
    });
    v["trace"] = trace_json(&names, info.port, &info.header, &t);
    // The flow as the switch has it: what the oracle compares the re-simulation with.
    let installed = match cx.switches.get(info.dpid) {
        None => None,
        Some(sw) => {
            let req = ofproto::FlowStatsRequest {
                table_id: TABLE_CACHE,
                cookie: c,
                cookie_mask: u64::MAX,
                ..Default::default()
            };
            flow_stats(&sw, req).await?.into_iter().next()
        }
    };
    let ins = t.compiled.instructions();
    let mut differences = Vec::new();
    match &installed {
        None => differences.push("the switch has no flow with this cookie".to_owned()),
        Some(f) => {
            if t.compiled.simulation.flow == FlowKind::None {
                differences.push("the packet now goes to the controller: no flow".into());
            }
            if f.priority != t.compiled.priority {
                differences.push(format!(
                    "priority: installed {}, now {}",
                    f.priority, t.compiled.priority
                ));
            }
            if !same_fields(&f.match_, &t.compiled.match_) {
                differences.push(format!(
                    "match: installed {}, now {}",
                    f.match_, t.compiled.match_
                ));
            }
            if f.instructions != ins {
                differences.push(format!(
                    "actions: installed {}, now {}",
                    FlowText {
                        table_id: TABLE_CACHE,
                        priority: 0,
                        match_: &f.match_,
                        instructions: &f.instructions
                    },
                    FlowText {
                        table_id: TABLE_CACHE,
                        priority: 0,
                        match_: &f.match_,
                        instructions: &ins
                    },
                ));
            }
        }
    }
    v["installed"] = installed.as_ref().map_or(Value::Null, |f| {
        json!({
            "ofctl": FlowText {
                table_id: f.table_id,
                priority: f.priority,
                match_: &f.match_,
                instructions: &f.instructions,
            }
            .to_string(),
            "packet_count": f.packet_count,
            "byte_count": f.byte_count,
            "duration_sec": f.duration_sec,
        })
    });
    v["consistent"] = json!(differences.is_empty());
    v["differences"] = json!(differences);
    Ok(Json(v))
}

async fn port_stats(
    State(cx): State<Ctx>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a port id")).with_field("id"))?;
    let snap = cx.net.snapshot();
    snap.find::<Port>(id)?;
    let flows = match cx.rt.query(&apps::Query::Flows { dpid: None }) {
        Some(apps::Answer::Flows(f)) => f,
        _ => Vec::new(),
    };
    let mine: HashMap<u64, &FlowInfo> = flows
        .iter()
        .filter(|f| f.port == id)
        .map(|f| (f.cookie, f))
        .collect();
    let mut dpids: Vec<u64> = mine.values().map(|f| f.dpid).collect();
    dpids.sort_unstable();
    dpids.dedup();
    let (mut packets, mut bytes, mut n) = (0u64, 0u64, 0u64);
    let mut drops: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
    for dpid in dpids {
        let Some(sw) = cx.switches.get(dpid) else {
            continue;
        };
        let req = ofproto::FlowStatsRequest {
            table_id: TABLE_CACHE,
            ..Default::default()
        };
        for f in flow_stats(&sw, req).await? {
            let Some(info) = mine.get(&f.cookie) else {
                continue;
            };
            n += 1;
            match info.drop {
                Some(d) => {
                    let e = drops.entry(d.as_str()).or_default();
                    e.0 += f.packet_count;
                    e.1 += f.byte_count;
                }
                None => {
                    packets += f.packet_count;
                    bytes += f.byte_count;
                }
            }
        }
    }
    let bindings = cx.rt.bindings();
    let names = Names::new(&snap, &bindings);
    Ok(Json(json!({
        "port_id": id,
        "port": names.port(id),
        "flows": n,
        "rx_packets": packets,
        "rx_bytes": bytes,
        "drops": drops
            .into_iter()
            .map(|(k, (p, b))| (k.to_owned(), json!({"packets": p, "bytes": b})))
            .collect::<Map<String, Value>>(),
        "note": "packets that entered by this port and hit an installed flow; the first packet \
                 of each flow goes through the controller and is not counted here",
    })))
}

// ---- text ----

/// A trace answer (`POST /trace`, or an explanation's `trace`) as text: every step indented by
/// its depth in the walk, like `ovn-trace`; or, `minimal`, only the header changes, answers,
/// drops and outputs, which is stable enough for regression tests.
pub fn render(v: &Value, minimal: bool) -> String {
    let mut out = String::new();
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let steps = v["steps"].as_array().cloned().unwrap_or_default();
    if minimal {
        for st in &steps {
            let kind = st["kind"].as_str().unwrap_or_default();
            if matches!(kind, "rewrite" | "answer" | "drop" | "unbound") {
                let _ = writeln!(out, "{}", s(&st["text"]));
            }
        }
        for o in v["result"]["outputs"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "output {}: {}", s(&o["port"]), s(&o["text"]));
        }
        if v["result"]["outputs"].as_array().is_none_or(Vec::is_empty) {
            let _ = writeln!(out, "{}", s(&v["result"]["verdict"]));
        }
        return out;
    }
    let _ = writeln!(out, "trace: {}", s(&v["packet"]));
    let _ = writeln!(
        out,
        "ingress: {}{}",
        s(&v["ingress"]["port"]),
        v["ingress"]["host"]
            .as_str()
            .map(|h| format!(" on {h}"))
            .unwrap_or_else(|| " (not bound)".into())
    );
    for a in v["assumed"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "assumed: {}", s(a));
    }
    out.push('\n');
    for st in &steps {
        let depth = st["depth"].as_u64().unwrap_or(0) as usize;
        let _ = writeln!(out, "{}{}", "    ".repeat(depth), s(&st["text"]));
    }
    out.push('\n');
    let r = &v["result"];
    let _ = write!(out, "result: {}", s(&r["verdict"]));
    if let Some(d) = r["drop_reason"].as_str() {
        let _ = write!(out, " ({d})");
    }
    out.push('\n');
    for o in r["outputs"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  output {}{}: {}",
            s(&o["port"]),
            o["host"]
                .as_str()
                .map(|h| format!(" on {h}"))
                .unwrap_or_default(),
            s(&o["text"])
        );
    }
    let f = &v["flow"];
    if !f.is_null() {
        let _ = writeln!(out, "flow on {} ({}):", s(&f["host"]), s(&f["kind"]));
        let text = f["ofctl"]
            .as_str()
            .or(f["text"].as_str())
            .unwrap_or_default();
        let _ = writeln!(out, "  {text}");
    }
    out
}
