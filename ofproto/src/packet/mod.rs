//! Packet payloads of PACKET_IN / PACKET_OUT: a never-panicking header summary and frame builders.
//!
//! OpenFlow carries whole Ethernet frames (possibly cut at `miss_send_len`). A controller needs a
//! handful of header fields from them to decide what to do, and a few frames of its own to send
//! back (ARP replies, ICMP echo replies and errors, DHCP offers and acks).
//!
//! * [`PacketView::parse`] reads Ethernet, 802.1Q/802.1ad, ARP, IPv4, IPv6, ICMP, ICMPv6, TCP, UDP
//!   and DHCP with etherparse's *lax* slicer (so a frame truncated by the switch still yields the
//!   headers it does contain) and smoltcp's checked DHCP view. It copies out only fixed-size
//!   fields, never payload, and never panics: layers it cannot read are simply `None`.
//! * The reply builders in [`build`] take the frame that asks for a reply and return the reply
//!   frame, or `None` when that frame does not call for one (not a request, a truncated echo, an
//!   ICMP error about an ICMP error, …): what RFC 792/826/1812/4443 fix leaves no policy to choose.
//! * [`dhcp_frame`] is field-explicit instead: a DHCP server's answer is policy (which lease,
//!   which options, where to send it), decided by the engine in `apps`, so the caller names every
//!   field and the builder only encodes. Headers are written by etherparse's `PacketBuilder` and
//!   smoltcp's `DhcpRepr`, which compute lengths and checksums.

pub mod build;
pub mod dhcp;
mod view;

pub use build::{
    arp_frame, arp_reply, icmpv4_echo_reply, icmpv4_error, icmpv6_echo_reply, icmpv6_error,
    tcp_reset, Icmpv4Error, Icmpv6Error, L2,
};
pub use dhcp::{dhcp_frame, ClasslessRoute, DhcpFrame, DhcpMessageType, DhcpOptions, DhcpView};
pub use view::{ArpView, IpView, L4View, PacketView, Vlan};

/// EtherType of IPv4 (`eth_type=0x0800`).
pub const ETH_TYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP (`eth_type=0x0806`).
pub const ETH_TYPE_ARP: u16 = 0x0806;
/// EtherType of IPv6 (`eth_type=0x86dd`).
pub const ETH_TYPE_IPV6: u16 = 0x86dd;
/// EtherType (TPID) of an 802.1Q customer VLAN tag.
pub const ETH_TYPE_VLAN: u16 = 0x8100;
/// ARP operation: request.
pub const ARP_REQUEST: u16 = 1;
/// ARP operation: reply.
pub const ARP_REPLY: u16 = 2;
/// IP protocol number of ICMP.
pub const IP_PROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const IP_PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IP_PROTO_UDP: u8 = 17;
/// IP protocol number of ICMPv6.
pub const IP_PROTO_ICMPV6: u8 = 58;
/// UDP port of a DHCPv4 server.
pub const DHCP_SERVER_PORT: u16 = 67;
/// UDP port of a DHCPv4 client.
pub const DHCP_CLIENT_PORT: u16 = 68;

#[cfg(test)]
mod tests;
