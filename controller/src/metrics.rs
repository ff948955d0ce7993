//! `GET /metrics`: what the controller counts, in the OpenMetrics text format, encoded by
//! prometheus-client (Prometheus scrapes it as is).
//!
//! One [`Registry`], built when `serve` starts ([`registry`]). Only two things are counted as
//! they happen, because nothing else keeps them: the packet-in latency histogram (the app host
//! times each packet-in's `handle`, see `openflow/app.rs`) and REST requests (the [`track`]
//! middleware, by method, matched route template and status — never the raw path, so the label
//! space stays bounded). Everything else is read at scrape time by one collector from where it
//! already lives: the app's own counters (`apps::Query::Counters`, one short call under the
//! app lock), the switch registry, the provisioner's host views and the app host's resync
//! count. So nothing is counted twice, and no gauge can drift from the state it shows.
//! Connections the REST listener refuses before any request is read (its connection budget
//! full: an immediate 503) never reach the layer and are not counted.
//!
//! Every name starts with `strowger_`; counters end in `_total`, the histogram in `_seconds`.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use tokio::sync::watch;

use crate::openflow::AppHost;
use crate::provision::HostViews;

/// The prefix of every metric name.
pub const PREFIX: &str = "strowger";

/// What `GET /metrics` answers with: the OpenMetrics text format prometheus-client encodes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The packet-in latency histogram: a packet-in's simulation takes microseconds, so the
/// buckets double from 2 µs to about 65 ms (16 buckets, then +Inf).
pub fn packet_in_histogram() -> Histogram {
    Histogram::new(exponential_buckets(2e-6, 2.0, 16))
}

/// The labels of a counted REST request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The method, one of a fixed set (`other` for the rest).
    method: &'static str,
    /// The route template that matched (`/api/v1/ports/{id}`), or `unmatched`.
    route: String,
    /// The response's status code.
    status: u16,
}

/// REST requests counted by the [`track`] middleware. Cheap to clone: every clone counts
/// into the same family.
#[derive(Clone, Debug, Default)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
}

/// The method as a label: any method a client invents would be a new series, so only the
/// standard ones keep their name.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware counting every request by method, matched route template and status. Layered
/// outside the guard, so what the guard refuses (403, 415, 421) is counted too.
pub async fn track(State(http): State<HttpMetrics>, req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    let labels = RequestLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    http.requests.get_or_create(&labels).inc();
    response
}

/// Where the scrape-time values come from.
pub struct Sources {
    /// The app host: the app's counters, the switch registry, resyncs, packet-in latency.
    pub app: AppHost,
    /// The provisioner's host views (`None`: no provisioner, as in tests without OVSDB).
    pub hosts: Option<watch::Receiver<HostViews>>,
    /// The REST request counts.
    pub http: HttpMetrics,
}

/// The registry of everything `GET /metrics` shows.
pub fn registry(sources: Sources) -> Registry {
    let mut r = Registry::with_prefix(PREFIX);
    r.register(
        "build",
        "The controller's version and the app answering packet-ins",
        Info::new(vec![
            ("version", env!("CARGO_PKG_VERSION")),
            ("app", sources.app.name()),
        ]),
    );
    r.register_with_unit(
        "packet_in",
        // The registry ends registered help texts with a period itself.
        "Time the app took to handle one packet-in (simulation, flow compilation, answers)",
        Unit::Seconds,
        sources.app.packet_in_seconds().clone(),
    );
    r.register(
        "http_requests",
        "REST requests answered, by method, matched route template and status",
        sources.http.requests,
    );
    r.register_collector(Box::new(Live {
        app: sources.app,
        hosts: sources.hosts,
    }));
    r
}

/// The registry as OpenMetrics text.
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail; a collector's error is a bug worth seeing.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, registry) {
        tracing::error!(error = %e, "encoding metrics");
    }
    text
}

/// `GET /metrics` at the root (not under `/api/v1`: where Prometheus looks by default).
pub fn routes(registry: Arc<Registry>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&registry)).into_response() }
        }),
    )
}

/// The values read at scrape time (see the module doc).
struct Live {
    app: AppHost,
    hosts: Option<watch::Receiver<HostViews>>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, n: u64) -> std::fmt::Result {
    ConstCounter::new(n).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, n: u64) -> std::fmt::Result {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    ConstGauge::new(n).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// A counter with one label: one series per value the app has counted.
fn counters(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    counts: &[(&'static str, u64)],
) -> std::fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, n) in counts {
        let labels = [(label, *value)];
        ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Live {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut e;
        gauge(
            e,
            "switches_connected",
            "OpenFlow switches connected and identified (handshake done).",
            self.app.switches().len() as u64,
        )?;
        if let Some(hosts) = &self.hosts {
            let (known, connected) = {
                let views = hosts.borrow();
                (views.len(), views.values().filter(|v| v.connected).count())
            };
            gauge(
                e,
                "ovsdb_hosts",
                "Hosts the provisioner keeps a view of (from the topology or dialled in).",
                known as u64,
            )?;
            gauge(
                e,
                "ovsdb_hosts_connected",
                "Hosts whose OVSDB session is up.",
                connected as u64,
            )?;
        }
        {
            let mut refused = e.encode_descriptor(
                "peers_refused",
                "Peers refused on the control channels (TLS on), by channel and reason: a failed \
             handshake (no certificate, another CA's, plain TCP) or a certificate that is not the \
             claimed datapath's or host's.",
                None,
                MetricType::Counter,
            )?;
            for (channel, reason, n) in crate::tls::refused::counts() {
                let labels = [("channel", channel), ("reason", reason)];
                ConstCounter::new(n).encode(refused.encode_family(&labels)?)?;
            }
        }
        counter(
            e,
            "resyncs",
            "Switch sessions closed to resync them because an app output did not fit their queue.",
            self.app.resyncs(),
        )?;
        let Some(apps::Answer::Counters(c)) = self.app.query(&apps::Query::Counters) else {
            return Ok(());
        };
        counter(
            e,
            "packet_ins",
            "Packet-ins the app received.",
            c.packet_ins,
        )?;
        counter(
            e,
            "packet_in_budget_hits",
            "Packet-ins over their port's rate budget, dropped unanswered.",
            c.budget_hits,
        )?;
        counters(
            e,
            "packet_ins_ignored",
            "Packet-ins neither handled nor over budget, by reason.",
            "reason",
            &c.ignored,
        )?;
        counter(
            e,
            "simulations",
            "Simulations run (packet-ins, the answers they caused, parked packets released).",
            c.simulations,
        )?;
        counter(
            e,
            "flows_installed",
            "Flows the app sent to switches.",
            c.flows_installed,
        )?;
        counter(
            e,
            "flows_removed",
            "Flows switches reported gone on their own (FLOW_REMOVED: idle or hard timeout).",
            c.flows_removed,
        )?;
        counter(
            e,
            "flows_invalidated",
            "Flows the app deleted because something they depended on changed.",
            c.flows_invalidated,
        )?;
        if let Some(flows) = c.flows {
            gauge(
                e,
                "flows",
                "Flows the app believes are installed now.",
                flows,
            )?;
        }
        counters(
            e,
            "drops",
            "Packets the simulation dropped, by reason.",
            "reason",
            &c.drops,
        )?;
        counters(
            e,
            "answers",
            "Answers the virtual devices sent (ARP, ICMP, DHCP), by kind.",
            "kind",
            &c.answers,
        )?;
        counters(
            e,
            "unanswered",
            "Answers decided but not sent, by reason.",
            "reason",
            &c.unanswered,
        )?;
        counter(
            e,
            "macs_learned",
            "MAC addresses learned (new or moved).",
            c.macs_learned,
        )?;
        counter(
            e,
            "resimulations",
            "Packets simulated again after their next hop answered or failed.",
            c.resimulated,
        )?;
        counter(
            e,
            "switch_errors",
            "ERRORs switches sent for the app's messages.",
            c.switch_errors,
        )?;
        counter(
            e,
            "replies_predicted",
            "Reply flows installed on the destination's host with the request that demands them.",
            c.replies_predicted,
        )?;
        counter(
            e,
            "packets_held",
            "First packets held until the destination's switch confirmed their reply's flow.",
            c.packets_held,
        )?;
        counter(
            e,
            "holds_expired",
            "Held packets that went at their deadline, the destination's barrier unanswered.",
            c.holds_expired,
        )?;
        counter(
            e,
            "delivered_at_destination",
            "First packets sent out of their destination's port by the destination's switch, behind their reply's flow.",
            c.delivered_at_destination,
        )?;
        Ok(())
    }
}

/// The integration tests' reader of the exposition, shared so that one parser checks both.
#[cfg(test)]
#[path = "../tests/common/exposition.rs"]
mod exposition;

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use apps::{Answer, App, AppCounters, Event, Output, Query};
    use axum::body::Body;
    use axum::http::StatusCode;
    use tokio::sync::mpsc;
    use tower::ServiceExt;

    use super::exposition::Samples;
    use super::*;
    use crate::openflow::registry::SwitchHandle;
    use crate::openflow::test_util::features;
    use crate::openflow::Switches;

    /// Counts packet-ins; reports fixed drops and flows beside.
    #[derive(Default)]
    struct Counting(u64);

    impl App for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn handle(&mut self, _now: Instant, event: &Event, _out: &mut Vec<Output>) {
            if let Event::PacketIn { .. } = event {
                self.0 += 1;
            }
        }
        fn query(&self, _now: Instant, query: &Query) -> Option<Answer> {
            (*query == Query::Counters).then(|| {
                Answer::Counters(AppCounters {
                    packet_ins: self.0,
                    flows: Some(3),
                    drops: vec![("loop", 2), ("no_route", 1)],
                    ..AppCounters::default()
                })
            })
        }
    }

    fn packet_in(dpid: u64) -> Event {
        Event::PacketIn {
            dpid,
            packet_in: ofproto::PacketIn {
                buffer_id: ofproto::OFP_NO_BUFFER,
                total_len: 0,
                reason: ofproto::PacketInReason::NoMatch,
                table_id: 0,
                cookie: 0,
                match_: ofproto::Match::new(),
                data: bytes::Bytes::new(),
            },
        }
    }

    fn host_views(connected: &[bool]) -> HostViews {
        connected
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let view = crate::provision::HostView {
                    connected: *c,
                    ..Default::default()
                };
                (uuid::Uuid::from_u128(i as u128 + 1), view)
            })
            .collect()
    }

    /// Every family has its help, every name its prefix, and the text ends as OpenMetrics
    /// requires.
    fn well_formed(text: &str) {
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            !text.contains("..\n"),
            "a help text ends in two periods: {text}"
        );
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split(' ').nth(2).unwrap_or_default();
            assert!(name.starts_with("strowger_"), "{line}");
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("# HELP {name} ")) && l.len() > 9 + name.len()),
                "no help for {name}"
            );
        }
    }

    #[test]
    fn a_scrape_shows_the_app_counters_its_latency_and_the_state_around_it() {
        let host = AppHost::new(Box::new(Counting::default()), Switches::new());
        let (tx, _rx) = mpsc::channel(4);
        let peer = "127.0.0.1:1".parse().expect("literal address");
        let shared = Arc::new(crate::openflow::registry::ConnShared::default());
        let handle = SwitchHandle::new(1, peer, features(7), tx, shared.clone());
        host.switch_up(handle, features(7), vec![], |_| {});
        let (_views_tx, views) = watch::channel(host_views(&[true, false, true]));
        let registry = registry(Sources {
            app: host.clone(),
            hosts: Some(views),
            http: HttpMetrics::default(),
        });

        let before = Samples::parse(&render(&registry));
        assert_eq!(
            before.get("strowger_packet_in_seconds_count", &[]),
            Some(0.0)
        );
        assert_eq!(before.get("strowger_packet_ins_total", &[]), Some(0.0));
        for _ in 0..3 {
            host.event(1, &shared, packet_in(7), false, |_| {});
        }
        // Other events are not packet-ins: not timed.
        host.broadcast(&Event::SwitchDown { dpid: 99 });

        let text = render(&registry);
        well_formed(&text);
        let after = Samples::parse(&text);
        let v = |name: &str, labels: &[(&str, &str)]| after.get(name, labels);
        assert_eq!(v("strowger_packet_in_seconds_count", &[]), Some(3.0));
        assert_eq!(
            v("strowger_packet_in_seconds_bucket", &[("le", "+Inf")]),
            Some(3.0)
        );
        assert!(v("strowger_packet_in_seconds_sum", &[]).is_some_and(|s| s >= 0.0));
        assert_eq!(v("strowger_packet_ins_total", &[]), Some(3.0));
        assert_eq!(v("strowger_drops_total", &[("reason", "loop")]), Some(2.0));
        assert_eq!(
            v("strowger_drops_total", &[("reason", "no_route")]),
            Some(1.0)
        );
        assert_eq!(v("strowger_flows", &[]), Some(3.0));
        assert_eq!(v("strowger_switches_connected", &[]), Some(1.0));
        assert_eq!(v("strowger_ovsdb_hosts", &[]), Some(3.0));
        assert_eq!(v("strowger_ovsdb_hosts_connected", &[]), Some(2.0));
        assert_eq!(v("strowger_resyncs_total", &[]), Some(0.0));
        assert_eq!(v("strowger_build_info", &[("app", "counting")]), Some(1.0));
        // No request was counted yet: the family shows no series.
        assert!(after
            .0
            .iter()
            .all(|s| s.name != "strowger_http_requests_total"));

        // The switch leaves: the gauge follows the registry.
        host.switch_down(7, 1, &shared);
        let gone = Samples::parse(&render(&registry));
        assert_eq!(gone.get("strowger_switches_connected", &[]), Some(0.0));
    }

    #[test]
    fn an_app_without_counters_still_shows_the_controller_s_own() {
        struct Silent;
        impl App for Silent {
            fn name(&self) -> &'static str {
                "silent"
            }
            fn handle(&mut self, _now: Instant, _event: &Event, _out: &mut Vec<Output>) {}
        }
        let host = AppHost::new(Box::new(Silent), Switches::new());
        let registry = registry(Sources {
            app: host,
            hosts: None,
            http: HttpMetrics::default(),
        });
        let text = render(&registry);
        well_formed(&text);
        let s = Samples::parse(&text);
        assert_eq!(s.get("strowger_switches_connected", &[]), Some(0.0));
        assert_eq!(s.get("strowger_packet_ins_total", &[]), None);
        assert_eq!(s.get("strowger_ovsdb_hosts_connected", &[]), None);
    }

    #[tokio::test]
    async fn requests_are_counted_by_method_route_template_and_status() {
        let switches = Switches::new();
        let http = HttpMetrics::default();
        let registry = registry(Sources {
            app: AppHost::new(Box::new(Counting::default()), switches.clone()),
            hosts: None,
            http: http.clone(),
        });
        let app = crate::api::app_at(
            vec![crate::api::switches::routes(switches)],
            routes(Arc::new(registry)),
            crate::api::guard::Guard::default(),
        )
        .layer(axum::middleware::from_fn_with_state(http, track));
        let call = |method: &str, uri: &str, host: Option<&str>| {
            let mut req = axum::http::Request::builder().method(method).uri(uri);
            if let Some(h) = host {
                req = req.header("host", h);
            }
            let req = req.body(Body::empty()).expect("valid request");
            let app = app.clone();
            async move { app.oneshot(req).await.expect("infallible router") }
        };
        assert_eq!(
            call("GET", "/api/v1/health", None).await.status(),
            StatusCode::OK
        );
        for dpid in ["1", "2"] {
            let r = call("GET", &format!("/api/v1/switches/{dpid}"), None).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND);
        }
        let r = call("GET", "/no/such/path/42", None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        // Refused by the guard: counted all the same.
        let r = call("GET", "/api/v1/health", Some("evil.example")).await;
        assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
        let r = call("BREW", "/api/v1/health", None).await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);

        let r = call("GET", "/metrics", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some(CONTENT_TYPE)
        );
        let body = axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .expect("body");
        let text = String::from_utf8(body.to_vec()).expect("UTF-8");
        well_formed(&text);
        let s = Samples::parse(&text);
        let requests = |method: &str, route: &str, status: &str| {
            s.get(
                "strowger_http_requests_total",
                &[("method", method), ("route", route), ("status", status)],
            )
        };
        assert_eq!(requests("GET", "/api/v1/health", "200"), Some(1.0));
        // Two paths, one route template: one series.
        assert_eq!(requests("GET", "/api/v1/switches/{dpid}", "404"), Some(2.0));
        assert_eq!(requests("GET", "unmatched", "404"), Some(1.0));
        assert_eq!(requests("GET", "/api/v1/health", "421"), Some(1.0));
        assert_eq!(requests("other", "/api/v1/health", "405"), Some(1.0));
        // Raw paths never become labels.
        assert!(!text.contains("/no/such/path"), "{text}");
        // The scrape itself is counted only once answered: six requests, not seven.
        assert_eq!(
            s.count("strowger_http_requests_total", &[("route", "/metrics")]),
            0.0
        );
        let total: f64 =
            s.0.iter()
                .filter(|x| x.name == "strowger_http_requests_total")
                .map(|x| x.value)
                .sum();
        assert_eq!(total, 6.0);
    }
}
