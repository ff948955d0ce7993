//! The resources of the logical model (DESIGN §3), exactly as the REST API shows them: plain
//! serde structs in `snake_case`, with the read-only fields the server fills in.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// An Ethernet address, written `aa:bb:cc:dd:ee:ff` in JSON.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// True for group (multicast/broadcast) addresses, which no port may own.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

/// Spelled by `ofproto`'s one MAC formatter and parser, which REST, the CLI and logs share.
impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&ofproto::display::Mac(self.0), f)
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

pub use ofproto::display::MacParseError;

impl FromStr for MacAddr {
    type Err = MacParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<ofproto::display::Mac>().map(|m| MacAddr(m.0))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for MacAddr {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$"))
            .examples([serde_json::json!("02:00:00:00:00:01")])
            .into()
    }
}
impl ToSchema for MacAddr {}

/// JSON schemas of address fields: formats and patterns that let OpenAPI clients (and
/// schemathesis) generate valid values, while accepting everything the API returns.
mod schema {
    use utoipa::openapi::schema::{
        AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType,
        Type,
    };
    use utoipa::openapi::RefOr;

    const CIDR: &str =
        r"^(([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*/[0-9]{1,3})$";

    fn string(format: KnownFormat) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    }

    /// An IPv4 or IPv6 address.
    pub fn ip() -> Schema {
        AnyOfBuilder::new()
            .item(string(KnownFormat::Ipv4))
            .item(string(KnownFormat::Ipv6))
            .build()
            .into()
    }

    /// An address or null.
    pub fn ip_opt() -> Schema {
        AnyOfBuilder::new()
            .item(string(KnownFormat::Ipv4))
            .item(string(KnownFormat::Ipv6))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build()
            .into()
    }

    /// A list of addresses.
    pub fn ips() -> Schema {
        ArrayBuilder::new().items(RefOr::T(ip())).build().into()
    }

    /// A prefix, `10.0.0.0/24` or `fd00::/64` (or an address with its prefix length).
    pub fn cidr() -> Schema {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(CIDR))
            .build()
            .into()
    }

    /// A prefix or null.
    pub fn cidr_opt() -> Schema {
        ObjectBuilder::new()
            .schema_type(SchemaType::Array(vec![Type::String, Type::Null]))
            .pattern(Some(CIDR))
            .build()
            .into()
    }
}

fn yes() -> bool {
    true
}

fn any_v4() -> IpNet {
    IpNet::V4(ipnet::Ipv4Net::default())
}

/// How a host's OVS datapath runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatapathType {
    /// The kernel datapath.
    #[default]
    System,
    /// The userspace datapath.
    Netdev,
}

/// The datapath id of a host's `br-int`: the low 64 bits of the host id. The provisioner writes
/// it into `other_config:datapath-id`, and an OpenFlow session maps back to its host by it, so
/// the mapping needs no table that must survive restarts.
pub fn datapath_id(host: Uuid) -> u64 {
    let b = host.as_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&b[8..]);
    u64::from_be_bytes(low)
}

/// A hypervisor running OVS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Host {
    /// Server-generated unless given on create.
    #[serde(default)]
    pub id: Uuid,
    /// A name for people (and the CLI).
    pub name: String,
    /// The host's underlay address. When set, it is the address of every tunnel-zone
    /// membership of the host (a member's `ip` must equal it, 422 otherwise, and it cannot
    /// change while a membership says otherwise); when null, each membership's `ip` alone says
    /// where tunnels to the host end in that zone.
    #[schema(schema_with = schema::ip_opt)]
    #[serde(default)]
    pub tunnel_ip: Option<IpAddr>,
    /// How to reach its OVSDB server (`tcp:IP:PORT` / `unix:PATH`, the grammar of
    /// [`crate::OvsdbTarget`]), or null when it dials in.
    #[serde(default)]
    pub ovsdb: Option<String>,
    /// Datapath type of its br-int.
    #[serde(default)]
    pub datapath_type: DatapathType,
    /// With TLS on, the certificate that identifies the host on both control channels: the
    /// name given to `ovs-pki req+sign NAME` (its CN is `NAME id:UUID`), the whole subject CN,
    /// or `sha256:HEX` (the certificate's fingerprint). Null: the host's `name`. Only the
    /// holder may claim the host's br-int datapath id or dial in as the host.
    #[serde(default)]
    pub cert_cn: Option<String>,
    /// Runtime state, filled by the controller: is its OVSDB session up?
    #[serde(default)]
    #[schema(read_only)]
    pub connected: bool,
    /// Runtime state, filled by the controller: br-int's datapath id.
    #[serde(default)]
    #[schema(read_only)]
    pub datapath_id: Option<String>,
}

/// Encapsulation used between the members of a tunnel zone. Ordered (VXLAN first) so that it
/// can key the provisioner's per-peer tunnel maps.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TunnelType {
    /// VXLAN (UDP 4789), the VNI carries the tunnel key.
    #[default]
    Vxlan,
    /// GRE, the key field carries the tunnel key.
    Gre,
}

/// A host's membership of a tunnel zone, with the address it uses in that zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TunnelZoneMember {
    /// The member host.
    pub host_id: Uuid,
    /// Where tunnels to this member end in this zone: the remote (and, on the member itself,
    /// the local) address of its tunnel ports, the one address provisioning uses. Equal to the
    /// host's `tunnel_ip` when that is set.
    #[schema(schema_with = schema::ip)]
    pub ip: IpAddr,
}

/// A set of hosts that reach each other by tunnels of one type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TunnelZone {
    /// Server-generated unless given on create.
    #[serde(default)]
    pub id: Uuid,
    /// A name for people.
    pub name: String,
    /// vxlan or gre.
    #[serde(rename = "type", default)]
    pub tunnel_type: TunnelType,
    /// Managed through `/tunnel_zones/{id}/members`; ignored on create and update.
    #[serde(default)]
    #[schema(read_only)]
    pub members: Vec<TunnelZoneMember>,
}

macro_rules! device {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        pub struct $name {
            /// Server-generated unless given on create.
            #[serde(default)]
            pub id: Uuid,
            /// A name for people.
            #[serde(default)]
            pub name: String,
            /// Opaque tenant label.
            #[serde(default)]
            pub tenant_id: Option<String>,
            /// When false the device drops everything.
            #[serde(default = "yes")]
            pub admin_state_up: bool,
            /// Chain applied to packets entering the device.
            #[serde(default)]
            pub inbound_filter_id: Option<Uuid>,
            /// Chain applied to packets leaving the device.
            #[serde(default)]
            pub outbound_filter_id: Option<Uuid>,
        }

        impl Device for $name {
            fn name(&self) -> &str {
                &self.name
            }
            fn filters(&self) -> (Option<Uuid>, Option<Uuid>) {
                (self.inbound_filter_id, self.outbound_filter_id)
            }
        }
    };
}

/// What bridges and routers have in common, for code that treats both alike.
pub trait Device {
    /// Its name.
    fn name(&self) -> &str;
    /// Its inbound and outbound filter chains.
    fn filters(&self) -> (Option<Uuid>, Option<Uuid>);
}

device!(
    /// A virtual L2 switch.
    Bridge
);
device!(
    /// A virtual L3 router.
    Router
);

/// A port of a bridge or router. Router ports also carry `mac` and `address`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Port {
    /// Server-generated unless given on create.
    #[serde(default)]
    pub id: Uuid,
    /// The bridge or router (set from the path on create).
    #[serde(default)]
    #[schema(read_only)]
    pub device_id: Uuid,
    /// When false the port drops everything.
    #[serde(default = "yes")]
    pub admin_state_up: bool,
    /// Chain applied to packets entering through the port.
    #[serde(default)]
    pub inbound_filter_id: Option<Uuid>,
    /// Chain applied to packets leaving through the port.
    #[serde(default)]
    pub outbound_filter_id: Option<Uuid>,
    /// The linked port; managed through `/ports/{id}/link`.
    #[serde(default)]
    #[schema(read_only)]
    pub peer_id: Option<Uuid>,
    /// The host of the binding; managed through `/ports/{id}/binding`.
    #[serde(default)]
    #[schema(read_only)]
    pub host_id: Option<Uuid>,
    /// The OVS interface of the binding; managed through `/ports/{id}/binding`.
    #[serde(default)]
    #[schema(read_only)]
    pub interface_name: Option<String>,
    /// 24-bit key carried in tunnels (VXLAN VNI), allocated by the server.
    #[serde(default)]
    #[schema(read_only)]
    pub tunnel_key: u32,
    /// Router ports: the port's MAC, generated when absent. Must be null on bridge ports.
    #[serde(default)]
    pub mac: Option<MacAddr>,
    /// Router ports: the port's address and subnet (`10.0.0.1/24`). Must be null on bridge ports.
    #[schema(schema_with = schema::cidr_opt)]
    #[serde(default)]
    pub address: Option<IpNet>,
    /// Runtime state, filled by the controller: the OpenFlow port of the bound interface.
    #[serde(default)]
    #[schema(read_only)]
    pub ofport: Option<u32>,
    /// Runtime state, filled by the controller: bound, and the interface is on its host's
    /// br-int with an OpenFlow port.
    #[serde(default)]
    #[schema(read_only)]
    pub up: bool,
}

/// The body of `POST /ports/{id}/link`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Link {
    /// The port to join this one to.
    pub peer_id: Uuid,
}

/// The body of `PUT /ports/{id}/binding`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Binding {
    /// The host the interface lives on.
    pub host_id: Uuid,
    /// The OVS interface name.
    pub interface_name: String,
}

/// What a route does with matching packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RouteType {
    /// Forward through `next_hop_port`.
    #[default]
    Normal,
    /// Drop silently.
    Blackhole,
    /// Drop and answer ICMP unreachable.
    Reject,
}

/// A static route of a router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Route {
    /// Server-generated unless given on create.
    #[serde(default)]
    pub id: Uuid,
    /// The router (set from the path on create).
    #[serde(default)]
    #[schema(read_only)]
    pub router_id: Uuid,
    /// Destination prefix.
    #[schema(schema_with = schema::cidr)]
    pub dst: IpNet,
    /// Source prefix (policy routing); default 0.0.0.0/0.
    #[schema(schema_with = schema::cidr)]
    #[serde(default = "any_v4")]
    pub src: IpNet,
    /// The router port to send through (required for `normal`).
    #[serde(default)]
    pub next_hop_port: Option<Uuid>,
    /// The gateway's address, null when the destination is on-link.
    #[schema(schema_with = schema::ip_opt)]
    #[serde(default)]
    pub next_hop_gateway: Option<IpAddr>,
    /// normal, blackhole or reject.
    #[serde(rename = "type", default)]
    pub route_type: RouteType,
    /// Preference among equal prefixes (lower wins).
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    100
}

/// A named, ordered list of rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Chain {
    /// Server-generated unless given on create.
    #[serde(default)]
    pub id: Uuid,
    /// A name for people.
    #[serde(default)]
    pub name: String,
    /// The rules in order; managed through `/chains/{id}/rules`.
    #[serde(default)]
    #[schema(read_only)]
    pub rule_ids: Vec<Uuid>,
}

/// What a rule does with a matching packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Stop evaluating, let the packet through.
    #[default]
    Accept,
    /// Stop, drop silently.
    Drop,
    /// Stop, drop and answer ICMP unreachable / TCP RST.
    Reject,
    /// Go on with the next rule.
    Continue,
    /// Return to the calling chain.
    Return,
    /// Evaluate `jump_chain_id`, then go on here unless it decided.
    Jump,
    /// Rewrite the destination to one of `nat_targets`.
    Dnat,
    /// Rewrite the source to one of `nat_targets`.
    Snat,
    /// Undo a DNAT on the return flow.
    RevDnat,
    /// Undo an SNAT on the return flow.
    RevSnat,
}

/// Which fragments a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FragmentPolicy {
    /// Every packet.
    #[default]
    Any,
    /// Unfragmented packets and first fragments.
    Header,
    /// Later fragments only.
    Nonheader,
    /// Unfragmented packets only.
    Unfragmented,
}

/// An inclusive range of transport ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PortRange {
    /// First port.
    pub start: u16,
    /// Last port (inclusive, ≥ start).
    pub end: u16,
}

/// One NAT target: addresses and ports to pick from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NatTarget {
    /// First address.
    #[schema(schema_with = schema::ip)]
    pub address_from: IpAddr,
    /// Last address (inclusive, same family, ≥ address_from).
    #[schema(schema_with = schema::ip)]
    pub address_to: IpAddr,
    /// First port (0 with port_to 0: keep the port).
    #[serde(default)]
    pub port_from: u16,
    /// Last port (inclusive, ≥ port_from).
    #[serde(default)]
    pub port_to: u16,
}

/// The match part of a rule. Every field is optional; `inv_<field>` negates one field and
/// `cond_invert` negates the whole condition.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Condition {
    /// Ingress ports to match.
    pub in_ports: Vec<Uuid>,
    /// Negates `in_ports`.
    pub inv_in_ports: bool,
    /// Egress ports to match.
    pub out_ports: Vec<Uuid>,
    /// Negates `out_ports`.
    pub inv_out_ports: bool,
    /// Ingress port belongs to this port group.
    pub port_group_id: Option<Uuid>,
    /// Negates `port_group_id`.
    pub inv_port_group: bool,
    /// Ethertype.
    pub dl_type: Option<u16>,
    /// Negates `dl_type`.
    pub inv_dl_type: bool,
    /// Source MAC.
    pub dl_src: Option<MacAddr>,
    /// Negates `dl_src`.
    pub inv_dl_src: bool,
    /// Destination MAC.
    pub dl_dst: Option<MacAddr>,
    /// Negates `dl_dst`.
    pub inv_dl_dst: bool,
    /// Source prefix.
    #[schema(schema_with = schema::cidr_opt)]
    pub nw_src: Option<IpNet>,
    /// Negates `nw_src`.
    pub inv_nw_src: bool,
    /// Destination prefix.
    #[schema(schema_with = schema::cidr_opt)]
    pub nw_dst: Option<IpNet>,
    /// Negates `nw_dst`.
    pub inv_nw_dst: bool,
    /// IP protocol number.
    pub nw_proto: Option<u8>,
    /// Negates `nw_proto`.
    pub inv_nw_proto: bool,
    /// Source transport ports.
    pub tp_src: Option<PortRange>,
    /// Negates `tp_src`.
    pub inv_tp_src: bool,
    /// Destination transport ports.
    pub tp_dst: Option<PortRange>,
    /// Negates `tp_dst`.
    pub inv_tp_dst: bool,
    /// Source address is in this IP address group.
    pub ip_addr_group_src: Option<Uuid>,
    /// Negates `ip_addr_group_src`.
    pub inv_ip_addr_group_src: bool,
    /// Destination address is in this IP address group.
    pub ip_addr_group_dst: Option<Uuid>,
    /// Negates `ip_addr_group_dst`.
    pub inv_ip_addr_group_dst: bool,
    /// Match only the direction that opened a connection.
    pub match_forward_flow: bool,
    /// Match only replies of a connection.
    pub match_return_flow: bool,
    /// Which fragments match.
    pub fragment_policy: FragmentPolicy,
    /// Negates the whole condition.
    pub cond_invert: bool,
}

/// A rule of a chain: a condition and an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    /// Server-generated unless given on create.
    #[serde(default)]
    pub id: Uuid,
    /// The chain (set from the path on create).
    #[serde(default)]
    #[schema(read_only)]
    pub chain_id: Uuid,
    /// 1-based place in the chain. On create 0/absent appends; on update it moves the rule.
    #[serde(default)]
    pub position: u32,
    /// What to do on a match.
    pub action: RuleAction,
    /// The chain to evaluate, for `jump` only.
    #[serde(default)]
    pub jump_chain_id: Option<Uuid>,
    /// Targets for `dnat`/`snat`.
    #[serde(default)]
    pub nat_targets: Vec<NatTarget>,
    /// The match.
    #[serde(flatten)]
    pub condition: Condition,
}

/// A set of ports, matched as one by rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PortGroup {
    /// Server-generated unless given on create.
    #[serde(default)]
    pub id: Uuid,
    /// A name for people.
    #[serde(default)]
    pub name: String,
    /// Connections through any member are tracked as one.
    #[serde(default)]
    pub stateful: bool,
    /// The member ports.
    #[serde(default)]
    pub port_ids: Vec<Uuid>,
}

/// A set of IP addresses, matched as one by rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IpAddrGroup {
    /// Server-generated unless given on create.
    #[serde(default)]
    pub id: Uuid,
    /// A name for people.
    #[serde(default)]
    pub name: String,
    /// The member addresses.
    #[schema(schema_with = schema::ips)]
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
}

/// A classless static route handed out in DHCP option 121.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Opt121Route {
    /// Destination prefix.
    #[schema(schema_with = schema::cidr)]
    pub dest: IpNet,
    /// Gateway.
    #[schema(schema_with = schema::ip)]
    pub gateway: IpAddr,
}

/// A static DHCP lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DhcpHost {
    /// The client's MAC (its key in the subnet).
    pub mac: MacAddr,
    /// The address it gets (inside the subnet).
    #[schema(schema_with = schema::ip)]
    pub ip: IpAddr,
    /// Host name handed out, if any.
    #[serde(default)]
    pub name: Option<String>,
}

/// A DHCP subnet served on a bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DhcpSubnet {
    /// Server-generated unless given on create.
    #[serde(default)]
    pub id: Uuid,
    /// The bridge (set from the path on create).
    #[serde(default)]
    #[schema(read_only)]
    pub bridge_id: Uuid,
    /// The subnet (IPv4).
    #[schema(schema_with = schema::cidr)]
    pub subnet: IpNet,
    /// Default gateway handed out.
    #[schema(schema_with = schema::ip_opt)]
    #[serde(default)]
    pub gateway: Option<IpAddr>,
    /// The DHCP server's own address.
    #[schema(schema_with = schema::ip_opt)]
    #[serde(default)]
    pub server_addr: Option<IpAddr>,
    /// DNS servers handed out.
    #[schema(schema_with = schema::ips)]
    #[serde(default)]
    pub dns_servers: Vec<IpAddr>,
    /// Interface MTU handed out (68..=65535).
    #[serde(default)]
    pub mtu: Option<u16>,
    /// Classless static routes.
    #[serde(default)]
    pub opt121_routes: Vec<Opt121Route>,
    /// When false no DHCP is served.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Static leases; managed through `.../dhcp/{subnet_id}/hosts`.
    #[serde(default)]
    #[schema(read_only)]
    pub hosts: Vec<DhcpHost>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trip_and_rejects() {
        let m: MacAddr = "02:0A:bb:cc:dd:ee".parse().unwrap();
        assert_eq!(m.to_string(), "02:0a:bb:cc:dd:ee");
        for bad in [
            "",
            "02:0a:bb:cc:dd",
            "02:0a:bb:cc:dd:ee:ff",
            "0g:00:00:00:00:00",
            "2:0:0:0:0:0",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rule_flattens_condition_and_defaults() {
        let r: Rule = serde_json::from_value(serde_json::json!({
            "action": "drop", "nw_proto": 6, "tp_dst": {"start": 22, "end": 22}, "inv_tp_dst": true
        }))
        .unwrap();
        assert_eq!(r.action, RuleAction::Drop);
        assert_eq!(r.condition.tp_dst, Some(PortRange { start: 22, end: 22 }));
        assert!(r.condition.inv_tp_dst);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["nw_proto"], 6);
        assert_eq!(v["fragment_policy"], "any");
    }
}
