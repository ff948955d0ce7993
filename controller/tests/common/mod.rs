//! Test support shared by the OpenFlow integration tests: an in-process controller on an
//! ephemeral port, an app that records what it sees, and a scripted switch over real TCP;
//! [`lab`] for the engine's end-to-end tests on sandbox hypervisors; [`exposition`] to read
//! `GET /metrics`.
#![allow(dead_code)] // each test binary uses a different subset

pub mod exposition;
pub mod lab;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apps::{App, Event, Output};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::{Bytes, BytesMut};
use ofproto::{Decoder, Hello, Message, MultipartReply, MultipartReplyBody, OfMessage};
use strowger::openflow::{self, Config, Context, Switches};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// How long any single wait in these tests may take before it is a failure.
pub const WAIT: Duration = Duration::from_secs(10);

/// Wraps an app and records every event it is given.
pub struct Recording {
    pub inner: Box<dyn App>,
    pub seen: Arc<Mutex<Vec<Event>>>,
}

impl App for Recording {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn handle(&mut self, now: std::time::Instant, event: &Event, out: &mut Vec<Output>) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(event.clone());
        }
        self.inner.handle(now, event, out);
    }
}

/// A controller running in this process: OpenFlow on an ephemeral port, `l2switch` as the app.
pub struct Controller {
    pub addr: SocketAddr,
    pub switches: Switches,
    /// The app host (to mark its stream, as the bindings follower does).
    pub app: openflow::AppHost,
    pub events: Arc<Mutex<Vec<Event>>>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Controller {
    pub async fn start(config: Config) -> Controller {
        Self::start_with(apps::by_name("l2switch").expect("l2switch exists"), config).await
    }

    /// Like `start`, with `app` instead of `l2switch`.
    pub async fn start_with(app: Box<dyn App>, config: Config) -> Controller {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let switches = Switches::new();
        let (stop, stop_rx) = watch::channel(false);
        let events = Arc::new(Mutex::new(Vec::new()));
        let app = Recording {
            inner: app,
            seen: events.clone(),
        };
        let host = openflow::AppHost::new(Box::new(app), switches.clone());
        let ctx = Context::new(host.clone(), config);
        let tasks = vec![tokio::spawn(openflow::listener::run(
            listener, ctx, stop_rx,
        ))];
        Controller {
            addr,
            switches,
            app: host,
            events,
            stop,
            tasks,
        }
    }

    /// The REST API over this controller's registry.
    pub fn api(&self) -> axum::Router {
        strowger::api::app(vec![strowger::api::switches::routes(self.switches.clone())])
    }

    /// One REST call through the router (no socket): status and body text.
    pub async fn call(&self, method: &str, uri: &str, body: &str) -> (StatusCode, String) {
        call(self.api(), method, uri, body).await
    }

    /// Polls until `dpid` is registered.
    pub async fn wait_switch(&self, dpid: u64) -> openflow::SwitchHandle {
        wait_for(|| self.switches.get(dpid)).await
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Signals shutdown and waits until every task (connections included) has ended.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            tokio::time::timeout(WAIT, t)
                .await
                .expect("controller tasks end on shutdown")
                .expect("controller task panicked");
        }
    }
}

/// One REST call through `api` (no socket): status and body text.
pub async fn call(api: axum::Router, method: &str, uri: &str, body: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = api.oneshot(req).await.expect("router");
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Polls `f` every 10 ms until it returns `Some`, failing the test after [`WAIT`].
pub async fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// The same builders as the crate's own unit tests.
#[path = "../../src/openflow/test_util.rs"]
mod test_util;
pub use test_util::{features, port};

/// A scripted OpenFlow 1.3 switch on a real TCP connection.
pub struct FakeSwitch {
    pub stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
}

impl FakeSwitch {
    pub async fn connect(addr: SocketAddr) -> FakeSwitch {
        let stream = TcpStream::connect(addr).await.expect("connect");
        FakeSwitch {
            stream,
            buf: BytesMut::new(),
            decoder: Decoder::new(),
        }
    }

    /// Connects and completes the handshake as datapath `dpid` with ports 1 and 2.
    pub async fn handshake(addr: SocketAddr, dpid: u64) -> FakeSwitch {
        let mut sw = FakeSwitch::connect(addr).await;
        sw.send(OfMessage::new(1, Message::Hello(Hello::of13())))
            .await;
        let hello = sw.recv().await.expect("controller HELLO");
        assert!(matches!(hello.body, Message::Hello(_)), "{hello:?}");
        let req = sw.recv().await.expect("FEATURES_REQUEST");
        assert_eq!(req.body, Message::FeaturesRequest);
        sw.send(OfMessage::new(
            req.xid,
            Message::FeaturesReply(features(dpid)),
        ))
        .await;
        let set_config = sw.recv().await.expect("SET_CONFIG");
        assert!(
            matches!(set_config.body, Message::SetConfig(_)),
            "{set_config:?}"
        );
        let pd = sw.recv().await.expect("PORT_DESC request");
        assert!(matches!(pd.body, Message::MultipartRequest(_)), "{pd:?}");
        sw.send(OfMessage::new(
            pd.xid,
            Message::MultipartReply(MultipartReply {
                flags: 0,
                body: MultipartReplyBody::PortDesc(vec![port(1), port(2)]),
            }),
        ))
        .await;
        sw
    }

    pub async fn send(&mut self, m: OfMessage) {
        self.send_raw(&m.to_bytes()).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next message, `None` on a clean close; fails the test after [`WAIT`].
    pub async fn recv(&mut self) -> Option<OfMessage> {
        tokio::time::timeout(WAIT, self.recv_inner())
            .await
            .expect("no message from the controller in time")
    }

    async fn recv_inner(&mut self) -> Option<OfMessage> {
        loop {
            if let Some(m) = self
                .decoder
                .decode(&mut self.buf)
                .expect("controller sent valid OpenFlow")
            {
                return Some(m);
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Reads messages until one satisfies `pred`, answering echo requests meanwhile.
    pub async fn recv_until(&mut self, mut pred: impl FnMut(&OfMessage) -> bool) -> OfMessage {
        loop {
            let m = self.recv().await.expect("connection open");
            if pred(&m) {
                return m;
            }
            if let Message::EchoRequest(data) = &m.body {
                let reply = OfMessage::new(m.xid, Message::EchoReply(data.clone()));
                self.send(reply).await;
            }
        }
    }

    /// Reads until the controller closes the connection; returns what it sent before.
    pub async fn until_closed(&mut self) -> Vec<OfMessage> {
        let mut seen = Vec::new();
        while let Some(m) = self.recv().await {
            seen.push(m);
        }
        seen
    }
}

impl FakeSwitch {
    /// Reads until the controller closes the connection, ignoring what it sends (which, for
    /// random input, need not decode: the controller answers a HELLO first).
    pub async fn until_closed_lenient(&mut self) {
        let mut buf = [0u8; 4096];
        let read_all = async {
            loop {
                match self.stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(WAIT, read_all)
            .await
            .expect("the controller closed the connection in time");
    }
}

/// An Ethernet frame `dst ← src` carrying an IPv4/UDP payload.
pub fn frame(dst: [u8; 6], src: [u8; 6]) -> Bytes {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[0u8; 46]);
    Bytes::from(f)
}
