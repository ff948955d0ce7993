//! Feeds the app the topology and the port bindings, in order, on its one stream.
//!
//! Every topology snapshot goes to the app as `Event::Topology`, then — if they changed — the
//! bindings rebuilt on it from the provisioner's host views (`Event::Bindings`). Snapshots are
//! never skipped out of order: a watch may coalesce revisions, but the app always gets the newest
//! one before any bindings built on it. The same bindings are published on a `watch` for REST
//! (a port's live `ofport`/`up`, the unbound interfaces). After each step the app's stream is
//! marked with (revision, bindings generation), which the switches confirm with barriers.

use std::collections::HashMap;
use std::sync::Arc;

use apps::bindings::{HostPorts, Interface, Tunnel};
use apps::{Bindings, Event};
use tokio::sync::watch;
use topology::Snapshot;
use uuid::Uuid;

use crate::openflow::AppHost;
use crate::provision::HostViews;

/// Remembers when each (host, interface, iface-id) was first seen, so that of two hosts plugging
/// the same port id the later one wins ("newest wins"), stably across rebuilds.
#[derive(Debug, Default)]
pub struct Builder {
    first_seen: HashMap<(Uuid, String, Option<String>), u64>,
    counter: u64,
}

impl Builder {
    /// The bindings of `views` on `snapshot`.
    pub fn build(&mut self, snapshot: &Snapshot, views: &HostViews) -> Bindings {
        let mut live = HashMap::new();
        let mut hosts = Vec::with_capacity(views.len());
        for (host, view) in views {
            if !view.connected {
                continue;
            }
            let mut interfaces = Vec::with_capacity(view.interfaces.len());
            for (name, i) in &view.interfaces {
                let key = (*host, name.clone(), i.iface_id.clone());
                let seen = match self.first_seen.get(&key) {
                    Some(s) => *s,
                    None => {
                        self.counter += 1;
                        if let Some(id) = &i.iface_id {
                            tracing::info!(%host, interface = %name, iface_id = %id, "interface plugged");
                        }
                        self.counter
                    }
                };
                live.insert(key, seen);
                interfaces.push(Interface {
                    name: name.clone(),
                    ofport: i.ofport,
                    iface_id: i.iface_id.clone(),
                    seen,
                });
            }
            // One tunnel per peer: VXLAN when the hosts share zones of both kinds.
            let mut tunnels: Vec<Tunnel> = Vec::new();
            for ((peer, _kind), t) in &view.tunnels {
                let Some(ofport) = t.ofport else { continue };
                // Keys sort VXLAN before GRE, so the first tunnel to a peer is the one kept.
                if tunnels.iter().any(|x| x.peer == *peer) {
                    continue;
                }
                tunnels.push(Tunnel {
                    peer: *peer,
                    ofport,
                });
            }
            hosts.push(HostPorts {
                host: *host,
                interfaces,
                tunnels,
            });
        }
        self.first_seen = live;
        let b = Bindings::build(snapshot, &hosts);
        for u in b.unbound() {
            if u.reason == apps::bindings::UnboundReason::Superseded {
                tracing::warn!(host = %u.host, interface = %u.interface, iface_id = ?u.iface_id, "port plugged on another host more recently: this interface is not bound");
            }
        }
        b
    }
}

/// Runs until `shutdown`: every snapshot and every change of the host views reaches the app.
pub async fn follow(
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    mut views: watch::Receiver<HostViews>,
    app: AppHost,
    published: watch::Sender<Arc<Bindings>>,
    synced: watch::Sender<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut builder = Builder::default();
    let mut last_rev = None;
    let mut last: Option<Arc<Bindings>> = None;
    let mut generation = 0;
    loop {
        let snap = snapshots.borrow_and_update().clone();
        let mut moved = false;
        if last_rev != Some(snap.revision()) {
            app.broadcast(&Event::Topology(snap.clone()));
            last_rev = Some(snap.revision());
            moved = true;
        }
        let (b, through) = {
            let v = views.borrow_and_update();
            // The last sync every connected host's view (so these bindings) includes.
            let through = v
                .values()
                .filter(|h| h.connected)
                .map(|h| h.synced)
                .min()
                .unwrap_or(u64::MAX);
            (builder.build(&snap, &v), through)
        };
        if last.as_deref() != Some(&b) {
            let b = Arc::new(b);
            app.broadcast(&Event::Bindings(b.clone()));
            published.send_replace(b.clone());
            last = Some(b);
            generation += 1;
            moved = true;
        }
        // One mark per step, after both: a switch that acknowledges it has the deletes of this
        // snapshot and the flows of these bindings (`crate::applied`). The watch coalesces
        // snapshots that arrive while the app is busy, and so does the mark.
        if moved {
            app.mark(crate::applied::Mark {
                revision: snap.revision(),
                bindings: generation,
            });
        }
        // After the mark: a waiter that sees the sync done reads a bindings generation that
        // covers what the synced views hold.
        synced.send_if_modified(|s| {
            let changed = *s != through;
            *s = through;
            changed
        });
        tokio::select! {
            r = snapshots.changed() => if r.is_err() { break },
            r = views.changed() => if r.is_err() { break },
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::{HostView, InterfaceView, TunnelPort, TunnelType};
    use apps::harness::fixtures;

    fn network() -> (topology::Network, [Uuid; 3], Uuid) {
        let n = topology::Network::open(Arc::new(topology::MemStore::new())).unwrap();
        let (ids, _) = n
            .write(|t| {
                let mut hosts = [Uuid::nil(); 3];
                for (i, h) in hosts.iter_mut().enumerate() {
                    *h = t.create_host(fixtures::host(&format!("hv{i}")))?.id;
                }
                let br = t.create_bridge(fixtures::bridge("b", None))?.id;
                let p = t.create_port(br, fixtures::bridge_port())?.id;
                Ok((hosts, p))
            })
            .unwrap();
        (n, ids.0, ids.1)
    }

    fn view(ifaces: &[(&str, u32, Option<Uuid>)], tunnels: &[(Uuid, TunnelType, u32)]) -> HostView {
        HostView {
            connected: true,
            interfaces: ifaces
                .iter()
                .map(|(n, o, id)| {
                    (
                        n.to_string(),
                        InterfaceView {
                            ofport: Some(*o),
                            iface_id: id.map(|u| u.to_string()),
                            up: true,
                        },
                    )
                })
                .collect(),
            tunnels: tunnels
                .iter()
                .map(|(p, k, o)| {
                    (
                        (*p, *k),
                        TunnelPort {
                            name: format!("t{o}"),
                            ofport: Some(*o),
                        },
                    )
                })
                .collect(),
            ..HostView::default()
        }
    }

    #[test]
    fn the_newest_plug_wins_and_one_tunnel_per_peer() {
        let (n, [h0, h1, h2], p) = network();
        let snap = n.snapshot();
        let mut b = Builder::default();
        let mut views = HostViews::new();
        // h0 is in a VXLAN zone and a GRE zone with h1, and a GRE zone with h2.
        views.insert(
            h0,
            view(
                &[("vm", 1, Some(p))],
                &[
                    (h1, TunnelType::Vxlan, 10),
                    (h1, TunnelType::Gre, 11),
                    (h2, TunnelType::Gre, 12),
                ],
            ),
        );
        let first = b.build(&snap, &views);
        assert_eq!(first.port(p).map(|l| l.host), Some(h0));
        assert_eq!(first.tunnel(h0, h1), Some(10));
        assert_eq!(first.tunnel(h0, h2), Some(12));
        // The same port id plugged on h1 later: h1 wins, and keeps winning on rebuilds.
        views.insert(h1, view(&[("vm-moved", 3, Some(p))], &[]));
        for _ in 0..2 {
            let b2 = b.build(&snap, &views);
            assert_eq!(b2.port(p).map(|l| (l.host, l.ofport)), Some((h1, 3)));
        }
        // Unplugged on h1: back on h0.
        views.insert(h1, view(&[], &[]));
        assert_eq!(b.build(&snap, &views).port(p).map(|l| l.host), Some(h0));
        // A disconnected host's interfaces bind nothing.
        views.get_mut(&h0).unwrap().connected = false;
        assert!(b.build(&snap, &views).port(p).is_none());
    }
}
