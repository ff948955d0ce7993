//! The load generator's virtual-topology mode end to end against the `strowger serve` binary:
//! emulated hosts (an `ovsdb-server` each, the generator playing ovs-vswitchd) registered and
//! provisioned over REST and OVSDB, their VIFs bound by iface-id, and every answer checked to be
//! the expected flow-cache FLOW_MOD and PACKET_OUT, across one bridge, bridge → router →
//! bridge, and the same through a 10-rule chain; then the invalidation step (one port of 100
//! admin-down deletes exactly its flows). Small counts and no timing assertions: a benchmark's
//! figures are not a test's business, its correctness is.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use strowger::bench::ofload::{self, OfloadArgs};
use strowger::bench::vtopo::Topology;

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// The controller under test, killed by PID and reaped on drop; its log is shown when the
/// test fails (a provisioning or binding step that never finishes is read there).
struct Controller {
    child: Child,
    of: SocketAddr,
    api: SocketAddr,
    log: tempfile::NamedTempFile,
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.log.path()).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(200)..];
            eprintln!(
                "--- the controller's log, last {} of {} lines ---\n{}",
                tail.len(),
                lines.len(),
                tail.join("\n")
            );
        }
    }
}

async fn controller() -> Controller {
    let (of, api) = (free_port(), free_port());
    let log = tempfile::NamedTempFile::new().expect("a temporary file for the log");
    let child = Command::new(env!("CARGO_BIN_EXE_strowger"))
        .args(["serve", "--in-memory", "--no-tunnel-local-ip"])
        // Every packet-in of the run is answered: no per-port budget.
        .args(["--packet-in-rate", "0"])
        .args(["--openflow-listen", &of.to_string()])
        .args(["--api-listen", &api.to_string()])
        .args(["--ovsdb-listen", "127.0.0.1:0"])
        // Info: each host's provisioning steps ("host reconciled") are in the log.
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log.reopen().expect("the log file"))
        .spawn()
        .expect("spawn strowger");
    let c = Controller {
        child,
        of,
        api,
        log,
    };
    let health = format!("http://{api}/api/v1/health");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while reqwest::get(&health).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "REST never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c
}

fn args(c: &Controller, topology: Topology, count: u64) -> OfloadArgs {
    OfloadArgs {
        topology: Some(topology),
        api: format!("http://{}", c.api),
        switches: 3,
        vms: 4,
        tp_ports: 2,
        in_flight: 8,
        warmup: 0.0,
        ..OfloadArgs::for_test(c.of, 3, count)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_virtual_topologies_answer_every_packet_in_with_the_expected_flow() {
    for topology in [Topology::Bridge, Topology::Router, Topology::RouterChain] {
        let c = controller().await;
        let r = ofload::run(&args(&c, topology, 100))
            .await
            .unwrap_or_else(|e| {
                panic!("{topology:?}: {e:#} (install openvswitch-switch for ovsdb-server)")
            });
        let t = r.totals;
        assert_eq!(
            (t.packet_ins, t.answered, t.lost, t.errors, t.unmatched),
            (300, 300, 0, 0, 0),
            "{topology:?}: {t:?}"
        );
        assert_eq!(t.mismatched, 0, "{topology:?}: {:#?}", r.mismatch_examples);
        // Every answer is one FLOW_MOD and one PACKET_OUT (the classifier's entries aside).
        assert!(t.flow_mods >= 300, "{topology:?}: {t:?}");
        assert_eq!(t.packet_outs, 300, "{topology:?}: {t:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_invalidation_deletes_exactly_the_flows_of_the_port_that_went_down() {
    let c = controller().await;
    let a = OfloadArgs {
        invalidate: Some(1000),
        in_flight: 32,
        ..args(&c, Topology::Bridge, 0)
    };
    let r = ofload::run(&a)
        .await
        .expect("the invalidation run completes");
    assert_eq!(r.totals.mismatched, 0, "{:#?}", r.mismatch_examples);
    let i = r.invalidation.expect("an invalidation report");
    assert_eq!(i.flows_installed, 1000, "{i:?}");
    assert_eq!((i.affected, i.affected_deleted), (10, 10), "{i:?}");
    assert_eq!((i.unaffected_deleted, i.other_deleted), (0, 0), "{i:?}");
    assert!(i.last_delete_ms >= i.first_delete_ms, "{i:?}");
}
