//! DHCPv4 in packet-in payloads: a summary of client messages ([`DhcpView`]) and a field-explicit
//! builder for a server's messages ([`DhcpFrame`], [`dhcp_frame`]), over smoltcp's wire types.
//!
//! Which message answers which, with which address and options, is server policy and lives in
//! the engine (`apps::engine::dhcp`); this module only reads and writes the wire format.
//!
//! smoltcp's `DhcpPacket` is a checked view whose accessors cannot panic once `new_checked`
//! passed, and whose option iterator stops at the first malformed option; `DhcpRepr` emits
//! the fixed fields. (dhcproto was tried first and dropped: its decoder panics on hostile input,
//! e.g. a wire `hlen` above 16 or a RapidCommit option with a payload, which a controller must
//! survive.)

use std::fmt;
use std::net::Ipv4Addr;

use serde::Serialize;
use smoltcp::wire::{
    DhcpMessageType as WireType, DhcpOpCode, DhcpOption, DhcpPacket, DhcpRepr, EthernetAddress,
};

use super::view::ser_mac;
use super::DHCP_SERVER_PORT;
use super::{build, L2};

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
/// Option codes (RFC 2132, RFC 3442) this module reads or writes.
const OPT_SUBNET_MASK: u8 = 1;
const OPT_ROUTER: u8 = 3;
const OPT_DNS: u8 = 6;
const OPT_HOST_NAME: u8 = 12;
const OPT_DOMAIN_NAME: u8 = 15;
const OPT_MTU: u8 = 26;
const OPT_REQUESTED_IP: u8 = 50;
const OPT_LEASE_TIME: u8 = 51;
const OPT_MESSAGE_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_RENEWAL_TIME: u8 = 58;
const OPT_REBINDING_TIME: u8 = 59;
const OPT_CLASSLESS_ROUTES: u8 = 121;
/// RFC 1542 §3.2.1: BOOTP messages are at least 300 bytes; older clients drop shorter ones.
const BOOTP_MIN_LEN: usize = 300;

/// One classless static route of option 121 (RFC 3442): `dest/prefix_len` via `gateway`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClasslessRoute {
    /// The destination network; host bits beyond `prefix_len` are not sent.
    pub dest: Ipv4Addr,
    /// The destination's prefix length, 0..=32 (0 with `dest` 0.0.0.0 is a default route).
    pub prefix_len: u8,
    /// The router to send through; 0.0.0.0 means the destination is on-link.
    pub gateway: Ipv4Addr,
}

/// The options a server puts in a reply, besides the message type (option 53), which
/// [`DhcpFrame::message_type`] gives. An empty `Vec` or `None` leaves the option out.
///
/// The builder only encodes: which options a reply carries (none but the server identifier in a
/// NAK, no lease time in an ACK to INFORM, a default route in option 121 because RFC 3442 clients
/// ignore option 3 when they get 121) is the caller's policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DhcpOptions {
    /// Option 54, the server identifier.
    pub server_id: Option<Ipv4Addr>,
    /// Option 1.
    pub subnet_mask: Option<Ipv4Addr>,
    /// Option 3, the default gateway.
    pub router: Option<Ipv4Addr>,
    /// Option 6.
    pub dns_servers: Vec<Ipv4Addr>,
    /// Option 51, the lease time in seconds.
    pub lease_secs: Option<u32>,
    /// Option 58, T1: when the client starts renewing with this server.
    pub renew_secs: Option<u32>,
    /// Option 59, T2: when the client starts rebinding with any server.
    pub rebind_secs: Option<u32>,
    /// Option 26, the interface MTU (overlays shrink the path MTU by their tunnel headers).
    pub mtu: Option<u16>,
    /// Option 15.
    pub domain_name: Option<String>,
    /// Option 12, the client's host name.
    pub host_name: Option<String>,
    /// Option 121, classless static routes, in the order given.
    pub classless_routes: Vec<ClasslessRoute>,
}

/// A DHCP message sent by a server, every field explicit: the Ethernet/IPv4/UDP envelope
/// (source port 67), the fixed BOOTP fields, and the options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpFrame {
    /// Ethernet addresses and VLAN tags.
    pub l2: L2,
    /// IPv4 source: the server.
    pub src_ip: Ipv4Addr,
    /// IPv4 destination: the client, a relay, or 255.255.255.255.
    pub dst_ip: Ipv4Addr,
    /// UDP destination port: 68 to a client, 67 to a relay agent.
    pub dst_port: u16,
    /// Option 53. BOOTP `op` follows it: BOOTREQUEST for the client's messages (DISCOVER,
    /// REQUEST, DECLINE, RELEASE, INFORM), BOOTREPLY for every other type.
    pub message_type: DhcpMessageType,
    /// Transaction id (the client's, echoed).
    pub xid: u32,
    /// Client hardware address.
    pub chaddr: [u8; 6],
    /// Client's address (`ciaddr`).
    pub ciaddr: Ipv4Addr,
    /// The address given to the client (`yiaddr`).
    pub yiaddr: Ipv4Addr,
    /// Relay agent address (`giaddr`).
    pub giaddr: Ipv4Addr,
    /// The BROADCAST flag.
    pub broadcast: bool,
    /// Everything else.
    pub options: DhcpOptions,
}

/// Builds a DHCP frame, padding the BOOTP message to 300 bytes (RFC 1542 §3.2.1).
///
/// `None` when it cannot be encoded: an option longer than 255 bytes (a long name, too many
/// DNS servers or routes; RFC 3396 long options are not written) or a route prefix beyond 32.
pub fn dhcp_frame(frame: &DhcpFrame) -> Option<Vec<u8>> {
    let options = encode_options(&frame.options)?;
    if options.iter().any(|(_, data)| data.len() > 255) {
        return None;
    }
    let additional: Vec<DhcpOption<'_>> = options
        .iter()
        .map(|(kind, data)| DhcpOption { kind: *kind, data })
        .collect();
    let message_type = WireType::from(u8::from(frame.message_type));
    // Every option goes through `additional_options`, so the builder alone decides what is sent:
    // smoltcp's own fields cap DNS servers at three and have no T1/T2.
    let repr = DhcpRepr {
        message_type,
        transaction_id: frame.xid,
        secs: 0,
        client_hardware_address: EthernetAddress(frame.chaddr),
        client_ip: frame.ciaddr,
        your_ip: frame.yiaddr,
        server_ip: Ipv4Addr::UNSPECIFIED,
        router: None,
        subnet_mask: None,
        relay_agent_ip: frame.giaddr,
        broadcast: frame.broadcast,
        requested_ip: None,
        client_identifier: None,
        server_identifier: None,
        parameter_request_list: None,
        dns_servers: None,
        max_size: None,
        lease_duration: None,
        renew_duration: None,
        rebind_duration: None,
        additional_options: &additional,
    };
    let mut payload = vec![0; repr.buffer_len().max(BOOTP_MIN_LEN)];
    let mut packet = DhcpPacket::new_unchecked(&mut payload[..]);
    repr.emit(&mut packet).ok()?;
    // smoltcp derives `op` from the message type and writes 0 for types it does not know; a
    // server's message of any other type is a reply.
    if matches!(message_type, WireType::Unknown(_)) {
        packet.set_opcode(DhcpOpCode::Reply);
    }
    build::udp_v4(
        frame.l2,
        frame.src_ip,
        frame.dst_ip,
        DHCP_SERVER_PORT,
        frame.dst_port,
        &payload,
    )
}

/// The options as `(code, data)` in code order (RFC 2131 does not ask for an order, but code
/// order makes captures easy to compare). `None` when a route's prefix length exceeds 32.
fn encode_options(o: &DhcpOptions) -> Option<Vec<(u8, Vec<u8>)>> {
    let mut out: Vec<(u8, Vec<u8>)> = Vec::with_capacity(12);
    let mut put = |code: u8, data: Option<Vec<u8>>| {
        if let Some(data) = data {
            out.push((code, data));
        }
    };
    let addrs = |list: &[Ipv4Addr]| {
        (!list.is_empty()).then(|| list.iter().flat_map(|ip| ip.octets()).collect())
    };
    put(OPT_SUBNET_MASK, o.subnet_mask.map(|m| m.octets().to_vec()));
    put(OPT_ROUTER, o.router.map(|r| r.octets().to_vec()));
    put(OPT_DNS, addrs(&o.dns_servers));
    put(
        OPT_HOST_NAME,
        o.host_name.as_ref().map(|n| n.as_bytes().to_vec()),
    );
    put(
        OPT_DOMAIN_NAME,
        o.domain_name.as_ref().map(|n| n.as_bytes().to_vec()),
    );
    put(OPT_MTU, o.mtu.map(|m| m.to_be_bytes().to_vec()));
    put(
        OPT_LEASE_TIME,
        o.lease_secs.map(|s| s.to_be_bytes().to_vec()),
    );
    put(OPT_SERVER_ID, o.server_id.map(|s| s.octets().to_vec()));
    put(
        OPT_RENEWAL_TIME,
        o.renew_secs.map(|s| s.to_be_bytes().to_vec()),
    );
    put(
        OPT_REBINDING_TIME,
        o.rebind_secs.map(|s| s.to_be_bytes().to_vec()),
    );
    if !o.classless_routes.is_empty() {
        let mut data = Vec::with_capacity(o.classless_routes.len() * 9);
        for route in &o.classless_routes {
            route.encode(&mut data)?;
        }
        put(OPT_CLASSLESS_ROUTES, Some(data));
    }
    Some(out)
}

impl ClasslessRoute {
    /// Appends the RFC 3442 §5 encoding: the prefix length, the destination's significant
    /// octets (`ceil(prefix_len / 8)` of them, host bits cleared), then the router's 4 octets.
    /// `None` when the prefix length exceeds 32.
    fn encode(&self, out: &mut Vec<u8>) -> Option<()> {
        if self.prefix_len > 32 {
            return None;
        }
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0);
        let dest = (u32::from(self.dest) & mask).to_be_bytes();
        let significant = usize::from(self.prefix_len).div_ceil(8);
        out.push(self.prefix_len);
        out.extend_from_slice(&dest[..significant]);
        out.extend_from_slice(&self.gateway.octets());
        Some(())
    }
}
