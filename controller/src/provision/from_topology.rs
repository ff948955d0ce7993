//! The provisioner's desired state follows the topology: every snapshot's hosts and tunnel
//! zones become a `DesiredState`. Kept apart from the provisioner so that it stays usable with a
//! hand-written desired state (tests, tools) and the topology crate stays free of OVSDB types.

use std::sync::Arc;

use tokio::sync::watch;
use topology::Snapshot;

use super::{DesiredHost, DesiredState, DesiredZone, Provisioner};

/// What the topology asks the provisioner to make true. Validation parses `ovsdb` with the
/// same grammar ([`topology::OvsdbTarget`]), so a target that does not parse here can only be
/// one stored before that grammar: it is left out with a warning rather than treated as a
/// host that dials in, which would silently change its meaning.
pub fn desired_state(snapshot: &Snapshot) -> DesiredState {
    let hosts = snapshot
        .hosts()
        .filter_map(|h| {
            let ovsdb = match h.ovsdb.as_deref().map(str::parse) {
                None => None,
                Some(Ok(t)) => Some(t),
                Some(Err(e)) => {
                    tracing::warn!(host = %h.id, target = ?h.ovsdb, "unusable ovsdb target: {e}");
                    return None;
                }
            };
            Some(DesiredHost {
                id: h.id,
                name: h.name.clone(),
                ovsdb,
                datapath_type: h.datapath_type,
                cert_cn: h.cert_cn.clone(),
            })
        })
        .collect();
    let zones = snapshot
        .tunnel_zones()
        .map(|z| DesiredZone {
            id: z.id,
            name: z.name.clone(),
            kind: z.tunnel_type,
            members: z.members.iter().map(|m| (m.host_id, m.ip)).collect(),
        })
        .collect();
    DesiredState { hosts, zones }
}

/// Feeds every new snapshot to the provisioner until `shutdown` turns true. Only a change of
/// the derived state reaches the provisioner, so edits to bridges or chains cost no OVSDB work.
pub async fn follow(
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    provisioner: Provisioner,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last: Option<DesiredState> = None;
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        let state = desired_state(&snapshot);
        if last.as_ref() != Some(&state) {
            provisioner.set_desired_at(state.clone(), snapshot.revision());
            last = Some(state);
        } else {
            // Hosts and zones as they were: a host that reconciled them has this revision too.
            provisioner.note_revision(snapshot.revision());
        }
        tokio::select! {
            r = snapshots.changed() => if r.is_err() { break },
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use topology::model::{DatapathType, Host, TunnelType, TunnelZone, TunnelZoneMember};

    fn snapshot_with(hosts: Vec<Host>, zones: Vec<TunnelZone>) -> Snapshot {
        let network = topology::Network::open(Arc::new(topology::MemStore::new()))
            .expect("an empty in-memory network opens");
        network
            .write(|txn| {
                for h in hosts {
                    txn.create_host(h)?;
                }
                for z in zones {
                    let members = z.members.clone();
                    let zone = txn.create_tunnel_zone(z)?;
                    for m in members {
                        txn.set_member(zone.id, m)?;
                    }
                }
                Ok(())
            })
            .expect("valid topology");
        (*network.snapshot()).clone()
    }

    #[test]
    fn hosts_and_zones_become_desired_state() {
        let h1 = uuid::Uuid::new_v4();
        let h2 = uuid::Uuid::new_v4();
        let host = |id, name: &str, ovsdb: Option<&str>| Host {
            id,
            name: name.into(),
            tunnel_ip: None,
            ovsdb: ovsdb.map(Into::into),
            datapath_type: DatapathType::Netdev,
            cert_cn: None,
            connected: false,
            datapath_id: None,
        };
        let ip1: IpAddr = "192.0.2.1".parse().unwrap();
        let ip2: IpAddr = "192.0.2.2".parse().unwrap();
        let snap = snapshot_with(
            vec![
                host(h1, "hv1", Some("unix:/tmp/hv1.sock")),
                host(h2, "hv2", None),
            ],
            vec![TunnelZone {
                id: uuid::Uuid::new_v4(),
                name: "z".into(),
                tunnel_type: TunnelType::Gre,
                members: vec![
                    TunnelZoneMember {
                        host_id: h1,
                        ip: ip1,
                    },
                    TunnelZoneMember {
                        host_id: h2,
                        ip: ip2,
                    },
                ],
            }],
        );
        let d = desired_state(&snap);
        assert_eq!(d.hosts.len(), 2);
        let d1 = d.host(h1).expect("hv1 is desired");
        assert_eq!(d1.ovsdb, Some("unix:/tmp/hv1.sock".parse().unwrap()));
        assert_eq!(d1.datapath_type, DatapathType::Netdev);
        assert_eq!(d.host(h2).expect("hv2 is desired").ovsdb, None);
        assert_eq!(d.zones.len(), 1);
        assert_eq!(d.zones[0].kind, TunnelType::Gre);
        let mut members = d.zones[0].members.clone();
        members.sort();
        let mut want = vec![(h1, ip1), (h2, ip2)];
        want.sort();
        assert_eq!(members, want);
    }
}
