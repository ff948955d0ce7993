//! Benchmark: hundreds of sandbox hypervisors (issue 13). N real `ovs-vswitchd
//! --enable-dummy=system` hosts in one VXLAN tunnel zone, a fresh `strowger serve --in-memory`,
//! B bridges × P ports bound by iface-id; reports time to converge (checked from each host's
//! OVSDB and OpenFlow table), controller peak RSS and CPU, the sandboxes' totals and a first
//! packet across a pair of hosts. See `tests/common/scale.rs` for what each figure covers.
//!
//! `cargo build --release -p strowger --bin strowger --example scale &&
//!  target/release/examples/scale [--hosts 25,50,100] [--bridges 100] [--ports 100]
//!  [--workers 6] [--deadline-s 900]`
//! (the `strowger` binary is taken from beside the example's directory, or `--strowger PATH`).

#[path = "../tests/common/scale.rs"]
mod scale;

use std::time::Duration;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hosts: Vec<usize> = arg(&args, "--hosts")
        .unwrap_or_else(|| "25".into())
        .split(',')
        .map(|h| h.parse().expect("--hosts N[,N…]"))
        .collect();
    let num = |name: &str, default: usize| {
        arg(&args, name).map_or(default, |v| v.parse().expect("a number"))
    };
    let strowger = arg(&args, "--strowger").map(Into::into).unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("own path");
        exe.parent()
            .and_then(|d| d.parent())
            .expect("target/<profile>/examples")
            .join("strowger")
    });
    println!(
        "| hosts | ports | sandboxes s | topology REST s | register s | br-int s | mesh s | converged s | is_connected s | first packet ms | answer ms | ctl peak MiB | ctl CPU s (topology) | OVS RSS MiB | OVS CPU s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for n in hosts {
        let cfg = scale::Config {
            hosts: n,
            bridges: num("--bridges", 100),
            ports_per_bridge: num("--ports", 100),
            strowger: strowger.clone(),
            workers: num("--workers", 6),
            deadline: Duration::from_secs(num("--deadline-s", 900) as u64),
            log: std::env::var("STROWGER_LOG").unwrap_or_else(|_| "warn".into()),
        };
        let r = scale::run(&cfg);
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} | {:.1} ({:.1}) | {:.0} | {:.1} |",
            r.hosts,
            r.ports,
            r.sandboxes_s,
            r.topology_s,
            r.register_s,
            r.br_int_s,
            r.mesh_s,
            r.converged_s,
            r.connected_s,
            r.first_packet_s * 1e3,
            r.answer_s * 1e3,
            r.controller_peak_mib,
            r.controller_cpu_s,
            r.controller_cpu_topology_s,
            r.ovs_rss_mib,
            r.ovs_cpu_s,
        );
    }
}
