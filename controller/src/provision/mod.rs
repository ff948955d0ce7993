//! Host provisioning over OVSDB: each host's `br-int` (datapath type, `fail_mode=secure`,
//! OpenFlow 1.3, our controller out-of-band with a 30 s inactivity probe, a datapath id derived
//! from the host id) and one tunnel port per peer host per tunnel zone, kept in step with a
//! desired state.
//!
//! The provisioner consumes a plain [`DesiredState`] (hosts and tunnel zones) through
//! [`Provisioner::set_desired`]; it knows nothing of the REST API or the store. It publishes
//! what the OpenFlow side needs, per host, as a [`HostView`] map on a `watch` channel
//! ([`Provisioner::views`]): the datapath id, tunnel ofports per peer, and VM interfaces
//! (`external_ids:iface-id`) with their ofports.
//!
//! Reconcile guarantees: all of a host's changes go in one transaction, guarded by `wait`s on
//! what the plan read (a stale replica is retried, never applied); planning twice changes
//! nothing; only rows we created (marked `external_ids:strowger-owner`) are changed or removed,
//! besides `br-int`'s own settings. Hosts are reached actively (`ovsdb` target set) or dial in
//! (`ovs-vsctl set-manager tcp:CTRL:PORT`) and are matched by `Open_vSwitch.external_ids:
//! system-id` (the host's id or name).

pub mod from_topology;
mod host;
pub mod plan;
mod tls_listen;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use topology::OvsdbTarget;
use tracing::Instrument;
use uuid::Uuid;

/// The model's tunnel and datapath types, used as they are: the provisioner keeps no parallel
/// enums (their OVS names are in [`plan`]).
pub use topology::model::{DatapathType, TunnelType};

/// A host as the provisioner needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredHost {
    /// The host id; also what its `system-id` may be when it dials in.
    pub id: Uuid,
    /// The host name (also accepted as `system-id`).
    pub name: String,
    /// How to reach its OVSDB; `None` when it dials in.
    pub ovsdb: Option<OvsdbTarget>,
    /// `br-int`'s `datapath_type`.
    pub datapath_type: DatapathType,
    /// With TLS on, the certificate that identifies the host (`Host::cert_cn`); `None`: its
    /// name.
    pub cert_cn: Option<String>,
}

impl DesiredHost {
    /// What the host's certificate must match over TLS ([`crate::tls::PeerIdentity::matches`]).
    pub fn expected_certificate(&self) -> &str {
        self.cert_cn.as_deref().unwrap_or(&self.name)
    }
}

/// A tunnel zone: its members, each with the underlay address used to reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredZone {
    /// Zone id.
    pub id: Uuid,
    /// Zone name.
    pub name: String,
    /// Tunnel type.
    pub kind: TunnelType,
    /// `(host id, underlay ip)`: the member's `ip`, which validation keeps equal to the host's
    /// `tunnel_ip` when that is set.
    pub members: Vec<(Uuid, IpAddr)>,
}

/// Everything the provisioner should make true.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesiredState {
    /// Hosts.
    pub hosts: Vec<DesiredHost>,
    /// Tunnel zones.
    pub zones: Vec<DesiredZone>,
}

impl DesiredState {
    /// A host by id.
    pub fn host(&self, id: Uuid) -> Option<&DesiredHost> {
        self.hosts.iter().find(|h| h.id == id)
    }
}

/// Settings common to every host.
#[derive(Debug, Clone)]
pub struct ProvisionConfig {
    /// The OpenFlow target written into each `br-int` (`tcp:IP:PORT`).
    pub openflow_target: String,
    /// The integration bridge's name.
    pub bridge: String,
    /// Whether tunnel ports get `options:local_ip` (this host's address in the zone). Off for
    /// dummy-datapath sandboxes, where it breaks native tunnel routing.
    pub set_local_ip: bool,
    /// OVSDB session settings.
    pub ovsdb: ovsdb::rpc::Config,
    /// How long a host that dialed in may take to tell a `system-id` naming a desired host
    /// (one without an `ovsdb` target) before it is dropped (it redials by itself).
    pub identify_deadline: std::time::Duration,
    /// TLS for `ssl:` targets and for the dial-in listener, when on.
    pub tls: Option<ProvisionTls>,
}

/// The provisioner's TLS: hosts are dialed (`ssl:IP:PORT`) with `client` and accepted on the
/// dial-in listener with `server` (a host certificate required); either way the host's
/// certificate must be the one its record names ([`DesiredHost::expected_certificate`]).
#[derive(Debug, Clone)]
pub struct ProvisionTls {
    /// For dialing hosts.
    pub client: Arc<rustls::ClientConfig>,
    /// For hosts that dial in.
    pub server: Arc<rustls::ServerConfig>,
}

impl ProvisionConfig {
    /// Defaults around an OpenFlow target.
    pub fn new(openflow_target: &str) -> Self {
        ProvisionConfig {
            openflow_target: openflow_target.to_string(),
            bridge: "br-int".into(),
            set_local_ip: true,
            ovsdb: ovsdb::rpc::Config::default(),
            identify_deadline: std::time::Duration::from_secs(30),
            tls: None,
        }
    }
}

/// A tunnel port as seen on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelPort {
    /// Port name.
    pub name: String,
    /// Its OpenFlow port number, once OVS assigned one.
    pub ofport: Option<u32>,
}

/// A VM interface on `br-int`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VifPort {
    /// Interface name.
    pub name: String,
    /// Its OpenFlow port number, once assigned.
    pub ofport: Option<u32>,
}

/// What the OpenFlow side needs to know about one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostView {
    /// An OVSDB session is up.
    pub connected: bool,
    /// The datapath id `br-int` reports (the one we set, once vswitchd applied it).
    pub datapath_id: Option<u64>,
    /// Tunnel ports by (peer host, tunnel type).
    pub tunnels: BTreeMap<(Uuid, TunnelType), TunnelPort>,
    /// VM interfaces by `external_ids:iface-id`.
    pub vifs: BTreeMap<String, VifPort>,
    /// Every interface on `br-int` but tunnels and the bridge's own, by name (what an explicit
    /// binding names).
    pub interfaces: BTreeMap<String, InterfaceView>,
    /// The revision of the desired state this session last committed (or found nothing to do
    /// for): see [`Provisioner::applied_revision`].
    pub reconciled: Option<u64>,
    /// The last [`Provisioner::request_sync`] this view is known to include: every transaction
    /// the host had committed when it was asked is in it.
    pub synced: u64,
}

/// A non-tunnel interface on `br-int`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceView {
    /// Its OpenFlow port number, once assigned.
    pub ofport: Option<u32>,
    /// `external_ids:iface-id`, if set.
    pub iface_id: Option<String>,
    /// `link_state` is `up`.
    pub up: bool,
}

impl HostView {
    /// The ofport of the tunnel to `peer` (VXLAN preferred when both exist).
    pub fn tunnel_ofport(&self, peer: Uuid) -> Option<u32> {
        self.tunnels
            .range((peer, TunnelType::Vxlan)..=(peer, TunnelType::Gre))
            .find_map(|(_, t)| t.ofport)
    }
}

/// The datapath id we give a host's `br-int` (the model's mapping).
pub use topology::model::datapath_id;

/// The OpenFlow target written into hosts' `br-int`: `--openflow-advertise` if given, else
/// `tcp:` and the OpenFlow listen address (loopback when it listens on every address).
pub fn advertised_target(
    listen: std::net::SocketAddr,
    advertise: Option<&str>,
    tls: bool,
) -> String {
    if let Some(a) = advertise {
        return a.to_string();
    }
    let scheme = if tls { "ssl" } else { "tcp" };
    let ip = if listen.ip().is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        listen.ip()
    };
    format!("{scheme}:{}", std::net::SocketAddr::new(ip, listen.port()))
}

/// The host-view map published to the OpenFlow side.
pub type HostViews = BTreeMap<Uuid, HostView>;

/// The host whose `br-int` reports datapath id `dpid` (an OpenFlow session's features reply).
pub fn host_by_datapath(views: &HostViews, dpid: u64) -> Option<Uuid> {
    views
        .iter()
        .find(|(_, v)| v.datapath_id == Some(dpid))
        .map(|(id, _)| *id)
}

/// A desired state and the topology revision it was set at (0 when not from a topology).
#[derive(Debug, Default)]
pub(crate) struct Desired {
    pub(crate) state: DesiredState,
    pub(crate) revision: u64,
}

impl std::ops::Deref for Desired {
    type Target = DesiredState;
    fn deref(&self) -> &DesiredState {
        &self.state
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ProvisionConfig,
    pub(crate) desired: watch::Sender<Arc<Desired>>,
    /// The newest topology revision the desired state is known to hold for (it changes only
    /// when hosts or zones do); set after `desired`.
    pub(crate) revision: watch::Sender<u64>,
    /// The last sync asked of every host session ([`Provisioner::request_sync`]).
    pub(crate) sync: watch::Sender<u64>,
    pub(crate) views: watch::Sender<HostViews>,
    /// The passive session that speaks for each host, by a token unique to the session (see
    /// `host::Claim`). A std mutex: held for a map update and a view write, never across an
    /// await.
    pub(crate) passive_owners: std::sync::Mutex<HashMap<Uuid, u64>>,
    pub(crate) next_token: std::sync::atomic::AtomicU64,
}

/// How many hosts may be connected in passive mode at once, at most.
pub const MAX_PASSIVE_HOSTS: usize = 4096;

/// The OVSDB listener's connection cap for a process allowed `nofile` descriptors: a quarter
/// of them (at most [`MAX_PASSIVE_HOSTS`]), so a flood of hosts dialing in leaves descriptors
/// for the OpenFlow listener, the REST API, the store and active OVSDB sessions. An unknown
/// limit counts as the usual soft limit, 1024.
pub fn passive_connection_cap(nofile: Option<u64>) -> usize {
    let quarter = usize::try_from(nofile.unwrap_or(1024) / 4).unwrap_or(usize::MAX);
    quarter.clamp(1, MAX_PASSIVE_HOSTS)
}

/// The process's soft limit on open files (Linux: `/proc/self/limits`), if it can be read.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Keeps every host's OVS in step with the desired state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Provisioner {
    shared: Arc<Shared>,
}

impl Provisioner {
    /// A provisioner with an empty desired state.
    pub fn new(config: ProvisionConfig) -> Self {
        let (desired, _) = watch::channel(Arc::new(Desired::default()));
        let (views, _) = watch::channel(HostViews::new());
        Provisioner {
            shared: Arc::new(Shared {
                config,
                desired,
                revision: watch::channel(0).0,
                sync: watch::channel(0).0,
                views,
                passive_owners: Default::default(),
                next_token: Default::default(),
            }),
        }
    }

    /// Replaces the desired state; running sessions reconcile towards it.
    pub fn set_desired(&self, state: DesiredState) {
        self.set_desired_at(state, 0);
    }

    /// Replaces the desired state with the one of topology revision `revision`.
    pub fn set_desired_at(&self, state: DesiredState, revision: u64) {
        self.shared
            .desired
            .send_replace(Arc::new(Desired { state, revision }));
        self.note_revision(revision);
    }

    /// The desired state holds for topology revision `revision` too (a change of bridges or
    /// chains leaves hosts and zones as they were).
    pub fn note_revision(&self, revision: u64) {
        self.shared.revision.send_if_modified(|r| {
            let newer = revision > *r;
            if newer {
                *r = revision;
            }
            newer
        });
    }

    /// Asks every host session for an OVSDB round trip, after which its view includes every
    /// change the host had committed by now (a VIF `ovs-vsctl add-port` has just plugged);
    /// returns the sync's number, which views show in [`HostView::synced`] once done.
    pub fn request_sync(&self) -> u64 {
        let mut n = 0;
        self.shared.sync.send_modify(|s| {
            *s += 1;
            n = *s;
        });
        n
    }

    /// Wakes whenever [`Provisioner::note_revision`] moves the revision.
    pub fn revisions(&self) -> watch::Receiver<u64> {
        self.shared.revision.subscribe()
    }

    /// The topology revision a host with `view` has applied: the revision of the desired state
    /// it last reconciled, or the newest noted revision if that state is still the desired one
    /// (nothing for it changed since). `None` before its first reconcile.
    pub fn applied_revision(&self, view: &HostView) -> Option<u64> {
        let reconciled = view.reconciled?;
        // The noted revision first: it is set after the desired state, so if the desired state
        // read next is still the reconciled one, it held at the noted revision too.
        let noted = *self.shared.revision.borrow();
        let current = self.shared.desired.borrow().revision;
        Some(if reconciled == current {
            noted.max(reconciled)
        } else {
            reconciled
        })
    }

    /// Per-host views for the OpenFlow side; changes whenever a host's ports do.
    pub fn views(&self) -> watch::Receiver<HostViews> {
        self.shared.views.subscribe()
    }

    /// Runs until `shutdown` turns true: dials hosts with an `ovsdb` target (redialing with
    /// backoff), and accepts hosts that dial in on `listener` if given.
    pub async fn run(
        &self,
        listener: Option<tokio::net::TcpListener>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let (acc_tx, mut acc_rx) = mpsc::channel(16);
        // A host that dials in is unknown until it has told its system-id: until then it may
        // send only small messages (`host::run_passive` lifts the cap).
        let mut unidentified = self.shared.config.ovsdb.clone();
        unidentified.max_message = unidentified
            .max_message
            .min(ovsdb::framing::UNIDENTIFIED_MAX_MESSAGE);
        let (tls_tx, mut tls_rx) = mpsc::channel(16);
        let cap = passive_connection_cap(open_files_limit());
        let listen_task = listener.map(|l| match &self.shared.config.tls {
            Some(tls) => tokio::spawn(tls_listen::run(
                l,
                tls.server.clone(),
                unidentified,
                cap,
                tls_tx,
                shutdown.clone(),
            )),
            None => tokio::spawn(ovsdb::client::listen(
                l,
                unidentified,
                cap,
                acc_tx,
                shutdown.clone(),
            )),
        });
        let mut desired = self.shared.desired.subscribe();
        let mut active: HashMap<Uuid, (OvsdbTarget, JoinHandle<()>)> = HashMap::new();
        let mut passive: Vec<JoinHandle<()>> = vec![];
        loop {
            let state = desired.borrow_and_update().clone();
            self.sync_active(&state, &mut active, &shutdown);
            passive.retain(|t| !t.is_finished());
            tokio::select! {
                r = desired.changed() => if r.is_err() { break },
                Some((conn, notifications, peer)) = acc_rx.recv() => {
                    tracing::info!(%peer, "host dialed in");
                    passive.push(tokio::spawn(host::run_passive(
                        self.shared.clone(), conn, notifications, None, shutdown.clone(),
                    )));
                }
                Some((conn, notifications, peer, identity)) = tls_rx.recv() => {
                    tracing::info!(%peer, certificate = %identity, "host dialed in over TLS");
                    passive.push(tokio::spawn(host::run_passive(
                        self.shared.clone(), conn, notifications, Some(identity), shutdown.clone(),
                    )));
                }
                _ = ovsdb::client::stopped(&mut shutdown) => break,
            }
        }
        for (_, (_, t)) in active {
            t.abort();
        }
        for t in passive {
            t.abort();
        }
        if let Some(t) = listen_task {
            t.abort();
        }
    }

    fn sync_active(
        &self,
        state: &DesiredState,
        active: &mut HashMap<Uuid, (OvsdbTarget, JoinHandle<()>)>,
        shutdown: &watch::Receiver<bool>,
    ) {
        active.retain(|id, (target, task)| {
            let keep = state.host(*id).and_then(|h| h.ovsdb.as_ref()) == Some(target)
                && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for h in &state.hosts {
            let Some(target) = &h.ovsdb else { continue };
            if active.contains_key(&h.id) {
                continue;
            }
            let span = tracing::info_span!("ovsdb-host", host = %h.id, %target);
            let task = tokio::spawn(
                host::run_active(self.shared.clone(), h.id, target.clone(), shutdown.clone())
                    .instrument(span),
            );
            active.insert(h.id, (target.clone(), task));
        }
        // Views of hosts no longer desired go away.
        self.shared.views.send_if_modified(|v| {
            let before = v.len();
            v.retain(|id, _| state.host(*id).is_some());
            v.len() != before
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host that accepts the connection and then fails the session (here: closes at once,
    /// as a broken schema or a drop mid-transaction would) is redialled with a growing delay,
    /// not every 100 ms: a TCP connect alone is no sign of health.
    #[tokio::test]
    async fn a_session_that_fails_after_connecting_backs_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let server = tokio::spawn({
            let accepts = accepts.clone();
            async move {
                while let Ok((s, _)) = listener.accept().await {
                    accepts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    drop(s);
                }
            }
        });
        let p = Provisioner::new(ProvisionConfig::new("tcp:127.0.0.1:6653"));
        p.set_desired(DesiredState {
            hosts: vec![DesiredHost {
                id: Uuid::new_v4(),
                name: "hv".into(),
                ovsdb: Some(OvsdbTarget::Tcp(addr)),
                datapath_type: DatapathType::Netdev,
                cert_cn: None,
            }],
            zones: vec![],
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let run = tokio::spawn({
            let p = p.clone();
            async move { p.run(None, stop_rx).await }
        });
        // Attempts at 0, 0.1, 0.3, 0.7 and 1.5 s; redialling every 100 ms would make 16.
        tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
        let _ = stop_tx.send(true);
        run.await.unwrap();
        server.abort();
        let n = accepts.load(std::sync::atomic::Ordering::Relaxed);
        assert!((2..=6).contains(&n), "{n} attempts in 1.6 s");
    }

    /// A host that dials in and never tells a known system-id is dropped after the deadline
    /// rather than holding one of the listener's connections for ever.
    #[tokio::test]
    async fn a_passive_peer_that_never_identifies_is_dropped() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut cfg = ProvisionConfig::new("tcp:127.0.0.1:6653");
        cfg.identify_deadline = std::time::Duration::from_millis(500);
        let p = Provisioner::new(cfg);
        let (stop_tx, stop_rx) = watch::channel(false);
        let run = tokio::spawn({
            let p = p.clone();
            async move { p.run(Some(listener), stop_rx).await }
        });
        // A peer that answers what it is asked, except that it has no system-id.
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut dec = ovsdb::framing::Decoder::new(1 << 20);
        let mut buf = [0u8; 4096];
        let dropped = tokio::time::timeout(std::time::Duration::from_secs(3), async {
            loop {
                let n = s.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    return;
                }
                dec.feed(&buf[..n]);
                while let Ok(Some(msg)) = dec.decode() {
                    let result = match msg["method"].as_str() {
                        Some("transact") => {
                            serde_json::json!([{"rows": [{"external_ids": ["map", []]}]}])
                        }
                        Some("echo") => msg["params"].clone(),
                        _ => continue,
                    };
                    let reply =
                        serde_json::json!({"id": msg["id"], "result": result, "error": null});
                    let _ = s.write_all(reply.to_string().as_bytes()).await;
                }
            }
        })
        .await;
        let _ = stop_tx.send(true);
        run.await.unwrap();
        assert!(dropped.is_ok(), "still connected after 3 s");
    }

    #[test]
    fn the_ovsdb_listener_leaves_descriptors_for_the_others() {
        assert_eq!(passive_connection_cap(Some(1024)), 256);
        assert_eq!(passive_connection_cap(Some(1 << 20)), MAX_PASSIVE_HOSTS);
        assert_eq!(passive_connection_cap(Some(2)), 1);
        assert!(
            open_files_limit().is_some(),
            "/proc/self/limits names the limit"
        );
        assert_eq!(passive_connection_cap(None), 256);
    }

    /// A host that reconciled the current desired state has applied every revision noted
    /// since (they left hosts and zones alone); one that reconciled an older state has applied
    /// that state's revision only.
    #[test]
    fn a_host_applied_what_it_reconciled_and_the_revisions_that_did_not_touch_it() {
        let p = Provisioner::new(ProvisionConfig::new("tcp:127.0.0.1:6653"));
        let mut view = HostView {
            connected: true,
            ..HostView::default()
        };
        assert_eq!(p.applied_revision(&view), None);
        p.set_desired_at(DesiredState::default(), 5);
        view.reconciled = Some(5);
        assert_eq!(p.applied_revision(&view), Some(5));
        let revisions = p.revisions();
        p.note_revision(9);
        assert!(revisions.has_changed().unwrap());
        assert_eq!(p.applied_revision(&view), Some(9));
        // Going back is no news.
        p.note_revision(7);
        assert_eq!(p.applied_revision(&view), Some(9));
        // The hosts changed at 10: until it reconciles them, the host is at 5.
        let zone = DesiredZone {
            id: Uuid::new_v4(),
            name: "tz".into(),
            kind: TunnelType::Vxlan,
            members: vec![],
        };
        p.set_desired_at(
            DesiredState {
                hosts: vec![],
                zones: vec![zone],
            },
            10,
        );
        assert_eq!(p.applied_revision(&view), Some(5));
        view.reconciled = Some(10);
        assert_eq!(p.applied_revision(&view), Some(10));
        // Syncs are numbered.
        assert_eq!((p.request_sync(), p.request_sync()), (1, 2));
    }

    #[test]
    fn datapath_id_is_stable_and_distinct() {
        let a: Uuid = "6f1c2a3e-0000-4000-8000-00000000000a".parse().unwrap();
        assert_eq!(datapath_id(a), 0x8000_0000_0000_000a);
        assert_ne!(datapath_id(a), datapath_id(Uuid::new_v4()));
    }
}
