//! `strowger ofp decode HEX`: a user-facing OpenFlow 1.3 decoder, like `ovs-ofctl ofp-print`.
//!
//! Output is the decoded message as JSON (serde), or with `--text` one `ovs-ofctl`-style line;
//! `--reencode` appends the hex of emitting the decoded message again, so a reader can see at a
//! glance whether the codec round-trips it. Bad input is one line on stderr and a non-zero exit.

use std::fmt::Write as _;
use std::process::ExitCode;

use ofproto::display::{Mac, PortName};
use ofproto::packet::PacketView;
use ofproto::{Action, Message, MeterBand, MultipartReplyBody, MultipartRequestBody, OfMessage};

/// Subcommands of `strowger ofp`.
#[derive(clap::Subcommand)]
pub enum OfpCommand {
    /// Decode one OpenFlow message given as hex.
    Decode {
        /// The message bytes in hex; whitespace is ignored, so the hex may span several arguments.
        #[arg(required = true)]
        hex: Vec<String>,
        /// Print one ovs-ofctl-style line instead of JSON.
        #[arg(long)]
        text: bool,
        /// Append, as the last line, the hex of re-emitting the decoded message.
        #[arg(long)]
        reencode: bool,
    },
}

/// Why decoding failed; printed as one line on stderr.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// No hex digits at all.
    #[error("no input: give the message as hex, e.g. `strowger ofp decode 0400000800000001`")]
    Empty,
    /// Not valid hex.
    #[error("invalid hex: {0}")]
    Hex(#[from] hex::FromHexError),
    /// Hex, but not a well-formed OpenFlow 1.3 message; `reply` is the ERROR a switch would
    /// send back for it.
    #[error("malformed OpenFlow message: {error}{reply}")]
    Malformed {
        /// What is wrong.
        error: ofproto::Error,
        /// ` (a switch would answer …)`, or empty.
        reply: String,
    },
}

/// Runs an `ofp` subcommand.
pub fn run(cmd: OfpCommand) -> ExitCode {
    match cmd {
        OfpCommand::Decode {
            hex,
            text,
            reencode,
        } => match decode(&hex, text, reencode) {
            Ok(out) => {
                println!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("strowger ofp decode: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Decodes `args` (hex, whitespace anywhere) and renders the output `run` prints.
pub fn decode(args: &[String], text: bool, reencode: bool) -> Result<String, DecodeError> {
    let digits: String = args
        .iter()
        .flat_map(|a| a.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    if digits.is_empty() {
        return Err(DecodeError::Empty);
    }
    let bytes = hex::decode(&digits)?;
    let msg = OfMessage::parse(&bytes).map_err(|error| DecodeError::Malformed {
        reply: error
            .ofp_error()
            .map(|t| format!(" (a switch would answer ERROR {t:?})"))
            .unwrap_or_default(),
        error,
    })?;
    let mut out = if text {
        one_line(&msg)
    } else {
        // Serializing plain data types into a String cannot fail; fall back to Debug anyway
        // rather than panic if a future type gains a fallible serializer.
        serde_json::to_string_pretty(&msg).unwrap_or_else(|e| format!("{msg:?} ({e})"))
    };
    if reencode {
        out.push('\n');
        out.push_str(&hex::encode(msg.to_bytes()));
    }
    Ok(out)
}

/// One line in the manner of `ovs-ofctl ofp-print`: `OFPT_NAME (OF1.3) (xid=0x…): details`.
pub fn one_line(msg: &OfMessage) -> String {
    let mut s = format!(
        "OFPT_{} (OF1.{}) (xid=0x{:x})",
        msg.body.name(),
        msg.version.saturating_sub(1),
        msg.xid
    );
    let details = details(&msg.body);
    if !details.is_empty() {
        s.push_str(": ");
        s.push_str(&details);
    }
    // Keep the promise of one line whatever a Display impl does.
    s.replace('\n', " ")
}

fn actions(list: &[Action]) -> String {
    if list.is_empty() {
        return "drop".into();
    }
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn frame(data: &[u8]) -> String {
    match PacketView::parse(data) {
        Some(view) => format!(" data_len={} {view}", data.len()),
        None if data.is_empty() => String::new(),
        None => format!(" data_len={}", data.len()),
    }
}

fn details(body: &Message) -> String {
    match body {
        Message::FlowMod(fm) => fm.to_string(),
        Message::PacketIn(pi) => {
            let mut s = format!(
                "table_id={} cookie=0x{:x} total_len={} reason={:?}",
                pi.table_id, pi.cookie, pi.total_len, pi.reason
            );
            if !pi.match_.fields.is_empty() {
                let _ = write!(s, " {}", pi.match_);
            }
            if pi.buffer_id != ofproto::OFP_NO_BUFFER {
                let _ = write!(s, " buffer=0x{:08x}", pi.buffer_id);
            }
            s + &frame(&pi.data)
        }
        Message::PacketOut(po) => {
            let mut s = format!("in_port={} actions={}", PortName(po.in_port), actions(&po.actions));
            if po.buffer_id != ofproto::OFP_NO_BUFFER {
                let _ = write!(s, " buffer=0x{:08x}", po.buffer_id);
            }
            s + &frame(&po.data)
        }
        Message::GroupMod(gm) => {
            let mut s = format!(
                "{:?} group_id={},type={:?}",
                gm.command, gm.group_id, gm.group_type
            );
            for b in &gm.buckets {
                let _ = write!(s, ",bucket=weight:{}", b.weight);
                if b.watch_port != ofproto::port_no::ANY {
                    let _ = write!(s, ",watch_port:{}", PortName(b.watch_port));
                }
                if b.watch_group != ofproto::consts::OFPG_ANY {
                    let _ = write!(s, ",watch_group:{}", b.watch_group);
                }
                let _ = write!(s, ",actions={}", actions(&b.actions));
            }
            s
        }
        Message::MeterMod(mm) => {
            let mut s = format!("{:?} meter={} flags=0x{:x}", mm.command, mm.meter_id, mm.flags);
            for band in &mm.bands {
                match band {
                    MeterBand::Drop { rate, burst_size } => {
                        let _ = write!(s, " band=type=drop,rate={rate},burst_size={burst_size}");
                    }
                    MeterBand::DscpRemark {
                        rate,
                        burst_size,
                        prec_level,
                    } => {
                        let _ = write!(
                            s,
                            " band=type=dscp_remark,rate={rate},burst_size={burst_size},prec_level={prec_level}"
                        );
                    }
                    MeterBand::Experimenter {
                        rate,
                        burst_size,
                        experimenter,
                        ..
                    } => {
                        let _ = write!(
                            s,
                            " band=type=experimenter,rate={rate},burst_size={burst_size},experimenter=0x{experimenter:x}"
                        );
                    }
                }
            }
            s
        }
        Message::FlowRemoved(fr) => format!(
            "{} reason={:?} table_id={} cookie=0x{:x} priority={} duration={}.{:09}s packets={} bytes={}",
            fr.match_,
            fr.reason,
            fr.table_id,
            fr.cookie,
            fr.priority,
            fr.duration_sec,
            fr.duration_nsec,
            fr.packet_count,
            fr.byte_count
        ),
        Message::PortStatus(ps) => format!(
            "{:?} port={} name={} addr={}",
            ps.reason,
            PortName(ps.desc.port_no),
            ps.desc.name,
            Mac(ps.desc.hw_addr)
        ),
        Message::MultipartRequest(req) => {
            let more = if req.more() { " flags=more" } else { "" };
            match &req.body {
                MultipartRequestBody::Flow(f) => format!("flow{more} {}", compact(f)),
                MultipartRequestBody::Aggregate(f) => format!("aggregate{more} {}", compact(f)),
                other => format!("{}{more}", compact(other)),
            }
        }
        Message::MultipartReply(rep) => {
            let more = if rep.more() { " flags=more" } else { "" };
            match &rep.body {
                MultipartReplyBody::Flow(stats) => {
                    let flows: Vec<String> = stats.iter().map(ToString::to_string).collect();
                    format!("flow{more} [{}]", flows.join("; "))
                }
                other => format!("{}{more}", compact(other)),
            }
        }
        Message::EchoRequest(data) | Message::EchoReply(data) => format!("{} bytes", data.len()),
        Message::FeaturesRequest
        | Message::GetConfigRequest
        | Message::BarrierRequest
        | Message::BarrierReply
        | Message::GetAsyncRequest => String::new(),
        other => compact(other),
    }
}

/// Compact JSON: the one-line fallback for messages without a dedicated text form.
fn compact<T: serde::Serialize + std::fmt::Debug>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| format!("{v:?}"))
}
