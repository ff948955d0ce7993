//! One-line `ovs-ofctl ofp-print` text for every message: the `OFPT_NAME (OF1.3) (xid=0x7):`
//! header of [`OfMessage`] and the body of each [`Message`]. Where OVS prints several lines, we
//! join them with spaces (lists of entries with `; `), keeping OVS's tokens so the two can be
//! compared word for word.

use std::fmt::{self, Display, Formatter, Write};

use crate::consts;
use crate::error::ErrorType;
use crate::msg::group::{GroupMod, GroupModCommand, GroupType};
use crate::msg::meter::{MeterBand, MeterMod, MeterModCommand};
use crate::msg::*;
use crate::packet::PacketView;
use crate::{port_no, OFP_NO_BUFFER, OFP_VERSION};

use super::{match_format, match_is_printed, Dpid, Mac, PortName};

/// `OFPT_PACKET_IN (OF1.3) (xid=0x7): …`; multipart messages are named as OVS names them,
/// `OFPST_FLOW request (OF1.3) (xid=0x7): …`. Always one line.
impl Display for OfMessage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.body {
            Message::MultipartRequest(r) => {
                write!(f, "OFPST_{} request", super::multipart::type_name(r.typ()))?
            }
            Message::MultipartReply(r) => {
                write!(f, "OFPST_{} reply", super::multipart::type_name(r.typ()))?
            }
            body => write!(f, "OFPT_{}", body.name())?,
        }
        f.write_str(" (")?;
        version(f, self.version)?;
        write!(f, ") (xid={:#x}):", self.xid)?;
        let body = Body(&self.body, self.version).to_string();
        if !body.is_empty() {
            f.write_char(' ')?;
            f.write_str(&body)?;
        }
        Ok(())
    }
}

/// The text OVS prints after the header, without it.
impl Display for Message {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_body(f, self, OFP_VERSION)
    }
}

/// A body with the version from its header.
struct Body<'a>(&'a Message, u8);

impl Display for Body<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_body(f, self.0, self.1)
    }
}

/// `OF1.3` for wire version 4; other numbers (a peer's HELLO) as OVS shows them.
fn version(f: &mut impl Write, v: u8) -> fmt::Result {
    match v {
        1..=6 => write!(f, "OF1.{}", v - 1),
        v => write!(f, "OF 0x{v:02x}"),
    }
}

/// `header_version` matters only for a HELLO without a version bitmap, whose versions are
/// "everything up to the header's".
fn write_body(f: &mut Formatter<'_>, body: &Message, header_version: u8) -> fmt::Result {
    use Message::*;
    match body {
        Hello(h) => hello(f, h, header_version),
        Error(e) => error(f, e),
        EchoRequest(d) | EchoReply(d) => write!(f, "{} bytes of payload", d.len()),
        Experimenter(e) => {
            write!(
                f,
                "experimenter={:#010x} exp_type={}",
                e.experimenter, e.exp_type
            )?;
            hex_data(f, &e.data)
        }
        FeaturesRequest | GetConfigRequest | BarrierRequest | BarrierReply | GetAsyncRequest => {
            Ok(())
        }
        FeaturesReply(r) => features(f, r),
        GetConfigReply(c) | SetConfig(c) => switch_config(f, c),
        PacketIn(p) => packet_in(f, p),
        FlowRemoved(r) => flow_removed(f, r),
        PortStatus(s) => {
            let reason = match s.reason {
                PortReason::Add => "ADD",
                PortReason::Delete => "DEL",
                PortReason::Modify => "MOD",
                PortReason::Unknown(r) => return write!(f, "reason={r}: {}", PortText(&s.desc)),
            };
            write!(f, "{reason}: {}", PortText(&s.desc))
        }
        PacketOut(p) => packet_out(f, p),
        FlowMod(m) => write!(f, "{m}"),
        GroupMod(g) => write!(f, "{g}"),
        PortMod(p) => port_mod(f, p),
        TableMod(t) => {
            table_id(f, t.table_id)?;
            if t.config != 0 {
                write!(f, " config={:#x}", t.config)?;
            }
            Ok(())
        }
        MultipartRequest(r) => super::multipart::request(f, r),
        MultipartReply(r) => super::multipart::reply(f, r),
        QueueGetConfigRequest(q) => write!(f, "port={}", PortName(q.port)),
        QueueGetConfigReply(q) => queue_config(f, q),
        RoleRequest(r) | RoleReply(r) => role(f, r),
        GetAsyncReply(a) | SetAsync(a) => async_config(f, a),
        MeterMod(m) => write!(f, "{m}"),
    }
}

fn table_id(f: &mut impl Write, t: u8) -> fmt::Result {
    if t == consts::OFPTT_ALL {
        f.write_str("table_id=ALL")
    } else {
        write!(f, "table_id={t}")
    }
}

/// ` 0x0102…`, nothing for no data: raw bytes kept on one line.
fn hex_data(f: &mut impl Write, data: &[u8]) -> fmt::Result {
    if data.is_empty() {
        return Ok(());
    }
    f.write_str(" data=0x")?;
    for b in data {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// A string from the wire (port or table name, switch description). Control characters are
/// escaped so a hostile name cannot break the one-line promise.
pub(super) struct WireStr<'a>(pub &'a str);

impl Display for WireStr<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// Names of the set bits of `bits`, in bit order; unnamed bits as hex. `0` when none is set,
/// as OVS prints an empty flag set.
pub(super) fn bit_names(
    f: &mut impl Write,
    bits: u32,
    name: impl Fn(u32) -> Option<&'static str>,
) -> fmt::Result {
    if bits == 0 {
        return f.write_char('0');
    }
    let mut first = true;
    for i in 0..32 {
        let bit = 1u32 << i;
        if bits & bit == 0 {
            continue;
        }
        if !first {
            f.write_char(' ')?;
        }
        first = false;
        match name(i) {
            Some(n) => f.write_str(n)?,
            None => write!(f, "{bit:#x}")?,
        }
    }
    Ok(())
}

fn hello(f: &mut impl Write, h: &Hello, header_version: u8) -> fmt::Result {
    f.write_str("version bitmap:")?;
    let bitmap = h.elements.iter().find_map(|e| match e {
        HelloElement::VersionBitmap(b) => Some(b.as_slice()),
        HelloElement::Unknown { .. } => None,
    });
    let versions: Vec<u32> = match bitmap {
        Some(words) => words
            .iter()
            .enumerate()
            .flat_map(|(i, w)| {
                (0..32)
                    .filter(move |b| w & (1 << b) != 0)
                    .map(move |b| i as u32 * 32 + b)
            })
            .collect(),
        // Without a bitmap a HELLO offers every version up to the header's.
        None => (1..=u32::from(header_version)).collect(),
    };
    for (i, v) in versions.iter().enumerate() {
        f.write_str(if i == 0 { " " } else { ", " })?;
        write!(f, "0x{v:02x}")?;
    }
    for e in &h.elements {
        if let HelloElement::Unknown { typ, data } = e {
            write!(f, " (element type {typ}, {} bytes)", data.len())?;
        }
    }
    Ok(())
}

/// `OFPBRC_BAD_TYPE`: the OpenFlow name of the code, as OVS prints it.
fn error_code(f: &mut impl Write, kind: &ErrorType) -> fmt::Result {
    use ErrorType::*;
    let (prefix, code) = match kind {
        HelloFailed(c) => ("OFPHFC", format!("{c:?}")),
        BadRequest(c) => ("OFPBRC", format!("{c:?}")),
        BadAction(c) => ("OFPBAC", format!("{c:?}")),
        BadInstruction(c) => ("OFPBIC", format!("{c:?}")),
        BadMatch(c) => ("OFPBMC", format!("{c:?}")),
        FlowModFailed(c) => ("OFPFMFC", format!("{c:?}")),
        GroupModFailed(c) => ("OFPGMFC", format!("{c:?}")),
        PortModFailed(c) => ("OFPPMFC", format!("{c:?}")),
        TableModFailed(c) => ("OFPTMFC", format!("{c:?}")),
        QueueOpFailed(c) => ("OFPQOFC", format!("{c:?}")),
        SwitchConfigFailed(c) => ("OFPSCFC", format!("{c:?}")),
        RoleRequestFailed(c) => ("OFPRRFC", format!("{c:?}")),
        MeterModFailed(c) => ("OFPMMFC", format!("{c:?}")),
        TableFeaturesFailed(c) => ("OFPTFFC", format!("{c:?}")),
        Experimenter { .. } | Unknown { .. } => return write!(f, "{kind}"),
    };
    // A code we have no name for is `Unknown(n)` in Debug; the type's Display says it plainly.
    if code.starts_with("Unknown") {
        return write!(f, "{kind}");
    }
    // The code enums spell OpenFlow's names in CamelCase (`BadType` for `BAD_TYPE`).
    f.write_str(prefix)?;
    f.write_char('_')?;
    for (i, c) in code.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            f.write_char('_')?;
        }
        f.write_char(c.to_ascii_uppercase())?;
    }
    Ok(())
}

/// OVS prints the error code, then the request the error is about (decoded when it can be),
/// or for a HELLO_FAILED the text the peer sent.
fn error(f: &mut impl Write, e: &ErrorMsg) -> fmt::Result {
    error_code(f, &e.kind)?;
    if e.data.is_empty() {
        return Ok(());
    }
    if let ErrorType::HelloFailed(_) = e.kind {
        return write!(f, " {}", WireStr(&String::from_utf8_lossy(&e.data)));
    }
    match OfMessage::parse(&e.data) {
        Ok(m) => write!(f, "; {m}"),
        Err(_) => {
            write!(f, " ({} bytes of the request)", e.data.len())?;
            hex_data(f, &e.data)
        }
    }
}

fn features(f: &mut impl Write, r: &FeaturesReply) -> fmt::Result {
    write!(
        f,
        "dpid:{} n_tables:{}, n_buffers:{}",
        Dpid(r.datapath_id),
        r.n_tables,
        r.n_buffers
    )?;
    if r.auxiliary_id != 0 {
        write!(f, " auxiliary_id:{}", r.auxiliary_id)?;
    }
    f.write_str(" capabilities: ")?;
    bit_names(f, r.capabilities, |b| {
        Some(match b {
            0 => "FLOW_STATS",
            1 => "TABLE_STATS",
            2 => "PORT_STATS",
            3 => "GROUP_STATS",
            5 => "IP_REASM",
            6 => "QUEUE_STATS",
            8 => "PORT_BLOCKED",
            _ => return None,
        })
    })
}

fn switch_config(f: &mut impl Write, c: &SwitchConfig) -> fmt::Result {
    let frags = match c.flags & 3 {
        consts::OFPC_FRAG_NORMAL => "normal",
        consts::OFPC_FRAG_DROP => "drop",
        consts::OFPC_FRAG_REASM => "reassemble",
        _ => "nx_match",
    };
    write!(f, "frags={frags}")?;
    if c.flags & !3 != 0 {
        write!(f, " flags={:#x}", c.flags & !3)?;
    }
    write!(f, " miss_send_len={}", c.miss_send_len)
}

/// ` data_len=42 <frame as a flow>`, the frame summarised as OVS does on its second line.
fn frame(f: &mut impl Write, data: &[u8]) -> fmt::Result {
    if data.is_empty() {
        return Ok(());
    }
    write!(f, " data_len={}", data.len())
}

fn frame_flow(f: &mut impl Write, data: &[u8]) -> fmt::Result {
    match PacketView::parse(data) {
        Some(view) => write!(f, " {view}"),
        None => Ok(()),
    }
}

fn packet_in(f: &mut impl Write, p: &PacketIn) -> fmt::Result {
    if p.table_id != 0 {
        write!(f, "table_id={} ", p.table_id)?;
    }
    write!(f, "cookie={:#x} total_len={}", p.cookie, p.total_len)?;
    if match_is_printed(None, &p.match_) {
        f.write_char(' ')?;
        write!(f, "{}", MatchText(None, &p.match_))?;
    }
    let reason = match p.reason {
        PacketInReason::NoMatch => "no_match".to_string(),
        PacketInReason::Action => "action".to_string(),
        PacketInReason::InvalidTtl => "invalid_ttl".to_string(),
        PacketInReason::Unknown(r) => r.to_string(),
    };
    write!(f, " (via {reason})")?;
    frame(f, &p.data)?;
    if p.buffer_id == OFP_NO_BUFFER {
        f.write_str(" (unbuffered)")?;
    } else {
        write!(f, " buffer={:#010x}", p.buffer_id)?;
    }
    frame_flow(f, &p.data)
}

/// A match with an optional priority, as `match_format` writes it.
struct MatchText<'a>(Option<u16>, &'a crate::oxm::Match);

impl Display for MatchText<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match_format(f, self.0, self.1)
    }
}

fn packet_out(f: &mut impl Write, p: &PacketOut) -> fmt::Result {
    write!(f, "in_port={} actions=", PortName(p.in_port))?;
    super::action_list_or_drop(f, &p.actions)?;
    frame(f, &p.data)?;
    if p.buffer_id != OFP_NO_BUFFER {
        write!(f, " buffer={:#010x}", p.buffer_id)?;
    }
    frame_flow(f, &p.data)
}

/// `3.500s`: OVS prints nanoseconds, dropping trailing zeros but keeping milliseconds.
pub(super) fn duration(f: &mut impl Write, sec: u32, nsec: u32) -> fmt::Result {
    write!(f, "{sec}")?;
    if nsec > 0 {
        let digits = format!("{nsec:09}");
        let keep = digits.trim_end_matches('0').len().max(3);
        write!(f, ".{}", &digits[..keep.min(digits.len())])?;
    }
    f.write_char('s')
}

fn flow_removed(f: &mut impl Write, r: &FlowRemoved) -> fmt::Result {
    if match_is_printed(Some(r.priority), &r.match_) {
        write!(f, "{} ", MatchText(Some(r.priority), &r.match_))?;
    }
    f.write_str("reason=")?;
    match r.reason {
        FlowRemovedReason::IdleTimeout => f.write_str("idle")?,
        FlowRemovedReason::HardTimeout => f.write_str("hard")?,
        FlowRemovedReason::Delete => f.write_str("delete")?,
        FlowRemovedReason::GroupDelete => f.write_str("group_delete")?,
        FlowRemovedReason::Unknown(n) => write!(f, "{n}")?,
    }
    f.write_char(' ')?;
    table_id(f, r.table_id)?;
    if r.cookie != 0 {
        write!(f, " cookie:{:#x}", r.cookie)?;
    }
    f.write_str(" duration")?;
    duration(f, r.duration_sec, r.duration_nsec)?;
    write!(f, " idle{}", r.idle_timeout)?;
    if r.hard_timeout != 0 {
        write!(f, " hard{}", r.hard_timeout)?;
    }
    write!(f, " pkts{} bytes{}", r.packet_count, r.byte_count)
}

fn port_config_name(bit: u32) -> Option<&'static str> {
    Some(match bit {
        0 => "PORT_DOWN",
        2 => "NO_RECV",
        5 => "NO_FWD",
        6 => "NO_PACKET_IN",
        _ => return None,
    })
}

fn port_state_name(bit: u32) -> Option<&'static str> {
    Some(match bit {
        0 => "LINK_DOWN",
        1 => "BLOCKED",
        2 => "LIVE",
        _ => return None,
    })
}

fn port_feature_name(bit: u32) -> Option<&'static str> {
    const NAMES: [&str; 16] = [
        "10MB-HD",
        "10MB-FD",
        "100MB-HD",
        "100MB-FD",
        "1GB-HD",
        "1GB-FD",
        "10GB-FD",
        "40GB-FD",
        "100GB-FD",
        "1TB-FD",
        "OTHER",
        "COPPER",
        "FIBER",
        "AUTO_NEG",
        "AUTO_PAUSE",
        "AUTO_PAUSE_ASYM",
    ];
    NAMES.get(bit as usize).copied()
}

/// `1(eth1): addr:02:00:00:00:00:01 config: PORT_DOWN state: LIVE current: 1GB-FD COPPER
/// speed: 10000 Mbps now, 0 Mbps max`: OVS's port description, on one line.
pub(super) struct PortText<'a>(pub &'a Port);

impl Display for PortText<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let p = self.0;
        write!(
            f,
            "{}({}): addr:{} config: ",
            PortName(p.port_no),
            WireStr(&p.name),
            Mac(p.hw_addr)
        )?;
        bit_names(f, p.config, port_config_name)?;
        f.write_str(" state: ")?;
        bit_names(f, p.state, port_state_name)?;
        for (label, bits) in [
            ("current", p.curr),
            ("advertised", p.advertised),
            ("supported", p.supported),
            ("peer", p.peer),
        ] {
            if bits != 0 {
                write!(f, " {label}: ")?;
                bit_names(f, bits, port_feature_name)?;
            }
        }
        if p.curr_speed != 0 || p.max_speed != 0 {
            write!(
                f,
                " speed: {} Mbps now, {} Mbps max",
                p.curr_speed / 1000,
                p.max_speed / 1000
            )?;
        }
        Ok(())
    }
}

fn port_mod(f: &mut impl Write, p: &PortMod) -> fmt::Result {
    write!(
        f,
        "port: {}: addr:{} config: ",
        PortName(p.port_no),
        Mac(p.hw_addr)
    )?;
    bit_names(f, p.config, port_config_name)?;
    f.write_str(" mask: ")?;
    bit_names(f, p.mask, port_config_name)?;
    f.write_str(" advertise: ")?;
    if p.advertise == 0 {
        f.write_str("UNCHANGED")
    } else {
        bit_names(f, p.advertise, port_feature_name)
    }
}

/// A queue rate in tenths of a percent; above 100% it means "not configured".
fn queue_rate(f: &mut impl Write, label: &str, rate: u16) -> fmt::Result {
    if rate > 1000 {
        write!(f, " {label}:disabled")
    } else {
        write!(f, " {label}:{}.{}%", rate / 10, rate % 10)
    }
}

fn queue_config(f: &mut impl Write, q: &QueueGetConfigReply) -> fmt::Result {
    write!(f, "port={}", PortName(q.port))?;
    for queue in &q.queues {
        write!(f, " queue {}:", queue.queue_id)?;
        if queue.port != q.port {
            write!(f, " port={}", PortName(queue.port))?;
        }
        for prop in &queue.properties {
            match prop {
                QueueProp::MinRate(r) => queue_rate(f, "min_rate", *r)?,
                QueueProp::MaxRate(r) => queue_rate(f, "max_rate", *r)?,
                QueueProp::Experimenter { experimenter, data } => {
                    write!(f, " experimenter={experimenter:#010x}")?;
                    hex_data(f, data)?;
                }
                QueueProp::Unknown { typ, data } => {
                    write!(f, " property={typ}")?;
                    hex_data(f, data)?;
                }
            }
        }
    }
    Ok(())
}

/// OVS 3.1 speaks of primary and secondary controllers where OpenFlow 1.3 says master/slave.
fn role(f: &mut impl Write, r: &Role) -> fmt::Result {
    let name = match r.role {
        ControllerRole::NoChange => "nochange".to_string(),
        ControllerRole::Equal => "equal".to_string(),
        ControllerRole::Master => "primary".to_string(),
        ControllerRole::Slave => "secondary".to_string(),
        ControllerRole::Unknown(n) => n.to_string(),
    };
    write!(f, "role={name}")?;
    // "No change" with an all-ones generation id carries no generation at all.
    if r.role != ControllerRole::NoChange || r.generation_id != u64::MAX {
        write!(f, " generation_id={}", r.generation_id)?;
    }
    Ok(())
}

fn async_config(f: &mut impl Write, a: &AsyncConfig) -> fmt::Result {
    let packet_in = |b: u32| {
        Some(match b {
            0 => "no_match",
            1 => "action",
            2 => "invalid_ttl",
            _ => return None,
        })
    };
    let port_status = |b: u32| {
        Some(match b {
            0 => "add",
            1 => "delete",
            2 => "modify",
            _ => return None,
        })
    };
    let flow_removed = |b: u32| {
        Some(match b {
            0 => "idle",
            1 => "hard",
            2 => "delete",
            3 => "group_delete",
            _ => return None,
        })
    };
    for (i, role) in ["primary", "secondary"].iter().enumerate() {
        if i > 0 {
            f.write_char(' ')?;
        }
        write!(f, "{role}:")?;
        for (label, bits, names) in [
            (
                "PACKET_IN",
                a.packet_in_mask[i],
                &packet_in as &dyn Fn(u32) -> Option<&'static str>,
            ),
            ("PORT_STATUS", a.port_status_mask[i], &port_status),
            ("FLOW_REMOVED", a.flow_removed_mask[i], &flow_removed),
        ] {
            write!(f, " {label}: ")?;
            if bits == 0 {
                f.write_str("(off)")?;
            } else {
                bit_names(f, bits, names)?;
            }
        }
    }
    Ok(())
}

/// `ADD group_id=1,type=select,bucket=weight:10,actions=output:2`.
impl Display for GroupMod {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.command {
            GroupModCommand::Add => f.write_str("ADD ")?,
            GroupModCommand::Modify => f.write_str("MOD ")?,
            GroupModCommand::Delete => f.write_str("DEL ")?,
            GroupModCommand::Unknown(c) => write!(f, "cmd:{c} ")?,
        }
        group_desc(f, self.group_id, self.group_type, &self.buckets)
    }
}

/// The group text shared by GROUP_MOD and the group-description reply.
pub(super) fn group_desc(
    f: &mut impl Write,
    group_id: u32,
    group_type: GroupType,
    buckets: &[Bucket],
) -> fmt::Result {
    write!(f, "group_id={group_id},type=")?;
    match group_type {
        GroupType::All => f.write_str("all")?,
        GroupType::Select => f.write_str("select")?,
        GroupType::Indirect => f.write_str("indirect")?,
        GroupType::FastFailover => f.write_str("ff")?,
        GroupType::Unknown(t) => write!(f, "{t}")?,
    }
    for b in buckets {
        f.write_str(",bucket=")?;
        // OVS shows a weight only where it means something: in a select group.
        if group_type == GroupType::Select || b.weight != 0 {
            write!(f, "weight:{},", b.weight)?;
        }
        if b.watch_port != port_no::ANY {
            write!(f, "watch_port:{},", PortName(b.watch_port))?;
        }
        if b.watch_group != consts::OFPG_ANY {
            write!(f, "watch_group:{},", b.watch_group)?;
        }
        f.write_str("actions=")?;
        super::action_list_or_drop(f, &b.actions)?;
    }
    Ok(())
}

/// `ADD meter=1 kbps burst stats bands= type=drop rate=1000 burst_size=10`.
impl Display for MeterMod {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.command {
            MeterModCommand::Add => f.write_str("ADD ")?,
            MeterModCommand::Modify => f.write_str("MOD ")?,
            MeterModCommand::Delete => f.write_str("DEL ")?,
            MeterModCommand::Unknown(c) => write!(f, "cmd:{c} ")?,
        }
        // A delete names only the meter; OVS ignores (and does not print) the rest.
        if self.command == MeterModCommand::Delete {
            meter_id(f, self.meter_id)?;
            return f.write_str(" bands=");
        }
        meter_config(f, self.meter_id, self.flags, &self.bands)
    }
}

/// `meter=1` with OVS's names for the reserved meters.
pub(super) fn meter_id(f: &mut impl Write, id: u32) -> fmt::Result {
    match id {
        consts::OFPM_ALL => f.write_str("meter=all"),
        consts::OFPM_CONTROLLER => f.write_str("meter=controller"),
        consts::OFPM_SLOWPATH => f.write_str("meter=slowpath"),
        id => write!(f, "meter={id}"),
    }
}

/// The meter text shared by METER_MOD and the meter-config reply.
pub(super) fn meter_config(
    f: &mut impl Write,
    id: u32,
    flags: u16,
    bands: &[MeterBand],
) -> fmt::Result {
    meter_id(f, id)?;
    for (bit, name) in [
        (meter::OFPMF_KBPS, "kbps"),
        (meter::OFPMF_PKTPS, "pktps"),
        (meter::OFPMF_BURST, "burst"),
        (meter::OFPMF_STATS, "stats"),
    ] {
        if flags & bit != 0 {
            write!(f, " {name}")?;
        }
    }
    let unknown = flags & !0xf;
    if unknown != 0 {
        write!(f, " flags={unknown:#x}")?;
    }
    f.write_str(" bands=")?;
    for band in bands {
        let burst = match band {
            MeterBand::Drop { rate, burst_size } => {
                write!(f, " type=drop rate={rate}")?;
                burst_size
            }
            MeterBand::DscpRemark {
                rate, burst_size, ..
            } => {
                write!(f, " type=dscp_remark rate={rate}")?;
                burst_size
            }
            MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter,
                ..
            } => {
                write!(
                    f,
                    " type=experimenter rate={rate} experimenter={experimenter:#x}"
                )?;
                burst_size
            }
        };
        if *burst != 0 {
            write!(f, " burst_size={burst}")?;
        }
        if let MeterBand::DscpRemark { prec_level, .. } = band {
            write!(f, " prec_level={prec_level}")?;
        }
        if let MeterBand::Experimenter { data, .. } = band {
            hex_data(f, data)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::arb;
    use crate::msg::Message;

    proptest! {
        /// Whatever a message holds (names with control characters, unknown codes, nested
        /// requests in errors), its text is one non-empty line under the right name.
        #[test]
        fn every_message_is_one_line(m in arb::of_message()) {
            let text = m.to_string();
            prop_assert!(!text.contains(['\n', '\r']), "{}", text);
            let name = match &m.body {
                Message::MultipartRequest(_) | Message::MultipartReply(_) => "OFPST_".to_string(),
                body => format!("OFPT_{} (", body.name()),
            };
            prop_assert!(text.starts_with(&name), "{} does not start with {}", text, name);
            prop_assert!(text.contains(&format!("(xid={:#x}):", m.xid)), "{}", text);
            prop_assert!(!m.body.to_string().contains('\n'));
        }
    }

    #[test]
    fn durations_keep_milliseconds_and_drop_trailing_zeros() {
        let d = |sec, nsec| {
            let mut s = String::new();
            super::duration(&mut s, sec, nsec).map(|()| s)
        };
        assert_eq!(d(3, 500_000_000), Ok("3.500s".into()));
        assert_eq!(d(5, 6), Ok("5.000000006s".into()));
        assert_eq!(d(5, 0), Ok("5s".into()));
        assert_eq!(d(1, 123_400_000), Ok("1.1234s".into()));
    }

    #[test]
    fn wire_strings_cannot_break_the_line() {
        let s = super::WireStr("eth\n0\u{7f}").to_string();
        assert_eq!(s, "eth\\n0\\u{7f}");
    }
}
