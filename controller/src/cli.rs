//! The CLI client: `strowger <resource> <verb> …` over the REST API (ovn-nbctl / midonet-cli
//! style), plus the runtime views (`host unbound`, `bridge mac-table`, `router arp-table`).
//! Names (or unique id prefixes) are accepted wherever an id is expected; output is a table, or
//! the API's JSON with `--json`; API errors are printed as the API gave them.
//!
//! Fields are set as `key=value` pairs: values that parse as JSON (numbers, booleans, null,
//! arrays, objects) are sent as such, anything else as a string; list fields take
//! comma-separated items and `tp_src`/`tp_dst` take `N` or `N-M`.

use std::process::ExitCode;

use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

/// Where the API is and how to print.
#[derive(clap::Args, Debug, Clone)]
pub struct Client {
    /// Base URL of the controller's REST API.
    #[arg(
        long,
        env = "STROWGER_API",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub api: String,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// A file holding the API's bearer token (its first line). Without it, the token is read
    /// from `STROWGER_TOKEN` when set.
    #[arg(long, env = "STROWGER_TOKEN_FILE", global = true, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// For an `https://` API: the CA certificate (PEM) its certificate must chain to.
    #[arg(long, env = "STROWGER_API_CA", global = true, value_name = "FILE")]
    pub api_ca: Option<std::path::PathBuf>,
    /// Changes return only once every connected host and switch has applied them (flows
    /// invalidated, pipeline changed, barrier answered; OVSDB committed); like
    /// `ovn-nbctl --wait=hv`.
    #[arg(long, global = true)]
    pub wait: bool,
    /// How long `--wait` and `strowger wait` wait, in milliseconds (the API's default: 10 s).
    #[arg(long, global = true, value_name = "MS")]
    pub timeout: Option<u64>,
}

impl Client {
    /// The query a write carries: `?wait=true[&timeout=MS]` with `--wait`, else nothing.
    fn wait_query(&self) -> String {
        if !self.wait {
            return String::new();
        }
        match self.timeout {
            Some(ms) => format!("?wait=true&timeout={ms}"),
            None => "?wait=true".into(),
        }
    }

    /// The HTTP client: trusting `--api-ca` for an `https://` API.
    pub fn http(&self) -> Result<reqwest::Client, String> {
        let mut b = reqwest::Client::builder();
        if let Some(path) = &self.api_ca {
            let pem = std::fs::read(path)
                .map_err(|e| format!("reading the API's CA {}: {e}", path.display()))?;
            let ca = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| format!("the API's CA {}: {e}", path.display()))?;
            b = b.add_root_certificate(ca);
        }
        b.build().map_err(|e| format!("the HTTP client: {e}"))
    }

    /// The bearer token: the first line of `--token-file`, else `STROWGER_TOKEN`.
    pub fn token(&self) -> Result<Option<String>, String> {
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("reading the token file {}: {e}", path.display()))?;
            let token = text.lines().next().unwrap_or_default().trim().to_string();
            if token.is_empty() {
                return Err(format!("the token file {} is empty", path.display()));
            }
            return Ok(Some(token));
        }
        Ok(std::env::var("STROWGER_TOKEN")
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty()))
    }
}

/// The standard verbs of a top-level resource.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Verb {
    /// List them.
    List,
    /// Show one (by name, id or unique id prefix).
    Show {
        /// Name or id.
        id: String,
    },
    /// Create one: `create NAME key=value…`.
    Create {
        /// Its name.
        name: String,
        /// Other fields, `key=value`.
        fields: Vec<String>,
    },
    /// Change fields of one: `update ID key=value…` (read, merge, PUT with If-Match).
    Update {
        /// Name or id.
        id: String,
        /// Fields to change, `key=value`.
        fields: Vec<String>,
    },
    /// Delete one.
    Delete {
        /// Name or id.
        id: String,
    },
}

/// Verbs of hosts: the standard ones, and their runtime views.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum HostVerb {
    #[command(flatten)]
    Std(Verb),
    /// List the interfaces on a host's br-int (or every host's) that carry no logical port,
    /// with the reason.
    Unbound {
        /// Host (name or id); every host when absent.
        host: Option<String>,
    },
}

/// Verbs of bridges: the standard ones, and the MAC table the app has learned.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum BridgeVerb {
    #[command(flatten)]
    Std(Verb),
    /// List the MACs a bridge has learned: the port behind each, and how many flows use it.
    MacTable {
        /// Bridge (name or id).
        bridge: String,
    },
}

/// Verbs of routers: the standard ones, and the ARP cache the app holds.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum RouterVerb {
    #[command(flatten)]
    Std(Verb),
    /// List a router's ARP cache: each neighbour's MAC, state, and packets waiting for it.
    ArpTable {
        /// Router (name or id).
        router: String,
    },
}

/// Verbs of ports.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum PortVerb {
    /// List every port, or the ports of one bridge or router.
    List {
        /// A bridge or router (name or id).
        device: Option<String>,
    },
    /// Show one port (id or unique prefix).
    Show {
        /// Port id.
        id: String,
    },
    /// Create a port on a bridge or router: `create DEVICE [address=10.0.0.1/24] …`.
    Create {
        /// A bridge or router (name or id).
        device: String,
        /// Fields, `key=value`.
        fields: Vec<String>,
    },
    /// Change fields of a port.
    Update {
        /// Port id.
        id: String,
        /// Fields, `key=value`.
        fields: Vec<String>,
    },
    /// Delete a port.
    Delete {
        /// Port id.
        id: String,
    },
    /// Link two ports.
    Link {
        /// One port.
        port: String,
        /// The other.
        peer: String,
    },
    /// Unlink a port from its peer.
    Unlink {
        /// Port id.
        port: String,
    },
    /// Bind a port to an OVS interface on a host.
    Bind {
        /// Port id.
        port: String,
        /// Host (name or id).
        host: String,
        /// OVS interface name.
        interface: String,
    },
    /// Remove a port's binding.
    Unbind {
        /// Port id.
        port: String,
    },
    /// Packets and bytes that entered by the port through installed flows, drops by reason.
    Stats {
        /// Port id.
        port: String,
    },
}

/// Verbs of resources that live under a parent (routes, rules, DHCP subnets).
#[derive(clap::Subcommand, Debug, Clone)]
pub enum ChildVerb {
    /// List those of a parent.
    List {
        /// The parent (name or id).
        parent: String,
    },
    /// Show one.
    Show {
        /// Id or unique prefix.
        id: String,
    },
    /// Create one under a parent: `create PARENT key=value…`.
    #[command(alias = "add")]
    Create {
        /// The parent (name or id).
        parent: String,
        /// Rules only: 1-based position to insert at (default: append).
        #[arg(long)]
        position: Option<u32>,
        /// Fields, `key=value`.
        fields: Vec<String>,
    },
    /// Change fields of one.
    Update {
        /// Id or unique prefix.
        id: String,
        /// Fields, `key=value`.
        fields: Vec<String>,
    },
    /// Delete one.
    Delete {
        /// Id or unique prefix.
        id: String,
    },
}

/// Verbs of tunnel zone members.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum MemberVerb {
    /// List the members of a zone.
    List {
        /// Zone (name or id).
        zone: String,
    },
    /// Add a host to a zone with its address there.
    Add {
        /// Zone (name or id).
        zone: String,
        /// Host (name or id).
        host: String,
        /// The host's address in this zone.
        ip: String,
    },
    /// Remove a host from a zone.
    Remove {
        /// Zone (name or id).
        zone: String,
        /// Host (name or id).
        host: String,
    },
}

/// Verbs of static DHCP leases.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum DhcpHostVerb {
    /// List the leases of a subnet.
    List {
        /// Bridge (name or id).
        bridge: String,
        /// Subnet id.
        subnet: String,
    },
    /// Add a lease.
    Add {
        /// Bridge (name or id).
        bridge: String,
        /// Subnet id.
        subnet: String,
        /// Client MAC.
        mac: String,
        /// Address to hand out.
        ip: String,
        /// Host name to hand out.
        name: Option<String>,
    },
    /// Remove a lease.
    Remove {
        /// Bridge (name or id).
        bridge: String,
        /// Subnet id.
        subnet: String,
        /// Client MAC.
        mac: String,
    },
}

macro_rules! args {
    ($name:ident, $verb:ty) => {
        /// A resource's options and verb.
        #[derive(clap::Args, Debug, Clone)]
        pub struct $name {
            #[command(flatten)]
            client: Client,
            #[command(subcommand)]
            verb: $verb,
        }
    };
}
args!(StdArgs, Verb);
args!(HostArgs, HostVerb);
args!(BridgeArgs, BridgeVerb);
args!(RouterArgs, RouterVerb);
args!(PortArgs, PortVerb);
args!(ChildArgs, ChildVerb);
args!(MemberArgs, MemberVerb);
args!(DhcpHostArgs, DhcpHostVerb);

/// `strowger wait`: options only.
#[derive(clap::Args, Debug, Clone)]
pub struct WaitArgs {
    #[command(flatten)]
    client: Client,
}

/// The resource subcommands, flattened into `strowger`'s own.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Hypervisors running OVS, and the interfaces on them no port is bound to.
    Host(HostArgs),
    /// Tunnel zones.
    TunnelZone(StdArgs),
    /// Members of tunnel zones.
    Member(MemberArgs),
    /// Virtual L2 bridges, and the MACs they have learned.
    Bridge(BridgeArgs),
    /// Virtual L3 routers, and their ARP caches.
    Router(RouterArgs),
    /// Ports of bridges and routers, links and bindings.
    Port(PortArgs),
    /// Routes of a router.
    Route(ChildArgs),
    /// Rule chains.
    Chain(StdArgs),
    /// Rules of a chain (`rule add CHAIN --position N action=drop …`).
    Rule(ChildArgs),
    /// Port groups.
    PortGroup(StdArgs),
    /// IP address groups.
    IpAddrGroup(StdArgs),
    /// DHCP subnets of a bridge.
    Dhcp(ChildArgs),
    /// Static DHCP leases.
    DhcpHost(DhcpHostArgs),
    /// Wait until every connected host and switch has applied the latest topology revision and
    /// the latest bindings (VIFs plugged or unplugged that the controller has seen), e.g. after
    /// plugging VIFs with ovs-vsctl; `--timeout MS`.
    Wait(WaitArgs),
    /// Trace a packet through the virtual network, as a packet-in there would go (changes
    /// nothing): `trace PORT "icmp,nw_src=10.0.0.2,nw_dst=10.0.1.5"`.
    Trace(TraceArgs),
    /// A host's br-int flows (`dump-flows`), each engine flow annotated with its logical path.
    Flows(FlowsArgs),
    /// Explain an installed flow by cookie: the packet that made it, traced again now, and
    /// whether the switch's flow still agrees.
    Explain(ExplainArgs),
}

/// `strowger trace`.
#[derive(clap::Args, Debug, Clone)]
pub struct TraceArgs {
    #[command(flatten)]
    client: Client,
    /// The ingress: a port id (or unique prefix), or HOST:INTERFACE of a bound VIF.
    port: String,
    /// The packet, in ovs-ofctl flow syntax; missing fields get defaults the trace names.
    #[arg(default_value = "")]
    flow: String,
    /// Only the header changes, answers, drops and outputs (stable, for regression tests).
    #[arg(long)]
    minimal: bool,
}

/// `strowger flows`.
#[derive(clap::Args, Debug, Clone)]
pub struct FlowsArgs {
    #[command(flatten)]
    client: Client,
    /// The host (name or id).
    host: String,
    /// Only this table (the engine's flow cache is 20).
    #[arg(long)]
    table: Option<u8>,
}

/// `strowger explain`.
#[derive(clap::Args, Debug, Clone)]
pub struct ExplainArgs {
    #[command(flatten)]
    client: Client,
    /// The flow's cookie (0x-hex as dump-flows prints it, or decimal).
    cookie: String,
}

/// What went wrong, for the exit message.
#[derive(Debug)]
enum CliError {
    /// The API answered an error: shown verbatim.
    Api(StatusCode, String),
    /// Anything else (connection, usage).
    Other(String),
}

type Res<T> = Result<T, CliError>;

struct Api {
    base: String,
    http: reqwest::Client,
    /// Sent as `Authorization: Bearer` when set.
    token: Option<String>,
    /// Appended to every write's path (`--wait`).
    wait_query: String,
}

impl Api {
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Res<(Value, Option<String>)> {
        let query = if method == Method::GET {
            ""
        } else {
            &self.wait_query
        };
        let url = format!("{}/api/v1{path}{query}", self.base.trim_end_matches('/'));
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(m) = if_match {
            req = req.header(reqwest::header::IF_MATCH, m);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| CliError::Other(format!("cannot reach {url}: {e}")))?;
        let status = resp.status();
        let etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(down) = resp
            .headers()
            .get(crate::api::topology::wait::NOT_CONNECTED_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            eprintln!("strowger: not connected, not waited for: {down}");
        }
        let text = resp
            .text()
            .await
            .map_err(|e| CliError::Other(format!("reading the answer of {url}: {e}")))?;
        if !status.is_success() {
            return Err(CliError::Api(status, text));
        }
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .map_err(|e| CliError::Other(format!("{url} answered non-JSON: {e}")))?
        };
        Ok((value, etag))
    }

    async fn get(&self, path: &str) -> Res<Value> {
        Ok(self.send(Method::GET, path, None, None).await?.0)
    }

    /// Resolves a name, id or unique id prefix among the items of a collection.
    async fn resolve(&self, coll: &str, what: &str) -> Res<String> {
        if uuid::Uuid::parse_str(what).is_ok() {
            return Ok(what.to_owned());
        }
        let items = self.get(coll).await?;
        let items = items.as_array().cloned().unwrap_or_default();
        let id_of = |v: &Value| v["id"].as_str().unwrap_or_default().to_owned();
        let by_name: Vec<String> = items
            .iter()
            .filter(|v| v["name"].as_str() == Some(what))
            .map(id_of)
            .collect();
        let candidates = if by_name.is_empty() {
            items
                .iter()
                .map(id_of)
                .filter(|id| id.starts_with(what))
                .collect()
        } else {
            by_name
        };
        match candidates.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(CliError::Other(format!(
                "no {coll} item named or prefixed {what:?}"
            ))),
            many => Err(CliError::Other(format!(
                "{what:?} is ambiguous in {coll}: {}",
                many.join(", ")
            ))),
        }
    }

    /// Resolves a bridge or router.
    async fn device(&self, what: &str) -> Res<(&'static str, String)> {
        let b = self.resolve("/bridges", what).await;
        let r = self.resolve("/routers", what).await;
        match (b, r) {
            (Ok(b), Err(_)) => Ok(("bridges", b)),
            (Err(_), Ok(r)) => Ok(("routers", r)),
            (Ok(b), Ok(r)) if b == r => {
                // A UUID resolves in both without a lookup: ask which one exists.
                if self.get(&format!("/bridges/{b}")).await.is_ok() {
                    Ok(("bridges", b))
                } else {
                    Ok(("routers", r))
                }
            }
            (Ok(_), Ok(_)) => Err(CliError::Other(format!(
                "{what:?} names both a bridge and a router; use its id"
            ))),
            (Err(e), Err(_)) => Err(e),
        }
    }

    /// Builds a JSON object from `key=value` pairs, resolving names in reference fields.
    async fn fields(&self, pairs: &[String]) -> Res<Map<String, Value>> {
        let mut out = Map::new();
        for pair in pairs {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(CliError::Other(format!("expected key=value, got {pair:?}")));
            };
            out.insert(k.to_owned(), self.value(k, v).await?);
        }
        Ok(out)
    }

    async fn value(&self, key: &str, raw: &str) -> Res<Value> {
        let reference = |k: &str| -> Option<&'static str> {
            Some(match k {
                "host_id" => "/hosts",
                "peer_id" | "next_hop_port" | "in_ports" | "out_ports" | "port_ids" => "/ports",
                "jump_chain_id" | "inbound_filter_id" | "outbound_filter_id" => "/chains",
                "port_group_id" => "/port_groups",
                "ip_addr_group_src" | "ip_addr_group_dst" => "/ip_addr_groups",
                _ => return None,
            })
        };
        let list = matches!(
            key,
            "in_ports" | "out_ports" | "port_ids" | "addresses" | "dns_servers"
        );
        if raw == "null" || raw.starts_with('[') || raw.starts_with('{') {
            return serde_json::from_str(raw)
                .map_err(|e| CliError::Other(format!("{key}: not JSON: {e}")));
        }
        if list {
            let mut items = Vec::new();
            for item in raw.split(',').filter(|s| !s.is_empty()) {
                items.push(match reference(key) {
                    Some(coll) => Value::String(self.resolve(coll, item).await?),
                    None => Value::String(item.to_owned()),
                });
            }
            return Ok(Value::Array(items));
        }
        if let Some(coll) = reference(key) {
            return Ok(Value::String(self.resolve(coll, raw).await?));
        }
        if key == "tp_src" || key == "tp_dst" {
            let (s, e) = raw.split_once('-').unwrap_or((raw, raw));
            let parse = |x: &str| {
                x.parse::<u16>()
                    .map_err(|_| CliError::Other(format!("{key}: expected N or N-M")))
            };
            return Ok(json!({"start": parse(s)?, "end": parse(e)?}));
        }
        if matches!(key, "name" | "interface_name" | "tenant_id" | "ovsdb") {
            return Ok(Value::String(raw.to_owned()));
        }
        Ok(match serde_json::from_str::<Value>(raw) {
            Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
            _ => Value::String(raw.to_owned()),
        })
    }

    /// GET, merge `fields`, PUT back with If-Match.
    async fn update(&self, path: &str, pairs: &[String]) -> Res<Value> {
        let (current, etag) = self.send(Method::GET, path, None, None).await?;
        let mut obj = current.as_object().cloned().unwrap_or_default();
        obj.extend(self.fields(pairs).await?);
        let body = Value::Object(obj);
        Ok(self
            .send(Method::PUT, path, Some(&body), etag.as_deref())
            .await?
            .0)
    }
}

/// Columns shown in tables, per collection.
fn columns(kind: &str) -> &'static [&'static str] {
    match kind {
        "hosts" => &[
            "id",
            "name",
            "tunnel_ip",
            "ovsdb",
            "datapath_type",
            "connected",
        ],
        "tunnel_zones" => &["id", "name", "type", "members"],
        "members" => &["host_id", "ip"],
        "bridges" | "routers" => &[
            "id",
            "name",
            "tenant_id",
            "admin_state_up",
            "inbound_filter_id",
            "outbound_filter_id",
        ],
        "ports" => &[
            "id",
            "device_id",
            "tunnel_key",
            "mac",
            "address",
            "peer_id",
            "host_id",
            "interface_name",
            "ofport",
            "up",
        ],
        "unbound_interfaces" => &["host_id", "interface_name", "ofport", "iface_id", "reason"],
        "mac_table" => &["mac", "port_id", "flows"],
        "arp_table" => &["ip", "mac", "state", "expires_in_secs", "parked", "port_id"],
        "routes" => &[
            "id",
            "dst",
            "src",
            "type",
            "next_hop_port",
            "next_hop_gateway",
            "weight",
        ],
        "chains" => &["id", "name", "rule_ids"],
        "rules" => &["position", "id", "action", "jump_chain_id", "match"],
        "port_groups" => &["id", "name", "stateful", "port_ids"],
        "ip_addr_groups" => &["id", "name", "addresses"],
        "dhcp" => &["id", "subnet", "gateway", "server_addr", "enabled", "hosts"],
        "dhcp_hosts" => &["mac", "ip", "name"],
        _ => &["id", "name"],
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.iter().all(|x| x.is_string()) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        Value::Array(a) if a.iter().all(Value::is_object) => a.len().to_string(),
        other => other.to_string(),
    }
}

/// A rule's non-default conditions, `key=value` joined.
fn rule_match(rule: &Value) -> String {
    const SKIP: &[&str] = &["id", "chain_id", "position", "action", "jump_chain_id"];
    let Some(obj) = rule.as_object() else {
        return String::new();
    };
    let parts: Vec<String> = obj
        .iter()
        .filter(|(k, v)| {
            !SKIP.contains(&k.as_str())
                && !matches!(v, Value::Null | Value::Bool(false))
                && v.as_array().is_none_or(|a| !a.is_empty())
                && v.as_str() != Some("any")
        })
        .map(|(k, v)| match v {
            Value::Object(r) if r.contains_key("start") => {
                format!("{k}={}-{}", r["start"], r["end"])
            }
            _ => format!("{k}={}", cell(v)),
        })
        .collect();
    parts.join(" ")
}

fn table(kind: &str, rows: &[Value]) -> String {
    let cols = columns(kind);
    let grid: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            cols.iter()
                .map(|c| {
                    if *c == "match" {
                        rule_match(r)
                    } else {
                        cell(&r[*c])
                    }
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = cols.iter().map(|c| c.len()).collect();
    for row in &grid {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = line(cols.iter().map(|c| c.to_uppercase()).collect());
    out.push('\n');
    for row in grid {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

fn vertical(v: &Value) -> String {
    let mut out = String::new();
    if let Some(obj) = v.as_object() {
        let w = obj.keys().map(String::len).max().unwrap_or(0);
        for (k, val) in obj {
            out.push_str(&format!("{k:<w$}  {}\n", cell(val)));
        }
    }
    out
}

struct Printer {
    json: bool,
}

impl Printer {
    fn list(&self, kind: &str, v: &Value) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        } else {
            print!(
                "{}",
                table(kind, v.as_array().map(Vec::as_slice).unwrap_or(&[]))
            );
        }
    }
    fn one(&self, v: &Value) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        } else {
            print!("{}", vertical(v));
        }
    }
}

fn client_of(cmd: &Command) -> &Client {
    match cmd {
        Command::Host(a) => &a.client,
        Command::Bridge(a) => &a.client,
        Command::Router(a) => &a.client,
        Command::TunnelZone(a)
        | Command::Chain(a)
        | Command::PortGroup(a)
        | Command::IpAddrGroup(a) => &a.client,
        Command::Port(a) => &a.client,
        Command::Route(a) | Command::Rule(a) | Command::Dhcp(a) => &a.client,
        Command::Member(a) => &a.client,
        Command::DhcpHost(a) => &a.client,
        Command::Wait(a) => &a.client,
        Command::Trace(a) => &a.client,
        Command::Flows(a) => &a.client,
        Command::Explain(a) => &a.client,
    }
}

/// Runs a CLI command; prints the result, or the error, and returns the exit code.
pub fn run(cmd: Command) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strowger: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = client_of(&cmd).clone();
    let token = match client.token() {
        Ok(t) => t,
        Err(msg) => {
            eprintln!("strowger: {msg}");
            return ExitCode::FAILURE;
        }
    };
    let http = match client.http() {
        Ok(h) => h,
        Err(msg) => {
            eprintln!("strowger: {msg}");
            return ExitCode::FAILURE;
        }
    };
    let api = Api {
        base: client.api.clone(),
        http,
        token,
        wait_query: client.wait_query(),
    };
    let printer = Printer { json: client.json };
    match rt.block_on(dispatch(&api, &printer, cmd)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Api(status, body)) => {
            // As the API gave it: the status and the JSON error body, untouched.
            eprintln!("HTTP {}: {body}", status.as_u16());
            ExitCode::FAILURE
        }
        Err(CliError::Other(msg)) => {
            eprintln!("strowger: {msg}");
            ExitCode::FAILURE
        }
    }
}

async fn standard(api: &Api, out: &Printer, coll: &'static str, verb: Verb) -> Res<()> {
    let base = format!("/{coll}");
    match verb {
        Verb::List => out.list(coll, &api.get(&base).await?),
        Verb::Show { id } => {
            let id = api.resolve(&base, &id).await?;
            out.one(&api.get(&format!("{base}/{id}")).await?)
        }
        Verb::Create { name, fields } => {
            let mut body = api.fields(&fields).await?;
            body.insert("name".into(), Value::String(name));
            let body = Value::Object(body);
            out.one(&api.send(Method::POST, &base, Some(&body), None).await?.0)
        }
        Verb::Update { id, fields } => {
            let id = api.resolve(&base, &id).await?;
            out.one(&api.update(&format!("{base}/{id}"), &fields).await?)
        }
        Verb::Delete { id } => {
            let id = api.resolve(&base, &id).await?;
            api.send(Method::DELETE, &format!("{base}/{id}"), None, None)
                .await?;
        }
    }
    Ok(())
}

async fn dispatch(api: &Api, out: &Printer, cmd: Command) -> Res<()> {
    match cmd {
        Command::Host(a) => hosts(api, out, a.verb).await,
        Command::TunnelZone(a) => standard(api, out, "tunnel_zones", a.verb).await,
        Command::Bridge(a) => bridges(api, out, a.verb).await,
        Command::Router(a) => routers(api, out, a.verb).await,
        Command::Chain(a) => standard(api, out, "chains", a.verb).await,
        Command::PortGroup(a) => standard(api, out, "port_groups", a.verb).await,
        Command::IpAddrGroup(a) => standard(api, out, "ip_addr_groups", a.verb).await,
        Command::Port(a) => ports(api, out, a.verb).await,
        Command::Route(a) => child(api, out, "routers", "routes", "/routes", a.verb).await,
        Command::Rule(a) => child(api, out, "chains", "rules", "/rules", a.verb).await,
        Command::Dhcp(a) => dhcp(api, out, a.verb).await,
        Command::Member(a) => members(api, out, a.verb).await,
        Command::DhcpHost(a) => dhcp_hosts(api, out, a.verb).await,
        Command::Wait(a) => wait(api, out, a.client.timeout).await,
        Command::Trace(a) => trace(api, out, a).await,
        Command::Flows(a) => flows(api, out, a).await,
        Command::Explain(a) => explain(api, out, a).await,
    }
}

/// `strowger wait`: the API waits (`GET /revision?wait=true`) and answers where everyone stands.
async fn wait(api: &Api, out: &Printer, timeout: Option<u64>) -> Res<()> {
    let path = match timeout {
        Some(ms) => format!("/revision?wait=true&timeout={ms}"),
        None => "/revision?wait=true".into(),
    };
    let status = api.get(&path).await?;
    if out.json {
        out.one(&status);
        return Ok(());
    }
    println!(
        "revision {} and bindings generation {} applied by every connected host and switch",
        status["revision"], status["bindings"]
    );
    let down: Vec<&str> = status["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["connected"] == false)
        .filter_map(|h| h["name"].as_str())
        .collect();
    if !down.is_empty() {
        eprintln!(
            "strowger: not connected, not waited for: {}",
            down.join(", ")
        );
    }
    Ok(())
}

async fn trace(api: &Api, out: &Printer, a: TraceArgs) -> Res<()> {
    let packet = crate::api::trace::packet_from_flow(&a.flow).map_err(CliError::Other)?;
    let mut body = json!({ "packet": packet });
    match a.port.split_once(':') {
        // host:interface (a port id has no colon).
        Some((host, iface)) => {
            body["host_id"] = json!(host);
            body["interface_name"] = json!(iface);
        }
        None => body["ingress_port_id"] = json!(api.resolve("/ports", &a.port).await?),
    }
    let v = api.send(Method::POST, "/trace", Some(&body), None).await?.0;
    if out.json {
        out.one(&v);
    } else {
        print!("{}", crate::api::trace::render(&v, a.minimal));
    }
    Ok(())
}

async fn flows(api: &Api, out: &Printer, a: FlowsArgs) -> Res<()> {
    let h = api.resolve("/hosts", &a.host).await?;
    let host = api.get(&format!("/hosts/{h}")).await?;
    let Some(dpid) = host["datapath_id"].as_str() else {
        return Err(CliError::Other(format!(
            "host {} has no br-int datapath yet (connected: {})",
            a.host, host["connected"]
        )));
    };
    let mut path = format!("/switches/{dpid}/flows?limit=10000");
    if let Some(t) = a.table {
        path.push_str(&format!("&table_id={t}"));
    }
    let v = api.get(&path).await?;
    let list = v
        .get("items")
        .or(Some(&v))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if out.json {
        out.one(&Value::Array(list));
        return Ok(());
    }
    for f in &list {
        println!(" {}", f["ofctl"].as_str().unwrap_or_default());
        let p = &f["provenance"];
        if p.is_null() {
            continue;
        }
        let path: Vec<&str> = p["path"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let mut line = format!(
            "     # from {}: {}",
            p["ingress_port"].as_str().unwrap_or_default(),
            path.join(" -> ")
        );
        let routes: Vec<&str> = p["depends_on"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| matches!(d["kind"].as_str(), Some("route" | "chain" | "arp")))
            .filter_map(|d| d["name"].as_str())
            .collect();
        if !routes.is_empty() {
            line.push_str(&format!(" [{}]", routes.join("; ")));
        }
        if let Some(d) = p["drop_reason"].as_str() {
            line.push_str(&format!(" (drop: {d})"));
        }
        println!("{line}");
    }
    Ok(())
}

async fn explain(api: &Api, out: &Printer, a: ExplainArgs) -> Res<()> {
    let v = api.get(&format!("/flows/{}", a.cookie)).await?;
    if out.json {
        out.one(&v);
        return Ok(());
    }
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    println!("flow {} on {}", s(&v["cookie"]), s(&v["dpid"]));
    println!("  installed: {}", s(&v["installed"]["ofctl"]));
    println!("  now:       {}", s(&v["trace"]["flow"]["ofctl"]));
    if v["consistent"].as_bool() == Some(true) {
        println!("  consistent: the switch's flow is what the engine would install now");
    } else {
        println!("  INCONSISTENT:");
        for d in v["differences"].as_array().into_iter().flatten() {
            println!("    {}", s(d));
        }
    }
    println!();
    print!("{}", crate::api::trace::render(&v["trace"], false));
    Ok(())
}

async fn hosts(api: &Api, out: &Printer, verb: HostVerb) -> Res<()> {
    match verb {
        HostVerb::Std(v) => standard(api, out, "hosts", v).await,
        HostVerb::Unbound { host: None } => {
            out.list("unbound_interfaces", &api.get("/unbound_interfaces").await?);
            Ok(())
        }
        HostVerb::Unbound { host: Some(h) } => {
            let h = api.resolve("/hosts", &h).await?;
            let path = format!("/hosts/{h}/unbound_interfaces");
            out.list("unbound_interfaces", &api.get(&path).await?);
            Ok(())
        }
    }
}

async fn bridges(api: &Api, out: &Printer, verb: BridgeVerb) -> Res<()> {
    match verb {
        BridgeVerb::Std(v) => standard(api, out, "bridges", v).await,
        BridgeVerb::MacTable { bridge } => {
            let b = api.resolve("/bridges", &bridge).await?;
            out.list(
                "mac_table",
                &api.get(&format!("/bridges/{b}/mac_table")).await?,
            );
            Ok(())
        }
    }
}

async fn routers(api: &Api, out: &Printer, verb: RouterVerb) -> Res<()> {
    match verb {
        RouterVerb::Std(v) => standard(api, out, "routers", v).await,
        RouterVerb::ArpTable { router } => {
            let r = api.resolve("/routers", &router).await?;
            out.list(
                "arp_table",
                &api.get(&format!("/routers/{r}/arp_table")).await?,
            );
            Ok(())
        }
    }
}

async fn ports(api: &Api, out: &Printer, verb: PortVerb) -> Res<()> {
    let port = |p: String| async move { api.resolve("/ports", &p).await };
    match verb {
        PortVerb::List { device: None } => out.list("ports", &api.get("/ports").await?),
        PortVerb::List { device: Some(d) } => {
            let (coll, id) = api.device(&d).await?;
            out.list("ports", &api.get(&format!("/{coll}/{id}/ports")).await?)
        }
        PortVerb::Show { id } => out.one(&api.get(&format!("/ports/{}", port(id).await?)).await?),
        PortVerb::Create { device, fields } => {
            let (coll, id) = api.device(&device).await?;
            let body = Value::Object(api.fields(&fields).await?);
            let path = format!("/{coll}/{id}/ports");
            out.one(&api.send(Method::POST, &path, Some(&body), None).await?.0)
        }
        PortVerb::Update { id, fields } => {
            let path = format!("/ports/{}", port(id).await?);
            out.one(&api.update(&path, &fields).await?)
        }
        PortVerb::Delete { id } => {
            let path = format!("/ports/{}", port(id).await?);
            api.send(Method::DELETE, &path, None, None).await?;
        }
        PortVerb::Link { port: a, peer } => {
            let path = format!("/ports/{}/link", port(a).await?);
            let body = json!({"peer_id": port(peer).await?});
            out.one(&api.send(Method::POST, &path, Some(&body), None).await?.0)
        }
        PortVerb::Unlink { port: a } => {
            let path = format!("/ports/{}/link", port(a).await?);
            api.send(Method::DELETE, &path, None, None).await?;
        }
        PortVerb::Bind {
            port: a,
            host,
            interface,
        } => {
            let path = format!("/ports/{}/binding", port(a).await?);
            let body = json!({"host_id": api.resolve("/hosts", &host).await?, "interface_name": interface});
            out.one(&api.send(Method::PUT, &path, Some(&body), None).await?.0)
        }
        PortVerb::Unbind { port: a } => {
            let path = format!("/ports/{}/binding", port(a).await?);
            api.send(Method::DELETE, &path, None, None).await?;
        }
        PortVerb::Stats { port: a } => {
            out.one(&api.get(&format!("/ports/{}/stats", port(a).await?)).await?)
        }
    }
    Ok(())
}

/// Resolves a child id (or prefix) by listing the children of every parent.
async fn child_id(api: &Api, parents: &str, kind: &str, what: &str) -> Res<String> {
    if uuid::Uuid::parse_str(what).is_ok() {
        return Ok(what.to_owned());
    }
    let mut found = Vec::new();
    for p in api
        .get(&format!("/{parents}"))
        .await?
        .as_array()
        .into_iter()
        .flatten()
    {
        let pid = p["id"].as_str().unwrap_or_default();
        for c in api
            .get(&format!("/{parents}/{pid}/{kind}"))
            .await?
            .as_array()
            .into_iter()
            .flatten()
        {
            let id = c["id"].as_str().unwrap_or_default();
            if id.starts_with(what) {
                found.push(id.to_owned());
            }
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(CliError::Other(format!(
            "no {kind} id starts with {what:?}"
        ))),
        many => Err(CliError::Other(format!(
            "{what:?} is ambiguous: {}",
            many.join(", ")
        ))),
    }
}

async fn child(
    api: &Api,
    out: &Printer,
    parents: &str,
    kind: &str,
    items: &str,
    verb: ChildVerb,
) -> Res<()> {
    match verb {
        ChildVerb::List { parent } => {
            let p = api.resolve(&format!("/{parents}"), &parent).await?;
            out.list(kind, &api.get(&format!("/{parents}/{p}/{kind}")).await?)
        }
        ChildVerb::Show { id } => {
            let id = child_id(api, parents, kind, &id).await?;
            out.one(&api.get(&format!("{items}/{id}")).await?)
        }
        ChildVerb::Create {
            parent,
            position,
            fields,
        } => {
            let p = api.resolve(&format!("/{parents}"), &parent).await?;
            let mut body = api.fields(&fields).await?;
            if let Some(pos) = position {
                body.insert("position".into(), json!(pos));
            }
            let body = Value::Object(body);
            let path = format!("/{parents}/{p}/{kind}");
            out.one(&api.send(Method::POST, &path, Some(&body), None).await?.0)
        }
        ChildVerb::Update { id, fields } => {
            let id = child_id(api, parents, kind, &id).await?;
            out.one(&api.update(&format!("{items}/{id}"), &fields).await?)
        }
        ChildVerb::Delete { id } => {
            let id = child_id(api, parents, kind, &id).await?;
            api.send(Method::DELETE, &format!("{items}/{id}"), None, None)
                .await?;
        }
    }
    Ok(())
}

/// Finds the bridge of a DHCP subnet id (or prefix).
async fn dhcp_path(api: &Api, what: &str) -> Res<String> {
    for b in api.get("/bridges").await?.as_array().into_iter().flatten() {
        let bid = b["id"].as_str().unwrap_or_default();
        for d in api
            .get(&format!("/bridges/{bid}/dhcp"))
            .await?
            .as_array()
            .into_iter()
            .flatten()
        {
            let id = d["id"].as_str().unwrap_or_default();
            if id.starts_with(what) {
                return Ok(format!("/bridges/{bid}/dhcp/{id}"));
            }
        }
    }
    Err(CliError::Other(format!(
        "no DHCP subnet id starts with {what:?}"
    )))
}

async fn dhcp(api: &Api, out: &Printer, verb: ChildVerb) -> Res<()> {
    match verb {
        ChildVerb::List { parent } => {
            let b = api.resolve("/bridges", &parent).await?;
            out.list("dhcp", &api.get(&format!("/bridges/{b}/dhcp")).await?)
        }
        ChildVerb::Show { id } => out.one(&api.get(&dhcp_path(api, &id).await?).await?),
        ChildVerb::Create { parent, fields, .. } => {
            let b = api.resolve("/bridges", &parent).await?;
            let body = Value::Object(api.fields(&fields).await?);
            let path = format!("/bridges/{b}/dhcp");
            out.one(&api.send(Method::POST, &path, Some(&body), None).await?.0)
        }
        ChildVerb::Update { id, fields } => {
            out.one(&api.update(&dhcp_path(api, &id).await?, &fields).await?)
        }
        ChildVerb::Delete { id } => {
            let path = dhcp_path(api, &id).await?;
            api.send(Method::DELETE, &path, None, None).await?;
        }
    }
    Ok(())
}

async fn members(api: &Api, out: &Printer, verb: MemberVerb) -> Res<()> {
    match verb {
        MemberVerb::List { zone } => {
            let z = api.resolve("/tunnel_zones", &zone).await?;
            out.list(
                "members",
                &api.get(&format!("/tunnel_zones/{z}/members")).await?,
            )
        }
        MemberVerb::Add { zone, host, ip } => {
            let z = api.resolve("/tunnel_zones", &zone).await?;
            let body = json!({"host_id": api.resolve("/hosts", &host).await?, "ip": ip});
            let path = format!("/tunnel_zones/{z}/members");
            out.one(&api.send(Method::POST, &path, Some(&body), None).await?.0)
        }
        MemberVerb::Remove { zone, host } => {
            let z = api.resolve("/tunnel_zones", &zone).await?;
            let h = api.resolve("/hosts", &host).await?;
            let path = format!("/tunnel_zones/{z}/members/{h}");
            api.send(Method::DELETE, &path, None, None).await?;
        }
    }
    Ok(())
}

async fn dhcp_hosts(api: &Api, out: &Printer, verb: DhcpHostVerb) -> Res<()> {
    match verb {
        DhcpHostVerb::List { bridge, subnet } => {
            let path = dhcp_subnet_path(api, &bridge, &subnet).await?;
            out.list("dhcp_hosts", &api.get(&format!("{path}/hosts")).await?)
        }
        DhcpHostVerb::Add {
            bridge,
            subnet,
            mac,
            ip,
            name,
        } => {
            let path = dhcp_subnet_path(api, &bridge, &subnet).await?;
            let body = json!({"mac": mac, "ip": ip, "name": name});
            out.one(
                &api.send(Method::POST, &format!("{path}/hosts"), Some(&body), None)
                    .await?
                    .0,
            )
        }
        DhcpHostVerb::Remove {
            bridge,
            subnet,
            mac,
        } => {
            let path = dhcp_subnet_path(api, &bridge, &subnet).await?;
            api.send(Method::DELETE, &format!("{path}/hosts/{mac}"), None, None)
                .await?;
        }
    }
    Ok(())
}

async fn dhcp_subnet_path(api: &Api, bridge: &str, subnet: &str) -> Res<String> {
    let b = api.resolve("/bridges", bridge).await?;
    let path = dhcp_path(api, subnet).await?;
    if !path.starts_with(&format!("/bridges/{b}/")) {
        return Err(CliError::Other(format!(
            "subnet {subnet} is not on bridge {bridge}"
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_render_values() {
        let rows = vec![
            json!({"id": "a", "name": "long-name", "tenant_id": null, "admin_state_up": true}),
            json!({"id": "bb", "name": "x", "tenant_id": "t", "admin_state_up": false}),
        ];
        let t = table("bridges", &rows);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID  NAME       TENANT_ID  ADMIN_STATE_UP"));
        assert!(lines[1].starts_with("a   long-name  -          true"));
        assert!(lines[2].starts_with("bb  x          t          false"));
    }

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    fn parse(args: &[&str]) -> Command {
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("strowger").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
    }

    #[test]
    fn host_takes_the_standard_verbs_and_unbound() {
        let Command::Host(a) = parse(&["host", "unbound", "hv1", "--json"]) else {
            panic!("not a host command")
        };
        assert!(a.client.json);
        assert!(matches!(a.verb, HostVerb::Unbound { host: Some(h) } if h == "hv1"));
        let Command::Host(a) = parse(&["host", "unbound"]) else {
            panic!("not a host command")
        };
        assert!(matches!(a.verb, HostVerb::Unbound { host: None }));
        let Command::Host(a) = parse(&["host", "show", "hv1"]) else {
            panic!("not a host command")
        };
        assert!(matches!(a.verb, HostVerb::Std(Verb::Show { id }) if id == "hv1"));
    }

    #[test]
    fn bridges_and_routers_take_the_standard_verbs_and_their_tables() {
        let Command::Bridge(a) = parse(&["bridge", "mac-table", "net1", "--json"]) else {
            panic!("not a bridge command")
        };
        assert!(a.client.json);
        assert!(matches!(a.verb, BridgeVerb::MacTable { bridge } if bridge == "net1"));
        let Command::Bridge(a) = parse(&["bridge", "delete", "net1"]) else {
            panic!("not a bridge command")
        };
        assert!(matches!(a.verb, BridgeVerb::Std(Verb::Delete { id }) if id == "net1"));
        let Command::Router(a) = parse(&["router", "arp-table", "r1"]) else {
            panic!("not a router command")
        };
        assert!(!a.client.json);
        assert!(matches!(a.verb, RouterVerb::ArpTable { router } if router == "r1"));
        let Command::Router(a) = parse(&["router", "list"]) else {
            panic!("not a router command")
        };
        assert!(matches!(a.verb, RouterVerb::Std(Verb::List)));
    }

    #[test]
    fn mac_and_arp_tables_render_as_tables() {
        let rows = vec![json!({"mac": "02:00:00:00:00:01", "port_id": "p1", "flows": 3})];
        let t = table("mac_table", &rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "MAC                PORT_ID  FLOWS", "{t}");
        assert_eq!(lines[1], "02:00:00:00:00:01  p1       3", "{t}");
        let rows = vec![
            json!({"ip": "10.0.0.5", "mac": "02:00:00:00:00:05", "port_id": "p1",
                "state": "reachable", "expires_in_secs": 25, "parked": 0}),
            json!({"ip": "10.0.0.9", "mac": null, "port_id": "p1",
                "state": "resolving", "expires_in_secs": 1, "parked": 2}),
        ];
        let t = table("arp_table", &rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0], "IP        MAC                STATE      EXPIRES_IN_SECS  PARKED  PORT_ID",
            "{t}"
        );
        assert_eq!(
            lines[1], "10.0.0.5  02:00:00:00:00:05  reachable  25               0       p1",
            "{t}"
        );
        assert_eq!(
            lines[2], "10.0.0.9  -                  resolving  1                2       p1",
            "{t}"
        );
        // No entries: the header alone.
        assert_eq!(table("arp_table", &[]).lines().count(), 1);
    }

    #[test]
    fn unbound_interfaces_and_port_state_render_as_tables() {
        let rows = vec![
            json!({"host_id": "h1", "interface_name": "junk", "ofport": 6,
            "iface_id": "nope", "reason": "unknown_port"}),
        ];
        let t = table("unbound_interfaces", &rows);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("HOST_ID  INTERFACE_NAME  OFPORT  IFACE_ID  REASON"),
            "{t}"
        );
        assert!(lines[1].starts_with("h1       junk            6       nope      unknown_port"));
        let port = json!({"id": "p", "host_id": "h1", "interface_name": "tap1", "ofport": null,
            "up": false});
        let t = table("ports", &[port]);
        assert!(t.lines().next().unwrap().ends_with("OFPORT  UP"), "{t}");
        assert!(t.lines().nth(1).unwrap().ends_with("-       false"), "{t}");
    }

    #[test]
    fn rule_match_shows_only_what_is_set() {
        let r = json!({"id": "x", "action": "drop", "nw_proto": 6, "inv_nw_proto": false,
            "tp_dst": {"start": 22, "end": 22}, "in_ports": [], "fragment_policy": "any"});
        assert_eq!(rule_match(&r), "nw_proto=6 tp_dst=22-22");
    }
}
