//! Test support for tests against real Open vSwitch: private sandboxes and tool wrappers.
//!
//! A [`Sandbox`] is one simulated hypervisor, built the way Open vSwitch's and OVN's own test
//! suites build theirs (see `shared/lab/sandbox.sh`): a private `ovsdb-server` on a fresh
//! `conf.db` created from `/usr/share/openvswitch/vswitch.ovsschema`, and (unless started with
//! [`Sandbox::start_db_only`]) an `ovs-vswitchd --enable-dummy=system`, whose default datapath is
//! a userspace dummy with real VXLAN/GRE encapsulation. Every file lives in a fresh temporary
//! directory; `OVS_RUNDIR`, `OVS_LOGDIR`, `OVS_DBDIR`, `OVS_SYSCONFDIR` point there, so nothing
//! touches the system OVS and sandboxes run in parallel. No root is needed.
//!
//! Dropping a sandbox kills its daemons by PID (never by name) and removes its directory.
//!
//! An [`Underlay`] joins sandboxes on an underlay switch (a bridge in its own sandbox) over
//! `netdev-dummy` unix streams, like `sandbox.sh`'s `net_add`/`hv_attach`, so tunnel packets
//! really travel between hypervisors.
//!
//! When the OVS tools are missing, [`Sandbox::start`] returns [`Error::MissingOvs`] whose message
//! says what to install: tests `expect()` it and fail loudly rather than pass silently.
//!
//! ```no_run
//! use strowger_testbed::{Sandbox, Underlay};
//! let hv1 = Sandbox::start("hv1").expect("sandbox");
//! let hv2 = Sandbox::start("hv2").expect("sandbox");
//! let net = Underlay::new("n1").expect("underlay");
//! net.attach(&hv1, "192.168.0.1".parse().unwrap()).unwrap();
//! net.attach(&hv2, "192.168.0.2".parse().unwrap()).unwrap();
//! Underlay::neigh_fill(&[&hv1, &hv2]).unwrap();
//! hv1.vsctl(&["add-br", "br-int"]).unwrap();
//! println!("{}", hv1.vsctl(&["show"]).unwrap());
//! ```

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The schema every sandbox database is created from.
pub const VSWITCH_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// What can go wrong while driving a sandbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A needed OVS program or the schema is absent.
    #[error("{0} not found: install openvswitch-switch (apt-get install openvswitch-switch)")]
    MissingOvs(String),
    /// A tool ran and failed.
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Tool {
        /// The command line.
        cmd: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Starting or waiting for a process failed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// A daemon did not write its pidfile in time.
    #[error("{0} did not start (see {1})")]
    NotStarted(String, PathBuf),
}

/// Result of sandbox operations.
pub type Result<T> = std::result::Result<T, Error>;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One private OVS instance (ovsdb-server, and ovs-vswitchd unless database-only).
#[derive(Debug)]
pub struct Sandbox {
    name: String,
    dir: PathBuf,
    vswitchd: bool,
}

/// A public key infrastructure made by `ovs-pki` in a directory of its own, the way OVS
/// documents it: `switchca` signs switches' and hosts' certificates, `controllerca` the
/// controller's.
#[derive(Debug)]
pub struct Pki {
    dir: PathBuf,
}

/// A private key and its certificate, as `ovs-pki req+sign NAME` leaves them.
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// `NAME-privkey.pem`
    pub key: PathBuf,
    /// `NAME-cert.pem`
    pub cert: PathBuf,
}

impl Pki {
    /// `ovs-pki init` in `dir` (created; it must not hold a PKI yet).
    pub fn init(dir: &Path) -> Result<Pki> {
        if which("ovs-pki").is_none() {
            return Err(Error::MissingOvs("ovs-pki (openvswitch-common)".into()));
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.display().to_string(), e))?;
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        pki.run(&["init"])?;
        Ok(pki)
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let dir = format!("--dir={}", self.dir.join("pki").display());
        let log = format!("--log={}", self.dir.join("ovs-pki.log").display());
        let mut all = vec![dir.as_str(), log.as_str(), "--force"];
        all.extend_from_slice(args);
        let out = Command::new("ovs-pki")
            .args(&all)
            .current_dir(&self.dir)
            .output()
            .map_err(|e| Error::Io("ovs-pki".into(), e))?;
        if !out.status.success() {
            return Err(Error::Tool {
                cmd: format!("ovs-pki {}", all.join(" ")),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `ovs-pki req+sign NAME switch|controller`: a new key and its certificate.
    pub fn req_sign(&self, name: &str, kind: &str) -> Result<KeyPair> {
        self.run(&["req+sign", name, kind])?;
        Ok(KeyPair {
            key: self.dir.join(format!("{name}-privkey.pem")),
            cert: self.dir.join(format!("{name}-cert.pem")),
        })
    }

    /// The CA certificate that signs switches (what the controller trusts).
    pub fn switch_ca(&self) -> PathBuf {
        self.dir.join("pki/switchca/cacert.pem")
    }

    /// The CA certificate that signs controllers (what switches trust).
    pub fn controller_ca(&self) -> PathBuf {
        self.dir.join("pki/controllerca/cacert.pem")
    }
}

/// Checks that the OVS programs and schema this crate needs exist.
pub fn require_ovs() -> Result<()> {
    for prog in [
        "ovsdb-server",
        "ovsdb-tool",
        "ovs-vswitchd",
        "ovs-vsctl",
        "ovs-ofctl",
        "ovs-appctl",
    ] {
        if which(prog).is_none() {
            return Err(Error::MissingOvs(prog.to_string()));
        }
    }
    if !Path::new(VSWITCH_SCHEMA).exists() {
        return Err(Error::MissingOvs(VSWITCH_SCHEMA.to_string()));
    }
    Ok(())
}

fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

impl Sandbox {
    /// Starts ovsdb-server and `ovs-vswitchd --enable-dummy=system` in a fresh directory.
    /// The database also dials whatever `ovs-vsctl set-manager` configures (passive-mode tests).
    pub fn start(name: &str) -> Result<Sandbox> {
        let mut sb = Self::start_db_only(name)?;
        sb.vsctl(&["--no-wait", "init"])?;
        sb.vswitchd = true;
        sb.daemon("ovs-vswitchd", &["--enable-dummy=system"])?;
        Ok(sb)
    }

    /// Starts only ovsdb-server on a fresh `conf.db` (OVSDB client tests).
    pub fn start_db_only(name: &str) -> Result<Sandbox> {
        require_ovs()?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // Short paths: a unix socket path must fit in 108 bytes.
        let dir = std::env::temp_dir().join(format!("stb-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::Io(dir.display().to_string(), e))?;
        let sb = Sandbox {
            name: name.to_string(),
            dir,
            vswitchd: false,
        };
        let db = sb.dir.join("conf.db");
        sb.tool(
            "ovsdb-tool",
            &["create", &db.to_string_lossy(), VSWITCH_SCHEMA],
        )?;
        sb.start_ovsdb_server()?;
        Ok(sb)
    }

    fn start_ovsdb_server(&self) -> Result<()> {
        let remote = format!("--remote=punix:{}", self.db_sock().display());
        let db = self.dir.join("conf.db");
        self.daemon(
            "ovsdb-server",
            &[
                &remote,
                "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
                // `ssl:`/`pssl:` managers use the SSL table (`ovs-vsctl set-ssl`), as
                // Debian's ovs-ctl starts it; ovs-vswitchd reads that table by itself.
                "--private-key=db:Open_vSwitch,SSL,private_key",
                "--certificate=db:Open_vSwitch,SSL,certificate",
                "--ca-cert=db:Open_vSwitch,SSL,ca_cert",
                &db.to_string_lossy(),
            ],
        )
    }

    /// The sandbox's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The sandbox directory (logs, pidfiles, pcaps).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database's unix socket.
    pub fn db_sock(&self) -> PathBuf {
        self.dir.join("db.sock")
    }

    /// The database as an OVSDB target string, `unix:PATH`.
    pub fn db_target(&self) -> String {
        format!("unix:{}", self.db_sock().display())
    }

    /// PID of a daemon of this sandbox (`ovsdb-server` or `ovs-vswitchd`), from its pidfile.
    pub fn pid(&self, daemon: &str) -> Option<u32> {
        std::fs::read_to_string(self.dir.join(format!("{daemon}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Runs `ovs-vsctl ARGS` against this sandbox and returns its stdout.
    pub fn vsctl(&self, args: &[&str]) -> Result<String> {
        let db = format!("--db={}", self.db_target());
        let mut all = vec![db.as_str(), "--timeout=10"];
        all.extend_from_slice(args);
        self.tool("ovs-vsctl", &all)
    }

    /// Runs `ovs-ofctl -O OpenFlow13 ARGS` against this sandbox.
    pub fn ofctl(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["-O", "OpenFlow13"];
        all.extend_from_slice(args);
        self.tool("ovs-ofctl", &all)
    }

    /// Runs `ovs-appctl ARGS` against this sandbox's ovs-vswitchd.
    pub fn appctl(&self, args: &[&str]) -> Result<String> {
        self.tool("ovs-appctl", args)
    }

    /// Runs `ovs-appctl -t ovsdb-server ARGS` against this sandbox's ovsdb-server.
    pub fn db_appctl(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["-t", "ovsdb-server"];
        all.extend_from_slice(args);
        self.tool("ovs-appctl", &all)
    }

    /// Runs any OVS program with this sandbox's environment.
    pub fn tool(&self, prog: &str, args: &[&str]) -> Result<String> {
        let path = which(prog).ok_or_else(|| Error::MissingOvs(prog.to_string()))?;
        let out = self
            .command(&path)
            .args(args)
            .output()
            .map_err(|e| Error::Io(prog.to_string(), e))?;
        if !out.status.success() {
            return Err(Error::Tool {
                cmd: format!("{prog} {}", args.join(" ")),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn command(&self, prog: &Path) -> Command {
        let mut c = Command::new(prog);
        for var in [
            "OVS_RUNDIR",
            "OVS_LOGDIR",
            "OVS_DBDIR",
            "OVS_SYSCONFDIR",
            "OVS_PKGDATADIR",
        ] {
            c.env(var, &self.dir);
        }
        c
    }

    fn daemon(&self, prog: &str, args: &[&str]) -> Result<()> {
        let mut all = vec![
            "-vconsole:off",
            "--detach",
            "--no-chdir",
            "--pidfile",
            "--log-file",
        ];
        all.extend_from_slice(args);
        // With --detach the parent exits only once the daemon is ready (listening), so no wait
        // is needed beyond the pidfile check.
        self.tool(prog, &all)?;
        if self.pid(prog).is_none() {
            return Err(Error::NotStarted(
                prog.to_string(),
                self.dir.join(format!("{prog}.log")),
            ));
        }
        Ok(())
    }

    /// Kills ovsdb-server (SIGKILL, as a crash would) and waits until it is gone.
    pub fn kill_db(&self) -> Result<()> {
        if let Some(pid) = self.pid("ovsdb-server") {
            signal(pid, "KILL")?;
            wait_gone(pid, Duration::from_secs(5));
            let _ = std::fs::remove_file(self.dir.join("ovsdb-server.pid"));
            let _ = std::fs::remove_file(self.db_sock());
        }
        Ok(())
    }

    /// Starts ovsdb-server again on the same database and socket (after [`Sandbox::kill_db`]).
    pub fn restart_db(&self) -> Result<()> {
        self.start_ovsdb_server()
    }

    /// Freezes ovsdb-server (SIGSTOP): it keeps its sockets open but answers nothing.
    pub fn freeze_db(&self) -> Result<()> {
        let pid = self
            .pid("ovsdb-server")
            .ok_or_else(|| Error::NotStarted("ovsdb-server".into(), self.dir.clone()))?;
        signal(pid, "STOP")
    }

    /// Resumes a frozen ovsdb-server (SIGCONT).
    pub fn thaw_db(&self) -> Result<()> {
        let pid = self
            .pid("ovsdb-server")
            .ok_or_else(|| Error::NotStarted("ovsdb-server".into(), self.dir.clone()))?;
        signal(pid, "CONT")
    }

    /// Freezes ovs-vswitchd (SIGSTOP): its OpenFlow connections stay open but it processes
    /// nothing, barriers included, until thawed.
    pub fn freeze_switch(&self) -> Result<()> {
        let pid = self
            .pid("ovs-vswitchd")
            .ok_or_else(|| Error::NotStarted("ovs-vswitchd".into(), self.dir.clone()))?;
        signal(pid, "STOP")
    }

    /// Resumes a frozen ovs-vswitchd (SIGCONT).
    pub fn thaw_switch(&self) -> Result<()> {
        let pid = self
            .pid("ovs-vswitchd")
            .ok_or_else(|| Error::NotStarted("ovs-vswitchd".into(), self.dir.clone()))?;
        signal(pid, "CONT")
    }

    /// Polls `f` every 20 ms until it returns `Some` or `timeout` passes.
    pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn signal(pid: u32, sig: &str) -> Result<()> {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .map_err(|e| Error::Io("kill".into(), e))?;
    if st.success() {
        Ok(())
    } else {
        Err(Error::Tool {
            cmd: format!("kill -{sig} {pid}"),
            status: st.to_string(),
            stderr: String::new(),
        })
    }
}

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry, but its state is Z: count it as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_gone(pid: u32, timeout: Duration) -> bool {
    Sandbox::wait_until(timeout, || (!alive(pid)).then_some(())).is_some()
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let daemons: &[&str] = if self.vswitchd {
            &["ovs-vswitchd", "ovsdb-server"]
        } else {
            &["ovsdb-server"]
        };
        for d in daemons {
            if let Some(pid) = self.pid(d) {
                // A frozen daemon ignores SIGTERM until continued.
                let _ = signal(pid, "CONT");
                let _ = signal(pid, "TERM");
                if !wait_gone(pid, Duration::from_secs(3)) {
                    let _ = signal(pid, "KILL");
                    wait_gone(pid, Duration::from_secs(2));
                }
            }
        }
        if std::env::var_os("STROWGER_KEEP_SANDBOX").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// An underlay network: a bridge in its own sandbox that hypervisor sandboxes attach to.
#[derive(Debug)]
pub struct Underlay {
    main: Sandbox,
    net: String,
}

impl Underlay {
    /// Starts the underlay's sandbox and its switch named `net`.
    pub fn new(net: &str) -> Result<Underlay> {
        let main = Sandbox::start(&format!("{net}-main"))?;
        main.vsctl(&["--may-exist", "add-br", net])?;
        Ok(Underlay {
            main,
            net: net.to_string(),
        })
    }

    /// Gives `hv` a `br-phys` bridge on this underlay carrying `ip/24`, with a route to the
    /// underlay subnet through it (native tunnelling looks its route up there).
    pub fn attach(&self, hv: &Sandbox, ip: Ipv4Addr) -> Result<()> {
        let port = format!("{}_br-phys", hv.name());
        let sock = self.main.dir().join(format!("{port}.sock"));
        self.main.vsctl(&[
            "add-port",
            &self.net,
            &port,
            "--",
            "set",
            "Interface",
            &port,
            &format!("options:pstream=punix:{}", sock.display()),
        ])?;
        let iface = format!("br-phys_{}", self.net);
        hv.vsctl(&[
            "--may-exist",
            "add-br",
            "br-phys",
            "--",
            "add-port",
            "br-phys",
            &iface,
            "--",
            "set",
            "Interface",
            &iface,
            &format!("options:stream=unix:{}", sock.display()),
        ])?;
        hv.appctl(&["netdev-dummy/ip4addr", "br-phys", &format!("{ip}/24")])?;
        hv.appctl(&["ovs/route/add", &format!("{ip}/24"), "br-phys"])?;
        std::fs::write(hv.dir().join("underlay_ip"), ip.to_string())
            .map_err(|e| Error::Io("underlay_ip".into(), e))?;
        Ok(())
    }

    /// Pre-fills every hypervisor's tunnel neighbour table with the others' `br-phys` MACs:
    /// native tunnelling drops packets while ARP is unresolved.
    pub fn neigh_fill(hvs: &[&Sandbox]) -> Result<()> {
        for a in hvs {
            for b in hvs {
                if a.dir() == b.dir() {
                    continue;
                }
                let mac = b.vsctl(&["get", "Interface", "br-phys", "mac_in_use"])?;
                let ip = std::fs::read_to_string(b.dir().join("underlay_ip"))
                    .map_err(|e| Error::Io("underlay_ip".into(), e))?;
                a.appctl(&[
                    "tnl/neigh/set",
                    "br-phys",
                    ip.trim(),
                    mac.trim().trim_matches('"'),
                ])?;
            }
        }
        Ok(())
    }

    /// The sandbox hosting the underlay switch.
    pub fn main(&self) -> &Sandbox {
        &self.main
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_starts_and_cleans_up() {
        let sb = Sandbox::start("tb").expect("sandbox (install openvswitch-switch)");
        let dir = sb.dir().to_path_buf();
        let pids = [sb.pid("ovsdb-server"), sb.pid("ovs-vswitchd")];
        sb.vsctl(&["add-br", "br0"]).expect("add-br");
        let show = sb.vsctl(&["show"]).expect("show");
        assert!(show.contains("Bridge br0"), "{show}");
        let dp = sb.appctl(&["dpif/show"]).expect("dpif/show");
        assert!(dp.contains("(dummy-internal)"), "{dp}");
        drop(sb);
        assert!(!dir.exists());
        for pid in pids {
            let pid = pid.expect("pidfile");
            assert!(!alive(pid), "pid {pid} still alive");
        }
    }

    #[test]
    fn db_only_kill_restart() {
        let sb = Sandbox::start_db_only("tbdb").expect("sandbox");
        sb.vsctl(&["--no-wait", "init"]).expect("init");
        sb.vsctl(&["--no-wait", "add-br", "b"]).expect("add-br");
        sb.kill_db().expect("kill");
        assert!(sb.vsctl(&["--timeout=1", "--no-wait", "show"]).is_err());
        sb.restart_db().expect("restart");
        let show = sb.vsctl(&["--no-wait", "show"]).expect("show");
        assert!(show.contains("Bridge b"), "{show}");
    }
}
