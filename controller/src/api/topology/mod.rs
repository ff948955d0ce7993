//! The REST API of the logical model (DESIGN §3): hosts, tunnel zones, bridges, routers, ports,
//! links, bindings, routes, chains and rules, port groups, IP address groups, DHCP; and the
//! runtime views (unbound interfaces, a bridge's MAC table, a router's ARP cache). Handlers are
//! generic over [`topology::Resource`]; each write runs on a blocking thread (the store may
//! fsync) through [`topology::Network::write`]. Responses carry an `ETag` (the revision that
//! last wrote the record); `PUT` and `DELETE` honour `If-Match`. Every write answers its
//! revision in `X-Strowger-Revision` and can wait until it is applied (`?wait=true`, [`wait`]).

pub mod extract;
mod handlers;
pub mod openapi;
pub mod wait;

use std::sync::Arc;

use axum::routing::{get, post};
use topology::model::*;
use topology::{Network, Resource, Snapshot, Txn};
use uuid::Uuid;

use crate::api::ApiError;
use handlers::*;

/// A resource with update and delete; `view` renders it for clients.
pub trait Crud: Resource {
    /// Full update (`PUT`).
    fn update(t: &mut Txn, v: Self) -> topology::Result<Self>;
    /// Delete.
    fn delete(t: &mut Txn, id: Uuid) -> topology::Result<()>;
    /// The JSON shown for a stored record (rules fill in their position).
    fn view(_s: &Snapshot, r: &Arc<Self>) -> Self {
        Self::clone(r)
    }
    /// Fills in the read-only runtime fields the store does not hold (a host's `connected`
    /// and `datapath_id`).
    fn annotate(&mut self, _rt: &Runtime) {}
}

/// Asks the running app about its runtime state (`AppHost::query` in `serve`, a closure in
/// tests): a function rather than the host itself, so this module needs no switch or socket.
pub type AppQuery = Arc<dyn Fn(&apps::Query) -> Option<apps::Answer> + Send + Sync>;

/// What the controller knows at run time about stored records, shown in their read-only fields
/// and never written to the store (it would be stale after a restart, and every connect would
/// bump the record's revision under clients' `If-Match`); and the app's own tables (MAC, ARP),
/// shown as views.
#[derive(Clone, Default)]
pub struct Runtime {
    hosts: Option<tokio::sync::watch::Receiver<crate::provision::HostViews>>,
    bindings: Option<tokio::sync::watch::Receiver<Arc<apps::Bindings>>>,
    app: Option<AppQuery>,
    progress: Option<crate::applied::Progress>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("hosts", &self.hosts)
            .field("bindings", &self.bindings)
            .field("app", &self.app.as_ref().map(|_| "AppQuery"))
            .field("progress", &self.progress)
            .finish()
    }
}

impl Runtime {
    /// Runtime state from the provisioner's host views.
    pub fn new(hosts: tokio::sync::watch::Receiver<crate::provision::HostViews>) -> Self {
        Runtime {
            hosts: Some(hosts),
            bindings: None,
            app: None,
            progress: None,
        }
    }

    /// Adds the applied revisions of switches and hosts (`GET /revision`, `?wait=true`).
    pub fn with_progress(mut self, progress: crate::applied::Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The applied revisions, if known.
    pub fn progress(&self) -> Option<&crate::applied::Progress> {
        self.progress.as_ref()
    }

    /// Adds the bindings the engine runs on (a port's live location, unbound interfaces).
    pub fn with_bindings(
        mut self,
        bindings: tokio::sync::watch::Receiver<Arc<apps::Bindings>>,
    ) -> Self {
        self.bindings = Some(bindings);
        self
    }

    /// Adds the app to ask for its MAC and ARP tables.
    pub fn with_app(mut self, app: AppQuery) -> Self {
        self.app = Some(app);
        self
    }

    /// The app's answer to `query`; `None` without an app, or when it keeps no such state.
    pub fn query(&self, query: &apps::Query) -> Option<apps::Answer> {
        self.app.as_ref().and_then(|q| q(query))
    }

    /// The bindings now (empty when there are none).
    pub fn bindings(&self) -> Arc<apps::Bindings> {
        self.bindings
            .as_ref()
            .map(|b| b.borrow().clone())
            .unwrap_or_default()
    }
}

/// A resource created at the top level (`POST /bridges`).
pub trait TopLevel: Crud {
    /// Create.
    fn create(t: &mut Txn, v: Self) -> topology::Result<Self>;
}

/// A resource created under a parent (`POST /routers/{id}/routes`).
pub trait Child: Crud {
    /// Create under `parent`.
    fn create_in(t: &mut Txn, parent: Uuid, v: Self) -> topology::Result<Self>;
    /// The children of a parent, in order.
    fn children(s: &Snapshot, parent: Uuid) -> Vec<Self>;
}

macro_rules! top {
    ($t:ty, $create:ident, $update:ident, $delete:ident) => {
        impl Crud for $t {
            fn update(t: &mut Txn, v: Self) -> topology::Result<Self> {
                t.$update(v).map(|a| Self::clone(&a))
            }
            fn delete(t: &mut Txn, id: Uuid) -> topology::Result<()> {
                t.$delete(id)
            }
        }
        impl TopLevel for $t {
            fn create(t: &mut Txn, v: Self) -> topology::Result<Self> {
                t.$create(v).map(|a| Self::clone(&a))
            }
        }
    };
}

impl Crud for Host {
    fn update(t: &mut Txn, v: Self) -> topology::Result<Self> {
        t.update_host(v).map(|a| Self::clone(&a))
    }
    fn delete(t: &mut Txn, id: Uuid) -> topology::Result<()> {
        t.delete_host(id)
    }
    fn annotate(&mut self, rt: &Runtime) {
        let Some(hosts) = &rt.hosts else { return };
        let views = hosts.borrow();
        let view = views.get(&self.id);
        self.connected = view.is_some_and(|v| v.connected);
        // As `GET /switches` prints datapath ids: 16 hex digits.
        self.datapath_id = view
            .and_then(|v| v.datapath_id)
            .map(|d| ofproto::display::Dpid(d).to_string());
    }
}
impl TopLevel for Host {
    fn create(t: &mut Txn, v: Self) -> topology::Result<Self> {
        t.create_host(v).map(|a| Self::clone(&a))
    }
}
top!(
    TunnelZone,
    create_tunnel_zone,
    update_tunnel_zone,
    delete_tunnel_zone
);
top!(Bridge, create_bridge, update_bridge, delete_bridge);
top!(Router, create_router, update_router, delete_router);
top!(Chain, create_chain, update_chain, delete_chain);
top!(
    PortGroup,
    create_port_group,
    update_port_group,
    delete_port_group
);
top!(
    IpAddrGroup,
    create_ip_addr_group,
    update_ip_addr_group,
    delete_ip_addr_group
);

impl Crud for Port {
    fn update(t: &mut Txn, v: Self) -> topology::Result<Self> {
        t.update_port(v).map(|a| Self::clone(&a))
    }
    fn delete(t: &mut Txn, id: Uuid) -> topology::Result<()> {
        t.delete_port(id)
    }
    /// Where the port is live: a port bound by its interface's iface-id shows that host and
    /// interface (never stored); `ofport`/`up` say whether the interface is really there.
    /// An explicit binding keeps its stored host and interface, and is only `up` where the
    /// bindings put it: bindings built before a `PUT /ports/{id}/binding` may still locate
    /// the port by iface-id elsewhere, and must not hide the binding just written.
    fn annotate(&mut self, rt: &Runtime) {
        let b = rt.bindings();
        let live = b
            .port(self.id)
            .filter(|l| match (self.host_id, &self.interface_name) {
                (Some(h), Some(i)) => l.host == h && l.interface == *i,
                _ => true,
            });
        match live {
            Some(l) => {
                self.host_id = Some(l.host);
                self.interface_name = Some(l.interface.clone());
                self.ofport = Some(l.ofport);
                self.up = true;
            }
            None => {
                self.ofport = None;
                self.up = false;
            }
        }
    }
}
impl Child for Port {
    fn create_in(t: &mut Txn, parent: Uuid, v: Self) -> topology::Result<Self> {
        t.create_port(parent, v).map(|a| Self::clone(&a))
    }
    fn children(s: &Snapshot, parent: Uuid) -> Vec<Self> {
        s.ports_of(parent).map(|p| Self::clone(p)).collect()
    }
}

impl Crud for Route {
    fn update(t: &mut Txn, v: Self) -> topology::Result<Self> {
        t.update_route(v).map(|a| Self::clone(&a))
    }
    fn delete(t: &mut Txn, id: Uuid) -> topology::Result<()> {
        t.delete_route(id)
    }
}
impl Child for Route {
    fn create_in(t: &mut Txn, parent: Uuid, v: Self) -> topology::Result<Self> {
        t.create_route(parent, v).map(|a| Self::clone(&a))
    }
    fn children(s: &Snapshot, parent: Uuid) -> Vec<Self> {
        s.routes_of(parent).map(|r| Self::clone(r)).collect()
    }
}

impl Crud for Rule {
    fn update(t: &mut Txn, v: Self) -> topology::Result<Self> {
        t.update_rule(v)
    }
    fn delete(t: &mut Txn, id: Uuid) -> topology::Result<()> {
        t.delete_rule(id)
    }
    fn view(s: &Snapshot, r: &Arc<Self>) -> Self {
        s.rule_with_position(r.id).unwrap_or_else(|| Self::clone(r))
    }
}
impl Child for Rule {
    fn create_in(t: &mut Txn, parent: Uuid, v: Self) -> topology::Result<Self> {
        t.create_rule(parent, v)
    }
    fn children(s: &Snapshot, parent: Uuid) -> Vec<Self> {
        s.rules_of(parent).map(|r| Self::view(s, r)).collect()
    }
}

impl Crud for DhcpSubnet {
    fn update(t: &mut Txn, v: Self) -> topology::Result<Self> {
        t.update_dhcp_subnet(v).map(|a| Self::clone(&a))
    }
    fn delete(t: &mut Txn, id: Uuid) -> topology::Result<()> {
        t.delete_dhcp_subnet(id)
    }
}
impl Child for DhcpSubnet {
    fn create_in(t: &mut Txn, parent: Uuid, v: Self) -> topology::Result<Self> {
        t.create_dhcp_subnet(parent, v).map(|a| Self::clone(&a))
    }
    fn children(s: &Snapshot, parent: Uuid) -> Vec<Self> {
        s.dhcp_subnets_of(parent).map(|d| Self::clone(d)).collect()
    }
}

/// Opens the topology: the redb store in `data_dir`, or a memory store when `in_memory`.
pub fn open_network(data_dir: &std::path::Path, in_memory: bool) -> anyhow::Result<Network> {
    use anyhow::Context;
    let store: Arc<dyn topology::Store> = if in_memory {
        Arc::new(topology::MemStore::new())
    } else {
        Arc::new(
            without_redb_panic_messages(|| topology::RedbStore::open(data_dir))
                .with_context(|| format!("opening the store in {}", data_dir.display()))?,
        )
    };
    let net = Network::open(store).context("loading the topology")?;
    tracing::info!(
        revision = net.snapshot().revision(),
        ports = net.snapshot().port_count(),
        in_memory,
        "topology loaded"
    );
    Ok(net)
}

/// Runs `f` with the messages of panics raised inside redb kept off stderr. `RedbStore::open`
/// catches those (redb asserts on some damaged files) and returns an error that names the
/// file; the default hook's "panicked at" would read like a crash of ours. Other panics are
/// reported as before. Called at start-up, before other tasks run.
fn without_redb_panic_messages<T>(f: impl FnOnce() -> T) -> T {
    let previous: Arc<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send> =
        Arc::from(std::panic::take_hook());
    let chained = previous.clone();
    std::panic::set_hook(Box::new(move |info| {
        if !info.location().is_some_and(|l| l.file().contains("redb-")) {
            chained(info);
        }
    }));
    let out = f();
    drop(std::panic::take_hook());
    std::panic::set_hook(Box::new(move |info| previous(info)));
    out
}

/// Runs a write on a blocking thread and maps its error.
pub(crate) async fn write<T: Send + 'static>(
    net: &Network,
    f: impl FnOnce(&mut Txn) -> topology::Result<T> + Send + 'static,
) -> Result<(T, u64), ApiError> {
    let net = net.clone();
    let (value, revision) = tokio::task::spawn_blocking(move || net.write(f))
        .await
        .map_err(|e| ApiError::internal(format!("write task failed: {e}")))?
        .map_err(ApiError::from)?;
    wait::wrote(revision);
    Ok((value, revision))
}

fn crud<R: TopLevel>(r: axum::Router<Network>) -> axum::Router<Network> {
    let coll = format!("/{}", R::PREFIX);
    let item = format!("/{}/{{id}}", R::PREFIX);
    r.route(&coll, get(list::<R>).post(create::<R>))
        .route(&item, get(read::<R>).put(update::<R>).delete(delete::<R>))
}

fn item<R: Crud>(r: axum::Router<Network>) -> axum::Router<Network> {
    let item = format!("/{}/{{id}}", R::PREFIX);
    r.route(&item, get(read::<R>).put(update::<R>).delete(delete::<R>))
}

/// The topology routes, with the [`Network`] as their state and no runtime state (hosts show
/// as not connected).
pub fn routes(net: Network) -> axum::Router {
    routes_with(net, Runtime::default())
}

/// The topology routes, showing `runtime` in read-only fields.
pub fn routes_with(net: Network, runtime: Runtime) -> axum::Router {
    let mut r = axum::Router::new();
    r = crud::<Host>(r);
    r = crud::<TunnelZone>(r);
    r = crud::<Bridge>(r);
    r = crud::<Router>(r);
    r = crud::<Chain>(r);
    r = crud::<PortGroup>(r);
    r = crud::<IpAddrGroup>(r);
    r = item::<Port>(r);
    r = item::<Route>(r);
    r = item::<Rule>(r);
    r.route("/ports", get(list::<Port>))
        .route(
            "/bridges/{id}/ports",
            get(list_children::<Bridge, Port>).post(create_child::<Bridge, Port>),
        )
        .route(
            "/routers/{id}/ports",
            get(list_children::<Router, Port>).post(create_child::<Router, Port>),
        )
        .route(
            "/routers/{id}/routes",
            get(list_children::<Router, Route>).post(create_child::<Router, Route>),
        )
        .route(
            "/chains/{id}/rules",
            get(list_children::<Chain, Rule>).post(create_child::<Chain, Rule>),
        )
        .route(
            "/bridges/{id}/dhcp",
            get(list_children::<Bridge, DhcpSubnet>).post(create_child::<Bridge, DhcpSubnet>),
        )
        .route(
            "/bridges/{id}/dhcp/{subnet_id}",
            get(read_dhcp).put(update_dhcp).delete(delete_dhcp),
        )
        .route(
            "/bridges/{id}/dhcp/{subnet_id}/hosts",
            get(list_dhcp_hosts).post(create_dhcp_host),
        )
        .route(
            "/bridges/{id}/dhcp/{subnet_id}/hosts/{mac}",
            get(read_dhcp_host)
                .put(update_dhcp_host)
                .delete(delete_dhcp_host),
        )
        .route("/ports/{id}/link", post(link).delete(unlink))
        .route(
            "/ports/{id}/binding",
            get(read_binding).put(bind).delete(unbind),
        )
        .route(
            "/tunnel_zones/{id}/members",
            get(list_members).post(add_member),
        )
        .route(
            "/tunnel_zones/{id}/members/{host_id}",
            get(read_member).put(update_member).delete(delete_member),
        )
        .route("/unbound_interfaces", get(list_unbound))
        .route("/hosts/{id}/unbound_interfaces", get(list_host_unbound))
        .route("/bridges/{id}/mac_table", get(mac_table))
        .route("/routers/{id}/arp_table", get(arp_table))
        .route("/openapi.json", get(openapi::serve))
        .route("/revision", get(wait::revision))
        .with_state(net.clone())
        .layer(axum::middleware::from_fn_with_state(
            (net, runtime.clone()),
            wait::middleware,
        ))
        .layer(axum::Extension(runtime))
}

#[cfg(test)]
mod tests;
