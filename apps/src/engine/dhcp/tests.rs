//! DHCP server tests: topology fixture + client frame → reply frame, or the reason there is none.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice, VlanId};
use ofproto::packet::{DhcpMessageType as Type, DhcpView, PacketView, Vlan};
use proptest::prelude::*;
use smoltcp::wire::{DhcpMessageType as WireType, DhcpPacket, DhcpRepr, EthernetAddress};
use topology::model::{DhcpHost, DhcpSubnet, MacAddr, Opt121Route, Port, Router};
use topology::{MemStore, Network, Snapshot};
use uuid::Uuid;

use super::*;
use crate::harness::fixtures::{self, bridge_port};

const XID: u32 = 0x1234_5678;
const BCAST: [u8; 6] = [0xff; 6];
const RELAY_MAC: [u8; 6] = [0x52, 0x54, 0, 0, 0, 0x99];

fn mac(n: u8) -> [u8; 6] {
    [0x52, 0x54, 0, 0, 0, n]
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

/// `br`: 10.0.0.0/24 with a gateway that is a linked router port (10.0.0.1), two DNS servers,
/// two classless routes, leases for `mac(5)` (named vm5) and `mac(6)` (unnamed).
/// `lone`: 192.168.1.0/24 with no gateway and no server address, MTU 9000, a lease for
/// `mac(8)`; and a disabled 172.16.0.0/24 with a lease for `mac(7)`.
/// `bare`: no DHCP.
struct Lab {
    snap: Arc<Snapshot>,
    br: Uuid,
    lone: Uuid,
    bare: Uuid,
    subnet: Uuid,
    lone_subnet: Uuid,
    router_mac: [u8; 6],
}

fn subnet(prefix: &str) -> DhcpSubnet {
    DhcpSubnet {
        id: Uuid::nil(),
        bridge_id: Uuid::nil(),
        subnet: prefix.parse().expect("test literal is a prefix"),
        gateway: None,
        server_addr: None,
        dns_servers: Vec::new(),
        mtu: None,
        opt121_routes: Vec::new(),
        enabled: true,
        hosts: Vec::new(),
    }
}

fn lease(m: u8, addr: Ipv4Addr, name: Option<&str>) -> DhcpHost {
    DhcpHost {
        mac: MacAddr(mac(m)),
        ip: IpAddr::V4(addr),
        name: name.map(Into::into),
    }
}

fn route(dest: &str, gateway: Ipv4Addr) -> Opt121Route {
    Opt121Route {
        dest: dest.parse().expect("test literal is a prefix"),
        gateway: IpAddr::V4(gateway),
    }
}

fn lab() -> Lab {
    lab_with(|_| {})
}

/// The lab, with `edit` applied to `br`'s subnet before it is created.
fn lab_with(edit: impl FnOnce(&mut DhcpSubnet)) -> Lab {
    let network = Network::open(Arc::new(MemStore::new())).expect("memory store opens");
    let mut main = DhcpSubnet {
        gateway: Some(IpAddr::V4(ip(10, 0, 0, 1))),
        dns_servers: vec![IpAddr::V4(ip(10, 0, 0, 53)), IpAddr::V4(ip(8, 8, 8, 8))],
        opt121_routes: vec![
            route("169.254.169.254/32", ip(10, 0, 0, 2)),
            route("10.1.0.0/16", ip(10, 0, 0, 3)),
        ],
        ..subnet("10.0.0.0/24")
    };
    edit(&mut main);
    let (br, lone, bare, subnet_id, lone_subnet) = network
        .write(|txn| {
            let br = txn.create_bridge(fixtures::bridge("net", None))?.id;
            txn.create_port(br, bridge_port())?;
            let uplink = txn.create_port(br, bridge_port())?.id;
            let router = txn
                .create_router(Router {
                    id: Uuid::nil(),
                    name: "r".into(),
                    tenant_id: None,
                    admin_state_up: true,
                    inbound_filter_id: None,
                    outbound_filter_id: None,
                })?
                .id;
            let rp = Port {
                address: Some("10.0.0.1/24".parse().expect("literal")),
                ..bridge_port()
            };
            let rp = txn.create_port(router, rp)?.id;
            txn.link(uplink, rp)?;
            let s = txn.create_dhcp_subnet(br, main)?.id;
            txn.put_dhcp_host(s, lease(5, ip(10, 0, 0, 5), Some("vm5")), false)?;
            txn.put_dhcp_host(s, lease(6, ip(10, 0, 0, 6), None), false)?;

            let lone = txn.create_bridge(fixtures::bridge("lone", None))?.id;
            txn.create_port(lone, bridge_port())?;
            let ls = txn
                .create_dhcp_subnet(
                    lone,
                    DhcpSubnet {
                        mtu: Some(9000),
                        ..subnet("192.168.1.0/24")
                    },
                )?
                .id;
            txn.put_dhcp_host(ls, lease(8, ip(192, 168, 1, 8), Some("eight")), false)?;
            let off = txn
                .create_dhcp_subnet(
                    lone,
                    DhcpSubnet {
                        enabled: false,
                        ..subnet("172.16.0.0/24")
                    },
                )?
                .id;
            txn.put_dhcp_host(off, lease(7, ip(172, 16, 0, 7), None), false)?;

            let bare = txn.create_bridge(fixtures::bridge("bare", None))?.id;
            Ok((br, lone, bare, s, ls))
        })
        .expect("the fixture is valid")
        .0;
    let snap = network.snapshot();
    let router_mac = snap
        .ports_of(br)
        .filter_map(|p| snap.get::<Port>(p.peer_id?))
        .find_map(|p| p.mac)
        .expect("the router port got a MAC")
        .0;
    Lab {
        snap,
        br,
        lone,
        bare,
        subnet: subnet_id,
        lone_subnet,
        router_mac,
    }
}

impl Lab {
    fn subnet(&self, id: Uuid) -> DhcpSubnet {
        DhcpSubnet::clone(self.snap.get::<DhcpSubnet>(id).expect("fixture subnet"))
    }

    fn ask(&self, bridge: Uuid, c: &Client) -> Result<Vec<u8>, Ignored> {
        answer(&self.snap, bridge, &c.frame(), &DhcpConfig::default())
    }
}

/// A client message, built with smoltcp's DHCP representation (not with the code under test).
#[derive(Debug, Clone)]
struct Client {
    msg: WireType,
    mac: [u8; 6],
    requested: Option<Ipv4Addr>,
    server_id: Option<Ipv4Addr>,
    ciaddr: Ipv4Addr,
    giaddr: Ipv4Addr,
    broadcast: bool,
    vlan: Option<u16>,
}

fn client(msg: WireType) -> Client {
    Client {
        msg,
        mac: mac(5),
        requested: None,
        server_id: None,
        ciaddr: Ipv4Addr::UNSPECIFIED,
        giaddr: Ipv4Addr::UNSPECIFIED,
        broadcast: false,
        vlan: None,
    }
}

impl Client {
    fn payload(&self) -> Vec<u8> {
        let repr = DhcpRepr {
            message_type: self.msg,
            transaction_id: XID,
            secs: 0,
            client_hardware_address: EthernetAddress(self.mac),
            client_ip: self.ciaddr,
            your_ip: Ipv4Addr::UNSPECIFIED,
            server_ip: Ipv4Addr::UNSPECIFIED,
            router: None,
            subnet_mask: None,
            relay_agent_ip: self.giaddr,
            broadcast: self.broadcast,
            requested_ip: self.requested,
            client_identifier: Some(EthernetAddress(self.mac)),
            server_identifier: self.server_id,
            parameter_request_list: Some(&[1, 3, 6, 12, 26, 121]),
            dns_servers: None,
            max_size: Some(1500),
            lease_duration: None,
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        let mut payload = vec![0; repr.buffer_len()];
        repr.emit(&mut DhcpPacket::new_unchecked(&mut payload[..]))
            .expect("the buffer is as long as smoltcp asked");
        payload
    }

    /// On the wire as a client sends it: broadcast, or unicast to the server once it has an
    /// address; through a relay agent (port 67 to 67, from the relay's MAC) when `giaddr` is set.
    fn frame(&self) -> Vec<u8> {
        let relayed = !self.giaddr.is_unspecified();
        let (src_mac, src_ip, sport) = if relayed {
            (RELAY_MAC, self.giaddr, 67)
        } else {
            (self.mac, self.ciaddr, 68)
        };
        udp_frame(src_mac, src_ip, sport, self.vlan, &self.payload())
    }
}

fn udp_frame(
    src_mac: [u8; 6],
    src_ip: Ipv4Addr,
    sport: u16,
    vlan: Option<u16>,
    payload: &[u8],
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(src_mac, BCAST);
    let ip = match vlan {
        Some(vid) => eth
            .single_vlan(VlanId::try_new(vid).expect("12-bit VID"))
            .ipv4(src_ip.octets(), [255; 4], 64),
        None => eth.ipv4(src_ip.octets(), [255; 4], 64),
    };
    let mut out = Vec::new();
    ip.udp(sport, 67)
        .write(&mut out, payload)
        .expect("writing to a Vec");
    out
}

/// A reply, read back with ofproto's view and smoltcp's option iterator.
#[derive(Debug)]
struct Got {
    view: PacketView,
    dhcp: DhcpView,
    options: Vec<(u8, Vec<u8>)>,
}

fn read(frame: &[u8]) -> Got {
    let view = PacketView::parse(frame).expect("ethernet");
    let dhcp = view.dhcp.expect("the reply reads as DHCP");
    let pkt = SlicedPacket::from_ethernet(frame).expect("a strictly valid frame");
    let Some(TransportSlice::Udp(udp)) = pkt.transport else {
        panic!("not UDP");
    };
    let dp = DhcpPacket::new_checked(udp.payload()).expect("dhcp");
    DhcpRepr::parse(&dp).expect("smoltcp's client accepts the reply");
    let options = dp.options().map(|o| (o.kind, o.data.to_vec())).collect();
    Got {
        view,
        dhcp,
        options,
    }
}

fn codes(g: &Got) -> Vec<u8> {
    g.options.iter().map(|(c, _)| *c).collect()
}

/// Every option `br` hands `mac(5)`, in the order the builder writes them.
fn every_option(message_type: u8) -> Vec<(u8, Vec<u8>)> {
    vec![
        (53, vec![message_type]),
        (1, vec![255, 255, 255, 0]),
        (3, vec![10, 0, 0, 1]),
        (6, vec![10, 0, 0, 53, 8, 8, 8, 8]),
        (12, b"vm5".to_vec()),
        (26, 1450u16.to_be_bytes().to_vec()),
        (51, 86_400u32.to_be_bytes().to_vec()),
        (54, vec![10, 0, 0, 1]),
        (58, 43_200u32.to_be_bytes().to_vec()),
        (59, 75_600u32.to_be_bytes().to_vec()),
        // RFC 3442: 169.254.169.254/32 via .2, 10.1/16 via .3, then the default route via the
        // gateway, which a client taking option 121 would otherwise lose with option 3.
        (
            121,
            vec![
                32, 169, 254, 169, 254, 10, 0, 0, 2, //
                16, 10, 1, 10, 0, 0, 3, //
                0, 10, 0, 0, 1,
            ],
        ),
    ]
}

fn without(mut opts: Vec<(u8, Vec<u8>)>, drop: &[u8]) -> Vec<(u8, Vec<u8>)> {
    opts.retain(|(c, _)| !drop.contains(c));
    opts
}

/// Where a reply went: (eth_dst, ip_dst, UDP destination port, BROADCAST flag).
fn addressed(g: &Got) -> ([u8; 6], Ipv4Addr, u16, bool) {
    let Some(IpAddr::V4(dst)) = g.view.ip_dst() else {
        panic!("not IPv4");
    };
    let port = g.view.l4_ports().expect("udp").1;
    (g.view.eth_dst, dst, port, g.dhcp.broadcast)
}

#[test]
fn discover_gets_an_offer_with_every_option() {
    let l = lab();
    let c = Client {
        broadcast: true,
        ..client(WireType::Discover)
    };
    let g = read(&l.ask(l.br, &c).expect("an offer"));
    assert_eq!(g.dhcp.message_type, Some(Type::Offer));
    assert_eq!((g.dhcp.op, g.dhcp.xid, g.dhcp.chaddr), (2, XID, mac(5)));
    assert_eq!(
        (g.dhcp.ciaddr, g.dhcp.yiaddr, g.dhcp.giaddr),
        (
            Ipv4Addr::UNSPECIFIED,
            ip(10, 0, 0, 5),
            Ipv4Addr::UNSPECIFIED
        )
    );
    assert_eq!(g.options, every_option(2));
    assert_eq!(g.view.eth_src, l.router_mac);
    assert_eq!(g.view.ip_src(), Some(IpAddr::V4(ip(10, 0, 0, 1))));
    assert_eq!(g.view.l4_ports(), Some((67, 68)));
}

#[test]
fn request_gets_an_ack_with_every_option() {
    let l = lab();
    let selecting = Client {
        requested: Some(ip(10, 0, 0, 5)),
        server_id: Some(ip(10, 0, 0, 1)),
        ..client(WireType::Request)
    };
    let g = read(&l.ask(l.br, &selecting).expect("an ack"));
    assert_eq!(g.dhcp.message_type, Some(Type::Ack));
    assert_eq!((g.dhcp.xid, g.dhcp.yiaddr), (XID, ip(10, 0, 0, 5)));
    assert_eq!(g.options, every_option(5));

    // INIT-REBOOT: option 50 and no server identifier.
    let reboot = Client {
        server_id: None,
        ..selecting.clone()
    };
    let g = read(&l.ask(l.br, &reboot).expect("an ack"));
    assert_eq!(g.dhcp.message_type, Some(Type::Ack));

    // RENEWING: the address in ciaddr, echoed back.
    let renewing = Client {
        ciaddr: ip(10, 0, 0, 5),
        ..client(WireType::Request)
    };
    let g = read(&l.ask(l.br, &renewing).expect("an ack"));
    assert_eq!(g.dhcp.message_type, Some(Type::Ack));
    assert_eq!(
        (g.dhcp.ciaddr, g.dhcp.yiaddr),
        (ip(10, 0, 0, 5), ip(10, 0, 0, 5))
    );

    // A lease without a name carries no option 12.
    let unnamed = Client {
        mac: mac(6),
        requested: Some(ip(10, 0, 0, 6)),
        ..client(WireType::Request)
    };
    let g = read(&l.ask(l.br, &unnamed).expect("an ack"));
    assert_eq!(g.dhcp.yiaddr, ip(10, 0, 0, 6));
    assert!(!codes(&g).contains(&12));
}

#[test]
fn request_for_another_address_gets_a_nak() {
    let l = lab();
    let nak_only = vec![(53, vec![6]), (54, vec![10, 0, 0, 1])];
    for c in [
        Client {
            requested: Some(ip(10, 0, 0, 99)),
            server_id: Some(ip(10, 0, 0, 1)),
            ..client(WireType::Request)
        },
        Client {
            requested: Some(ip(10, 0, 0, 6)),
            ..client(WireType::Request)
        },
        Client {
            ciaddr: ip(10, 0, 0, 77),
            ..client(WireType::Request)
        },
    ] {
        let g = read(&l.ask(l.br, &c).expect("a nak"));
        assert_eq!(g.dhcp.message_type, Some(Type::Nak), "{c:?}");
        assert_eq!(g.options, nak_only, "only the server id: {c:?}");
        assert_eq!(
            (g.dhcp.ciaddr, g.dhcp.yiaddr),
            (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED)
        );
        assert_eq!(
            addressed(&g),
            (BCAST, Ipv4Addr::BROADCAST, 68, false),
            "a NAK is broadcast: {c:?}"
        );
    }
}

#[test]
fn inform_gets_an_ack_without_address_or_lease() {
    let l = lab();
    let c = Client {
        ciaddr: ip(10, 0, 0, 5),
        ..client(WireType::Inform)
    };
    let g = read(&l.ask(l.br, &c).expect("an ack"));
    assert_eq!(g.dhcp.message_type, Some(Type::Ack));
    assert_eq!(
        (g.dhcp.ciaddr, g.dhcp.yiaddr),
        (ip(10, 0, 0, 5), Ipv4Addr::UNSPECIFIED)
    );
    assert_eq!(g.options, without(every_option(5), &[51, 58, 59]));
    assert_eq!(addressed(&g), (mac(5), ip(10, 0, 0, 5), 68, false));

    // An INFORM without ciaddr leaves no address to unicast to.
    let g = read(&l.ask(l.br, &client(WireType::Inform)).expect("an ack"));
    assert_eq!(addressed(&g), (BCAST, Ipv4Addr::BROADCAST, 68, false));
}

#[test]
fn replies_are_addressed_as_rfc_2131_says() {
    let l = lab();
    let relay = ip(10, 0, 9, 1);
    let cases = [
        (
            "broadcast flag",
            Client {
                broadcast: true,
                ..client(WireType::Discover)
            },
            (BCAST, Ipv4Addr::BROADCAST, 68, true),
        ),
        (
            "no flag: to chaddr and yiaddr",
            client(WireType::Discover),
            (mac(5), ip(10, 0, 0, 5), 68, false),
        ),
        (
            "relayed: to the relay's port 67",
            Client {
                giaddr: relay,
                broadcast: true,
                ..client(WireType::Discover)
            },
            (RELAY_MAC, relay, 67, true),
        ),
        (
            "relayed NAK: to the relay, with the broadcast bit for it to broadcast",
            Client {
                giaddr: relay,
                requested: Some(ip(10, 0, 0, 99)),
                ..client(WireType::Request)
            },
            (RELAY_MAC, relay, 67, true),
        ),
        (
            "ciaddr comes before the broadcast bit",
            Client {
                ciaddr: ip(10, 0, 0, 5),
                broadcast: true,
                ..client(WireType::Request)
            },
            (mac(5), ip(10, 0, 0, 5), 68, true),
        ),
    ];
    for (why, c, want) in cases {
        let g = read(&l.ask(l.br, &c).expect("answered"));
        assert_eq!(addressed(&g), want, "{why}");
        assert_eq!(g.dhcp.giaddr, c.giaddr, "{why}");
        assert_eq!(g.view.eth_src, l.router_mac, "{why}");
        assert_eq!(g.view.ip_src(), Some(IpAddr::V4(ip(10, 0, 0, 1))), "{why}");
        assert_eq!(g.view.l4_ports().map(|p| p.0), Some(67), "{why}");
    }

    // A request in VLAN 10 is answered in VLAN 10.
    let c = Client {
        vlan: Some(10),
        ..client(WireType::Discover)
    };
    let g = read(&l.ask(l.br, &c).expect("an offer"));
    assert_eq!(
        g.view.vlan,
        Some(Vlan {
            tpid: 0x8100,
            vid: 10,
            pcp: 0
        })
    );
    assert_eq!(g.dhcp.message_type, Some(Type::Offer));
}

#[test]
fn what_gets_no_answer_says_why() {
    let l = lab();
    let discover = client(WireType::Discover);
    let with_payload = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut p = discover.payload();
        edit(&mut p);
        udp_frame(mac(5), Ipv4Addr::UNSPECIFIED, 68, None, &p)
    };
    // Option 53 sits right after the magic cookie: [53, 1, type] at offset 240.
    assert_eq!(discover.payload()[240..243], [53, 1, 1]);
    let mut v6 = Vec::new();
    PacketBuilder::ethernet2(mac(5), BCAST)
        .ipv6([0; 16], [0xff; 16], 64)
        .udp(68, 67)
        .write(&mut v6, &discover.payload())
        .expect("writing to a Vec");
    let cases: Vec<(&str, Uuid, Vec<u8>, Ignored)> = vec![
        (
            "another server's offer chosen",
            l.br,
            Client {
                requested: Some(ip(10, 0, 0, 5)),
                server_id: Some(ip(10, 0, 0, 99)),
                ..client(WireType::Request)
            }
            .frame(),
            Ignored::OtherServer,
        ),
        (
            "unknown MAC",
            l.br,
            Client {
                mac: mac(9),
                ..discover.clone()
            }
            .frame(),
            Ignored::UnknownClient,
        ),
        (
            "lease in a disabled subnet",
            l.lone,
            Client {
                mac: mac(7),
                ..discover.clone()
            }
            .frame(),
            Ignored::Disabled,
        ),
        (
            "bridge without DHCP",
            l.bare,
            discover.frame(),
            Ignored::Disabled,
        ),
        (
            "lease on another bridge",
            l.lone,
            discover.frame(),
            Ignored::UnknownClient,
        ),
        (
            "release",
            l.br,
            Client {
                ciaddr: ip(10, 0, 0, 5),
                ..client(WireType::Release)
            }
            .frame(),
            Ignored::Released,
        ),
        (
            "decline",
            l.br,
            Client {
                requested: Some(ip(10, 0, 0, 5)),
                ..client(WireType::Decline)
            }
            .frame(),
            Ignored::Declined,
        ),
        (
            "LEASEQUERY is not a client's",
            l.br,
            with_payload(&|p| p[242] = 10),
            Ignored::Unsupported,
        ),
        (
            "plain BOOTP",
            l.br,
            with_payload(&|p| p[240..243].fill(0)),
            Ignored::Unsupported,
        ),
        (
            "a BOOTREPLY",
            l.br,
            with_payload(&|p| p[0] = 2),
            Ignored::NotARequest,
        ),
        (
            "no magic cookie",
            l.br,
            with_payload(&|p| p[236] = 0),
            Ignored::Malformed,
        ),
        (
            "shorter than BOOTP",
            l.br,
            with_payload(&|p| p.truncate(200)),
            Ignored::Malformed,
        ),
        (
            "UDP to port 53",
            l.br,
            crate::harness::frames::udp(mac(5), BCAST, [10, 0, 0, 5], [10, 0, 0, 1], 68, 53),
            Ignored::NotDhcp,
        ),
        (
            "server to server, not relayed",
            l.br,
            udp_frame(mac(5), ip(10, 0, 0, 5), 67, None, &discover.payload()),
            Ignored::NotDhcp,
        ),
        ("DHCP over IPv6", l.br, v6, Ignored::NotDhcp),
        (
            "ARP",
            l.br,
            crate::harness::frames::arp_request(mac(5), [10, 0, 0, 5], [10, 0, 0, 1]),
            Ignored::NotDhcp,
        ),
        ("runt", l.br, vec![0; 13], Ignored::NotDhcp),
    ];
    for (why, bridge, frame, want) in cases {
        assert_eq!(
            answer(&l.snap, bridge, &frame, &DhcpConfig::default()),
            Err(want),
            "{why}"
        );
    }
}

#[test]
fn ignored_reasons_name_counters() {
    use Ignored::*;
    let all = [
        NotDhcp,
        Malformed,
        NotARequest,
        UnknownClient,
        OtherServer,
        Released,
        Declined,
        Unsupported,
        Disabled,
        NoServer,
        Encode,
    ];
    let names: std::collections::HashSet<&str> = all.iter().map(|r| r.as_str()).collect();
    assert_eq!(names.len(), all.len(), "distinct");
    for r in all {
        let name = r.as_str();
        assert!(
            name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{name}"
        );
        assert_eq!(r.to_string(), name);
    }
    assert_eq!(UnknownClient.as_str(), "unknown_client");
}

#[test]
fn server_is_the_linked_router_port_or_derived() {
    let l = lab();
    let main = l.subnet(l.subnet);
    // The gateway is a router port linked to the bridge: its MAC answers.
    assert_eq!(
        server(&l.snap, &main),
        Some((l.router_mac, ip(10, 0, 0, 1)))
    );
    let derived = |id: Uuid| {
        let b = id.as_bytes();
        [0x0a, b[11], b[12], b[13], b[14], b[15]]
    };
    // server_addr wins over the gateway; no router port owns it, so the MAC is derived.
    let own = DhcpSubnet {
        server_addr: Some(IpAddr::V4(ip(10, 0, 0, 2))),
        ..main.clone()
    };
    assert_eq!(
        server(&l.snap, &own),
        Some((derived(main.id), ip(10, 0, 0, 2)))
    );
    // Neither: the last usable address.
    let lone = l.subnet(l.lone_subnet);
    let (lone_mac, lone_ip) = server(&l.snap, &lone).expect("IPv4");
    assert_eq!(lone_ip, ip(192, 168, 1, 254));
    assert_eq!(lone_mac, derived(lone.id));
    assert_eq!(lone_mac[0] & 1, 0, "unicast");
    assert_eq!(lone_mac[0] & 2, 2, "locally administered");
    assert_eq!(server(&l.snap, &lone), Some((lone_mac, lone_ip)), "stable");
    for (prefix, want) in [
        ("10.0.0.0/24", ip(10, 0, 0, 254)),
        ("10.0.0.0/30", ip(10, 0, 0, 2)),
        ("10.0.0.0/31", ip(10, 0, 0, 1)),
        ("10.0.0.7/32", ip(10, 0, 0, 7)),
    ] {
        let s = DhcpSubnet {
            gateway: None,
            ..subnet(prefix)
        };
        assert_eq!(server(&l.snap, &s).map(|s| s.1), Some(want), "{prefix}");
    }
    assert_eq!(server(&l.snap, &subnet("2001:db8::/64")), None, "IPv4 only");

    // Only enabled subnets serve.
    assert_eq!(
        servers_of(&l.snap, l.br).collect::<Vec<_>>(),
        vec![(l.router_mac, ip(10, 0, 0, 1))]
    );
    assert_eq!(
        servers_of(&l.snap, l.lone).collect::<Vec<_>>(),
        vec![(lone_mac, lone_ip)]
    );
    assert_eq!(servers_of(&l.snap, l.bare).count(), 0);
    assert!(serves(&l.snap, l.br) && serves(&l.snap, l.lone));
    assert!(!serves(&l.snap, l.bare));

    // A reply from the derived server: no gateway, so no option 3 and no option 121.
    let c = Client {
        mac: mac(8),
        ..client(WireType::Discover)
    };
    let g = read(&l.ask(l.lone, &c).expect("an offer"));
    assert_eq!(g.view.eth_src, lone_mac);
    assert_eq!(g.view.ip_src(), Some(IpAddr::V4(lone_ip)));
    assert_eq!(g.dhcp.yiaddr, ip(192, 168, 1, 8));
    assert_eq!(codes(&g), vec![53, 1, 12, 26, 51, 54, 58, 59]);
    let mtu = g
        .options
        .iter()
        .find(|(c, _)| *c == 26)
        .map(|(_, d)| d.clone());
    assert_eq!(
        mtu,
        Some(9000u16.to_be_bytes().to_vec()),
        "the subnet's MTU"
    );
}

#[test]
fn default_route_joins_option_121_only_with_a_gateway() {
    let opt121 = |l: &Lab| {
        let g = read(&l.ask(l.br, &client(WireType::Discover)).expect("an offer"));
        let router = g.options.iter().any(|(c, _)| *c == 3);
        let routes = g
            .options
            .into_iter()
            .find(|(c, _)| *c == 121)
            .map(|(_, d)| d);
        (router, routes)
    };
    // No gateway (the server has its own address): routes as given, no default, no option 3.
    let l = lab_with(|s| {
        s.gateway = None;
        s.server_addr = Some(IpAddr::V4(ip(10, 0, 0, 1)));
    });
    assert_eq!(
        opt121(&l),
        (
            false,
            Some(vec![
                32, 169, 254, 169, 254, 10, 0, 0, 2, 16, 10, 1, 10, 0, 0, 3
            ])
        )
    );
    // No classless routes: option 3 alone.
    let l = lab_with(|s| s.opt121_routes.clear());
    assert_eq!(opt121(&l), (true, None));
    // A default route among them already: not doubled.
    let l = lab_with(|s| {
        s.opt121_routes = vec![
            route("0.0.0.0/0", ip(10, 0, 0, 9)),
            route("10.2.0.0/16", ip(10, 0, 0, 3)),
        ]
    });
    assert_eq!(
        opt121(&l),
        (true, Some(vec![0, 10, 0, 0, 9, 16, 10, 2, 10, 0, 0, 3]))
    );
}

#[test]
fn config_sets_lease_times_and_default_mtu() {
    let l = lab();
    let option = |g: &Got, code: u8| {
        g.options
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, d)| d.clone())
    };
    let cfg = DhcpConfig {
        lease_secs: 3600,
        default_mtu: 1400,
    };
    let g = read(&answer(&l.snap, l.br, &client(WireType::Discover).frame(), &cfg).expect("offer"));
    assert_eq!(option(&g, 51), Some(3600u32.to_be_bytes().to_vec()));
    assert_eq!(option(&g, 58), Some(1800u32.to_be_bytes().to_vec()));
    assert_eq!(option(&g, 59), Some(3150u32.to_be_bytes().to_vec()));
    assert_eq!(option(&g, 26), Some(1400u16.to_be_bytes().to_vec()));
    // An infinite lease (RFC 2131 §3.3) does not overflow T2.
    let cfg = DhcpConfig {
        lease_secs: u32::MAX,
        ..cfg
    };
    let g = read(&answer(&l.snap, l.br, &client(WireType::Discover).frame(), &cfg).expect("offer"));
    let t2 = (u64::from(u32::MAX) * 7 / 8) as u32;
    assert_eq!(option(&g, 59), Some(t2.to_be_bytes().to_vec()));
    // The subnet's MTU wins over the default.
    let l = lab_with(|s| s.mtu = Some(1300));
    let g = read(&answer(&l.snap, l.br, &client(WireType::Discover).frame(), &cfg).expect("offer"));
    assert_eq!(option(&g, 26), Some(1300u16.to_be_bytes().to_vec()));
}

#[test]
fn a_reply_that_does_not_encode_is_counted() {
    // 28 host routes and the default take 257 bytes: more than one option holds.
    let l = lab_with(|s| {
        s.opt121_routes = (1..=28)
            .map(|n| route(&format!("10.9.0.{n}/32"), ip(10, 0, 0, 2)))
            .collect();
    });
    assert_eq!(
        l.ask(l.br, &client(WireType::Discover)),
        Err(Ignored::Encode)
    );
    // One fewer fits (248 bytes).
    let l = lab_with(|s| {
        s.opt121_routes = (1..=27)
            .map(|n| route(&format!("10.9.0.{n}/32"), ip(10, 0, 0, 2)))
            .collect();
    });
    assert!(l.ask(l.br, &client(WireType::Discover)).is_ok());
}

/// An answer, when there is one, is a server's reply to the same transaction.
fn check_answer(l: &Lab, frame: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(reply) = answer(&l.snap, l.br, frame, &DhcpConfig::default()) {
        let view = PacketView::parse(&reply).expect("ethernet");
        let d = view.dhcp.expect("the reply reads as DHCP");
        let asked = PacketView::parse(frame)
            .and_then(|v| v.dhcp)
            .expect("a request");
        prop_assert_eq!(d.op, 2);
        prop_assert_eq!((d.xid, d.chaddr), (asked.xid, asked.chaddr));
        prop_assert!(matches!(
            d.message_type,
            Some(Type::Offer | Type::Ack | Type::Nak)
        ));
        prop_assert_eq!(view.eth_src, l.router_mac);
    }
    Ok(())
}

proptest! {
    /// Random bytes behind valid Ethernet/IPv4/UDP 68 → 67 headers reach the DHCP parser.
    #[test]
    fn random_dhcp_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..600)) {
        let l = lab();
        check_answer(&l, &udp_frame(mac(5), Ipv4Addr::UNSPECIFIED, 68, None, &payload))?;
    }

    /// Valid requests with bytes overwritten and cut short: closer to what a parser fears.
    #[test]
    fn mutated_requests_never_panic(
        kind in prop::sample::select(vec![WireType::Discover, WireType::Request, WireType::Inform]),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..16),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let l = lab();
        let mut p = Client { requested: Some(ip(10, 0, 0, 5)), ..client(kind) }.payload();
        for (at, byte) in edits {
            let i = at.index(p.len());
            p[i] = byte;
        }
        if truncate {
            p.truncate(cut.index(p.len() + 1));
        }
        check_answer(&l, &udp_frame(mac(5), Ipv4Addr::UNSPECIFIED, 68, None, &p))?;
    }
}
