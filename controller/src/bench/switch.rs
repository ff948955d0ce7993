//! One emulated OpenFlow 1.3 switch of the load generator, as a sans-IO state machine: whole
//! messages from the controller go in with the time they arrived, bytes to send come out, and
//! packet-ins are emitted on demand while keeping a bounded window of them in flight.
//!
//! The handshake states follow the session they talk to: `ExpectHello → ExpectFeaturesRequest →
//! ExpectProbeReply → Ready`. After its FEATURES_REPLY the switch sends an ECHO_REQUEST probe;
//! the probe's reply proves the controller has read everything before it (controllers handle one
//! connection's messages in order), so whatever it asked in reaction to the features reply
//! (PORT_DESC, SET_CONFIG, a table-miss flow) has been answered before the first packet-in. os-ken,
//! for one, ignores packet-ins until its PORT_DESC request is answered.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use ofproto::{
    FeaturesReply, Hello, Match, Message, MultipartReply, MultipartReplyBody, MultipartRequestBody,
    OfMessage, OxmField, PacketIn, PacketInReason, Port, SwitchConfig as OfSwitchConfig,
    OFP_HEADER_LEN, OFP_NO_BUFFER, OFP_VERSION,
};

use super::frame;
use super::virt::{self, VirtualSwitch};
use ofproto::header::msg_type;

/// What one emulated switch looks like and how hard it pushes.
#[derive(Debug, Clone)]
pub struct SwitchConfig {
    /// 0-based index among the emulated switches; shapes the MACs and port names.
    pub index: u32,
    /// Datapath id announced in FEATURES_REPLY.
    pub dpid: u64,
    /// Number of ports (1..=ports) announced in PORT_DESC; hosts are spread over them.
    pub ports: u32,
    /// Distinct hosts (source MACs) behind the switch.
    pub macs: u32,
    /// Packet-ins kept in flight (the window).
    pub in_flight: u32,
    /// A packet-in unanswered after this long is counted lost and leaves the window.
    pub loss_timeout: Duration,
    /// Stop after this many packet-ins (then wait for their answers) instead of running until
    /// the schedule's end.
    pub limit: Option<u64>,
    /// The virtual-topology mode: the switch is an emulated host whose VIFs are bound to
    /// logical ports; it sends from its senders and checks every answer.
    pub virt: Option<Arc<VirtualSwitch>>,
}

/// When the measured part of a run starts and ends; events outside it are counted in the totals
/// only.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Start of the measurement window (after the warm-up).
    pub measure_from: Instant,
    /// End of the run.
    pub stop_at: Instant,
    /// Packet-ins per second for this switch; `None` sends as fast as the window allows.
    pub rate: Option<f64>,
}

/// Event counts of one switch (or, summed, of a run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// PACKET_INs sent.
    pub packet_ins: u64,
    /// PACKET_INs answered: a PACKET_OUT carrying the frame of one still in flight arrived.
    pub answered: u64,
    /// FLOW_MODs received.
    pub flow_mods: u64,
    /// PACKET_OUTs received (answers, floods of answered frames, anything else).
    pub packet_outs: u64,
    /// PACKET_OUTs whose frame is not a packet-in still in flight (duplicates, late answers
    /// after the loss timeout, frames that are not ours).
    pub unmatched: u64,
    /// Packet-ins given up after the loss timeout.
    pub lost: u64,
    /// ERROR messages from the controller.
    pub errors: u64,
    /// Answers that were not the expected FLOW_MOD and PACKET_OUT (virtual-topology mode).
    pub mismatched: u64,
}

impl Counts {
    /// The counts of `n` packet-ins each answered by one FLOW_MOD and one PACKET_OUT, with
    /// nothing lost, unmatched or refused: what a run against the responder must show.
    #[cfg(test)]
    pub(crate) fn all_answered(n: u64) -> Counts {
        Counts {
            packet_ins: n,
            answered: n,
            flow_mods: n,
            packet_outs: n,
            ..Counts::default()
        }
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Counts) {
        self.packet_ins += other.packet_ins;
        self.answered += other.answered;
        self.flow_mods += other.flow_mods;
        self.packet_outs += other.packet_outs;
        self.unmatched += other.unmatched;
        self.lost += other.lost;
        self.errors += other.errors;
        self.mismatched += other.mismatched;
    }
}

/// Why an emulated switch gave up on its controller.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// The controller sent bytes the codec rejects.
    #[error("undecodable message from the controller: {0}")]
    Codec(#[from] ofproto::Error),
    /// The header's length field is below the header size.
    #[error("message length {0} is shorter than the OpenFlow header")]
    BadLength(usize),
    /// The controller's HELLO does not offer OpenFlow 1.3.
    #[error("the controller does not offer OpenFlow 1.3")]
    Incompatible,
    /// A message that makes no sense in the current handshake state.
    #[error("unexpected {what} before the handshake finished")]
    Unexpected {
        /// The message received.
        what: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    ExpectHello,
    ExpectFeaturesRequest,
    ExpectProbeReply { xid: u32 },
    Ready,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    seq: u64,
    sent_at: Option<Instant>,
    /// Virtual-topology mode: the sender and destination it carries.
    sender: u32,
    dst: u32,
}

/// What the invalidation run records: which sender's packet-in installed each cookie, and when
/// each delete-by-cookie arrived.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// Cookie → sender index, for flows installed after the learning round.
    pub installed: HashMap<u64, u32>,
    /// (arrival, cookie) of every flow-cache delete by cookie.
    pub deletes: Vec<(Instant, u64)>,
}

/// Paces an open-loop run: credit grows at the target rate and each packet-in spends one. The
/// credit is capped so a stall (a full window) is not followed by a burst that would distort
/// the latencies measured at that rate.
#[derive(Debug, Clone, Copy)]
struct Pacer {
    per_sec: f64,
    credit: f64,
    last: Instant,
}

impl Pacer {
    const MAX_BURST_SECS: f64 = 0.002;

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        let cap = (self.per_sec * Self::MAX_BURST_SECS).max(1.0);
        self.credit = (self.credit + dt * self.per_sec).min(cap);
    }
}

/// One emulated switch. See the module documentation for the handshake.
pub struct EmulatedSwitch {
    cfg: SwitchConfig,
    phase: Phase,
    next_xid: u32,
    config: OfSwitchConfig,
    /// One encoded PACKET_IN per port (the match carries `in_port`); the frame at `data_at` is
    /// patched per packet-in, so the hot path copies bytes instead of encoding.
    templates: Vec<Bytes>,
    data_at: usize,
    ring: Vec<Slot>,
    seq: u64,
    outstanding: u32,
    schedule: Option<Schedule>,
    pacer: Option<Pacer>,
    totals: Counts,
    window: Counts,
    latency: Histogram<u64>,
    /// Virtual-topology mode: the classifier's `in_port → metadata` entries seen so far.
    classify: HashMap<u32, u64>,
    /// Virtual-topology mode: the tunnel ports the classifier sends to the tunnel demux table.
    tunnels_in: std::collections::HashSet<u32>,
    /// The last flow-cache add since the last PACKET_OUT (the engine sends a packet-in's
    /// FLOW_MOD right before its PACKET_OUT).
    pending: Option<ofproto::FlowMod>,
    /// The first few mismatches, described.
    pub mismatch_examples: Vec<String>,
    /// Invalidation run only.
    pub record: Record,
    /// Virtual-topology mode: in the learning round (one packet-in per sender, then wait).
    learning: bool,
    /// Virtual-topology mode: the first packet-in whose answer is checked (sent after every
    /// switch's learning round, when every destination MAC is known).
    checked_from: u64,
}

impl EmulatedSwitch {
    /// A switch in its initial state; call [`EmulatedSwitch::start`] once connected.
    pub fn new(cfg: SwitchConfig) -> Self {
        let cfg = SwitchConfig {
            ports: cfg.ports.max(2),
            macs: cfg.macs.max(2),
            in_flight: cfg.in_flight.max(1),
            ..cfg
        };
        let templates: Vec<Bytes> = (1..=cfg.ports)
            .map(|port| {
                OfMessage::new(
                    0,
                    Message::PacketIn(PacketIn {
                        buffer_id: OFP_NO_BUFFER,
                        total_len: frame::FRAME_LEN as u16,
                        reason: PacketInReason::NoMatch,
                        table_id: 0,
                        cookie: 0,
                        match_: Match::new().with(OxmField::InPort(port)),
                        data: Bytes::copy_from_slice(&frame::build([0; 6], [0; 6])),
                    }),
                )
                .to_bytes()
            })
            .collect();
        // The data is the last part of a PACKET_IN, so it ends where the message ends.
        let data_at = templates[0].len() - frame::FRAME_LEN;
        let ring_len = (cfg.in_flight as usize).next_power_of_two() * 2;
        Self {
            phase: Phase::ExpectHello,
            next_xid: 1,
            config: OfSwitchConfig {
                flags: 0,
                miss_send_len: 128,
            },
            templates,
            data_at,
            ring: vec![Slot::default(); ring_len],
            seq: 0,
            outstanding: 0,
            schedule: None,
            pacer: None,
            totals: Counts::default(),
            window: Counts::default(),
            classify: HashMap::new(),
            tunnels_in: std::collections::HashSet::new(),
            pending: None,
            mismatch_examples: Vec::new(),
            record: Record::default(),
            learning: true,
            checked_from: u64::MAX,
            // 1 ns to 60 s with 3 significant digits: a fixed-size histogram, cannot fail.
            latency: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .expect("constant histogram bounds are valid"),
            cfg,
        }
    }

    /// Emits the switch's HELLO; call once, right after connecting.
    pub fn start(&mut self, out: &mut BytesMut) {
        let xid = self.xid();
        OfMessage::new(xid, Message::Hello(Hello::of13())).emit(out);
    }

    /// True once the handshake (including the probe) is over, and in the virtual-topology
    /// mode once the classifier binds every sender's VIF to its logical port's key.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
            && self.cfg.virt.as_ref().is_none_or(|v| {
                v.senders
                    .iter()
                    .all(|s| self.classify.get(&s.in_port) == Some(&s.key))
                    && v.tunnels.iter().all(|t| self.tunnels_in.contains(t))
            })
    }

    /// The virtual-topology mode's templates: one PACKET_IN per sender, as OVS sends a
    /// flow-cache miss (table 20, `in_port` and the metadata the classifier wrote).
    fn virtual_templates(&mut self) {
        let Some(v) = self.cfg.virt.clone() else {
            return;
        };
        self.templates = v
            .senders
            .iter()
            .map(|s| {
                OfMessage::new(
                    0,
                    Message::PacketIn(PacketIn {
                        buffer_id: OFP_NO_BUFFER,
                        total_len: frame::FRAME_LEN as u16,
                        reason: PacketInReason::NoMatch,
                        table_id: virt::TABLE_CACHE,
                        cookie: 0,
                        match_: Match::new().with(OxmField::InPort(s.in_port)).with(
                            OxmField::Metadata {
                                value: s.key,
                                mask: None,
                            },
                        ),
                        data: Bytes::copy_from_slice(&frame::build([0; 6], [0; 6])),
                    }),
                )
                .to_bytes()
            })
            .collect();
        self.data_at = self
            .templates
            .first()
            .map_or(0, |t| t.len() - frame::FRAME_LEN);
    }

    /// Virtual-topology mode: a FLOW_MOD from the engine, parsed.
    fn on_flow_mod(&mut self, fm: ofproto::FlowMod, now: Instant) {
        use ofproto::FlowModCommand as C;
        match (fm.command, fm.table_id) {
            (C::Add | C::Modify | C::ModifyStrict, virt::TABLE_CLASSIFY) => {
                let meta = fm.instructions.iter().find_map(|i| match i {
                    ofproto::Instruction::WriteMetadata { metadata, .. } => Some(*metadata),
                    _ => None,
                });
                let demux = fm.instructions.iter().any(
                    |i| matches!(i, ofproto::Instruction::GotoTable(t) if *t == virt::TABLE_TUNNEL),
                );
                match (fm.match_.in_port(), meta) {
                    (Some(p), Some(m)) => {
                        self.classify.insert(p, m);
                    }
                    (Some(p), None) if demux => {
                        self.tunnels_in.insert(p);
                    }
                    _ => {}
                }
            }
            (C::DeleteStrict, virt::TABLE_CLASSIFY) => {
                if let Some(p) = fm.match_.in_port() {
                    self.classify.remove(&p);
                    self.tunnels_in.remove(&p);
                }
            }
            (C::Add, virt::TABLE_CACHE) => self.pending = Some(fm),
            (C::Delete | C::DeleteStrict, virt::TABLE_CACHE)
                if fm.cookie_mask == u64::MAX
                    && self.cfg.virt.as_ref().is_some_and(|v| v.record) =>
            {
                self.record.deletes.push((now, fm.cookie));
            }
            _ => {}
        }
    }

    /// Starts streaming packet-ins under `schedule`; [`EmulatedSwitch::fill`] does the sending.
    pub fn begin(&mut self, schedule: Schedule, now: Instant) {
        self.pacer = schedule.rate.map(|per_sec| Pacer {
            per_sec,
            credit: 1.0,
            last: now,
        });
        self.schedule = Some(schedule);
    }

    /// Handles one whole message from the controller (as split by [`split_message`]).
    pub fn handle(
        &mut self,
        msg: &[u8],
        now: Instant,
        out: &mut BytesMut,
    ) -> Result<(), SwitchError> {
        // FLOW_MODs are only counted: parsing them would make the generator pay for a decode the
        // measurement does not need, and its own cost is what caps the figures it can report.
        if msg.get(1) == Some(&msg_type::FLOW_MOD) && msg[0] == OFP_VERSION {
            self.count(now, |c| c.flow_mods += 1);
            if self.cfg.virt.is_none() {
                return Ok(());
            }
        }
        let parsed = OfMessage::parse(msg)?;
        let xid = parsed.xid;
        match parsed.body {
            Message::FlowMod(fm) => self.on_flow_mod(fm, now),
            Message::PacketOut(po) => self.on_packet_out(&po, now),
            Message::Hello(hello) => {
                if self.phase != Phase::ExpectHello {
                    return Ok(());
                }
                if !hello.supports(parsed.version, OFP_VERSION) {
                    return Err(SwitchError::Incompatible);
                }
                self.phase = Phase::ExpectFeaturesRequest;
            }
            _ if self.phase == Phase::ExpectHello => {
                return Err(SwitchError::Unexpected {
                    what: "message before HELLO",
                })
            }
            Message::FeaturesRequest => {
                self.reply(
                    xid,
                    Message::FeaturesReply(FeaturesReply {
                        datapath_id: self.cfg.dpid,
                        n_buffers: 0,
                        n_tables: 254,
                        auxiliary_id: 0,
                        // Flow, table, port, group and queue statistics, like OVS.
                        capabilities: 0x4f,
                    }),
                    out,
                );
                if self.phase == Phase::ExpectFeaturesRequest {
                    let probe = self.xid();
                    OfMessage::new(probe, Message::EchoRequest(Bytes::new())).emit(out);
                    self.phase = Phase::ExpectProbeReply { xid: probe };
                }
            }
            Message::EchoReply(_) if self.phase == (Phase::ExpectProbeReply { xid }) => {
                self.phase = Phase::Ready;
                self.virtual_templates();
            }
            Message::EchoRequest(data) => self.reply(xid, Message::EchoReply(data), out),
            Message::BarrierRequest => self.reply(xid, Message::BarrierReply, out),
            Message::GetConfigRequest => self.reply(xid, Message::GetConfigReply(self.config), out),
            Message::SetConfig(config) => self.config = config,
            Message::RoleRequest(role) => self.reply(xid, Message::RoleReply(role), out),
            Message::MultipartRequest(req) => self.on_multipart(xid, req.body, msg, out),
            Message::Error(_) => self.count(now, |c| c.errors += 1),
            // Everything else a controller may send a switch (GROUP_MOD, PORT_MOD, TABLE_MOD,
            // METER_MOD, SET_ASYNC, experimenter messages) is accepted silently: the generator
            // has no tables to apply them to.
            _ => {}
        }
        Ok(())
    }

    fn on_multipart(
        &mut self,
        xid: u32,
        body: MultipartRequestBody,
        request: &[u8],
        out: &mut BytesMut,
    ) {
        let reply = match body {
            MultipartRequestBody::PortDesc => MultipartReplyBody::PortDesc(self.ports()),
            MultipartRequestBody::Desc => MultipartReplyBody::Desc(ofproto::Desc {
                mfr_desc: "Strowger".into(),
                hw_desc: "ofload emulated switch".into(),
                sw_desc: env!("CARGO_PKG_VERSION").into(),
                serial_num: format!("{}", self.cfg.index),
                dp_desc: format!("ofload switch {}", self.cfg.index),
            }),
            // Statistics of tables the generator does not have: empty answers keep a controller
            // that polls them happy.
            MultipartRequestBody::Flow(_) => MultipartReplyBody::Flow(Vec::new()),
            MultipartRequestBody::PortStats { .. } => MultipartReplyBody::PortStats(Vec::new()),
            _ => {
                self.reply(
                    xid,
                    Message::Error(ofproto::ErrorMsg::for_request(
                        ofproto::ErrorType::BadRequest(
                            ofproto::error::BadRequestCode::BadMultipart,
                        ),
                        request,
                    )),
                    out,
                );
                return;
            }
        };
        self.reply(
            xid,
            Message::MultipartReply(MultipartReply {
                flags: 0,
                body: reply,
            }),
            out,
        );
    }

    fn ports(&self) -> Vec<Port> {
        let numbers: Vec<u32> = match &self.cfg.virt {
            Some(v) => v.ports.clone(),
            None => (1..=self.cfg.ports).collect(),
        };
        numbers
            .into_iter()
            .map(|port_no| Port {
                port_no,
                hw_addr: frame::host_mac(self.cfg.index, 0xff_0000 | port_no),
                name: format!("s{}-eth{}", self.cfg.index + 1, port_no),
                config: 0,
                state: 4,    // OFPPS_LIVE
                curr: 0x840, // 10GB_FD | COPPER
                advertised: 0,
                supported: 0,
                peer: 0,
                curr_speed: 10_000_000,
                max_speed: 10_000_000,
            })
            .collect()
    }

    fn on_packet_out(&mut self, po: &ofproto::PacketOut, now: Instant) {
        self.count(now, |c| c.packet_outs += 1);
        let pending = self.pending.take();
        let Some(tag) = frame::tag(&po.data) else {
            self.count(now, |c| c.unmatched += 1);
            return;
        };
        let mask = self.ring.len() - 1;
        let slot = &mut self.ring[(tag as usize) & mask];
        match slot.sent_at {
            Some(sent_at) if slot.seq == tag => {
                slot.sent_at = None;
                let (sender, dst) = (slot.sender, slot.dst);
                self.outstanding -= 1;
                self.count(now, |c| c.answered += 1);
                if let Some(v) = self.cfg.virt.clone() {
                    // The learning round's answers may be floods: checked from then on.
                    if tag >= self.checked_from {
                        let s = &v.senders[sender as usize];
                        let d = &v.dsts[dst as usize];
                        match virt::check(s, d, pending.as_ref(), po) {
                            Ok(()) => {
                                if let (true, Some(fm)) = (v.record, &pending) {
                                    self.record.installed.insert(fm.cookie, sender);
                                }
                            }
                            Err(why) => {
                                self.count(now, |c| c.mismatched += 1);
                                if self.mismatch_examples.len() < 5 {
                                    self.mismatch_examples
                                        .push(format!("packet-in {tag} (sender {sender}): {why}"));
                                }
                            }
                        }
                    }
                }
                if let Some(s) = self.schedule {
                    if sent_at >= s.measure_from && now < s.stop_at {
                        let ns = now.saturating_duration_since(sent_at).as_nanos();
                        let ns = u64::try_from(ns).unwrap_or(u64::MAX).max(1);
                        // Out-of-range values saturate rather than fail.
                        self.latency.saturating_record(ns);
                    }
                }
            }
            _ => self.count(now, |c| c.unmatched += 1),
        }
    }

    /// Virtual-topology mode: ends the learning round; packet-ins from now on are checked.
    pub fn end_learning(&mut self) {
        if self.learning {
            self.learning = false;
            self.checked_from = self.seq;
        }
    }

    /// Emits packet-ins while the window, the pacing and the schedule allow.
    pub fn fill(&mut self, now: Instant, out: &mut BytesMut) {
        let Some(schedule) = self.schedule else {
            return;
        };
        if now >= schedule.stop_at {
            return;
        }
        if let Some(p) = self.pacer.as_mut() {
            p.refill(now);
        }
        let mask = self.ring.len() - 1;
        // The learning round of the virtual-topology mode is one answered packet-in per
        // sender (one lost is sent again once the loss timeout frees its slot).
        let learning_cap = match &self.cfg.virt {
            Some(v) if self.learning => Some(v.senders.len() as u64),
            _ => None,
        };
        while self.outstanding < self.cfg.in_flight
            && self.ring[(self.seq as usize) & mask].sent_at.is_none()
            && self.cfg.limit.is_none_or(|l| self.seq < l)
            && learning_cap.is_none_or(|l| self.totals.answered + u64::from(self.outstanding) < l)
        {
            if let Some(p) = self.pacer.as_mut() {
                if p.credit < 1.0 {
                    break;
                }
                p.credit -= 1.0;
            }
            self.emit_packet_in(now, out);
        }
    }

    fn emit_packet_in(&mut self, now: Instant, out: &mut BytesMut) {
        if let Some(v) = self.cfg.virt.clone() {
            return self.emit_virtual(&v, now, out);
        }
        let seq = self.seq;
        self.seq += 1;
        let macs = u64::from(self.cfg.macs);
        // Host n talks to host n+1: after the first round every destination has been seen as a
        // source, so a learning switch answers with a FLOW_MOD and a PACKET_OUT.
        let src = (seq % macs) as u32;
        let dst = ((seq + 1) % macs) as u32;
        let port = src % self.cfg.ports; // 0-based template index; in_port = port + 1
        let xid = self.xid();
        let start = out.len();
        out.extend_from_slice(&self.templates[port as usize]);
        let msg = &mut out[start..];
        msg[4..8].copy_from_slice(&xid.to_be_bytes());
        let f = &mut msg[self.data_at..];
        f[frame::ETH_DST].copy_from_slice(&frame::host_mac(self.cfg.index, dst));
        f[frame::ETH_SRC].copy_from_slice(&frame::host_mac(self.cfg.index, src));
        frame::set_tag(f, seq);
        let mask = self.ring.len() - 1;
        self.ring[(seq as usize) & mask] = Slot {
            seq,
            sent_at: Some(now),
            sender: 0,
            dst: 0,
        };
        self.outstanding += 1;
        self.count(now, |c| c.packet_ins += 1);
    }

    fn emit_virtual(&mut self, v: &VirtualSwitch, now: Instant, out: &mut BytesMut) {
        let seq = self.seq;
        self.seq += 1;
        let (sender, dst, tp) = v.pick(seq);
        let xid = self.xid();
        let start = out.len();
        out.extend_from_slice(&self.templates[sender as usize]);
        let msg = &mut out[start..];
        msg[4..8].copy_from_slice(&xid.to_be_bytes());
        let f = &mut msg[self.data_at..];
        f.copy_from_slice(&v.frame(sender, dst, tp));
        frame::set_tag(f, seq);
        let mask = self.ring.len() - 1;
        self.ring[(seq as usize) & mask] = Slot {
            seq,
            sent_at: Some(now),
            sender,
            dst,
        };
        self.outstanding += 1;
        self.count(now, |c| c.packet_ins += 1);
    }

    /// Gives up on packet-ins older than the loss timeout, freeing their window slots.
    pub fn expire(&mut self, now: Instant) {
        let timeout = self.cfg.loss_timeout;
        let mut lost = 0;
        for slot in &mut self.ring {
            if let Some(sent_at) = slot.sent_at {
                if now.saturating_duration_since(sent_at) >= timeout {
                    slot.sent_at = None;
                    lost += 1;
                }
            }
        }
        if lost > 0 {
            self.outstanding -= lost;
            self.count(now, |c| c.lost += u64::from(lost));
        }
    }

    /// True when a run with a packet-in limit has sent them all and none is in flight.
    pub fn done(&self) -> bool {
        self.cfg.limit.is_some_and(|l| self.seq >= l) && self.outstanding == 0
    }

    /// True in the virtual-topology mode (the driver then waits for the coordinator's stop
    /// instead of ending at [`EmulatedSwitch::done`]).
    pub fn is_virtual(&self) -> bool {
        self.cfg.virt.is_some()
    }

    /// Packet-ins in flight now.
    pub fn outstanding(&self) -> u32 {
        self.outstanding
    }

    /// Everything counted since the start.
    pub fn totals(&self) -> Counts {
        self.totals
    }

    /// What was counted inside the measurement window.
    pub fn window(&self) -> Counts {
        self.window
    }

    /// Latencies (ns) of packet-ins sent and answered inside the measurement window.
    pub fn latency(&self) -> &Histogram<u64> {
        &self.latency
    }

    fn count(&mut self, now: Instant, f: impl Fn(&mut Counts)) {
        f(&mut self.totals);
        if let Some(s) = self.schedule {
            if now >= s.measure_from && now < s.stop_at {
                f(&mut self.window);
            }
        }
    }

    fn reply(&mut self, xid: u32, body: Message, out: &mut BytesMut) {
        OfMessage::new(xid, body).emit(out);
    }

    fn xid(&mut self) -> u32 {
        let x = self.next_xid;
        self.next_xid = self.next_xid.wrapping_add(1).max(1);
        x
    }
}

/// Splits one whole OpenFlow message off the front of `buf`, or returns `None` when more bytes
/// are needed. Only the header is read: the hot path decides from the type whether to parse.
pub fn split_message(buf: &mut BytesMut) -> Result<Option<BytesMut>, SwitchError> {
    if buf.len() < OFP_HEADER_LEN {
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    if len < OFP_HEADER_LEN {
        return Err(SwitchError::BadLength(len));
    }
    if buf.len() < len {
        return Ok(None);
    }
    Ok(Some(buf.split_to(len)))
}

#[cfg(test)]
mod tests {
    use super::super::responder::Responder;
    use super::*;

    fn cfg(limit: Option<u64>, in_flight: u32) -> SwitchConfig {
        SwitchConfig {
            index: 3,
            dpid: 4,
            ports: 4,
            macs: 50,
            in_flight,
            loss_timeout: Duration::from_millis(100),
            limit,
            virt: None,
        }
    }

    fn far_schedule(t0: Instant) -> Schedule {
        Schedule {
            measure_from: t0,
            stop_at: t0 + Duration::from_secs(3600),
            rate: None,
        }
    }

    /// Delivers every whole message in `buf` to `f`.
    fn deliver(buf: &mut BytesMut, mut f: impl FnMut(&[u8])) {
        while let Some(msg) = split_message(buf).expect("well-formed stream") {
            f(&msg);
        }
        assert!(buf.is_empty(), "only whole messages are ever written");
    }

    #[test]
    fn bench_switch_and_responder_exchange_thousands_of_packet_ins() {
        let mut sw = EmulatedSwitch::new(cfg(Some(3000), 8));
        let mut resp = Responder::default();
        let (mut to_ctl, mut to_sw) = (BytesMut::new(), BytesMut::new());
        sw.start(&mut to_ctl);
        resp.start(&mut to_sw);
        let t0 = Instant::now();
        let mut begun = false;
        for step in 0.. {
            assert!(step < 10_000, "the exchange must finish");
            deliver(&mut to_ctl, |m| {
                resp.handle(m, &mut to_sw).expect("responder")
            });
            deliver(&mut to_sw, |m| {
                sw.handle(m, Instant::now(), &mut to_ctl).expect("switch")
            });
            if sw.is_ready() && !begun {
                sw.begin(far_schedule(t0), Instant::now());
                begun = true;
            }
            sw.fill(Instant::now(), &mut to_ctl);
            assert!(sw.outstanding() <= 8, "the window is respected");
            if sw.done() {
                break;
            }
        }
        let t = sw.totals();
        assert_eq!(t, Counts::all_answered(3000));
        assert_eq!(resp.answered, 3000);
        assert_eq!(sw.window(), t, "everything happened inside the window");
        assert_eq!(sw.latency().len(), 3000);
    }

    /// Runs the handshake against a responder and returns the ready switch.
    fn ready_switch(c: SwitchConfig) -> EmulatedSwitch {
        let mut sw = EmulatedSwitch::new(c);
        let mut resp = Responder::default();
        let (mut to_ctl, mut to_sw) = (BytesMut::new(), BytesMut::new());
        sw.start(&mut to_ctl);
        resp.start(&mut to_sw);
        for _ in 0..4 {
            deliver(&mut to_ctl, |m| {
                resp.handle(m, &mut to_sw).expect("responder")
            });
            deliver(&mut to_sw, |m| {
                sw.handle(m, Instant::now(), &mut to_ctl).expect("switch")
            });
        }
        assert!(sw.is_ready());
        sw
    }

    #[test]
    fn bench_packet_ins_carry_learnable_hosts() {
        let mut sw = ready_switch(cfg(None, 100));
        sw.begin(far_schedule(Instant::now()), Instant::now());
        let mut out = BytesMut::new();
        sw.fill(Instant::now(), &mut out);
        assert_eq!(sw.outstanding(), 100);
        let mut seen_src = std::collections::HashMap::new();
        let mut n = 0u64;
        deliver(&mut out, |m| {
            let msg = OfMessage::parse(m).expect("our packet-ins parse");
            let Message::PacketIn(pi) = msg.body else {
                panic!("only packet-ins are sent: {msg:?}")
            };
            assert_eq!(pi.buffer_id, OFP_NO_BUFFER);
            assert_eq!(frame::tag(&pi.data), Some(n));
            let src: [u8; 6] = pi.data[frame::ETH_SRC].try_into().unwrap();
            let dst: [u8; 6] = pi.data[frame::ETH_DST].try_into().unwrap();
            let port = pi.match_.in_port().expect("in_port in the match");
            assert!((1..=4).contains(&port));
            // A MAC always appears on the same port, and never talks to its own port.
            assert_eq!(*seen_src.entry(src).or_insert(port), port);
            if let Some(&dst_port) = seen_src.get(&dst) {
                assert_ne!(dst_port, port);
            }
            n += 1;
        });
        assert_eq!(n, 100);
        // 50 hosts: the second round's destinations were all sources of the first.
        assert_eq!(seen_src.len(), 50);
    }

    #[test]
    fn bench_unanswered_packet_ins_are_lost_and_free_the_window() {
        let mut sw = ready_switch(cfg(None, 8));
        let t0 = Instant::now();
        sw.begin(far_schedule(t0), t0);
        let mut out = BytesMut::new();
        sw.fill(t0, &mut out);
        assert_eq!(sw.outstanding(), 8);
        sw.fill(t0, &mut out);
        assert_eq!(sw.totals().packet_ins, 8, "a full window sends nothing");
        sw.expire(t0 + Duration::from_millis(50));
        assert_eq!(sw.totals().lost, 0);
        sw.expire(t0 + Duration::from_millis(100));
        assert_eq!((sw.totals().lost, sw.outstanding()), (8, 0));
        sw.fill(t0 + Duration::from_millis(100), &mut out);
        assert_eq!(sw.totals().packet_ins, 16);
        // A late answer to a lost packet-in is not an answer.
        let mut frame0 = frame::build([0; 6], [0; 6]);
        frame::set_tag(&mut frame0, 0);
        let po = OfMessage::new(
            9,
            Message::PacketOut(ofproto::PacketOut {
                buffer_id: OFP_NO_BUFFER,
                in_port: 1,
                actions: vec![],
                data: Bytes::copy_from_slice(&frame0),
            }),
        )
        .to_bytes();
        sw.handle(&po, t0 + Duration::from_millis(101), &mut out)
            .unwrap();
        assert_eq!((sw.totals().answered, sw.totals().unmatched), (0, 1));
    }

    #[test]
    fn bench_pacing_limits_the_rate() {
        let mut sw = ready_switch(cfg(None, 1000));
        let t0 = Instant::now();
        sw.begin(
            Schedule {
                rate: Some(1000.0),
                ..far_schedule(t0)
            },
            t0,
        );
        let mut out = BytesMut::new();
        for ms in 0..=100 {
            sw.fill(t0 + Duration::from_millis(ms), &mut out);
        }
        // 1000/s over 100 ms is 100 packet-ins, plus the initial credit.
        assert_eq!(sw.totals().packet_ins, 101);
    }

    #[test]
    fn bench_switch_refuses_a_controller_without_openflow_13() {
        let mut sw = EmulatedSwitch::new(cfg(None, 1));
        let mut out = BytesMut::new();
        sw.start(&mut out);
        // An OpenFlow 1.0 HELLO without a version bitmap.
        let hello10 = [0x01, 0x00, 0x00, 0x08, 0, 0, 0, 1];
        let err = sw.handle(&hello10, Instant::now(), &mut out).unwrap_err();
        assert!(matches!(err, SwitchError::Incompatible), "{err}");
    }

    #[test]
    fn bench_split_message_rejects_absurd_lengths() {
        let mut buf = BytesMut::from(&[0x04u8, 0, 0, 4, 0, 0, 0, 0][..]);
        assert!(matches!(
            split_message(&mut buf),
            Err(SwitchError::BadLength(4))
        ));
        let mut partial = BytesMut::from(&[0x04u8, 0, 0, 16, 0, 0, 0, 0][..]);
        assert!(split_message(&mut partial).unwrap().is_none());
    }
}
