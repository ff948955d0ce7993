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
    /// The OpenFlow target written into each host's br-int (default: tcp:<openflow-listen>).
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
    /// Messages per second one switch may send before its session is closed as a flood
    /// (0: no limit).
    #[arg(long, default_value_t = crate::openflow::Config::default().max_msgs_per_sec)]
    pub openflow_max_msgs_per_sec: u32,
}

/// A shutdown signal every task watches: `true` once shutdown has begun.
pub type Shutdown = watch::Receiver<bool>;

/// Runs the controller until SIGINT/SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let app = apps::by_name(&args.app).with_context(|| {
        format!(
            "unknown app {:?} (known: {})",
            args.app,
            apps::APP_NAMES.join(", ")
        )
    })?;
    let of_listener = tokio::net::TcpListener::bind(args.openflow_listen)
        .await
        .with_context(|| format!("binding OpenFlow on {}", args.openflow_listen))?;
    tracing::info!(addr = %args.openflow_listen, app = app.name(), "OpenFlow listening");
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
    let of_ctx = crate::openflow::Context::new(app_host.clone(), of_config);
    let of_task = tokio::spawn(crate::openflow::listener::run(
        of_listener,
        of_ctx,
        stop_rx.clone(),
    ));
    let api = tokio::net::TcpListener::bind(args.api_listen)
        .await
        .with_context(|| format!("binding the REST API on {}", args.api_listen))?;
    let api_addr = api.local_addr().unwrap_or(args.api_listen);
    tracing::info!(addr = %api_addr, "REST API listening");
    let network = crate::api::topology::open_network(&args.data_dir, args.in_memory)?;
    let mut prov_cfg =
        crate::provision::ProvisionConfig::new(&crate::provision::advertised_target(
            args.openflow_listen,
            args.openflow_advertise.as_deref(),
        ));
    prov_cfg.set_local_ip = !args.no_tunnel_local_ip;
    let provisioner = crate::provision::Provisioner::new(prov_cfg);
    // The app's view of topology and bindings, on its one ordered stream (and for REST).
    let (bindings_tx, bindings_rx) = watch::channel(std::sync::Arc::new(apps::Bindings::default()));
    let bindings_task = tokio::spawn(crate::bindings::follow(
        network.subscribe(),
        provisioner.views(),
        app_host.clone(),
        bindings_tx,
        stop_rx.clone(),
    ));
    // The MAC and ARP views ask the app itself, under its lock, at the moment of the request.
    let app_query: crate::api::topology::AppQuery =
        std::sync::Arc::new(move |q: &apps::Query| app_host.query(q));
    let runtime = crate::api::topology::Runtime::new(provisioner.views())
        .with_bindings(bindings_rx)
        .with_app(app_query);
    let app = crate::api::app(vec![
        crate::api::topology::routes_with(network.clone(), runtime),
        crate::api::switches::routes(switches),
    ]);
    let mut api_stop = stop_rx.clone();
    let api_task = tokio::spawn(async move {
        axum::serve(api, app)
            .with_graceful_shutdown(async move {
                let _ = api_stop.wait_for(|s| *s).await;
            })
            .await
    });
    // Host provisioning over OVSDB; the desired hosts and zones come from the topology
    // through `Provisioner::set_desired`.
    let ovsdb_listener = tokio::net::TcpListener::bind(args.ovsdb_listen)
        .await
        .with_context(|| format!("binding the OVSDB listener on {}", args.ovsdb_listen))?;
    tracing::info!(addr = %args.ovsdb_listen, "OVSDB listening for hosts");
    let follow_task = tokio::spawn(crate::provision::from_topology::follow(
        network.subscribe(),
        provisioner.clone(),
        stop_rx.clone(),
    ));
    let prov_task = {
        let (p, stop) = (provisioner.clone(), stop_rx.clone());
        tokio::spawn(async move { p.run(Some(ovsdb_listener), stop).await })
    };
    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    api_task.await??;
    prov_task.await?;
    follow_task.await?;
    bindings_task.await?;
    timer_task.await?;
    of_task.await?;
    Ok(())
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
