//! `/switches` and `/health`: the connected OpenFlow switches, their ports and flows, in the
//! conventions of os-ken's `ofctl_rest` (match fields and actions as JSON, flow stats through
//! multipart), over the session layer's [`Switches`] registry.
//!
//! - `GET /switches`, `GET /switches/{dpid}`: identity and features;
//! - `GET /switches/{dpid}/ports[?offset=&limit=]`: PORT_DESC, kept current by PORT_STATUS;
//! - `GET /switches/{dpid}/flows[?table_id=&cookie=&cookie_mask=&out_port=&offset=&limit=]`: a
//!   FLOW_STATS multipart request, reassembled;
//! - `POST /switches/{dpid}/flows`: one FLOW_MOD (`add`, `modify`, `modify_strict`, `delete`,
//!   `delete_strict`), answered once a barrier behind it is (200), or with the switch's ERROR (422);
//! - `DELETE /switches/{dpid}/flows`: deletes every flow of every table (204);
//! - `GET /health`.
//!
//! `{dpid}` is decimal (`1`), `0x`-prefixed hex, or the 16 hex digits OVS prints.
//!
//! Ports and flows come in pages, still as the plain JSON arrays `ofctl_rest` clients read:
//! `limit` items (default [`DEFAULT_PAGE`], at most [`MAX_PAGE`]) from `offset` (default 0).
//! `X-Total-Count` says how many there are, and `Link: <…>; rel="next"` names the next page
//! (the same filters, the next offset) while one follows, as GitHub's API does.
//! Match keys are OXM names (`in_port`, `eth_dst`, `ipv4_src`, …); the OpenFlow 1.0 names
//! `ofctl_rest` also accepts (`dl_dst`, `nw_src`, `tp_dst`, …) are aliases.

use std::collections::BTreeMap;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use bytes::Bytes;
use ofproto::consts::{OFPG_ANY, OFPTT_ALL};
use ofproto::display::{Dpid, Mac, PortName};
use ofproto::oxm::FieldTextError;
use ofproto::{
    port_no, Action, FlowMod, FlowModCommand, FlowStats, Instruction, Match, Message,
    MultipartReplyBody, MultipartRequest, MultipartRequestBody, OxmField, Port,
};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::api::trace::Provenance;
use crate::api::ApiError;
use crate::openflow::registry::CountersSnapshot;
use crate::openflow::{Reply, RequestError, SwitchHandle, Switches};

/// The routes of this module, to be nested under `/api/v1`.
pub fn routes(switches: Switches) -> Router {
    routes_with(switches, None)
}

/// [`routes`], with the app's [`Provenance`] of flows shown in `GET /switches/{dpid}/flows`.
pub fn routes_with(switches: Switches, provenance: Option<Provenance>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/switches", get(list))
        .route("/switches/{dpid}", get(show))
        .route("/switches/{dpid}/ports", get(ports))
        .route(
            "/switches/{dpid}/flows",
            get(flows).post(modify_flows).delete(clear_flows),
        )
        .with_state(switches)
        .layer(axum::Extension(ProvenanceOf(provenance)))
}

#[derive(Clone)]
struct ProvenanceOf(Option<Provenance>);

async fn health(State(switches): State<Switches>) -> Json<Value> {
    Json(json!({"status": "ok", "switches": switches.len()}))
}

/// A connected switch as `/switches` shows it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SwitchView {
    /// Datapath id as a number (ofctl_rest style).
    pub dpid: u64,
    /// Datapath id as OVS prints it.
    pub dpid_hex: String,
    /// The switch's TCP peer address.
    pub address: String,
    /// From FEATURES_REPLY.
    pub n_tables: u8,
    /// From FEATURES_REPLY.
    pub n_buffers: u32,
    /// From FEATURES_REPLY.
    pub capabilities: u32,
    /// Seconds since the Unix epoch when its handshake finished.
    pub connected_since: u64,
    /// Traffic on its connection so far.
    pub counters: CountersSnapshot,
}

impl From<&SwitchHandle> for SwitchView {
    fn from(h: &SwitchHandle) -> Self {
        Self {
            dpid: h.dpid(),
            dpid_hex: Dpid(h.dpid()).to_string(),
            address: h.peer().to_string(),
            n_tables: h.features().n_tables,
            n_buffers: h.features().n_buffers,
            capabilities: h.features().capabilities,
            connected_since: h
                .connected_at()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            counters: h.counters(),
        }
    }
}

async fn list(State(switches): State<Switches>) -> Json<Vec<SwitchView>> {
    Json(switches.list().iter().map(SwitchView::from).collect())
}

async fn show(
    State(switches): State<Switches>,
    Path(dpid): Path<String>,
) -> Result<Json<SwitchView>, ApiError> {
    Ok(Json(SwitchView::from(&switch(&switches, &dpid)?)))
}

/// A port as `/switches/{dpid}/ports` shows it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PortView {
    /// Port number; reserved ports by name (`LOCAL`).
    pub port_no: Value,
    /// Interface name.
    pub name: String,
    /// MAC address.
    pub hw_addr: String,
    /// OFPPC_* bits.
    pub config: u32,
    /// OFPPS_* bits.
    pub state: u32,
    /// OFPPF_* bits.
    pub curr: u32,
    /// OFPPF_* bits.
    pub advertised: u32,
    /// OFPPF_* bits.
    pub supported: u32,
    /// OFPPF_* bits.
    pub peer: u32,
    /// kbit/s.
    pub curr_speed: u32,
    /// kbit/s.
    pub max_speed: u32,
}

impl From<&Port> for PortView {
    fn from(p: &Port) -> Self {
        Self {
            port_no: port_value(p.port_no),
            name: p.name.clone(),
            hw_addr: Mac(p.hw_addr).to_string(),
            config: p.config,
            state: p.state,
            curr: p.curr,
            advertised: p.advertised,
            supported: p.supported,
            peer: p.peer,
            curr_speed: p.curr_speed,
            max_speed: p.max_speed,
        }
    }
}

async fn ports(
    State(switches): State<Switches>,
    Path(dpid): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(mut query): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let page = Page::take(&mut query)?;
    if let Some(k) = query.keys().next() {
        return Err(ApiError::invalid(
            k.clone(),
            format!("unknown parameter {k:?}"),
        ));
    }
    let sw = switch(&switches, &dpid)?;
    let ports = sw.ports().await.map_err(request_error)?;
    Ok(page.respond(uri.path(), &query, ports.len(), |range| {
        ports[range].iter().map(PortView::from).collect()
    }))
}

/// Items a page of ports or flows holds unless `?limit=` says otherwise.
pub const DEFAULT_PAGE: usize = 1000;
/// The largest `?limit=`.
pub const MAX_PAGE: usize = 10_000;

/// `?offset=&limit=` of a paginated list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Page {
    offset: usize,
    limit: usize,
}

impl Page {
    /// Takes `offset` and `limit` out of `query`, leaving the other parameters.
    fn take(query: &mut BTreeMap<String, String>) -> Result<Page, ApiError> {
        let number = |field: &str, v: Option<String>| match v {
            None => Ok(None),
            Some(v) => v.parse::<usize>().map(Some).map_err(|_| {
                ApiError::invalid(field, format!("{field} must be a non-negative integer"))
            }),
        };
        let offset = number("offset", query.remove("offset"))?.unwrap_or(0);
        let limit = number("limit", query.remove("limit"))?.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_PAGE}"),
            ));
        }
        Ok(Page { offset, limit })
    }

    /// The JSON array of this page of `total` items (`items` builds the views of a range only),
    /// with `X-Total-Count` and, while more follow, a `Link` to the next page under `path` with
    /// the same `filters`.
    fn respond<T: Serialize>(
        self,
        path: &str,
        filters: &BTreeMap<String, String>,
        total: usize,
        items: impl FnOnce(std::ops::Range<usize>) -> Vec<T>,
    ) -> Response {
        let start = self.offset.min(total);
        let end = start.saturating_add(self.limit).min(total);
        let mut response = Json(items(start..end)).into_response();
        let headers = response.headers_mut();
        headers.insert("x-total-count", HeaderValue::from(total));
        if end < total {
            // Filters that got this far parsed as numbers or port names: nothing to escape.
            let mut query: String = filters.iter().map(|(k, v)| format!("{k}={v}&")).collect();
            query.push_str(&format!("offset={end}&limit={}", self.limit));
            let link = format!("<{path}?{query}>; rel=\"next\"");
            if let Ok(value) = HeaderValue::from_str(&link) {
                headers.insert(header::LINK, value);
            }
        }
        response
    }
}

/// A flow as `/switches/{dpid}/flows` shows it (ofctl_rest's flow stats).
#[derive(Debug, Serialize, PartialEq)]
pub struct FlowView {
    /// Priority.
    pub priority: u16,
    /// Cookie.
    pub cookie: u64,
    /// Table.
    pub table_id: u8,
    /// Age, seconds part.
    pub duration_sec: u32,
    /// Age, nanoseconds part.
    pub duration_nsec: u32,
    /// Idle timeout, seconds.
    pub idle_timeout: u16,
    /// Hard timeout, seconds.
    pub hard_timeout: u16,
    /// OFPFF_* bits.
    pub flags: u16,
    /// Packets matched.
    pub packet_count: u64,
    /// Bytes matched.
    pub byte_count: u64,
    /// Match fields by OXM name.
    #[serde(rename = "match")]
    pub match_: Map<String, Value>,
    /// Instructions and actions, ofctl_rest strings (`OUTPUT:2`, `GOTO_TABLE:1`, …).
    pub actions: Vec<Value>,
    /// The flow as `ovs-ofctl dump-flows` prints it.
    pub ofctl: String,
    /// What produced it, for a flow the engine installed (see `api::trace`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Value>,
}

impl From<&FlowStats> for FlowView {
    fn from(f: &FlowStats) -> Self {
        Self {
            priority: f.priority,
            cookie: f.cookie,
            table_id: f.table_id,
            duration_sec: f.duration_sec,
            duration_nsec: f.duration_nsec,
            idle_timeout: f.idle_timeout,
            hard_timeout: f.hard_timeout,
            flags: f.flags,
            packet_count: f.packet_count,
            byte_count: f.byte_count,
            match_: match_to_json(&f.match_),
            actions: instructions_to_json(&f.instructions),
            ofctl: f.to_string(),
            provenance: None,
        }
    }
}

async fn flows(
    State(switches): State<Switches>,
    Extension(ProvenanceOf(provenance)): Extension<ProvenanceOf>,
    Path(dpid): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(mut filter): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let page = Page::take(&mut filter)?;
    let sw = switch(&switches, &dpid)?;
    let stats = flow_stats(&sw, flow_stats_filter(&filter)?).await?;
    let origins = provenance.map(|p| p(sw.dpid())).unwrap_or_default();
    Ok(page.respond(uri.path(), &filter, stats.len(), |range| {
        stats[range]
            .iter()
            .map(|f| FlowView {
                provenance: origins.get(&f.cookie).cloned(),
                ..FlowView::from(f)
            })
            .collect()
    }))
}

/// The switch's answer to a FLOW_STATS request, every part's flows in order.
pub async fn flow_stats(
    sw: &SwitchHandle,
    filter: ofproto::FlowStatsRequest,
) -> Result<Vec<FlowStats>, ApiError> {
    let request = Message::MultipartRequest(MultipartRequest {
        flags: 0,
        body: MultipartRequestBody::Flow(filter),
    });
    let Reply::Multipart(parts) = sw.request(request).await.map_err(request_error)? else {
        return Err(ApiError::internal(
            "flow stats answered with a single message",
        ));
    };
    Ok(parts
        .into_iter()
        .filter_map(|part| match part.body {
            MultipartReplyBody::Flow(stats) => Some(stats),
            _ => None,
        })
        .flatten()
        .collect())
}

/// The FLOW_STATS request for `GET /flows?table_id=&cookie=&cookie_mask=&out_port=` (all
/// optional: every flow of every table by default).
fn flow_stats_filter(q: &BTreeMap<String, String>) -> Result<ofproto::FlowStatsRequest, ApiError> {
    if let Some(k) = q
        .keys()
        .find(|k| !["table_id", "cookie", "cookie_mask", "out_port"].contains(&k.as_str()))
    {
        return Err(ApiError::invalid(
            k.clone(),
            format!("unknown filter {k:?}"),
        ));
    }
    let obj: Map<String, Value> = q
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    Ok(ofproto::FlowStatsRequest {
        table_id: opt_uint(&obj, "table_id", u8::MAX.into())?.map_or(OFPTT_ALL, |t| t as u8),
        out_port: match obj.get("out_port") {
            None => port_no::ANY,
            Some(p) => {
                port_from_json(p).ok_or_else(|| ApiError::invalid("out_port", "not a port"))?
            }
        },
        out_group: OFPG_ANY,
        cookie: opt_uint(&obj, "cookie", u64::MAX)?.unwrap_or(0),
        cookie_mask: opt_uint(&obj, "cookie_mask", u64::MAX)?.unwrap_or(0),
        match_: Match::new(),
    })
}

async fn modify_flows(
    State(switches): State<Switches>,
    Path(dpid): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let sw = switch(&switches, &dpid)?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("body is not JSON: {e}")))?;
    let flow_mod = flow_mod_from_json(&value)?;
    sw.request(Message::FlowMod(flow_mod))
        .await
        .map_err(request_error)?;
    Ok(Json(json!({"status": "ok"})))
}

async fn clear_flows(
    State(switches): State<Switches>,
    Path(dpid): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let sw = switch(&switches, &dpid)?;
    let delete = FlowMod {
        command: FlowModCommand::Delete,
        table_id: OFPTT_ALL,
        ..FlowMod::default()
    };
    sw.request(Message::FlowMod(delete))
        .await
        .map_err(request_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Parses `{dpid}`: decimal, `0x…` hex, or exactly 16 hex digits (OVS's own notation).
pub fn parse_dpid(s: &str) -> Option<u64> {
    s.parse::<Dpid>().ok().map(|d| d.0)
}

fn switch(switches: &Switches, dpid: &str) -> Result<SwitchHandle, ApiError> {
    let id = parse_dpid(dpid).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{dpid:?} is not a datapath id (decimal, 0x-hex, or 16 hex digits)"
        ))
        .with_field("dpid")
    })?;
    switches.get(id).ok_or_else(|| {
        ApiError::not_found(format!(
            "no switch with datapath id {} is connected",
            Dpid(id)
        ))
    })
}

fn request_error(e: RequestError) -> ApiError {
    match e {
        RequestError::Switch(err) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "switch_error",
            format!("the switch refused the request: {}", err.kind),
        ),
        RequestError::Timeout => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "the switch did not answer in time",
        ),
        RequestError::TooLarge => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "too_large",
            "the switch's reply has too many parts",
        ),
        RequestError::Closed(reason) => {
            ApiError::unavailable(format!("the switch disconnected: {reason}"))
        }
        RequestError::BadReply(why) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "bad_reply",
            format!("the switch's reply does not decode: {why}"),
        ),
        RequestError::UnexpectedReply { got } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "bad_reply",
            format!("the switch answered with {got}"),
        ),
        RequestError::Gone => ApiError::unavailable("the switch disconnected"),
        RequestError::Unencodable(why) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("the message cannot be sent to a switch: {why}"),
        ),
    }
}

// ---- JSON → FLOW_MOD ----

const FLOW_MOD_KEYS: &[&str] = &[
    "command",
    "table_id",
    "priority",
    "cookie",
    "cookie_mask",
    "idle_timeout",
    "hard_timeout",
    "flags",
    "out_port",
    "out_group",
    "buffer_id",
    "match",
    "actions",
];

/// Builds a FLOW_MOD from ofctl_rest-style JSON. Every rejection names the offending field.
pub fn flow_mod_from_json(v: &Value) -> Result<FlowMod, ApiError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request("body must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| !FLOW_MOD_KEYS.contains(&k.as_str())) {
        return Err(ApiError::invalid(k.clone(), format!("unknown field {k:?}")));
    }
    let command = match obj.get("command") {
        None => FlowModCommand::Add,
        Some(c) => match c.as_str() {
            Some("add") => FlowModCommand::Add,
            Some("modify") => FlowModCommand::Modify,
            Some("modify_strict") => FlowModCommand::ModifyStrict,
            Some("delete") => FlowModCommand::Delete,
            Some("delete_strict") => FlowModCommand::DeleteStrict,
            _ => {
                return Err(ApiError::invalid(
                    "command",
                    "command must be add, modify, modify_strict, delete or delete_strict",
                ))
            }
        },
    };
    let deleting = matches!(
        command,
        FlowModCommand::Delete | FlowModCommand::DeleteStrict
    );
    let defaults = FlowMod::default();
    let mut fm = FlowMod {
        command,
        table_id: opt_uint(obj, "table_id", u8::MAX.into())?
            .map_or(if deleting { OFPTT_ALL } else { 0 }, |t| t as u8),
        priority: opt_uint(obj, "priority", u16::MAX.into())?
            .map_or(defaults.priority, |p| p as u16),
        cookie: opt_uint(obj, "cookie", u64::MAX)?.unwrap_or(0),
        cookie_mask: opt_uint(obj, "cookie_mask", u64::MAX)?.unwrap_or(0),
        idle_timeout: opt_uint(obj, "idle_timeout", u16::MAX.into())?.unwrap_or(0) as u16,
        hard_timeout: opt_uint(obj, "hard_timeout", u16::MAX.into())?.unwrap_or(0) as u16,
        flags: opt_uint(obj, "flags", u16::MAX.into())?.unwrap_or(0) as u16,
        buffer_id: opt_uint(obj, "buffer_id", u32::MAX.into())?
            .map_or(defaults.buffer_id, |b| b as u32),
        out_port: match obj.get("out_port") {
            None => port_no::ANY,
            Some(p) => {
                port_from_json(p).ok_or_else(|| ApiError::invalid("out_port", "not a port"))?
            }
        },
        out_group: opt_uint(obj, "out_group", u32::MAX.into())?.map_or(OFPG_ANY, |g| g as u32),
        ..defaults
    };
    if fm.table_id == OFPTT_ALL && !deleting {
        return Err(ApiError::invalid(
            "table_id",
            "table 255 (all) is only for deletes",
        ));
    }
    if let Some(m) = obj.get("match") {
        let m = m
            .as_object()
            .ok_or_else(|| ApiError::invalid("match", "match must be an object"))?;
        fm.match_ = match_from_json(m)?;
    }
    if let Some(a) = obj.get("actions") {
        let a = a
            .as_array()
            .ok_or_else(|| ApiError::invalid("actions", "actions must be an array"))?;
        fm.instructions = instructions_from_json(a)?;
    }
    Ok(fm)
}

fn opt_uint(obj: &Map<String, Value>, key: &str, max: u64) -> Result<Option<u64>, ApiError> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => uint(v, max).map(Some).ok_or_else(|| {
            ApiError::invalid(key, format!("{key} must be an integer from 0 to {max}"))
        }),
    }
}

/// A JSON number or a decimal/`0x` string, at most `max`.
fn uint(v: &Value, max: u64) -> Option<u64> {
    let n = match v {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok()?,
            None => s.parse().ok()?,
        },
        _ => return None,
    };
    (n <= max).then_some(n)
}

fn port_from_json(v: &Value) -> Option<u32> {
    if let Some(n) = v.as_str().and_then(PortName::from_reserved) {
        return Some(n);
    }
    let n = uint(v, u32::MAX.into())? as u32;
    (n <= port_no::MAX || PortName::reserved(n).is_some()).then_some(n)
}

fn port_value(p: u32) -> Value {
    match PortName::reserved(p) {
        Some(name) => Value::from(name),
        None => Value::from(p),
    }
}

/// The field names `ofctl_rest` also accepts (OpenFlow 1.0's, and `tunnel_id`), for the names
/// of the codec's field table.
const FIELD_ALIASES: &[(&str, &str)] = &[
    ("dl_dst", "eth_dst"),
    ("dl_src", "eth_src"),
    ("dl_type", "eth_type"),
    ("dl_vlan", "vlan_vid"),
    ("dl_vlan_pcp", "vlan_pcp"),
    ("nw_proto", "ip_proto"),
    ("nw_src", "ipv4_src"),
    ("nw_dst", "ipv4_dst"),
    ("tunnel_id", "tun_id"),
];

/// One match field from its JSON name and value: `Ok(None)` for an unknown name, `Err` when
/// the value does not fit. Names and value spellings are the codec's ([`OxmField::from_text`]),
/// so whatever [`oxm_to_json`] shows reads back; ports also by reserved name, and `tp_src`/
/// `tp_dst` by `ip_proto`.
fn oxm_from_json(key: &str, v: &Value, ip_proto: Option<u8>) -> Result<Option<OxmField>, ()> {
    let key = FIELD_ALIASES
        .iter()
        .find(|(alias, _)| *alias == key)
        .map_or(key, |(_, name)| *name);
    let key = match (key, ip_proto) {
        ("tp_src", Some(6)) => "tcp_src",
        ("tp_dst", Some(6)) => "tcp_dst",
        ("tp_src", Some(17)) => "udp_src",
        ("tp_dst", Some(17)) => "udp_dst",
        ("tp_src" | "tp_dst", _) => return Err(()),
        (key, _) => key,
    };
    match key {
        "in_port" => {
            return port_from_json(v)
                .map(|p| Some(OxmField::InPort(p)))
                .ok_or(())
        }
        "in_phy_port" => {
            return port_from_json(v)
                .map(|p| Some(OxmField::InPhyPort(p)))
                .ok_or(())
        }
        _ => {}
    }
    let text = match v {
        Value::Number(n) => n.as_u64().ok_or(())?.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err(()),
    };
    let (value, mask) = match text.split_once('/') {
        Some((value, mask)) => (value, Some(mask)),
        None => (text.as_str(), None),
    };
    match OxmField::from_text(key, value, mask) {
        Ok(f) if in_range(&f) => Ok(Some(f)),
        Ok(_) | Err(FieldTextError::BadValue) => Err(()),
        Err(FieldTextError::UnknownField) => Ok(None),
    }
}

/// Values OpenFlow gives fewer bits than their field's width (a switch would refuse them).
fn in_range(f: &OxmField) -> bool {
    match f {
        OxmField::VlanPcp(p) => *p < 8,
        OxmField::IpDscp(p) => *p < 64,
        OxmField::IpEcn(p) => *p < 4,
        OxmField::VlanVid { value, mask } => *value <= 0x1fff && mask.is_none_or(|m| m <= 0x1fff),
        _ => true,
    }
}

fn match_from_json(obj: &Map<String, Value>) -> Result<Match, ApiError> {
    let ip_proto = obj
        .get("ip_proto")
        .or_else(|| obj.get("nw_proto"))
        .and_then(|v| uint(v, u8::MAX.into()))
        .map(|n| n as u8);
    let mut m = Match::new();
    for (key, v) in obj {
        let field = format!("match.{key}");
        match oxm_from_json(key, v, ip_proto) {
            Ok(Some(f)) => m = m.with(f),
            Ok(None) => {
                return Err(ApiError::invalid(
                    field,
                    format!("unknown match field {key:?}"),
                ))
            }
            Err(()) => {
                return Err(ApiError::invalid(
                    field,
                    format!("{v} is not a valid value for {key}"),
                ))
            }
        }
    }
    m.validate_prerequisites()
        .map_err(|e| ApiError::invalid("match", format!("match prerequisites not met: {e}")))?;
    Ok(m)
}

fn action_from_json(i: usize, v: &Value) -> Result<Result<Action, Instruction>, ApiError> {
    let at = |k: &str| format!("actions[{i}].{k}");
    let obj = v.as_object().ok_or_else(|| {
        ApiError::invalid(
            format!("actions[{i}]"),
            "an action is an object with a \"type\"",
        )
    })?;
    let ty = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid(at("type"), "missing action type"))?;
    let get_uint = |k: &str, max: u64| {
        obj.get(k).and_then(|v| uint(v, max)).ok_or_else(|| {
            ApiError::invalid(at(k), format!("{k} must be an integer from 0 to {max}"))
        })
    };
    let action = match ty.to_ascii_uppercase().as_str() {
        "OUTPUT" => Action::Output {
            port: obj
                .get("port")
                .and_then(port_from_json)
                .ok_or_else(|| ApiError::invalid(at("port"), "not a port"))?,
            max_len: match obj.get("max_len") {
                None => ofproto::consts::OFPCML_NO_BUFFER,
                Some(_) => get_uint("max_len", u16::MAX.into())? as u16,
            },
        },
        "SET_FIELD" => {
            let name = obj
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::invalid(at("field"), "missing field name"))?;
            let value = obj
                .get("value")
                .ok_or_else(|| ApiError::invalid(at("value"), "missing value"))?;
            match oxm_from_json(name, value, None) {
                Ok(Some(f)) => Action::SetField(f),
                Ok(None) => {
                    return Err(ApiError::invalid(
                        at("field"),
                        format!("unknown field {name:?}"),
                    ))
                }
                Err(()) => {
                    return Err(ApiError::invalid(
                        at("value"),
                        format!("{value} is not valid for {name}"),
                    ))
                }
            }
        }
        "PUSH_VLAN" => Action::PushVlan(get_uint("ethertype", u16::MAX.into())? as u16),
        "POP_VLAN" => Action::PopVlan,
        "GROUP" => Action::Group(get_uint("group_id", u32::MAX.into())? as u32),
        "SET_QUEUE" => Action::SetQueue(get_uint("queue_id", u32::MAX.into())? as u32),
        "SET_NW_TTL" => Action::SetNwTtl(get_uint("nw_ttl", u8::MAX.into())? as u8),
        "DEC_NW_TTL" => Action::DecNwTtl,
        "COPY_TTL_OUT" => Action::CopyTtlOut,
        "COPY_TTL_IN" => Action::CopyTtlIn,
        "GOTO_TABLE" => {
            return Ok(Err(
                Instruction::GotoTable(get_uint("table_id", 254)? as u8),
            ))
        }
        "WRITE_METADATA" => {
            return Ok(Err(Instruction::WriteMetadata {
                metadata: get_uint("metadata", u64::MAX)?,
                mask: match obj.get("metadata_mask") {
                    None => u64::MAX,
                    Some(_) => get_uint("metadata_mask", u64::MAX)?,
                },
            }))
        }
        "CLEAR_ACTIONS" => return Ok(Err(Instruction::ClearActions)),
        "METER" => {
            return Ok(Err(Instruction::Meter(
                get_uint("meter_id", u32::MAX.into())? as u32,
            )))
        }
        other => {
            return Err(ApiError::invalid(
                at("type"),
                format!("unknown action type {other:?}"),
            ))
        }
    };
    Ok(Ok(action))
}

/// ofctl_rest's flat action list: plain actions become one APPLY_ACTIONS, instruction-like
/// entries (GOTO_TABLE, WRITE_METADATA, CLEAR_ACTIONS, METER) their own instructions, in the
/// order OpenFlow executes them.
fn instructions_from_json(list: &[Value]) -> Result<Vec<Instruction>, ApiError> {
    let mut apply = Vec::new();
    let mut others = Vec::new();
    for (i, v) in list.iter().enumerate() {
        match action_from_json(i, v)? {
            Ok(a) => apply.push(a),
            Err(ins) => others.push(ins),
        }
    }
    let mut out = Vec::new();
    if let Some(m) = others
        .iter()
        .position(|i| matches!(i, Instruction::Meter(_)))
    {
        out.push(others.remove(m));
    }
    if !apply.is_empty() {
        out.push(Instruction::ApplyActions(apply));
    }
    out.extend(others);
    Ok(out)
}

// ---- FLOW_STATS → JSON ----

/// A match field as JSON: its name from the codec's field table, exact integers as numbers
/// (ports by reserved name), anything else in the codec's text (`value` or `value/mask`).
fn oxm_to_json(f: &OxmField) -> (String, Value) {
    match f {
        OxmField::InPort(p) => return ("in_port".into(), port_value(*p)),
        OxmField::InPhyPort(p) => return ("in_phy_port".into(), port_value(*p)),
        _ => {}
    }
    let Some(text) = f.to_text() else {
        // An unknown field has no name to POST; it shows as ovs-ofctl prints it.
        let text = Match::new().with(f.clone()).to_string();
        return (f.name().to_string(), Value::from(text));
    };
    let value = match (&text.mask, text.integer) {
        (None, true) => text
            .value
            .parse::<u64>()
            .map_or(Value::from(text.value.clone()), Value::from),
        (None, false) => Value::from(text.value),
        (Some(mask), _) => Value::from(format!("{}/{mask}", text.value)),
    };
    (text.name.to_string(), value)
}

fn match_to_json(m: &Match) -> Map<String, Value> {
    m.fields.iter().map(oxm_to_json).collect()
}

fn action_to_json(a: &Action) -> Value {
    Value::from(match a {
        Action::Output { port, .. } => match port_value(*port) {
            Value::String(s) => format!("OUTPUT:{s}"),
            v => format!("OUTPUT:{v}"),
        },
        Action::SetField(f) => {
            let (k, v) = oxm_to_json(f);
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            format!("SET_FIELD: {{{k}:{v}}}")
        }
        Action::PushVlan(t) => format!("PUSH_VLAN:{t}"),
        Action::PopVlan => "POP_VLAN".into(),
        Action::Group(g) => format!("GROUP:{g}"),
        Action::SetQueue(q) => format!("SET_QUEUE:{q}"),
        Action::SetNwTtl(t) => format!("SET_NW_TTL:{t}"),
        Action::DecNwTtl => "DEC_NW_TTL".into(),
        Action::CopyTtlOut => "COPY_TTL_OUT".into(),
        Action::CopyTtlIn => "COPY_TTL_IN".into(),
        other => other.to_string(),
    })
}

fn instructions_to_json(ins: &[Instruction]) -> Vec<Value> {
    let mut out = Vec::new();
    for i in ins {
        match i {
            Instruction::ApplyActions(actions) => out.extend(actions.iter().map(action_to_json)),
            Instruction::WriteActions(actions) => out.push(json!({
                "WRITE_ACTIONS": actions.iter().map(action_to_json).collect::<Vec<_>>()
            })),
            Instruction::GotoTable(t) => out.push(Value::from(format!("GOTO_TABLE:{t}"))),
            Instruction::WriteMetadata { metadata, mask } => out.push(Value::from(format!(
                "WRITE_METADATA:{metadata:#x}/{mask:#x}"
            ))),
            Instruction::ClearActions => out.push(Value::from("CLEAR_ACTIONS")),
            Instruction::Meter(m) => out.push(Value::from(format!("METER:{m}"))),
            other => out.push(Value::from(other.to_string())),
        }
    }
    out
}

#[cfg(test)]
mod tests;
