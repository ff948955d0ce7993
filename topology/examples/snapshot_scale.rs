//! Benchmark (not a test): builds 100 000 ports, then measures a full snapshot rebuild from the
//! store's records, the memory a snapshot holds per port, the cost of one write at that scale,
//! and a reopen from redb. `cargo run --release -p topology --example snapshot_scale [PORTS]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use topology::{Bridge, MemStore, Network, Port, RedbStore, Snapshot, Store};
use uuid::Uuid;

/// Counts live heap bytes, so a snapshot's footprint can be measured exactly.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn bridge() -> Bridge {
    Bridge {
        id: Uuid::nil(),
        name: "b".into(),
        tenant_id: None,
        admin_state_up: true,
        inbound_filter_id: None,
        outbound_filter_id: None,
    }
}

fn port() -> Port {
    serde_json::from_value(serde_json::json!({})).expect("empty port")
}

fn build(net: &Network, ports: usize, batch: usize) {
    let per_bridge = 1000;
    let mut made = 0;
    while made < ports {
        net.write(|t| {
            let mut b = Uuid::nil();
            for i in 0..batch.min(ports - made) {
                if (made + i) % per_bridge == 0 || b.is_nil() {
                    b = t.create_bridge(bridge())?.id;
                }
                t.create_port(b, port())?;
            }
            Ok(())
        })
        .expect("write");
        made += batch;
    }
}

fn main() {
    let ports: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let store = Arc::new(MemStore::new());
    let net = Network::open(store.clone()).expect("open");
    let t = Instant::now();
    build(&net, ports, 1000);
    println!(
        "built {ports} ports in batches of 1000: {:.2?}",
        t.elapsed()
    );

    // One more write at full scale: derive, validate, commit, publish.
    let b = net.snapshot().list::<Bridge>().next().expect("a bridge").id;
    let n = 1000;
    let t = Instant::now();
    for _ in 0..n {
        net.write(|t| t.create_port(b, port())).expect("write");
    }
    println!(
        "single-port write at {ports} ports (memory store): {:.1} µs each",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );

    let (rev, records) = store.range("").expect("range");
    let before = LIVE.load(Ordering::Relaxed);
    let t = Instant::now();
    let snap = Snapshot::from_records(rev, &records).expect("rebuild");
    let rebuild = t.elapsed();
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    let count = snap.port_count();
    println!(
        "full snapshot rebuild from {} records: {rebuild:.2?}",
        records.len()
    );
    println!(
        "snapshot heap: {:.1} MiB, {} bytes per port (ports, indexes, bridges)",
        bytes as f64 / (1 << 20) as f64,
        bytes / count as isize
    );
    drop(snap);
    drop(records);

    let dir = tempfile::tempdir().expect("tempdir");
    let redb: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).expect("redb"));
    let disk = Network::open(redb).expect("open");
    let t = Instant::now();
    build(&disk, ports, 1000);
    println!(
        "redb: wrote {ports} ports in batches of 1000: {:.2?}",
        t.elapsed()
    );
    let t = Instant::now();
    for _ in 0..100 {
        disk.write(|t| t.create_port(b_of(&disk), port()))
            .expect("write");
    }
    println!(
        "redb: single-port write (fsynced commit) at {ports} ports: {:.2} ms each",
        t.elapsed().as_secs_f64() * 1e3 / 100.0
    );
    drop(disk);
    let t = Instant::now();
    let reopened =
        Network::open(Arc::new(RedbStore::open(dir.path()).expect("redb"))).expect("open");
    println!(
        "redb: reopen and rebuild the snapshot ({} ports): {:.2?}",
        reopened.snapshot().port_count(),
        t.elapsed()
    );
}

fn b_of(n: &Network) -> Uuid {
    n.snapshot().list::<Bridge>().next().expect("a bridge").id
}
