//! Planning, with no I/O: from a host's replica and its desired bridge and tunnels, the one
//! transaction that converges them (or nothing when they already agree), and the host view.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;

use ovsdb::idl::uuid_set;
use ovsdb::ops::string_map;
use ovsdb::rpc::MonitorRequests;
use ovsdb::{Atom, Condition, Mutation, Mutator, Operation, Replica, Row, Txn, Value};
use uuid::Uuid;

use super::{
    datapath_id, DatapathType, DesiredHost, DesiredState, HostView, ProvisionConfig, TunnelPort,
    TunnelType, VifPort,
};

/// The OVS `Interface.type` of a tunnel of the model's type (and back, in [`host_view`]).
pub fn ovs_tunnel_type(t: TunnelType) -> &'static str {
    match t {
        TunnelType::Vxlan => "vxlan",
        TunnelType::Gre => "gre",
    }
}

/// The OVS `Bridge.datapath_type` of the model's datapath type.
pub fn ovs_datapath_type(d: DatapathType) -> &'static str {
    match d {
        DatapathType::System => "system",
        DatapathType::Netdev => "netdev",
    }
}

/// The `external_ids` key marking rows the controller created.
pub const OWNER_KEY: &str = "strowger-owner";
/// Its value.
pub const OWNER: &str = "strowger";
/// The `external_ids` key naming the peer host of a tunnel port.
pub const PEER_KEY: &str = "strowger-peer";

/// vswitchd's inactivity probe towards the controller, in ms (OVS's default is 5 000). With
/// hundreds of switches (re)connecting at once the controller may take longer than 5 s + 5 s to
/// answer an echo, and a switch that drops the connection starts from scratch, which makes more
/// work for everyone (500 sandbox hosts on 2 cores never settled). The controller watches each
/// switch itself (a silent switch is dropped), so the switch's probe only needs to catch a
/// controller that is gone.
pub const INACTIVITY_PROBE_MS: i64 = 30_000;

/// The tables and columns a host session monitors.
pub fn monitor_requests() -> MonitorRequests {
    MonitorRequests::default()
        .table("Open_vSwitch", &["bridges", "external_ids"])
        .table(
            "Bridge",
            &[
                "name",
                "ports",
                "controller",
                "datapath_type",
                "fail_mode",
                "protocols",
                "other_config",
                "datapath_id",
                "external_ids",
            ],
        )
        .table("Port", &["name", "interfaces", "external_ids"])
        .table(
            "Interface",
            &[
                "name",
                "type",
                "options",
                "ofport",
                "external_ids",
                "link_state",
            ],
        )
        .table(
            "Controller",
            &[
                "target",
                "connection_mode",
                "inactivity_probe",
                "external_ids",
            ],
        )
}

/// One tunnel port a host should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelSpec {
    /// Port and interface name, derived from the peer.
    pub name: String,
    /// Tunnel type.
    pub kind: TunnelType,
    /// The peer host.
    pub peer: Uuid,
    /// The peer's underlay address in the zone.
    pub remote_ip: IpAddr,
    /// This host's address in the zone, when `local_ip` is to be set.
    pub local_ip: Option<IpAddr>,
}

impl TunnelSpec {
    fn options(&self) -> Value {
        let mut m: BTreeMap<Atom, Atom> = [
            (
                Atom::from("remote_ip"),
                Atom::from(self.remote_ip.to_string()),
            ),
            (Atom::from("key"), Atom::from("flow")),
        ]
        .into();
        if let Some(l) = self.local_ip {
            m.insert("local_ip".into(), l.to_string().into());
        }
        Value::Map(m)
    }
}

/// The tunnel port name for a peer: `vx-`/`gr-` and 12 hex digits folded from all 128 bits of
/// its id (so ids differing only at the end, as sequential ones do, still differ), which keeps
/// it within a Linux interface name (15 bytes). The full id is in `external_ids:strowger-peer`.
pub fn tunnel_name(kind: TunnelType, peer: Uuid) -> String {
    let prefix = match kind {
        TunnelType::Vxlan => "vx",
        TunnelType::Gre => "gr",
    };
    let x = peer.as_u128();
    let folded = (x ^ (x >> 48) ^ (x >> 96)) & 0xffff_ffff_ffff;
    format!("{prefix}-{folded:012x}")
}

/// The tunnels `host` should have: one per peer per tunnel type, over every zone both are in
/// (the first zone listing a pair wins, since OVS refuses two identical tunnels).
pub fn desired_tunnels(state: &DesiredState, host: Uuid, set_local_ip: bool) -> Vec<TunnelSpec> {
    let mut out: BTreeMap<(TunnelType, Uuid), TunnelSpec> = BTreeMap::new();
    // Every host plans its mesh on every change of the desired state: a linear search for
    // each peer made that O(N²) per host, O(N³) per change.
    let desired: HashSet<Uuid> = state.hosts.iter().map(|h| h.id).collect();
    for z in &state.zones {
        let Some(&(_, local)) = z.members.iter().find(|(h, _)| *h == host) else {
            continue;
        };
        for &(peer, ip) in &z.members {
            if peer == host || !desired.contains(&peer) {
                continue;
            }
            out.entry((z.kind, peer)).or_insert_with(|| TunnelSpec {
                name: tunnel_name(z.kind, peer),
                kind: z.kind,
                peer,
                remote_ip: ip,
                local_ip: set_local_ip.then_some(local),
            });
        }
    }
    // Two peers folding to one name (odds 2^-48) would fight over one port: keep the first.
    let mut names = BTreeSet::new();
    out.into_values()
        .filter(|t| {
            let fresh = names.insert(t.name.clone());
            if !fresh {
                tracing::warn!(name = %t.name, peer = %t.peer, "tunnel name collision; skipped");
            }
            fresh
        })
        .collect()
}

/// A port on the bridge: its uuid, row, and first interface.
type ExistingPort<'r> = (Uuid, &'r Row, Option<(Uuid, &'r Row)>);

fn row<const N: usize>(cols: [(&str, Value); N]) -> Row {
    cols.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn owned(row: &Row) -> bool {
    row.get("external_ids")
        .and_then(|v| v.map_get(OWNER_KEY))
        .and_then(Atom::as_str)
        == Some(OWNER)
}

fn str_col<'a>(row: &'a Row, col: &str) -> Option<&'a str> {
    row.get(col).and_then(Value::as_str)
}

/// The transaction converging `host`'s OVS to its bridge and `tunnels`, or `None` if nothing
/// differs. It carries `wait`s on what it read, so it fails as stale rather than duplicate.
pub fn plan(
    replica: &Replica,
    host: &DesiredHost,
    tunnels: &[TunnelSpec],
    cfg: &ProvisionConfig,
) -> Option<Vec<Operation>> {
    let mut txn = Txn::new(replica);
    let dpid = ofproto::display::Dpid(datapath_id(host.id)).to_string();
    let other_config = string_map([("datapath-id", dpid.as_str()), ("disable-in-band", "true")]);
    let owner = string_map([(OWNER_KEY, OWNER)]);
    let bridge = replica.find("Bridge", "name", &cfg.bridge);

    if replica.rows("Open_vSwitch").next().is_none() {
        txn.push(Operation::insert("Open_vSwitch", Row::new()));
    }

    // Tunnel ports already on the bridge, by name.
    let mut existing: BTreeMap<String, ExistingPort> = BTreeMap::new();
    if let Some((_, b)) = &bridge {
        for p in uuid_set(b.get("ports")) {
            let Some(prow) = replica.get("Port", &p) else {
                continue;
            };
            let iface = uuid_set(prow.get("interfaces"))
                .into_iter()
                .next()
                .and_then(|i| replica.get("Interface", &i).map(|r| (i, r)));
            if let Some(name) = str_col(prow, "name") {
                existing.insert(name.to_string(), (p, prow, iface));
            }
        }
    }

    let mut add_ports: BTreeSet<Atom> = BTreeSet::new();
    let mut del_ports: BTreeSet<Atom> = BTreeSet::new();
    for (i, t) in tunnels.iter().enumerate() {
        let want_type = Value::from(ovs_tunnel_type(t.kind));
        let want_opts = t.options();
        match existing.get(&t.name) {
            Some((_, prow, iface)) if owned(prow) => {
                let Some((iu, irow)) = iface else { continue };
                let mut changes = Row::new();
                if irow.get("type") != Some(&want_type) {
                    changes.insert("type".into(), want_type.clone());
                }
                if irow.get("options") != Some(&want_opts) {
                    changes.insert("options".into(), want_opts.clone());
                }
                if !changes.is_empty() {
                    txn.verify("Interface", *iu, &["type", "options"]);
                    txn.push(Operation::update(
                        "Interface",
                        vec![Condition::uuid(*iu)],
                        changes,
                    ));
                }
            }
            Some(_) => {
                // A port of that name that we did not create: leave it alone.
                tracing::warn!(port = %t.name, "tunnel port name taken by a foreign port");
            }
            None => {
                let (iname, pname) = (format!("if{i}"), format!("p{i}"));
                txn.push(Operation::insert_named(
                    "Interface",
                    row([
                        ("name", t.name.as_str().into()),
                        ("type", want_type),
                        ("options", want_opts),
                        ("external_ids", owner.clone()),
                    ]),
                    &iname,
                ));
                txn.push(Operation::insert_named(
                    "Port",
                    row([
                        ("name", t.name.as_str().into()),
                        ("interfaces", Value::named(&iname)),
                        (
                            "external_ids",
                            string_map([(OWNER_KEY, OWNER), (PEER_KEY, &t.peer.to_string())]),
                        ),
                    ]),
                    &pname,
                ));
                add_ports.insert(Atom::NamedUuid(pname));
            }
        }
    }
    let wanted: BTreeSet<&str> = tunnels.iter().map(|t| t.name.as_str()).collect();
    for (name, (pu, prow, _)) in &existing {
        let ours_tunnel = owned(prow)
            && prow
                .get("external_ids")
                .and_then(|v| v.map_get(PEER_KEY))
                .is_some();
        if ours_tunnel && !wanted.contains(name.as_str()) {
            del_ports.insert(Atom::Uuid(*pu));
        }
    }

    match bridge {
        None => {
            // A fresh br-int with its internal port, our controller and the tunnels.
            txn.verify_absent("Bridge", vec![Condition::eq("name", cfg.bridge.as_str())]);
            txn.push(Operation::insert_named(
                "Interface",
                row([
                    ("name", cfg.bridge.as_str().into()),
                    ("type", "internal".into()),
                ]),
                "brif",
            ));
            txn.push(Operation::insert_named(
                "Port",
                row([
                    ("name", cfg.bridge.as_str().into()),
                    ("interfaces", Value::named("brif")),
                ]),
                "brport",
            ));
            txn.push(controller_insert(cfg));
            add_ports.insert(Atom::NamedUuid("brport".into()));
            txn.push(Operation::insert_named(
                "Bridge",
                row([
                    ("name", cfg.bridge.as_str().into()),
                    (
                        "datapath_type",
                        ovs_datapath_type(host.datapath_type).into(),
                    ),
                    ("fail_mode", Value::set(["secure"])),
                    ("protocols", Value::set(["OpenFlow13"])),
                    ("other_config", other_config),
                    ("controller", Value::named("ctl")),
                    ("ports", Value::Set(add_ports)),
                    ("external_ids", owner),
                ]),
                "bridge",
            ));
            txn.push(Operation::mutate(
                "Open_vSwitch",
                vec![],
                vec![Mutation::new(
                    "bridges",
                    Mutator::Insert,
                    Value::named("bridge"),
                )],
            ));
        }
        Some((bu, b)) => {
            let mut changes = Row::new();
            let mut mutations = vec![];
            let scalar = |col: &str, want: Value, changes: &mut Row| {
                if b.get(col) != Some(&want) {
                    changes.insert(col.to_string(), want);
                }
            };
            scalar(
                "datapath_type",
                ovs_datapath_type(host.datapath_type).into(),
                &mut changes,
            );
            scalar("fail_mode", Value::set(["secure"]), &mut changes);
            scalar("protocols", Value::set(["OpenFlow13"]), &mut changes);
            let oc_ok = other_config
                .as_map()
                .unwrap_or_default()
                .iter()
                .all(|(k, v)| {
                    b.get("other_config")
                        .and_then(|m| m.as_map())
                        .and_then(|m| m.get(k).cloned())
                        == Some(v.clone())
                });
            if !oc_ok {
                // Replace only our keys; other other_config keys stay as they are.
                mutations.push(Mutation::new(
                    "other_config",
                    Mutator::Delete,
                    Value::set(["datapath-id", "disable-in-band"]),
                ));
                mutations.push(Mutation::new("other_config", Mutator::Insert, other_config));
            }
            let ctls = uuid_set(b.get("controller"));
            let ctl_ok = ctls.len() == 1
                && ctls.iter().all(|c| {
                    replica.get("Controller", c).is_some_and(|r| {
                        str_col(r, "target") == Some(cfg.openflow_target.as_str())
                            && r.get("connection_mode") == Some(&Value::set(["out-of-band"]))
                            && r.get("inactivity_probe") == Some(&Value::set([INACTIVITY_PROBE_MS]))
                    })
                });
            if !ctl_ok {
                txn.push(controller_insert(cfg));
                changes.insert("controller".into(), Value::named("ctl"));
            }
            if !add_ports.is_empty() {
                mutations.push(Mutation::new(
                    "ports",
                    Mutator::Insert,
                    Value::Set(add_ports),
                ));
            }
            if !del_ports.is_empty() {
                mutations.push(Mutation::new(
                    "ports",
                    Mutator::Delete,
                    Value::Set(del_ports),
                ));
            }
            if !changes.is_empty() {
                txn.push(Operation::update(
                    "Bridge",
                    vec![Condition::uuid(bu)],
                    changes,
                ));
            }
            if !mutations.is_empty() {
                txn.push(Operation::mutate(
                    "Bridge",
                    vec![Condition::uuid(bu)],
                    mutations,
                ));
            }
            if !txn.is_noop() {
                txn.verify("Bridge", bu, &["ports", "controller"]);
            }
        }
    }
    (!txn.is_noop()).then(|| txn.into_ops())
}

fn controller_insert(cfg: &ProvisionConfig) -> Operation {
    Operation::insert_named(
        "Controller",
        row([
            ("target", cfg.openflow_target.as_str().into()),
            ("connection_mode", Value::set(["out-of-band"])),
            ("inactivity_probe", Value::set([INACTIVITY_PROBE_MS])),
            ("external_ids", string_map([(OWNER_KEY, OWNER)])),
        ]),
        "ctl",
    )
}

fn ofport(row: &Row) -> Option<u32> {
    row.get("ofport")?
        .as_i64()
        .and_then(|p| u32::try_from(p).ok())
        .filter(|p| *p > 0)
}

/// What the OpenFlow side needs from a host's replica.
pub fn host_view(replica: &Replica, bridge_name: &str) -> HostView {
    let mut view = HostView {
        connected: true,
        ..HostView::default()
    };
    let Some((_, b)) = replica.find("Bridge", "name", bridge_name) else {
        return view;
    };
    view.datapath_id = str_col(b, "datapath_id").and_then(|d| u64::from_str_radix(d, 16).ok());
    for p in uuid_set(b.get("ports")) {
        let Some(prow) = replica.get("Port", &p) else {
            continue;
        };
        let peer = prow
            .get("external_ids")
            .and_then(|v| v.map_get(PEER_KEY))
            .and_then(Atom::as_str)
            .and_then(|s| s.parse::<Uuid>().ok());
        for i in uuid_set(prow.get("interfaces")) {
            let Some(irow) = replica.get("Interface", &i) else {
                continue;
            };
            let name = str_col(irow, "name").unwrap_or_default().to_string();
            let kind = [TunnelType::Vxlan, TunnelType::Gre]
                .into_iter()
                .find(|t| str_col(irow, "type") == Some(ovs_tunnel_type(*t)));
            if let (Some(peer), Some(kind), true) = (peer, kind, owned(prow)) {
                view.tunnels.insert(
                    (peer, kind),
                    TunnelPort {
                        name,
                        ofport: ofport(irow),
                    },
                );
                continue;
            }
            let iface_id = irow
                .get("external_ids")
                .and_then(|v| v.map_get("iface-id"))
                .and_then(Atom::as_str);
            if kind.is_none() && name != bridge_name {
                view.interfaces.insert(
                    name.clone(),
                    super::InterfaceView {
                        ofport: ofport(irow),
                        iface_id: iface_id.map(str::to_string),
                        up: str_col(irow, "link_state") == Some("up"),
                    },
                );
            }
            if let Some(id) = iface_id {
                view.vifs.insert(
                    id.to_string(),
                    VifPort {
                        name,
                        ofport: ofport(irow),
                    },
                );
            }
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::DesiredZone;
    use std::sync::Arc;

    fn host(n: u8) -> DesiredHost {
        DesiredHost {
            id: Uuid::from_u128(n as u128 | 0xabcd_0000_0000_0000_0000_0000_0000_0000),
            name: format!("hv{n}"),
            ovsdb: None,
            datapath_type: DatapathType::System,
            cert_cn: None,
        }
    }

    fn state() -> DesiredState {
        let hosts: Vec<_> = (1..=3).map(host).collect();
        let ip = |n: u8| IpAddr::from([192, 168, 0, n]);
        DesiredState {
            zones: vec![
                DesiredZone {
                    id: Uuid::new_v4(),
                    name: "vx".into(),
                    kind: TunnelType::Vxlan,
                    members: hosts.iter().zip(1..).map(|(h, n)| (h.id, ip(n))).collect(),
                },
                DesiredZone {
                    id: Uuid::new_v4(),
                    name: "gre".into(),
                    kind: TunnelType::Gre,
                    members: vec![(hosts[0].id, ip(1)), (hosts[1].id, ip(2))],
                },
            ],
            hosts,
        }
    }

    #[test]
    fn tunnels_per_peer_per_zone() {
        let s = state();
        let t = desired_tunnels(&s, s.hosts[0].id, false);
        assert_eq!(t.len(), 3);
        assert!(t
            .iter()
            .all(|t| t.local_ip.is_none() && t.peer != s.hosts[0].id));
        let t = desired_tunnels(&s, s.hosts[2].id, true);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].local_ip, Some(IpAddr::from([192, 168, 0, 3])));
        assert!(t
            .iter()
            .all(|t| t.name.len() <= 15 && t.name.starts_with("vx-")));
    }

    #[test]
    fn empty_replica_plans_one_transaction_that_type_checks() {
        let text = std::fs::read_to_string(testbed::VSWITCH_SCHEMA)
            .expect("vswitch.ovsschema: install openvswitch-switch");
        let schema =
            ovsdb::DatabaseSchema::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        let replica = Replica::new(Arc::new(schema));
        let s = state();
        let cfg = ProvisionConfig::new("tcp:127.0.0.1:6653");
        let tunnels = desired_tunnels(&s, s.hosts[0].id, false);
        let ops = plan(&replica, &s.hosts[0], &tunnels, &cfg).expect("something to do");
        for op in &ops {
            replica.schema().check_operation(op).unwrap();
        }
        let inserts = ops
            .iter()
            .filter(|o| matches!(o, Operation::Insert { .. }))
            .count();
        // Open_vSwitch, 3 × (Interface + Port), br-int's Interface + Port, Controller, Bridge.
        assert_eq!(inserts, 1 + 6 + 2 + 1 + 1);
    }
}
