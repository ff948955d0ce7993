//! `strowger serve`: starts every subsystem on one tokio runtime under one shutdown signal.
//! Each subsystem owns its listener (`run(listener, shutdown)`, mini-redis style) so tests can
//! bind port 0; this module only wires them together.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use tokio::sync::watch;

/// Flags of `strowger serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Where switches connect (OpenFlow 1.3).
    #[arg(long, default_value = "0.0.0.0:6653")]
    pub openflow_listen: SocketAddr,
    /// The REST API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub api_listen: SocketAddr,
    /// Where hosts' OVSDB servers dial in (`ovs-vsctl set-manager tcp:CTRL:6640`).
    #[arg(long, default_value = "0.0.0.0:6640")]
    pub ovsdb_listen: SocketAddr,
    /// The OpenFlow target written into each host's br-int (default: tcp:<openflow-listen>,
    /// ssl:<openflow-listen> with TLS on).
    #[arg(long)]
    pub openflow_advertise: Option<String>,
    /// Directory of the embedded store.
    #[arg(long, default_value = "/var/lib/strowger")]
    pub data_dir: PathBuf,
    /// Keep the topology in memory only (tests, throwaway labs).
    #[arg(long)]
    pub in_memory: bool,
    /// Leave `options:local_ip` off tunnel ports (dummy-datapath sandboxes need this).
    #[arg(long)]
    pub no_tunnel_local_ip: bool,
    /// The application answering packet-ins: `engine` (the virtual network) or `l2switch`
    /// (a learning switch per datapath, for plain Mininet labs).
    #[arg(long, default_value = "engine")]
    pub app: String,
    /// Packet-ins per second one switch port may cause in the engine (a token bucket per
    /// port; beyond it packet-ins are dropped unanswered and counted as budget hits). 0: no
    /// budget (benchmarks that load a few ports far beyond what a VM would send).
    #[arg(long, default_value_t = apps::engine::Config::default().packet_in_rate)]
    pub packet_in_rate: u32,
    /// Depth of that token bucket (packet-ins a port may send at once after a quiet spell).
    #[arg(long, default_value_t = apps::engine::Config::default().packet_in_burst)]
    pub packet_in_burst: u32,
    /// Installed flows the engine's flow record is sized for at start (0: it grows from
    /// empty). Each growth of its hash tables stops every switch's packet-ins while it
    /// rehashes (tens of ms at half a million flows); tables sized far beyond the flows they
    /// hold are slower to probe. About 2 bytes a flow resident at once.
    #[arg(long, default_value_t = apps::engine::Config::default().flow_capacity)]
    pub flow_capacity: usize,
    /// Seconds a flow-cache entry may go unused before the switch removes it (and tells the
    /// engine, which forgets it). 0: never idle out.
    #[arg(long, default_value_t = apps::engine::Config::default().idle_timeout)]
    pub flow_idle_timeout: u16,
    /// Do not install a reply's flow together with the packet that demands it (an ICMP echo
    /// request, a TCP segment): every reply's first packet then comes to the controller too.
    #[arg(long)]
    pub no_reply_prediction: bool,
    /// Send a request whose reply's flow was predicted at once, without waiting for the
    /// destination switch's barrier behind that flow: saves one round trip to that switch, but
    /// the reply may then beat its flow (or OVS's revalidation of its cached datapath flows)
    /// and come to the controller.
    #[arg(long)]
    pub no_reply_hold: bool,
    /// Send a request whose reply's flow was predicted through the ingress switch and the
    /// tunnel, not straight out of the destination's port from the destination's switch.
    #[arg(long)]
    pub no_deliver_at_destination: bool,
    /// Install no flow for packets the controller answers (ARP, an echo request to a router,
    /// DHCP): each such packet then leaves OVS a datapath flow as wide as a miss allows, which
    /// a later flow for its port replaces only once OVS revalidates.
    #[arg(long)]
    pub no_answer_flows: bool,
    /// Messages per second one switch may send before its session is closed as a flood
    /// (0: no limit).
    #[arg(long, default_value_t = crate::openflow::Config::default().max_msgs_per_sec)]
    pub openflow_max_msgs_per_sec: u32,
    /// Seconds a REST connection may take to send a request's headers (also the idle limit
    /// of a keep-alive connection).
    #[arg(long, default_value_t = crate::api::listener::Limits::default().header_read_timeout.as_secs())]
    pub api_header_read_timeout: u64,
    /// A host name REST clients may use in `Host` besides IP addresses and `localhost`
    /// (repeat for more); any other name is refused, against DNS rebinding.
    #[arg(long = "api-host", value_name = "NAME")]
    pub api_hosts: Vec<String>,
    /// REST bearer tokens, one `ROLE:TOKEN` or `ROLE:sha256:HEX` a line (roles `admin`,
    /// `reader`): every route but `/api/v1/health` then needs one.
    #[arg(long, value_name = "FILE")]
    pub api_token_file: Option<PathBuf>,
    /// The REST API over TLS (HTTPS): its private key (PEM), with `--api-tls-cert`.
    #[arg(long, requires = "api_tls_cert", value_name = "FILE")]
    pub api_tls_key: Option<PathBuf>,
    /// The REST API's certificate (PEM; its subjectAltName must name the address clients use).
    #[arg(long, requires = "api_tls_key", value_name = "FILE")]
    pub api_tls_cert: Option<PathBuf>,
    /// Our private key (PEM) for TLS on the control channels. With `--tls-cert` and
    /// `--tls-ca`, switches must connect over TLS (`ssl:`) with a certificate from the CA, the
    /// OVSDB listener takes only `ssl:` managers, and br-int gets an `ssl:` controller target.
    #[arg(long, requires_all = ["tls_cert", "tls_ca"])]
    pub tls_key: Option<PathBuf>,
    /// Our certificate (PEM), e.g. from `ovs-pki req+sign ctl controller`.
    #[arg(long, requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// The CA certificate(s) (PEM) a switch's or host's certificate must chain to (for
    /// `ovs-pki`: `switchca/cacert.pem`).
    #[arg(long, requires_all = ["tls_key", "tls_cert"])]
    pub tls_ca: Option<PathBuf>,
}

impl ServeArgs {
    /// The TLS files, when TLS is on.
    pub fn tls_files(&self) -> Option<crate::tls::TlsFiles> {
        Some(crate::tls::TlsFiles {
            key: self.tls_key.clone()?,
            cert: self.tls_cert.clone()?,
            ca: self.tls_ca.clone()?,
        })
    }
}

/// How the process's open-file limit is shared between the listeners, so that no one of them
/// can take the descriptors the others need: idle REST clients must not keep switches out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionBudget {
    /// REST connections served at once.
    pub api: usize,
    /// OpenFlow switch sessions at once.
    pub openflow: usize,
}

impl ConnectionBudget {
    /// Descriptors kept for the store, the runtime, logs and the listeners themselves.
    const RESERVED: u64 = 64;

    /// The split for an open-file limit of `nofile`: REST gets a sixteenth (at least 8, at
    /// most 256: an operator's API, not a public one), OpenFlow three eighths (at most 65536),
    /// and the rest (over half) stays for OVSDB host sessions, inbound and outbound.
    pub fn for_limit(nofile: u64) -> Self {
        let usable = nofile.saturating_sub(Self::RESERVED);
        let api = (usable / 16).clamp(8, 256);
        let openflow = (usable / 8 * 3).clamp(8, 65536);
        Self {
            api: usize::try_from(api).unwrap_or(256),
            openflow: usize::try_from(openflow).unwrap_or(65536),
        }
    }
}

/// Raises the soft open-file limit to the hard one (the default 1024 is exhausted by about a
/// thousand idle sockets) and returns the limit now in force.
pub fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// A shutdown signal every task watches: `true` once shutdown has begun.
pub type Shutdown = watch::Receiver<bool>;

/// Runs the controller until SIGINT/SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let nofile = raise_open_file_limit();
    let budget = ConnectionBudget::for_limit(nofile);
    tracing::info!(
        nofile,
        api_connections = budget.api,
        openflow_connections = budget.openflow,
        "connection budget"
    );
    // The store first: a damaged one ends start-up before anything listens.
    let network = crate::api::topology::open_network(&args.data_dir, args.in_memory)?;
    // A number that differs between starts, for what an app must not reuse across them.
    let boot = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let app: Box<dyn apps::App> = if args.app == apps::engine::NAME {
        Box::new(apps::engine::Engine::new(apps::engine::Config {
            packet_in_rate: args.packet_in_rate,
            packet_in_burst: args.packet_in_burst,
            flow_capacity: args.flow_capacity,
            idle_timeout: args.flow_idle_timeout,
            predict_replies: !args.no_reply_prediction,
            hold_for_reply_flow: !args.no_reply_hold,
            deliver_at_destination: !args.no_deliver_at_destination,
            answer_flows: !args.no_answer_flows,
            cookie_start: boot,
            ..apps::engine::Config::default()
        }))
    } else {
        apps::by_name(&args.app).with_context(|| {
            format!(
                "unknown app {:?} (known: {})",
                args.app,
                apps::APP_NAMES.join(", ")
            )
        })?
    };
    let tls_files = args.tls_files();
    let tls_server = tls_files
        .as_ref()
        .map(crate::tls::server_config)
        .transpose()?;
    let of_listener = bind_with_backlog(args.openflow_listen, OPENFLOW_BACKLOG)
        .with_context(|| format!("binding OpenFlow on {}", args.openflow_listen))?;
    tracing::info!(addr = %args.openflow_listen, app = app.name(), tls = tls_server.is_some(), "OpenFlow listening");
    if tls_server.is_none() {
        crate::tls::warn_if_open("OpenFlow", args.openflow_listen);
    }
    let switches = crate::openflow::Switches::new();
    let of_config = crate::openflow::Config {
        max_msgs_per_sec: args.openflow_max_msgs_per_sec,
        ..Default::default()
    };
    let app_host = crate::openflow::AppHost::new(app, switches.clone());
    let timer_task = {
        let (h, stop) = (app_host.clone(), stop_rx.clone());
        tokio::spawn(async move { h.run_timers(stop).await })
    };
    let mut of_ctx = crate::openflow::Context::new(app_host.clone(), of_config);
    if let Some(config) = &tls_server {
        of_ctx = of_ctx.with_tls(crate::openflow::Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(config.clone()),
            policy: Some(dpid_policy(network.clone())),
        });
    }
    let of_task = tokio::spawn(crate::openflow::listener::run_limited(
        of_listener,
        of_ctx,
        budget.openflow,
        stop_rx.clone(),
    ));
    let tokens = args
        .api_token_file
        .as_deref()
        .map(crate::api::auth::Tokens::load)
        .transpose()?;
    let api = tokio::net::TcpListener::bind(args.api_listen)
        .await
        .with_context(|| format!("binding the REST API on {}", args.api_listen))?;
    let api_addr = api.local_addr().unwrap_or(args.api_listen);
    let api_tls = match (&args.api_tls_key, &args.api_tls_cert) {
        (Some(key), Some(cert)) => Some(tokio_rustls::TlsAcceptor::from(
            crate::tls::api_server_config(key, cert)?,
        )),
        _ => None,
    };
    tracing::info!(addr = %api_addr, tokens = tokens.is_some(), https = api_tls.is_some(), "REST API listening");
    if tokens.is_none() {
        crate::tls::warn_if_open("the REST API", api_addr);
    } else if api_tls.is_none() && !api_addr.ip().is_loopback() {
        tracing::warn!(addr = %api_addr, "the REST API listens beyond loopback over plain HTTP: bearer tokens travel in clear (see --api-tls-key)");
    }
    let mut prov_cfg =
        crate::provision::ProvisionConfig::new(&crate::provision::advertised_target(
            args.openflow_listen,
            args.openflow_advertise.as_deref(),
            tls_server.is_some(),
        ));
    prov_cfg.set_local_ip = !args.no_tunnel_local_ip;
    if tls_server.is_some() && !prov_cfg.openflow_target.starts_with("ssl:") {
        tracing::warn!(
            openflow_target = %prov_cfg.openflow_target,
            "TLS is on but br-int's controller target is not ssl:: the OpenFlow listener will refuse hosts' switches"
        );
    }
    if let (Some(files), Some(server)) = (&tls_files, &tls_server) {
        prov_cfg.tls = Some(crate::provision::ProvisionTls {
            client: crate::tls::client_config(files)?,
            server: server.clone(),
        });
    }
    let provisioner = crate::provision::Provisioner::new(prov_cfg);
    // The app's view of topology and bindings, on its one ordered stream (and for REST).
    let (bindings_tx, bindings_rx) = watch::channel(std::sync::Arc::new(apps::Bindings::default()));
    // The last host sync the marked bindings include (`strowger wait`).
    let (synced_tx, synced_rx) = watch::channel(0);
    // On a thread of its own: its steps are synchronous and, with hundreds of hosts, take
    // milliseconds each; on a runtime worker they kept one of the (two, here) workers from the
    // REST API and the OpenFlow and OVSDB sessions for as long as hosts kept changing.
    let bindings_task = {
        let follow = crate::bindings::follow(
            network.subscribe(),
            provisioner.views(),
            app_host.clone(),
            bindings_tx,
            synced_tx,
            stop_rx.clone(),
        );
        on_own_thread("bindings", move || follow)?
    };
    // One metrics registry: what nothing else counts is counted as it happens (packet-in
    // latency in the app host, REST requests in a layer), the rest is read at scrape time.
    let http_metrics = crate::metrics::HttpMetrics::default();
    let registry = crate::metrics::registry(crate::metrics::Sources {
        app: app_host.clone(),
        hosts: Some(provisioner.views()),
        http: http_metrics.clone(),
    });
    // How far each switch and host has applied the topology (`GET /revision`, `?wait=true`).
    let progress =
        crate::applied::Progress::new(switches.clone(), provisioner.clone(), app_host.issued())
            .with_synced(synced_rx);
    // The MAC and ARP views ask the app itself, under its lock, at the moment of the request.
    let app_query: crate::api::topology::AppQuery =
        std::sync::Arc::new(move |q: &apps::Query| app_host.query(q));
    let runtime = crate::api::topology::Runtime::new(provisioner.views())
        .with_bindings(bindings_rx)
        .with_app(app_query)
        .with_progress(progress);
    let provenance = crate::api::trace::provenance(network.clone(), runtime.clone());
    let app = crate::api::app_at(
        vec![
            crate::api::trace::routes(network.clone(), runtime.clone(), switches.clone()),
            crate::api::topology::routes_with(network.clone(), runtime),
            crate::api::switches::routes_with(switches, Some(provenance)),
        ],
        crate::metrics::routes(std::sync::Arc::new(registry)),
        crate::api::guard::Guard::new(args.api_hosts.iter().cloned()),
    );
    let app = match tokens {
        Some(tokens) => app.layer(axum::middleware::from_fn_with_state(
            tokens,
            crate::api::auth::middleware,
        )),
        None => app,
    }
    .layer(axum::middleware::from_fn_with_state(
        http_metrics,
        crate::metrics::track,
    ));
    let api_limits = crate::api::listener::Limits {
        max_connections: budget.api,
        header_read_timeout: std::time::Duration::from_secs(args.api_header_read_timeout),
    };
    // The REST API runs on a runtime of its own: connection tasks call the app inline and wait
    // for its lock, so while the app handles a big topology or bindings change both workers of a
    // 2-core runtime could be waiting for it, and REST with them (hundreds of hosts registering
    // one by one took 0.3–1.2 s a request). REST never needs the app lock to write.
    let api_task = {
        let api = api.into_std().context("the REST listener")?;
        let stop = stop_rx.clone();
        on_own_thread("rest", move || async move {
            match tokio::net::TcpListener::from_std(api) {
                Ok(api) => {
                    crate::api::listener::run_with(api, app, api_limits, api_tls, stop).await
                }
                Err(e) => tracing::error!("the REST listener: {e}"),
            }
        })?
    };
    // Host provisioning over OVSDB; the desired hosts and zones come from the topology
    // through `Provisioner::set_desired`.
    let ovsdb_listener = tokio::net::TcpListener::bind(args.ovsdb_listen)
        .await
        .with_context(|| format!("binding the OVSDB listener on {}", args.ovsdb_listen))?;
    tracing::info!(addr = %args.ovsdb_listen, "OVSDB listening for hosts");
    if tls_server.is_none() {
        crate::tls::warn_if_open("OVSDB", args.ovsdb_listen);
    }
    let follow_task = tokio::spawn(crate::provision::from_topology::follow(
        network.subscribe(),
        provisioner.clone(),
        stop_rx.clone(),
    ));
    // Host provisioning runs on a runtime of its own, as REST does: hundreds of host sessions
    // (replica updates, plans, transactions, each O(the host's tunnels)) on the OpenFlow runtime
    // made every task there wait its turn behind them, so on a loaded machine the OpenFlow
    // listener accepted once per 20-30 s round and connection tasks read so late that switches
    // seemed silent (BENCHMARKS, Scale). Now the OpenFlow side never queues behind OVSDB work.
    // The runtime has as many workers as the OpenFlow one: provisioning is parallel work (one
    // task per host), which a single thread would serialize.
    let prov_task = {
        let (p, stop) = (provisioner.clone(), stop_rx.clone());
        let listener = ovsdb_listener.into_std().context("the OVSDB listener")?;
        on_own_runtime("provision", move || async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => p.run(Some(listener), stop).await,
                Err(e) => tracing::error!("the OVSDB listener: {e}"),
            }
        })?
    };
    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = api_task.await;
    let _ = prov_task.await;
    follow_task.await?;
    let _ = bindings_task.await;
    timer_task.await?;
    of_task.await?;
    Ok(())
}

/// Runs the future `make` builds on a thread of its own with a single-threaded runtime (so
/// its sockets and timers live there); the receiver resolves once it has ended.
fn on_own_thread<F, Fut>(name: &str, make: F) -> anyhow::Result<tokio::sync::oneshot::Receiver<()>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    run_on(name, rt, make)
}

/// Like [`on_own_thread`], with a multi-threaded runtime of as many workers as the default
/// runtime has (one per core), named `name`.
fn on_own_runtime<F, Fut>(name: &str, make: F) -> anyhow::Result<tokio::sync::oneshot::Receiver<()>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name(name)
        .enable_all()
        .build()?;
    run_on(name, rt, make)
}

/// Runs `make()`'s future on runtime `rt`, driven by a thread named `name`.
fn run_on<F, Fut>(
    name: &str,
    rt: tokio::runtime::Runtime,
    make: F,
) -> anyhow::Result<tokio::sync::oneshot::Receiver<()>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            rt.block_on(make());
            let _ = done_tx.send(());
        })?;
    Ok(done_rx)
}

/// Over TLS, a host's br-int (datapath id: the low 64 bits of the host id) belongs to the
/// holder of the host's certificate: the host's `cert_cn`, or else its name. Datapaths of no
/// host (plain labs) may be claimed by any certificate from the CA.
/// The OpenFlow listener's accept queue. The standard library's (and tokio's) 128 filled up
/// when hundreds of switches (re)connected at once: their SYNs were dropped and retried a second
/// later, while ovs-vswitchd gives a connection only 1 s for the first attempt (TCP connect and
/// our HELLO), so every retry failed again (BENCHMARKS.md, Scale). The kernel caps it at
/// `net.core.somaxconn` (4096 by default since Linux 5.4).
const OPENFLOW_BACKLOG: u32 = 4096;

/// A listener on `addr` (address reuse as `TcpListener::bind`) with an accept queue of `backlog`.
fn bind_with_backlog(addr: SocketAddr, backlog: u32) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

fn dpid_policy(network: topology::Network) -> crate::openflow::DpidPolicy {
    std::sync::Arc::new(move |dpid, identity| {
        let snapshot = network.snapshot();
        let Some(host) = snapshot
            .hosts()
            .find(|h| crate::provision::datapath_id(h.id) == dpid)
        else {
            return Ok(());
        };
        let expected = host.cert_cn.as_deref().unwrap_or(&host.name);
        if identity.matches(expected) {
            Ok(())
        } else {
            Err(format!(
                "datapath {} is host {:?}'s br-int, whose certificate is {expected:?}",
                ofproto::display::Dpid(dpid),
                host.name
            ))
        }
    })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::ConnectionBudget;

    /// At the common default of 1024, REST and OpenFlow together leave over half of the
    /// descriptors to OVSDB; large limits cap REST and OpenFlow.
    #[test]
    fn the_budget_leaves_room_for_every_listener() {
        let b = ConnectionBudget::for_limit(1024);
        assert_eq!(
            b,
            ConnectionBudget {
                api: 60,
                openflow: 360
            }
        );
        assert!(64 + b.api + b.openflow < 1024 / 2 + 64);
        let b = ConnectionBudget::for_limit(1 << 20);
        assert_eq!(
            b,
            ConnectionBudget {
                api: 256,
                openflow: 65536
            }
        );
        let b = ConnectionBudget::for_limit(16);
        assert_eq!(
            b,
            ConnectionBudget {
                api: 8,
                openflow: 8
            }
        );
    }
}
