//! The frames virtual devices answer with, built from the frame that asked (with `ofproto`'s
//! field-explicit builders) — the decisions were the simulation's; this only writes them.

use std::net::Ipv4Addr;

use ofproto::packet::{self, ArpView, L2};
use topology::Snapshot;

use super::dhcp;
use super::sim::Reply;

/// Why no frame came out of a reply the simulation decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// The builder refused the frame (RFC 1812 forbids an ICMP error about it, a truncated
    /// echo request, …).
    Refused,
    /// The DHCP server ignored it.
    Dhcp(dhcp::Ignored),
}

impl Unanswered {
    /// A counter name.
    pub fn as_str(self) -> &'static str {
        match self {
            Unanswered::Refused => "refused",
            Unanswered::Dhcp(i) => i.as_str(),
        }
    }
}

impl Reply {
    /// A counter name for the kind of answer.
    pub fn kind(&self) -> &'static str {
        match self {
            Reply::ArpReply { .. } => "arp_reply",
            Reply::EchoReply => "echo_reply",
            Reply::IcmpError { error, .. } => match error {
                packet::Icmpv4Error::NetUnreachable => "icmp_net_unreachable",
                packet::Icmpv4Error::HostUnreachable => "icmp_host_unreachable",
                packet::Icmpv4Error::PortUnreachable => "icmp_port_unreachable",
                packet::Icmpv4Error::FragmentationNeeded { .. } => "icmp_frag_needed",
                packet::Icmpv4Error::AdminProhibited => "icmp_admin_prohibited",
                packet::Icmpv4Error::TtlExceeded => "icmp_time_exceeded",
                _ => "icmp_other",
            },
            Reply::Dhcp { .. } => "dhcp",
            Reply::TcpReset => "tcp_reset",
        }
    }
}

/// The frame answering `frame` as `reply` says.
pub fn build(
    reply: &Reply,
    frame: &[u8],
    snapshot: &Snapshot,
    dhcp_config: &dhcp::DhcpConfig,
) -> Result<Vec<u8>, Unanswered> {
    match *reply {
        Reply::ArpReply { mac } => packet::arp_reply(frame, mac).ok_or(Unanswered::Refused),
        Reply::EchoReply => packet::icmpv4_echo_reply(frame).ok_or(Unanswered::Refused),
        Reply::IcmpError { error, mac, ip } => {
            packet::icmpv4_error(frame, error, mac, ip).ok_or(Unanswered::Refused)
        }
        Reply::Dhcp { bridge } => {
            dhcp::answer(snapshot, bridge, frame, dhcp_config).map_err(Unanswered::Dhcp)
        }
        Reply::TcpReset => packet::tcp_reset(frame).ok_or(Unanswered::Refused),
    }
}

/// A router's broadcast ARP request for `tpa`, from its port `(sha, spa)`.
pub fn arp_request(sha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    packet::arp_frame(
        L2 {
            src: sha,
            dst: [0xff; 6],
            vlan: None,
            inner_vlan: None,
        },
        &ArpView {
            op: packet::ARP_REQUEST,
            sha,
            spa,
            tha: [0; 6],
            tpa,
        },
    )
}
