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
use crate::provision::{HostView, HostViews};

/// Remembers when each (host, interface, iface-id) was first seen, so that of two hosts plugging
/// the same port id the later one wins ("newest wins"), stably across rebuilds.
///
/// Only hosts whose view changed are converted again: while hundreds of hosts converge, each
/// view change used to re-read every host's interfaces and tunnels (O(N² + ports) per change,
/// O(N³) over a mesh coming up); a host whose view is as it was costs one comparison.
#[derive(Debug, Default)]
pub struct Builder {
    hosts: HashMap<Uuid, Converted>,
    counter: u64,
}

/// One host's view as last seen, and what it made.
#[derive(Debug)]
struct Converted {
    view: HostView,
    /// When each (interface, iface-id) was first seen on this host.
    first_seen: HashMap<(String, Option<String>), u64>,
    ports: HostPorts,
}

impl Builder {
    /// The bindings of `views` on `snapshot`.
    pub fn build(&mut self, snapshot: &Snapshot, views: &HostViews) -> Bindings {
        self.update(views);
        self.bindings(snapshot)
    }

    /// Takes in the hosts' views: only the hosts whose view changed cost more than a
    /// comparison (so the views' lock is held briefly: host sessions wait on it to publish).
    pub fn update(&mut self, views: &HostViews) {
        // Hosts gone or disconnected are forgotten (their plugs count as new when they return).
        self.hosts
            .retain(|id, _| views.get(id).is_some_and(|v| v.connected));
        for (host, view) in views {
            if !view.connected {
                continue;
            }
            if self.hosts.get(host).is_some_and(|c| c.view == *view) {
                continue;
            }
            let old = self.hosts.remove(host).map(|c| c.first_seen);
            let converted = self.convert(*host, view, old.unwrap_or_default());
            self.hosts.insert(*host, converted);
        }
    }

    /// The bindings of the views taken in, on `snapshot`.
    pub fn bindings(&self, snapshot: &Snapshot) -> Bindings {
        let b = Bindings::build(snapshot, self.hosts.values().map(|c| &c.ports));
        for u in b.unbound() {
            if u.reason == apps::bindings::UnboundReason::Superseded {
                tracing::warn!(host = %u.host, interface = %u.interface, iface_id = ?u.iface_id, "port plugged on another host more recently: this interface is not bound");
            }
        }
        b
    }

    fn convert(
        &mut self,
        host: Uuid,
        view: &HostView,
        mut before: HashMap<(String, Option<String>), u64>,
    ) -> Converted {
        let mut first_seen = HashMap::with_capacity(view.interfaces.len());
        let mut interfaces = Vec::with_capacity(view.interfaces.len());
        for (name, i) in &view.interfaces {
            let key = (name.clone(), i.iface_id.clone());
            let seen = match before.remove(&key) {
                Some(s) => s,
                None => {
                    self.counter += 1;
                    if let Some(id) = &i.iface_id {
                        tracing::info!(%host, interface = %name, iface_id = %id, "interface plugged");
                    }
                    self.counter
                }
            };
            interfaces.push(Interface {
                name: name.clone(),
                ofport: i.ofport,
                iface_id: i.iface_id.clone(),
                seen,
            });
            first_seen.insert(key, seen);
        }
        // One tunnel per peer: VXLAN when the hosts share zones of both kinds.
        let mut tunnels: Vec<Tunnel> = Vec::with_capacity(view.tunnels.len());
        for ((peer, _kind), t) in &view.tunnels {
            let Some(ofport) = t.ofport else { continue };
            // Keys sort by peer, VXLAN before GRE, so the first tunnel to a peer is the one
            // kept, and it is the last one pushed when a second comes.
            if tunnels.last().is_some_and(|x| x.peer == *peer) {
                continue;
            }
            tunnels.push(Tunnel {
                peer: *peer,
                ofport,
            });
        }
        Converted {
            view: view.clone(),
            first_seen,
            ports: HostPorts {
                host,
                interfaces,
                tunnels,
            },
        }
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
        let t0 = std::time::Instant::now();
        if last_rev != Some(snap.revision()) {
            app.broadcast(&Event::Topology(snap.clone()));
            last_rev = Some(snap.revision());
            moved = true;
        }
        let tb = std::time::Instant::now();
        let through = {
            let v = views.borrow_and_update();
            // The last sync every connected host's view (so these bindings) includes.
            let through = v
                .values()
                .filter(|h| h.connected)
                .map(|h| h.synced)
                .min()
                .unwrap_or(u64::MAX);
            builder.update(&v);
            through
        };
        let b = builder.bindings(&snap);
        let t1 = std::time::Instant::now();
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
        tracing::debug!(topology = ?(tb - t0), build = ?(t1 - tb), bindings = ?t1.elapsed(), "follow step");
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
        // A heavy step (hundreds of hosts coming up: every step rebuilds the bindings and the
        // app syncs every switch's pipeline, O(ports + N²)) is followed by a pause as long as
        // itself, so that changes arriving meanwhile coalesce into the next step instead of
        // each costing a step of its own, and the app lock and the CPU are free half the time
        // for packet-ins and the hosts' sessions. Light steps (microseconds) are not paced.
        let spent = t0.elapsed();
        if spent >= PACE_ABOVE {
            tokio::select! {
                _ = tokio::time::sleep(spent.min(PACE_AT_MOST)) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        tokio::select! {
            r = snapshots.changed() => if r.is_err() { break },
            r = views.changed() => if r.is_err() { break },
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
}

/// Steps of the bindings follower that took longer are followed by a pause as long.
const PACE_ABOVE: std::time::Duration = std::time::Duration::from_millis(2);
/// The longest pause after a step.
const PACE_AT_MOST: std::time::Duration = std::time::Duration::from_millis(250);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::{InterfaceView, TunnelPort, TunnelType};
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

    /// Taking in only the hosts whose view changed gives what a builder starting afresh
    /// gives, step after step.
    #[test]
    fn incremental_updates_match_a_fresh_build() {
        let (n, [h0, h1, h2], p) = network();
        let snap = n.snapshot();
        let mut b = Builder::default();
        let mut views = HostViews::new();
        type Step<'a> = Box<dyn Fn(&mut HostViews) + 'a>;
        let steps: Vec<Step> = vec![
            Box::new(|v| {
                v.insert(
                    h0,
                    view(&[("vm", 1, Some(p))], &[(h1, TunnelType::Vxlan, 10)]),
                );
            }),
            Box::new(|v| {
                v.insert(h1, view(&[], &[(h0, TunnelType::Vxlan, 4)]));
            }),
            Box::new(|v| {
                v.get_mut(&h1).unwrap().tunnels.insert(
                    (h2, TunnelType::Vxlan),
                    TunnelPort {
                        name: "t5".into(),
                        ofport: Some(5),
                    },
                );
            }),
            Box::new(|v| {
                v.insert(h2, view(&[("other", 2, None)], &[]));
            }),
            Box::new(|v| {
                v.get_mut(&h0).unwrap().connected = false;
            }),
            Box::new(|v| {
                v.remove(&h2);
            }),
        ];
        for step in steps {
            step(&mut views);
            let incremental = b.build(&snap, &views);
            let fresh = Builder::default().build(&snap, &views);
            assert_eq!(incremental, fresh);
        }
        assert_eq!(b.hosts.len(), 1, "only connected hosts are kept");
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
