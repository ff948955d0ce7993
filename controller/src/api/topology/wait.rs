//! Topology writes tell their revision and can wait until it is applied: every successful write
//! answers `X-Strowger-Revision: N`, and with `?wait=true` (optional `timeout` in ms, default
//! [`DEFAULT_TIMEOUT`], at most [`MAX_TIMEOUT`]) the answer is sent only once every connected
//! switch and host has applied revision N (`crate::applied`). On timeout the write stays
//! committed and the answer is 504 `timeout`, naming the laggards. `GET /revision` shows where
//! everyone stands, for scripts that poll instead.
//!
//! One middleware does it for every write route, so no handler has to remember: the shared
//! `write` helper records the revision it committed in a task-local slot that the middleware
//! scopes around the handler (a handler runs on the request's task, and the store write on a
//! blocking thread returns its revision to it).

use std::cell::Cell;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use topology::Network;

use super::Runtime;
use crate::api::ApiError;
use crate::applied::{Mark, RevisionStatus};

/// The header carrying a write's revision.
pub const REVISION_HEADER: &str = "x-strowger-revision";
/// The header naming hosts that were not connected, so not waited for (comma-separated).
pub const NOT_CONNECTED_HEADER: &str = "x-strowger-not-connected";
/// How long `?wait=true` waits without `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `timeout` accepted, in milliseconds.
pub const MAX_TIMEOUT_MS: u64 = 600_000;
/// See [`MAX_TIMEOUT_MS`].
pub const MAX_TIMEOUT: Duration = Duration::from_millis(MAX_TIMEOUT_MS);

tokio::task_local! {
    static WROTE: Cell<Option<u64>>;
}

/// Records the revision a write committed, for the middleware around its handler (a no-op
/// outside one: tests calling handlers directly, tools).
pub(crate) fn wrote(revision: u64) {
    let _ = WROTE.try_with(|c| c.set(Some(revision)));
}

/// `?wait=` and `?timeout=` of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitParams {
    /// Wait until applied.
    pub wait: bool,
    /// For at most this long.
    pub timeout: Duration,
}

/// Reads the query of a write: `wait` (`true`/`false`) and `timeout` (milliseconds); other
/// parameters are left to the handler. A bad value is 400 before anything is written.
pub fn params(query: Option<&str>) -> Result<WaitParams, ApiError> {
    let mut p = WaitParams {
        wait: false,
        timeout: DEFAULT_TIMEOUT,
    };
    for pair in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "wait" => {
                p.wait = match v {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "wait must be true or false, not {v:?}"
                        ))
                        .with_field("wait"))
                    }
                }
            }
            "timeout" => {
                let ms: u64 = v
                    .parse()
                    .ok()
                    .filter(|ms| *ms <= MAX_TIMEOUT_MS)
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "timeout must be milliseconds from 0 to {MAX_TIMEOUT_MS}, not {v:?}"
                        ))
                        .with_field("timeout")
                    })?;
                p.timeout = Duration::from_millis(ms);
            }
            _ => {}
        }
    }
    Ok(p)
}

/// The middleware of the topology routes: the revision header on every write, and the wait.
pub async fn middleware(
    State((net, rt)): State<(Network, Runtime)>,
    req: Request,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let p = match params(req.uri().query()) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let (mut resp, revision) = WROTE
        .scope(Cell::new(None), async {
            let resp = next.run(req).await;
            (resp, WROTE.with(Cell::get))
        })
        .await;
    let Some(revision) = revision else {
        return resp;
    };
    if !resp.status().is_success() {
        return resp;
    }
    if p.wait {
        if let Some(progress) = rt.progress() {
            let target = Mark {
                revision,
                bindings: 0,
            };
            match progress.wait(|| net.snapshot(), target, p.timeout).await {
                Ok(status) => not_connected(&mut resp, &status),
                Err(status) => {
                    let mut message = format!(
                        "revision {revision} is committed but was not applied within {} ms by: {}",
                        p.timeout.as_millis(),
                        status.lagging(target).join(", ")
                    );
                    let down = status.disconnected();
                    if !down.is_empty() {
                        message.push_str(&format!(
                            " (not connected, not waited for: {})",
                            down.join(", ")
                        ));
                    }
                    resp = ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", message)
                        .into_response();
                    not_connected(&mut resp, &status);
                }
            }
        }
    }
    resp.headers_mut()
        .insert(REVISION_HEADER, HeaderValue::from(revision));
    resp
}

/// Names the hosts that were not waited for, when their names fit a header.
fn not_connected(resp: &mut Response, status: &RevisionStatus) {
    let down = status.disconnected();
    if down.is_empty() {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&down.join(",")) {
        resp.headers_mut().insert(NOT_CONNECTED_HEADER, v);
    }
}

/// `GET /api/v1/revision`: the topology revision and each host's and switch's applied one.
/// With `?wait=true`, answered once every connected host has applied the current revision and
/// every connected switch also the current bindings generation (504 after `timeout`).
pub async fn revision(
    State(net): State<Network>,
    Extension(rt): Extension<Runtime>,
    uri: axum::http::Uri,
) -> Result<Json<RevisionStatus>, ApiError> {
    let p = params(uri.query())?;
    let s = net.snapshot();
    Ok(Json(match rt.progress() {
        Some(progress) if p.wait => {
            let deadline = tokio::time::Instant::now() + p.timeout;
            let timeout = |who: Vec<String>, target: String| {
                ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "timeout",
                    format!(
                        "{target} not applied within {} ms by: {}",
                        p.timeout.as_millis(),
                        who.join(", ")
                    ),
                )
            };
            // First every host's latest OVSDB state (VIFs just plugged) into the bindings, then
            // the revision and bindings generation that covers it on every switch.
            if let Err(behind) = progress.sync(deadline).await {
                return Err(timeout(behind, "the hosts' current state".into()));
            }
            let target = Mark {
                revision: net.snapshot().revision(),
                bindings: progress.issued().bindings,
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match progress.wait(|| net.snapshot(), target, left).await {
                Ok(status) => status,
                Err(status) => {
                    return Err(timeout(
                        status.lagging(target),
                        format!(
                            "revision {} (bindings {})",
                            target.revision, target.bindings
                        ),
                    ))
                }
            }
        }
        Some(progress) => progress.status(&s),
        // No runtime (tests of the API alone): the revision, and nobody to wait for.
        None => RevisionStatus {
            revision: s.revision(),
            bindings: 0,
            hosts: s
                .hosts()
                .map(|h| crate::applied::HostStatus {
                    host_id: h.id,
                    name: h.name.clone(),
                    applied_revision: None,
                    connected: false,
                })
                .collect(),
            switches: vec![],
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_parameters_are_read_or_refused() {
        let p = |q| params(Some(q));
        assert_eq!(
            p("").unwrap(),
            WaitParams {
                wait: false,
                timeout: DEFAULT_TIMEOUT
            }
        );
        assert_eq!(
            p("wait=true&timeout=250&other=x").unwrap(),
            WaitParams {
                wait: true,
                timeout: Duration::from_millis(250)
            }
        );
        assert!(!p("wait=false").unwrap().wait);
        assert_eq!(p("wait=yes").unwrap_err().field.as_deref(), Some("wait"));
        assert_eq!(
            p("timeout=-1").unwrap_err().field.as_deref(),
            Some("timeout")
        );
        assert_eq!(
            p("timeout=600001").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert!(params(None).is_ok());
    }

    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use crate::applied::Progress;
    use crate::openflow::registry::{ConnShared, SwitchHandle};
    use crate::openflow::Switches;
    use crate::provision::{ProvisionConfig, Provisioner};

    async fn send(
        app: &axum::Router,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Option<u64>, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/api/v1{uri}"));
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let rev = resp
            .headers()
            .get(REVISION_HEADER)
            .map(|v| v.to_str().unwrap().parse().unwrap());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            rev,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The topology API with progress over `switches` (no hosts connected).
    fn app_with(switches: &Switches) -> (axum::Router, tokio::sync::watch::Sender<Mark>) {
        let net = Network::open(Arc::new(topology::MemStore::new())).unwrap();
        let provisioner = Provisioner::new(ProvisionConfig::new("tcp:127.0.0.1:6653"));
        let (issued, rx) = tokio::sync::watch::channel(Mark::default());
        let rt = Runtime::new(provisioner.views()).with_progress(Progress::new(
            switches.clone(),
            provisioner,
            rx,
        ));
        (
            crate::api::app(vec![super::super::routes_with(net, rt)]),
            issued,
        )
    }

    fn switch(switches: &Switches, dpid: u64) -> Arc<ConnShared> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        std::mem::forget(rx);
        let shared = Arc::new(ConnShared::default());
        let peer = "127.0.0.1:1".parse().unwrap();
        let h = SwitchHandle::new(
            dpid,
            peer,
            crate::openflow::test_util::features(dpid),
            tx,
            shared.clone(),
        );
        switches.register(h);
        shared
    }

    #[tokio::test]
    async fn writes_tell_their_revision_and_a_bad_wait_writes_nothing() {
        let switches = Switches::new();
        let (app, _issued) = app_with(&switches);
        let (status, rev, _) = send(&app, "POST", "/bridges", Some(json!({"name": "a"}))).await;
        assert_eq!((status, rev), (StatusCode::CREATED, Some(1)));
        let (status, rev, v) = send(
            &app,
            "POST",
            "/bridges?wait=maybe",
            Some(json!({"name": "b"})),
        )
        .await;
        assert_eq!((status, rev), (StatusCode::BAD_REQUEST, None), "{v}");
        assert_eq!(v["error"]["field"], "wait");
        // Nobody to wait for: at once.
        let (status, rev, _) = send(
            &app,
            "POST",
            "/bridges?wait=true",
            Some(json!({"name": "c"})),
        )
        .await;
        assert_eq!((status, rev), (StatusCode::CREATED, Some(2)));
        let (_, _, v) = send(&app, "GET", "/revision", None).await;
        assert_eq!(
            v,
            json!({"revision": 2, "bindings": 0, "hosts": [], "switches": []})
        );
        // A failed write tells no revision.
        let (status, rev, _) =
            send(&app, "POST", "/bridges?wait=true", Some(json!({"name": 1}))).await;
        assert_eq!((status, rev), (StatusCode::UNPROCESSABLE_ENTITY, None));
    }

    #[tokio::test]
    async fn a_write_waits_for_every_connected_switch_and_no_longer() {
        let switches = Switches::new();
        let (app, _issued) = app_with(&switches);
        let one = switch(&switches, 1);
        let two = switch(&switches, 2);
        // Switch 1 acknowledges, 2 never does: 504 naming 2 only, the write committed.
        switches.applied(
            &one,
            Mark {
                revision: 1,
                bindings: 0,
            },
        );
        let (status, rev, v) = send(
            &app,
            "DELETE",
            "/bridges/00000000-0000-0000-0000-000000000000?wait=true&timeout=50",
            None,
        )
        .await;
        assert_eq!(
            (status, rev),
            (StatusCode::NOT_FOUND, None),
            "a failed write does not wait"
        );
        let (status, rev, v2) = send(
            &app,
            "POST",
            "/bridges?wait=true&timeout=50",
            Some(json!({"name": "a"})),
        )
        .await;
        assert_eq!((status, rev), (StatusCode::GATEWAY_TIMEOUT, Some(1)), "{v}");
        assert_eq!(v2["error"]["code"], "timeout");
        let msg = v2["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("switch 0000000000000002") && !msg.contains("0000000000000001"),
            "{msg}"
        );
        let (_, _, list) = send(&app, "GET", "/bridges", None).await;
        assert_eq!(list[0]["name"], "a");

        // Switch 2 acknowledges mid-wait: the answer follows.
        let waiting = tokio::spawn({
            let app = app.clone();
            async move {
                send(
                    &app,
                    "POST",
                    "/bridges?wait=true",
                    Some(json!({"name": "b"})),
                )
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        switches.applied(
            &one,
            Mark {
                revision: 2,
                bindings: 0,
            },
        );
        switches.applied(
            &two,
            Mark {
                revision: 2,
                bindings: 0,
            },
        );
        let (status, rev, _) = waiting.await.unwrap();
        assert_eq!((status, rev), (StatusCode::CREATED, Some(2)));

        // Switch 2 leaves mid-wait: it is no longer waited for.
        let waiting = tokio::spawn({
            let app = app.clone();
            async move {
                send(
                    &app,
                    "POST",
                    "/bridges?wait=true",
                    Some(json!({"name": "c"})),
                )
                .await
            }
        });
        switches.applied(
            &one,
            Mark {
                revision: 3,
                bindings: 0,
            },
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        assert!(switches.unregister(2, 2));
        let (status, rev, _) = waiting.await.unwrap();
        assert_eq!((status, rev), (StatusCode::CREATED, Some(3)));
    }
}
