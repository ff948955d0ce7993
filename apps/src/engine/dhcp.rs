//! The engine's DHCP server: answers a client on a bridge from its subnets' static leases.
//!
//! The answer (RFC 2131) is a pure function of the topology snapshot and the client's frame.
//! Policy lives here and only here; `ofproto::packet` reads the request ([`PacketView`]) and
//! encodes whatever reply this module describes field by field ([`DhcpFrame`]).
//!
//! * **Leases are static.** A client is known by its MAC (`chaddr`) in the hosts of an enabled
//!   subnet of the bridge; it always gets the same address, so DISCOVER → OFFER and REQUEST →
//!   ACK need no state, RELEASE and DECLINE free nothing, and no clock is read. Unknown clients
//!   are not answered: another server on the segment may own them.
//! * **The server's identity** ([`server`]) is the address a client sees in option 54 and must
//!   reach when it renews by unicast: `server_addr`, else the gateway, else the subnet's last
//!   usable address; its MAC is the router port's that owns that address when one is linked to
//!   the bridge (so ARP and renewals reach a real port), else a fixed MAC derived from the
//!   subnet id. The simulation recognises renewals sent to it through [`servers_of`].
//! * **Options**: mask, router, DNS, MTU (the subnet's, else [`DhcpConfig::default_mtu`] for the
//!   tunnel overhead), host name, lease time with T1 = ½ and T2 = ⅞ of it (RFC 2131 §4.4.5),
//!   and option 121. A client that accepts option 121 ignores option 3 (RFC 3442 §"DHCP Client
//!   Behavior"), so when there are classless routes and a gateway the default route is added to
//!   them; option 3 stays for clients without 121.
//! * **Where the reply goes** follows RFC 2131 §4.1 in its order: to a relay (`giaddr`, whose
//!   requests come from port 67 as RFC 1542 has it) on port 67; a NAK by broadcast; to a client that has an address (`ciaddr`) by unicast; by broadcast
//!   when the client asks for it or has no address to receive on; else to `chaddr`/`yiaddr`.
//!   VLAN tags are mirrored so the reply returns on the segment the request came from.
//!
//! Every request that gets no answer says why ([`Ignored`]), so the engine can count it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ofproto::packet::{
    dhcp_frame, ClasslessRoute, DhcpFrame, DhcpMessageType, DhcpOptions, DhcpView, PacketView,
    DHCP_CLIENT_PORT, DHCP_SERVER_PORT, L2,
};
use topology::model::{DhcpHost, DhcpSubnet, Port};
use topology::Snapshot;
use uuid::Uuid;

/// Server settings that are not part of the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpConfig {
    /// Option 51, in seconds. Static leases never change, so a long lease costs nothing.
    pub lease_secs: u32,
    /// Option 26 when the subnet names no MTU: 1500 less the 50 bytes of VXLAN over IPv4, so
    /// guests do not send frames the tunnel would have to fragment.
    pub default_mtu: u16,
}

impl Default for DhcpConfig {
    fn default() -> Self {
        DhcpConfig {
            lease_secs: 86_400,
            default_mtu: 1450,
        }
    }
}

/// Why a frame got no DHCP answer. [`Ignored::as_str`] names the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ignored {
    /// Not UDP/IPv4 from port 68 to port 67.
    NotDhcp,
    /// UDP 68 → 67, but not a whole BOOTP/DHCP message for an Ethernet client.
    Malformed,
    /// A BOOTREPLY (op 2): another server's message, not a client's.
    NotARequest,
    /// No enabled subnet of the bridge has a static lease for the client's MAC.
    UnknownClient,
    /// A REQUEST naming another server (option 54): the client chose that server's offer.
    OtherServer,
    /// A RELEASE: static leases have nothing to free.
    Released,
    /// A DECLINE (the client found its address in use): the lease is static, so nothing changes.
    Declined,
    /// Plain BOOTP (no option 53) or a message type a client does not send to a server.
    Unsupported,
    /// The bridge serves no DHCP, or the client's subnet is disabled.
    Disabled,
    /// The subnet has no IPv4 server address to answer from.
    NoServer,
    /// The reply does not encode (an option longer than 255 bytes).
    Encode,
}

impl Ignored {
    /// The reason in snake_case, as counters name it (`dhcp_<reason>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::NotDhcp => "not_dhcp",
            Ignored::Malformed => "malformed",
            Ignored::NotARequest => "not_a_request",
            Ignored::UnknownClient => "unknown_client",
            Ignored::OtherServer => "other_server",
            Ignored::Released => "released",
            Ignored::Declined => "declined",
            Ignored::Unsupported => "unsupported",
            Ignored::Disabled => "disabled",
            Ignored::NoServer => "no_server",
            Ignored::Encode => "encode",
        }
    }
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// First octet of the MACs derived for servers without a router port: locally administered,
/// unicast, and unlike the `02` that topology gives router ports, so the two never collide.
const DERIVED_MAC_PREFIX: u8 = 0x0a;

/// The DHCP server's `(MAC, IP)` on the subnet's bridge; `None` unless the subnet is IPv4.
pub fn server(snapshot: &Snapshot, subnet: &DhcpSubnet) -> Option<([u8; 6], Ipv4Addr)> {
    if !subnet.subnet.addr().is_ipv4() {
        return None;
    }
    let ip = match subnet.server_addr.or(subnet.gateway) {
        Some(IpAddr::V4(ip)) => ip,
        Some(IpAddr::V6(_)) => return None,
        None => last_host(subnet)?,
    };
    let mac =
        router_port_mac(snapshot, subnet.bridge_id, ip).unwrap_or_else(|| derived_mac(subnet.id));
    Some((mac, ip))
}

/// The servers of a bridge's enabled subnets: the addresses a unicast renewal may be sent to.
pub fn servers_of(
    snapshot: &Snapshot,
    bridge: Uuid,
) -> impl Iterator<Item = ([u8; 6], Ipv4Addr)> + '_ {
    snapshot
        .dhcp_subnets_of(bridge)
        .filter(|s| s.enabled)
        .filter_map(move |s| server(snapshot, s))
}

/// Whether the bridge answers DHCP at all (it has an enabled IPv4 subnet).
pub fn serves(snapshot: &Snapshot, bridge: Uuid) -> bool {
    snapshot
        .dhcp_subnets_of(bridge)
        .any(|s| s.enabled && s.subnet.addr().is_ipv4())
}

/// Answers a client's DHCP frame received on `bridge`: the reply frame to send back where the
/// request came from, or why there is none.
pub fn answer(
    snapshot: &Snapshot,
    bridge: Uuid,
    frame: &[u8],
    cfg: &DhcpConfig,
) -> Result<Vec<u8>, Ignored> {
    let view = PacketView::parse(frame).ok_or(Ignored::NotDhcp)?;
    let from_port = match view.l4_ports() {
        Some((from, DHCP_SERVER_PORT)) if matches!(view.ip_src(), Some(IpAddr::V4(_))) => from,
        _ => return Err(Ignored::NotDhcp),
    };
    // Clients send from port 68; relay agents forward their requests from port 67 (RFC 1542
    // §4.1), so a message from 67 is a client's only when it carries a relay address.
    let relayed = |d: &DhcpView| !d.giaddr.is_unspecified();
    match (from_port, view.dhcp) {
        (DHCP_CLIENT_PORT, _) => {}
        (DHCP_SERVER_PORT, Some(d)) if relayed(&d) => {}
        _ => return Err(Ignored::NotDhcp),
    }
    let dhcp = view.dhcp.ok_or(Ignored::Malformed)?;
    if dhcp.op != 1 {
        return Err(Ignored::NotARequest);
    }
    let asked = match dhcp.message_type {
        Some(DhcpMessageType::Discover) => Asked::Discover,
        Some(DhcpMessageType::Request) => Asked::Request,
        Some(DhcpMessageType::Inform) => Asked::Inform,
        Some(DhcpMessageType::Release) => return Err(Ignored::Released),
        Some(DhcpMessageType::Decline) => return Err(Ignored::Declined),
        _ => return Err(Ignored::Unsupported),
    };
    let (subnet, host, client_ip) = lease_of(snapshot, bridge, dhcp.chaddr)?;
    let (server_mac, server_ip) = server(snapshot, subnet).ok_or(Ignored::NoServer)?;

    let reply = match asked {
        Asked::Discover => Reply::Offer,
        Asked::Request if dhcp.server_id.is_some_and(|id| id != server_ip) => {
            return Err(Ignored::OtherServer)
        }
        // SELECTING and INIT-REBOOT name the address in option 50; RENEWING and REBINDING
        // clients have it configured and send it in ciaddr (RFC 2131 §4.3.2).
        Asked::Request if dhcp.requested_ip.unwrap_or(dhcp.ciaddr) == client_ip => Reply::Ack,
        Asked::Request => Reply::Nak,
        Asked::Inform => Reply::InformAck,
    };
    let relayed = relayed(&dhcp);
    let (message_type, ciaddr, yiaddr) = match reply {
        Reply::Offer => (DhcpMessageType::Offer, Ipv4Addr::UNSPECIFIED, client_ip),
        Reply::Ack => (DhcpMessageType::Ack, dhcp.ciaddr, client_ip),
        // RFC 2131 §4.3.5: the client configured its address itself; yiaddr stays empty.
        Reply::InformAck => (DhcpMessageType::Ack, dhcp.ciaddr, Ipv4Addr::UNSPECIFIED),
        Reply::Nak => (
            DhcpMessageType::Nak,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
        ),
    };
    // RFC 2131 §4.3.2: a NAK through a relay carries the broadcast bit, so the relay broadcasts
    // it to a client that may hold an address it must stop using.
    let broadcast = dhcp.broadcast || (reply == Reply::Nak && relayed);

    const BROADCAST_MAC: [u8; 6] = [0xff; 6];
    let (dst_mac, dst_ip, dst_port) = if relayed {
        (view.eth_src, dhcp.giaddr, DHCP_SERVER_PORT)
    } else if reply == Reply::Nak {
        (BROADCAST_MAC, Ipv4Addr::BROADCAST, DHCP_CLIENT_PORT)
    } else if !dhcp.ciaddr.is_unspecified() {
        (dhcp.chaddr, dhcp.ciaddr, DHCP_CLIENT_PORT)
    } else if dhcp.broadcast || yiaddr.is_unspecified() {
        // The client asked for broadcast because it cannot take unicast before it is
        // configured; an INFORM without ciaddr leaves no address to unicast to.
        (BROADCAST_MAC, Ipv4Addr::BROADCAST, DHCP_CLIENT_PORT)
    } else {
        (dhcp.chaddr, yiaddr, DHCP_CLIENT_PORT)
    };
    let reply_frame = DhcpFrame {
        l2: L2 {
            dst: dst_mac,
            ..L2::reply_to(&view, server_mac)
        },
        src_ip: server_ip,
        dst_ip,
        dst_port,
        message_type,
        xid: dhcp.xid,
        chaddr: dhcp.chaddr,
        ciaddr,
        yiaddr,
        giaddr: dhcp.giaddr,
        broadcast,
        options: options(subnet, host, server_ip, reply, cfg),
    };
    dhcp_frame(&reply_frame).ok_or(Ignored::Encode)
}

/// What the client asked for, among the messages a server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    Discover,
    Request,
    Inform,
}

/// The answer chosen, which decides the options and addressing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    Offer,
    Ack,
    InformAck,
    Nak,
}

/// The enabled subnet of `bridge` holding a static lease for `mac`, that lease, and its address.
fn lease_of(
    snapshot: &Snapshot,
    bridge: Uuid,
    mac: [u8; 6],
) -> Result<(&DhcpSubnet, &DhcpHost, Ipv4Addr), Ignored> {
    let mut in_disabled = false;
    for subnet in snapshot.dhcp_subnets_of(bridge) {
        let Some(host) = subnet.hosts.iter().find(|h| h.mac.0 == mac) else {
            continue;
        };
        let IpAddr::V4(ip) = host.ip else {
            continue;
        };
        if subnet.enabled && subnet.subnet.addr().is_ipv4() {
            return Ok((subnet, host, ip));
        }
        in_disabled = true;
    }
    if in_disabled || !serves(snapshot, bridge) {
        Err(Ignored::Disabled)
    } else {
        Err(Ignored::UnknownClient)
    }
}

/// The options of a reply: only the server identifier in a NAK (RFC 2131 Table 3); no lease
/// times in an ACK to INFORM (RFC 2131 §4.3.5).
fn options(
    subnet: &DhcpSubnet,
    host: &DhcpHost,
    server_ip: Ipv4Addr,
    reply: Reply,
    cfg: &DhcpConfig,
) -> DhcpOptions {
    if reply == Reply::Nak {
        return DhcpOptions {
            server_id: Some(server_ip),
            ..DhcpOptions::default()
        };
    }
    let gateway = match subnet.gateway {
        Some(IpAddr::V4(gw)) => Some(gw),
        _ => None,
    };
    let mut routes: Vec<ClasslessRoute> = subnet
        .opt121_routes
        .iter()
        .filter_map(|r| match (r.dest.network(), r.gateway) {
            (IpAddr::V4(dest), IpAddr::V4(gateway)) => Some(ClasslessRoute {
                dest,
                prefix_len: r.dest.prefix_len(),
                gateway,
            }),
            _ => None,
        })
        .collect();
    if let Some(gw) = gateway {
        if !routes.is_empty() && routes.iter().all(|r| r.prefix_len != 0) {
            routes.push(ClasslessRoute {
                dest: Ipv4Addr::UNSPECIFIED,
                prefix_len: 0,
                gateway: gw,
            });
        }
    }
    let lease = cfg.lease_secs;
    let with_lease = reply != Reply::InformAck;
    // Computed in u64: 7/8 of a lease near u32::MAX overflows u32 on the way.
    let rebind = (u64::from(lease) * 7 / 8) as u32;
    DhcpOptions {
        server_id: Some(server_ip),
        subnet_mask: match subnet.subnet.netmask() {
            IpAddr::V4(mask) => Some(mask),
            IpAddr::V6(_) => None,
        },
        router: gateway,
        dns_servers: subnet
            .dns_servers
            .iter()
            .filter_map(|ip| match ip {
                IpAddr::V4(v4) => Some(*v4),
                IpAddr::V6(_) => None,
            })
            .collect(),
        lease_secs: with_lease.then_some(lease),
        renew_secs: with_lease.then_some(lease / 2),
        rebind_secs: with_lease.then_some(rebind),
        mtu: Some(subnet.mtu.unwrap_or(cfg.default_mtu)),
        domain_name: None,
        // RFC 2132 §3.14: a host name is at least one byte.
        host_name: host.name.clone().filter(|n| !n.is_empty()),
        classless_routes: routes,
    }
}

/// The subnet's last usable address: below the broadcast address, or for /31 and /32, where
/// there is no broadcast address (RFC 3021), the last address itself.
fn last_host(subnet: &DhcpSubnet) -> Option<Ipv4Addr> {
    let IpAddr::V4(broadcast) = subnet.subnet.broadcast() else {
        return None;
    };
    if subnet.subnet.prefix_len() >= 31 {
        return Some(broadcast);
    }
    Some(Ipv4Addr::from(u32::from(broadcast).saturating_sub(1)))
}

/// The MAC of a router port linked to one of the bridge's ports and owning `ip`.
fn router_port_mac(snapshot: &Snapshot, bridge: Uuid, ip: Ipv4Addr) -> Option<[u8; 6]> {
    snapshot
        .ports_of(bridge)
        .filter_map(|p| snapshot.get::<Port>(p.peer_id?))
        .find_map(|peer| match (peer.mac, peer.address) {
            (Some(mac), Some(addr)) if addr.addr() == IpAddr::V4(ip) => Some(mac.0),
            _ => None,
        })
}

/// A MAC for a server that has no router port, fixed for the subnet's lifetime so clients'
/// ARP caches stay right. It takes the id's last bytes, which are random in v4 and v7 UUIDs
/// alike (a v7 id starts with a timestamp shared by subnets made together).
fn derived_mac(subnet: Uuid) -> [u8; 6] {
    let b = subnet.as_bytes();
    [DERIVED_MAC_PREFIX, b[11], b[12], b[13], b[14], b[15]]
}

#[cfg(test)]
mod tests;
