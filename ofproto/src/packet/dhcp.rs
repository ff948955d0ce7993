//! DHCPv4 in packet-in payloads: a summary of client messages, and OFFER/ACK/NAK replies (smoltcp wire).
//!
//! smoltcp's `DhcpPacket` is a checked view whose accessors cannot panic once `new_checked`
//! passed, and whose option iterator stops at the first malformed option; `DhcpRepr` emits
//! replies. (dhcproto was tried first and dropped: its decoder panics on hostile input, e.g. a
//! wire `hlen` above 16 or a RapidCommit option with a payload, which a controller must survive.)

use std::fmt;
use std::net::Ipv4Addr;

use serde::Serialize;
use smoltcp::wire::{
    DhcpMessageType as WireType, DhcpOption, DhcpPacket, DhcpRepr, EthernetAddress,
};

use super::view::{ser_mac, PacketView};
use super::{build, L2};
use super::{DHCP_CLIENT_PORT, DHCP_SERVER_PORT};

/// DHCP message type (option 53), RFC 2132 §9.6 and later additions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DhcpMessageType {
    Discover,
    Offer,
    Request,
    Decline,
    Ack,
    Nak,
    Release,
    Inform,
    /// Any other code (lease query, force renew, …), kept as its number.
    Unknown(u8),
}

impl From<u8> for DhcpMessageType {
    fn from(code: u8) -> Self {
        match code {
            1 => Self::Discover,
            2 => Self::Offer,
            3 => Self::Request,
            4 => Self::Decline,
            5 => Self::Ack,
            6 => Self::Nak,
            7 => Self::Release,
            8 => Self::Inform,
            other => Self::Unknown(other),
        }
    }
}

impl From<DhcpMessageType> for u8 {
    fn from(t: DhcpMessageType) -> u8 {
        match t {
            DhcpMessageType::Discover => 1,
            DhcpMessageType::Offer => 2,
            DhcpMessageType::Request => 3,
            DhcpMessageType::Decline => 4,
            DhcpMessageType::Ack => 5,
            DhcpMessageType::Nak => 6,
            DhcpMessageType::Release => 7,
            DhcpMessageType::Inform => 8,
            DhcpMessageType::Unknown(code) => code,
        }
    }
}

impl fmt::Display for DhcpMessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Discover => f.write_str("discover"),
            Self::Offer => f.write_str("offer"),
            Self::Request => f.write_str("request"),
            Self::Decline => f.write_str("decline"),
            Self::Ack => f.write_str("ack"),
            Self::Nak => f.write_str("nak"),
            Self::Release => f.write_str("release"),
            Self::Inform => f.write_str("inform"),
            Self::Unknown(code) => write!(f, "{code}"),
        }
    }
}

/// The fields of a DHCPv4 message a server needs to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct DhcpView {
    /// BOOTP op: 1 request (client), 2 reply (server).
    pub op: u8,
    /// Transaction id, echoed in the reply.
    pub xid: u32,
    /// Client hardware address (the first 6 bytes of `chaddr`).
    #[serde(serialize_with = "ser_mac")]
    pub chaddr: [u8; 6],
    /// Client's current address (non-zero when renewing).
    pub ciaddr: Ipv4Addr,
    /// Address the server assigns (in replies).
    pub yiaddr: Ipv4Addr,
    /// Relay agent address.
    pub giaddr: Ipv4Addr,
    /// The client asked for a broadcast reply.
    pub broadcast: bool,
    /// Option 53; `None` for plain BOOTP.
    pub message_type: Option<DhcpMessageType>,
    /// Option 50, the address a client asks for.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54, the server a client chose.
    pub server_id: Option<Ipv4Addr>,
}

impl DhcpView {
    /// Parses a UDP payload as DHCPv4. `None` when it is shorter than the fixed BOOTP header,
    /// lacks the DHCP magic cookie, or is not for an Ethernet client (htype 1, hlen 6).
    pub fn parse(udp_payload: &[u8]) -> Option<DhcpView> {
        let pkt = DhcpPacket::new_checked(udp_payload).ok()?;
        if u16::from(pkt.hardware_type()) != 1
            || pkt.hardware_len() != 6
            || pkt.magic_number() != DHCP_MAGIC
        {
            return None;
        }
        let mut view = DhcpView {
            op: pkt.opcode().into(),
            xid: pkt.transaction_id(),
            chaddr: pkt.client_hardware_address().0,
            ciaddr: pkt.client_ip(),
            yiaddr: pkt.your_ip(),
            giaddr: pkt.relay_agent_ip(),
            broadcast: pkt.flags().contains(smoltcp::wire::DhcpFlags::BROADCAST),
            message_type: None,
            requested_ip: None,
            server_id: None,
        };
        let ipv4 = |data: &[u8]| <[u8; 4]>::try_from(data).ok().map(Ipv4Addr::from);
        for opt in pkt.options() {
            match (opt.kind, opt.data) {
                (OPT_MESSAGE_TYPE, [code]) => view.message_type = Some((*code).into()),
                (OPT_REQUESTED_IP, data) => view.requested_ip = ipv4(data),
                (OPT_SERVER_ID, data) => view.server_id = ipv4(data),
                _ => {}
            }
        }
        Some(view)
    }
}

/// The magic cookie that starts DHCP options (RFC 2131 §3).
const DHCP_MAGIC: u32 = 0x6382_5363;
/// Option codes (RFC 2132) this module reads or writes itself.
const OPT_DNS: u8 = 6;
const OPT_DOMAIN_NAME: u8 = 15;
const OPT_MTU: u8 = 26;
const OPT_REQUESTED_IP: u8 = 50;
const OPT_MESSAGE_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
/// RFC 1542 §3.2.1: BOOTP messages are at least 300 bytes; older clients drop shorter ones.
const BOOTP_MIN_LEN: usize = 300;

/// What a DHCP server (the controller, on behalf of a virtual network) hands one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpLease {
    /// MAC the reply comes from (the virtual router's port).
    pub server_mac: [u8; 6],
    /// Server identifier and IP source of the reply.
    pub server_ip: Ipv4Addr,
    /// The address given to the client (`yiaddr`).
    pub client_ip: Ipv4Addr,
    /// Option 1.
    pub subnet_mask: Ipv4Addr,
    /// Option 3, the default gateway.
    pub router: Option<Ipv4Addr>,
    /// Option 6.
    pub dns_servers: Vec<Ipv4Addr>,
    /// Option 51, in seconds (clients derive T1/T2 from it, RFC 2131 §4.4.5).
    pub lease_secs: u32,
    /// Option 26, for overlays whose tunnel headers shrink the path MTU.
    pub mtu: Option<u16>,
    /// Option 15.
    pub domain_name: Option<String>,
}

/// Answers a client's DHCP frame: DISCOVER → OFFER, REQUEST → ACK (or NAK when the client asks
/// for an address other than the lease's), INFORM → ACK without an address.
///
/// `None` when the frame is not a DHCP client message, asks nothing of us (RELEASE, DECLINE, a
/// REQUEST for another server), or the reply does not encode (an over-long domain name).
pub fn dhcp_reply(request_frame: &[u8], lease: &DhcpLease) -> Option<Vec<u8>> {
    let view = PacketView::parse(request_frame)?;
    if view.l4_ports()? != (DHCP_CLIENT_PORT, DHCP_SERVER_PORT) {
        return None;
    }
    let dhcp = view.dhcp?;
    if dhcp.op != 1 {
        return None;
    }
    let ours = |sid: Option<Ipv4Addr>| sid.is_none_or(|sid| sid == lease.server_ip);
    let msg_type = dhcp.message_type?;
    let reply_type = match msg_type {
        DhcpMessageType::Discover => WireType::Offer,
        DhcpMessageType::Request if !ours(dhcp.server_id) => return None,
        DhcpMessageType::Request => {
            // SELECTING / INIT-REBOOT name the address in option 50; RENEWING / REBINDING in ciaddr.
            if dhcp.requested_ip.unwrap_or(dhcp.ciaddr) == lease.client_ip {
                WireType::Ack
            } else {
                WireType::Nak
            }
        }
        DhcpMessageType::Inform => WireType::Ack,
        _ => return None,
    };
    let nak = reply_type == WireType::Nak;
    let inform = msg_type == DhcpMessageType::Inform;

    let dns: Vec<u8> = lease
        .dns_servers
        .iter()
        .flat_map(|ip| ip.octets())
        .collect();
    let mtu = lease.mtu.map(u16::to_be_bytes);
    let mut extra = Vec::with_capacity(3);
    if !nak {
        if !dns.is_empty() {
            extra.push(DhcpOption {
                kind: OPT_DNS,
                data: &dns,
            });
        }
        if let Some(mtu) = &mtu {
            extra.push(DhcpOption {
                kind: OPT_MTU,
                data: mtu,
            });
        }
        if let Some(domain) = &lease.domain_name {
            extra.push(DhcpOption {
                kind: OPT_DOMAIN_NAME,
                data: domain.as_bytes(),
            });
        }
    }
    // An option carries at most 255 bytes; longer data would not encode.
    if extra.iter().any(|opt| opt.data.len() > 255) {
        return None;
    }
    let repr = DhcpRepr {
        message_type: reply_type,
        transaction_id: dhcp.xid,
        secs: 0,
        client_hardware_address: EthernetAddress(dhcp.chaddr),
        client_ip: if inform {
            dhcp.ciaddr
        } else {
            Ipv4Addr::UNSPECIFIED
        },
        your_ip: if nak || inform {
            Ipv4Addr::UNSPECIFIED
        } else {
            lease.client_ip
        },
        server_ip: Ipv4Addr::UNSPECIFIED,
        router: lease.router.filter(|_| !nak),
        subnet_mask: Some(lease.subnet_mask).filter(|_| !nak),
        relay_agent_ip: dhcp.giaddr,
        broadcast: dhcp.broadcast,
        requested_ip: None,
        client_identifier: None,
        server_identifier: Some(lease.server_ip),
        parameter_request_list: None,
        dns_servers: None,
        max_size: None,
        lease_duration: Some(lease.lease_secs).filter(|_| !nak && !inform),
        renew_duration: None,
        rebind_duration: None,
        additional_options: &extra,
    };
    let mut payload = vec![0; repr.buffer_len().max(BOOTP_MIN_LEN)];
    repr.emit(&mut DhcpPacket::new_unchecked(&mut payload[..]))
        .ok()?;

    // RFC 2131 §4.1: to the relay when relayed; broadcast when the client cannot take unicast
    // yet (broadcast flag) or the answer is a NAK; to a renewing client's ciaddr; else to yiaddr.
    let (dst_mac, dst_ip, dst_port) = if !dhcp.giaddr.is_unspecified() {
        (view.eth_src, dhcp.giaddr, DHCP_SERVER_PORT)
    } else if nak || dhcp.broadcast {
        ([0xff; 6], Ipv4Addr::BROADCAST, DHCP_CLIENT_PORT)
    } else if !dhcp.ciaddr.is_unspecified() {
        (dhcp.chaddr, dhcp.ciaddr, DHCP_CLIENT_PORT)
    } else {
        (dhcp.chaddr, lease.client_ip, DHCP_CLIENT_PORT)
    };
    let l2 = L2 {
        dst: dst_mac,
        ..L2::reply_to(&view, lease.server_mac)
    };
    build::udp_v4(
        l2,
        lease.server_ip,
        dst_ip,
        DHCP_SERVER_PORT,
        dst_port,
        &payload,
    )
}
