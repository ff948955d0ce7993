//! One-line `ovs-ofctl ofp-print` text for MULTIPART_REQUEST and MULTIPART_REPLY bodies. OVS
//! prints one line per entry (flow, port, group, …); we join the entries with `; `.

use std::fmt::{self, Write};

use crate::consts;
use crate::multipart::*;
use crate::port_no;

use super::msg::{bit_names, duration, group_desc, meter_config, meter_id, PortText, WireStr};
use super::{match_format, match_is_printed, PortName};

/// OVS's `OFPST_*` name of a multipart type (`FLOW` in `OFPST_FLOW request`).
pub(super) fn type_name(typ: u16) -> &'static str {
    use crate::multipart::multipart_type as mpt;
    match typ {
        mpt::DESC => "DESC",
        mpt::FLOW => "FLOW",
        mpt::AGGREGATE => "AGGREGATE",
        mpt::TABLE => "TABLE",
        mpt::PORT_STATS => "PORT",
        mpt::QUEUE => "QUEUE",
        mpt::GROUP => "GROUP",
        mpt::GROUP_DESC => "GROUP_DESC",
        mpt::GROUP_FEATURES => "GROUP_FEATURES",
        mpt::METER => "METER",
        mpt::METER_CONFIG => "METER_CONFIG",
        mpt::METER_FEATURES => "METER_FEATURES",
        mpt::TABLE_FEATURES => "TABLE_FEATURES",
        mpt::PORT_DESC => "PORT_DESC",
        _ => "EXPERIMENTER",
    }
}

/// Writes `sep` before every item but the first.
struct Sep<'a> {
    sep: &'a str,
    first: bool,
}

impl<'a> Sep<'a> {
    fn new(sep: &'a str) -> Self {
        Sep { sep, first: true }
    }
    /// After a count (`2 ports`) every entry, the first included, needs a separator.
    fn after_count() -> Self {
        Sep {
            sep: " ",
            first: false,
        }
    }
    fn next(&mut self, f: &mut impl Write) -> fmt::Result {
        if !std::mem::replace(&mut self.first, false) {
            f.write_str(self.sep)?;
        }
        Ok(())
    }
}

/// One entry per item, the first after `sep` and the rest after `; `.
fn entries<T, W: Write>(
    f: &mut W,
    mut sep: Sep<'_>,
    items: &[T],
    mut each: impl FnMut(&mut W, &T) -> fmt::Result,
) -> fmt::Result {
    for item in items {
        sep.next(f)?;
        each(f, item)?;
        sep.sep = "; ";
    }
    Ok(())
}

/// `flags=[more]` first, as OVS prints it; the separator for what follows.
fn more(f: &mut impl Write, more: bool) -> Result<Sep<'static>, fmt::Error> {
    let mut sep = Sep::new(" ");
    if more {
        sep.next(f)?;
        f.write_str("flags=[more]")?;
    }
    Ok(sep)
}

pub(super) fn request(f: &mut fmt::Formatter<'_>, r: &MultipartRequest) -> fmt::Result {
    use MultipartRequestBody as B;
    let mut sep = more(f, r.more())?;
    match &r.body {
        B::Desc | B::Table | B::GroupFeatures | B::MeterFeatures => Ok(()),
        B::Flow(q) | B::Aggregate(q) => {
            if q.table_id != consts::OFPTT_ALL {
                sep.next(f)?;
                write!(f, "table={}", q.table_id)?;
            }
            if q.out_port != port_no::ANY {
                sep.next(f)?;
                write!(f, "out_port={}", PortName(q.out_port))?;
            }
            // Like OVS (and our FLOW_MOD text), no out_group and no cookie: the text stays
            // word for word what `ovs-ofctl` prints.
            if match_is_printed(None, &q.match_) {
                sep.next(f)?;
                match_format(f, None, &q.match_)?;
            }
            Ok(())
        }
        B::PortStats { port_no } => {
            sep.next(f)?;
            write!(f, "port_no={}", PortName(*port_no))
        }
        B::Queue { port_no, queue_id } => {
            sep.next(f)?;
            write!(f, "port={} queue=", PortName(*port_no))?;
            queue(f, *queue_id)
        }
        B::Group { group_id } => {
            sep.next(f)?;
            f.write_str("group_id=")?;
            group(f, *group_id)
        }
        // OpenFlow 1.3 asks for every group and every port; OVS says so.
        B::GroupDesc => {
            sep.next(f)?;
            f.write_str("group_id=ALL")
        }
        B::PortDesc => {
            sep.next(f)?;
            f.write_str("port=ANY")
        }
        B::Meter { meter_id: id } | B::MeterConfig { meter_id: id } => {
            sep.next(f)?;
            meter_id(f, *id)
        }
        B::TableFeatures(tables) => entries(f, sep, tables, table_features),
        B::Experimenter(e) => {
            sep.next(f)?;
            experimenter(f, e)
        }
    }
}

fn queue(f: &mut impl Write, id: u32) -> fmt::Result {
    if id == consts::OFPQ_ALL {
        f.write_str("ALL")
    } else {
        write!(f, "{id}")
    }
}

fn group(f: &mut impl Write, id: u32) -> fmt::Result {
    match id {
        consts::OFPG_ALL => f.write_str("ALL"),
        consts::OFPG_ANY => f.write_str("ANY"),
        id => write!(f, "{id}"),
    }
}

fn experimenter(f: &mut impl Write, e: &MultipartExperimenter) -> fmt::Result {
    write!(
        f,
        "experimenter={:#010x} exp_type={}",
        e.experimenter, e.exp_type
    )?;
    if !e.data.is_empty() {
        f.write_str(" data=0x")?;
        for b in e.data.iter() {
            write!(f, "{b:02x}")?;
        }
    }
    Ok(())
}

/// A counter as OVS prints it: all ones means "not available", shown as `?`.
struct Counter(u64);

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == u64::MAX {
            f.write_char('?')
        } else {
            write!(f, "{}", self.0)
        }
    }
}

pub(super) fn reply(f: &mut fmt::Formatter<'_>, r: &MultipartReply) -> fmt::Result {
    use MultipartReplyBody as B;
    let mut sep = more(f, r.more())?;
    match &r.body {
        B::Desc(d) => {
            sep.next(f)?;
            write!(
                f,
                "Manufacturer: {} Hardware: {} Software: {} Serial Num: {} DP Description: {}",
                WireStr(&d.mfr_desc),
                WireStr(&d.hw_desc),
                WireStr(&d.sw_desc),
                WireStr(&d.serial_num),
                WireStr(&d.dp_desc)
            )
        }
        B::Flow(flows) => entries(f, sep, flows, |f, s| write!(f, "{s}")),
        B::Aggregate(a) => {
            sep.next(f)?;
            write!(
                f,
                "packet_count={} byte_count={} flow_count={}",
                a.packet_count, a.byte_count, a.flow_count
            )
        }
        B::Table(tables) => entries(f, sep, tables, |f, t| {
            write!(
                f,
                "table {}: active={}, lookup={}, matched={}",
                t.table_id,
                t.active_count,
                Counter(t.lookup_count),
                Counter(t.matched_count)
            )
        }),
        B::PortStats(ports) => {
            sep.next(f)?;
            write!(f, "{} ports", ports.len())?;
            entries(f, Sep::after_count(), ports, port_stats)
        }
        B::Queue(queues) => {
            sep.next(f)?;
            write!(f, "{} queues", queues.len())?;
            entries(f, Sep::after_count(), queues, |f, q| {
                write!(
                    f,
                    "port {} queue {}: bytes={}, pkts={}, errors={}",
                    PortName(q.port_no),
                    q.queue_id,
                    Counter(q.tx_bytes),
                    Counter(q.tx_packets),
                    Counter(q.tx_errors)
                )?;
                if q.duration_sec != u32::MAX {
                    f.write_str(", duration=")?;
                    duration(f, q.duration_sec, q.duration_nsec)?;
                }
                Ok(())
            })
        }
        B::Group(groups) => entries(f, sep, groups, |f, g| {
            write!(f, "group_id={},duration=", g.group_id)?;
            duration(f, g.duration_sec, g.duration_nsec)?;
            write!(
                f,
                ",ref_count={},packet_count={},byte_count={}",
                g.ref_count,
                Counter(g.packet_count),
                Counter(g.byte_count)
            )?;
            for (i, b) in g.bucket_stats.iter().enumerate() {
                write!(
                    f,
                    ",bucket{i}:packet_count={},byte_count={}",
                    Counter(b.packet_count),
                    Counter(b.byte_count)
                )?;
            }
            Ok(())
        }),
        B::GroupDesc(groups) => entries(f, sep, groups, |f, g| {
            group_desc(f, g.group_id, g.group_type, &g.buckets)
        }),
        B::GroupFeatures(g) => {
            sep.next(f)?;
            group_features(f, g)
        }
        B::Meter(meters) => entries(f, sep, meters, |f, m| {
            write!(
                f,
                "meter:{} flow_count:{} packet_in_count:{} byte_in_count:{} duration:",
                m.meter_id,
                m.flow_count,
                Counter(m.packet_in_count),
                Counter(m.byte_in_count)
            )?;
            duration(f, m.duration_sec, m.duration_nsec)?;
            f.write_str(" bands:")?;
            for (i, b) in m.band_stats.iter().enumerate() {
                write!(
                    f,
                    " {i}: packet_count:{} byte_count:{}",
                    Counter(b.packet_band_count),
                    Counter(b.byte_band_count)
                )?;
            }
            Ok(())
        }),
        B::MeterConfig(configs) => entries(f, sep, configs, |f, c| {
            meter_config(f, c.meter_id, c.flags, &c.bands)
        }),
        B::MeterFeatures(m) => {
            sep.next(f)?;
            write!(
                f,
                "max_meter:{} max_bands:{} max_color:{} band_types: ",
                m.max_meter, m.max_bands, m.max_color
            )?;
            bit_names(f, m.band_types, |b| {
                Some(match b {
                    1 => "drop",
                    2 => "dscp_remark",
                    _ => return None,
                })
            })?;
            f.write_str(" capabilities: ")?;
            bit_names(f, m.capabilities, |b| {
                Some(match b {
                    0 => "kbps",
                    1 => "pktps",
                    2 => "burst",
                    3 => "stats",
                    _ => return None,
                })
            })
        }
        B::TableFeatures(tables) => entries(f, sep, tables, table_features),
        B::PortDesc(ports) => entries(f, sep, ports, |f, p| write!(f, "{}", PortText(p))),
        B::Experimenter(e) => {
            sep.next(f)?;
            experimenter(f, e)
        }
    }
}

fn port_stats(f: &mut impl Write, p: &PortStats) -> fmt::Result {
    write!(
        f,
        "port {}: rx pkts={}, bytes={}, drop={}, errs={}, frame={}, over={}, crc={} \
         tx pkts={}, bytes={}, drop={}, errs={}, coll={}",
        PortName(p.port_no),
        Counter(p.rx_packets),
        Counter(p.rx_bytes),
        Counter(p.rx_dropped),
        Counter(p.rx_errors),
        Counter(p.rx_frame_err),
        Counter(p.rx_over_err),
        Counter(p.rx_crc_err),
        Counter(p.tx_packets),
        Counter(p.tx_bytes),
        Counter(p.tx_dropped),
        Counter(p.tx_errors),
        Counter(p.collisions)
    )?;
    if p.duration_sec != u32::MAX {
        f.write_str(" duration=")?;
        duration(f, p.duration_sec, p.duration_nsec)?;
    }
    Ok(())
}

/// OVS's names for the `OFPAT_*` bits of an action bitmap.
fn action_bit_name(bit: u32) -> Option<&'static str> {
    Some(match bit {
        0 => "output",
        11 => "copy_ttl_out",
        12 => "copy_ttl_in",
        15 => "set_mpls_ttl",
        16 => "dec_mpls_ttl",
        17 => "push_vlan",
        18 => "pop_vlan",
        19 => "push_mpls",
        20 => "pop_mpls",
        21 => "set_queue",
        22 => "group",
        23 => "set_nw_ttl",
        24 => "dec_nw_ttl",
        25 => "set_field",
        26 => "push_pbb",
        27 => "pop_pbb",
        _ => return None,
    })
}

fn group_features(f: &mut impl Write, g: &GroupFeatures) -> fmt::Result {
    write!(
        f,
        "Group table: Types: {:#x} Capabilities: {:#x}",
        g.types, g.capabilities
    )?;
    let names = ["all", "select", "indirect", "fast failover"];
    for (i, name) in names.iter().enumerate() {
        if g.types & (1 << i) == 0 {
            continue;
        }
        write!(
            f,
            " {name} group: max_groups={:#x} actions: ",
            g.max_groups[i]
        )?;
        bit_names(f, g.actions[i], action_bit_name)?;
    }
    Ok(())
}

/// OVS prints table features over dozens of lines; we give the fixed part and the property
/// types present, which is what a reader scanning a capture needs.
fn table_features(f: &mut impl Write, t: &TableFeatures) -> fmt::Result {
    write!(
        f,
        "table {} (\"{}\"): metadata: match={:#x} write={:#x} config={:#x} max_entries={} properties:",
        t.table_id,
        WireStr(&t.name),
        t.metadata_match,
        t.metadata_write,
        t.config,
        t.max_entries
    )?;
    if t.properties.is_empty() {
        return f.write_str(" none");
    }
    for p in &t.properties {
        use TableFeatureProp::*;
        let miss = |m: &bool| if *m { "_miss" } else { "" };
        match p {
            Instructions { miss: m, ids } => write!(f, " instructions{}({})", miss(m), ids.len())?,
            NextTables { miss: m, tables } => {
                write!(f, " next_tables{}(", miss(m))?;
                for (i, t) in tables.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_char(')')?;
            }
            WriteActions { miss: m, ids } => write!(f, " write_actions{}({})", miss(m), ids.len())?,
            ApplyActions { miss: m, ids } => write!(f, " apply_actions{}({})", miss(m), ids.len())?,
            Match(ids) => write!(f, " match({})", ids.len())?,
            Wildcards(ids) => write!(f, " wildcards({})", ids.len())?,
            WriteSetfield { miss: m, ids } => {
                write!(f, " write_setfield{}({})", miss(m), ids.len())?
            }
            ApplySetfield { miss: m, ids } => {
                write!(f, " apply_setfield{}({})", miss(m), ids.len())?
            }
            Experimenter {
                miss: m,
                experimenter,
                exp_type,
                ..
            } => write!(
                f,
                " experimenter{}({experimenter:#010x},{exp_type})",
                miss(m)
            )?,
            Unknown { typ, data } => write!(f, " property{typ}({} bytes)", data.len())?,
        }
    }
    Ok(())
}
