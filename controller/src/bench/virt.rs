//! What an emulated switch of the virtual-topology mode sends and expects: its senders (a VM's
//! MAC and address behind a bound VIF), the destinations each sender talks to, and for each
//! destination the exact forwarding actions the engine must answer with. Pure data and checks;
//! [`super::vtopo`] builds it from the topology it created over REST, [`super::switch`] uses it.

use ofproto::{Action, FlowMod, FlowModCommand, Instruction, OxmField, PacketOut};

/// The engine's flow-cache table (packet-ins come from its miss entry).
pub const TABLE_CACHE: u8 = apps::engine::pipeline::TABLE_CACHE;
/// The classifier table, whose `in_port → write_metadata` entries prove a VIF is bound.
pub const TABLE_CLASSIFY: u8 = apps::engine::pipeline::TABLE_CLASSIFY;
/// The tunnel demux table: a classifier entry sending a port there proves the engine knows
/// that tunnel (until then a copy for the peer host would be left out).
pub const TABLE_TUNNEL: u8 = apps::engine::pipeline::TABLE_TUNNEL;

/// A source of packets: a MAC and an IPv4 address behind one VIF.
#[derive(Debug, Clone)]
pub struct Sender {
    /// The VIF's OpenFlow port.
    pub in_port: u32,
    /// The logical port's tunnel key (the metadata the classifier must write).
    pub key: u64,
    /// Source MAC.
    pub mac: [u8; 6],
    /// Source IPv4 address.
    pub ip: [u8; 4],
    /// Destination MAC in the frame: the peer VM's (bridged), or the router port's (routed).
    pub gateway: Option<[u8; 6]>,
    /// Indices into [`VirtualSwitch::dsts`].
    pub dsts: Vec<u32>,
}

/// A destination and what the engine must do with a packet for it.
#[derive(Debug, Clone)]
pub struct Dst {
    /// Its MAC (the frame's destination when bridged).
    pub mac: [u8; 6],
    /// Its IPv4 address.
    pub ip: [u8; 4],
    /// The forwarding actions expected in the FLOW_MOD and the PACKET_OUT; `None`: not checked
    /// (a broadcast that only teaches the bridge the sender's MAC).
    pub expect: Option<Vec<Action>>,
}

/// One emulated switch's part of the virtual topology.
#[derive(Debug, Clone, Default)]
pub struct VirtualSwitch {
    /// The OpenFlow ports it announces (VIFs and tunnels, as its database numbered them).
    pub ports: Vec<u32>,
    /// Its tunnel ports (the switch is ready once the classifier sends each to the demux).
    pub tunnels: Vec<u32>,
    /// Its senders.
    pub senders: Vec<Sender>,
    /// Destinations, shared by index.
    pub dsts: Vec<Dst>,
    /// Distinct UDP destination ports cycled through (flows that read L4 differ by them).
    pub tp_ports: u16,
    /// Packet-ins in count mode for this switch (overrides `--count`).
    pub limit: Option<u64>,
    /// Record installed cookies and arriving deletes (the invalidation run).
    pub record: bool,
}

impl VirtualSwitch {
    /// Which (sender, destination, UDP port) packet-in number `seq` carries: every sender in
    /// turn, then the next destination of each, then the next UDP port. The first round (`seq`
    /// below the number of senders) is the learning round.
    pub fn pick(&self, seq: u64) -> (u32, u32, u16) {
        let n = self.senders.len().max(1) as u64;
        let s = (seq % n) as usize;
        let sender = &self.senders[s];
        let d = sender.dsts.len().max(1) as u64;
        let j = ((seq / n) % d) as usize;
        let t = ((seq / n / d) % u64::from(self.tp_ports.max(1))) as u16;
        (s as u32, sender.dsts.get(j).copied().unwrap_or(0), t)
    }

    /// The frame of that packet-in (tag 0).
    pub fn frame(&self, sender: u32, dst: u32, tp: u16) -> [u8; super::frame::FRAME_LEN] {
        let s = &self.senders[sender as usize];
        let d = &self.dsts[dst as usize];
        super::frame::build_udp(
            s.mac,
            s.gateway.unwrap_or(d.mac),
            s.ip,
            d.ip,
            40000,
            1000 + tp,
        )
    }
}

/// The forwarding actions of a flow-cache FLOW_MOD: the written action set of a routed flow
/// (after its `check_pkt_larger`), else the applied actions.
fn forwarding(fm: &FlowMod) -> Option<&[Action]> {
    let mut applied = None;
    for i in &fm.instructions {
        match i {
            Instruction::WriteActions(a) => return Some(a),
            Instruction::ApplyActions(a) => applied = Some(&a[..]),
            _ => {}
        }
    }
    applied
}

/// Checks the engine's answer to one packet-in: the FLOW_MOD that preceded the PACKET_OUT on
/// the connection (an add in the flow cache, a reactive cookie, the sender's metadata in its
/// match and the expected actions) and the PACKET_OUT itself (from the sender's port, the same
/// actions). Returns what is wrong, if anything.
pub fn check(
    sender: &Sender,
    dst: &Dst,
    fm: Option<&FlowMod>,
    po: &PacketOut,
) -> Result<(), String> {
    let Some(expect) = &dst.expect else {
        return Ok(());
    };
    let Some(fm) = fm else {
        return Err("PACKET_OUT without a FLOW_MOD before it".into());
    };
    if fm.command != FlowModCommand::Add || fm.table_id != TABLE_CACHE {
        return Err(format!(
            "FLOW_MOD {:?} in table {}, expected an add in table {TABLE_CACHE}",
            fm.command, fm.table_id
        ));
    }
    let reactive = apps::engine::pipeline::PIPELINE_COOKIE | apps::engine::pipeline::REACTIVE_BIT;
    if fm.cookie & reactive != reactive {
        return Err(format!("FLOW_MOD cookie {:#x} is not reactive", fm.cookie));
    }
    let meta = fm.match_.fields.iter().find_map(|f| match f {
        OxmField::Metadata { value, .. } => Some(*value),
        _ => None,
    });
    if meta != Some(sender.key) {
        return Err(format!(
            "FLOW_MOD matches metadata {meta:?}, expected the sender's key {:#x}",
            sender.key
        ));
    }
    if forwarding(fm) != Some(&expect[..]) {
        return Err(format!(
            "FLOW_MOD actions {:?}, expected {expect:?}",
            fm.instructions
        ));
    }
    if po.in_port != sender.in_port {
        return Err(format!(
            "PACKET_OUT in_port {}, expected {}",
            po.in_port, sender.in_port
        ));
    }
    if po.actions != *expect {
        return Err(format!(
            "PACKET_OUT actions {:?}, expected {expect:?}",
            po.actions
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ofproto::{Match, OFP_NO_BUFFER};

    fn sender() -> Sender {
        Sender {
            in_port: 3,
            key: 7,
            mac: [2, 0, 0, 0, 0, 1],
            ip: [10, 1, 0, 2],
            gateway: None,
            dsts: vec![0],
        }
    }

    fn tunnel(key: u64, port: u32) -> Vec<Action> {
        vec![
            Action::SetField(OxmField::TunnelId {
                value: key,
                mask: None,
            }),
            Action::Output { port, max_len: 0 },
        ]
    }

    fn answer(meta: u64, actions: Vec<Action>) -> (FlowMod, PacketOut) {
        let fm = FlowMod {
            table_id: TABLE_CACHE,
            cookie: apps::engine::pipeline::PIPELINE_COOKIE
                | apps::engine::pipeline::REACTIVE_BIT
                | 1,
            match_: Match::new().with(OxmField::Metadata {
                value: meta,
                mask: None,
            }),
            instructions: vec![Instruction::ApplyActions(actions.clone())],
            ..FlowMod::default()
        };
        let po = PacketOut {
            buffer_id: OFP_NO_BUFFER,
            in_port: 3,
            actions,
            data: bytes::Bytes::new(),
        };
        (fm, po)
    }

    /// The checks catch a wrong tunnel key, a flood, a missing FLOW_MOD and a foreign
    /// metadata; the right answer passes, and so does an unchecked broadcast.
    #[test]
    fn bench_check_tells_the_expected_answer_from_near_misses() {
        let dst = Dst {
            mac: [2, 0, 0, 0, 0, 9],
            ip: [10, 1, 0, 9],
            expect: Some(tunnel(42, 1)),
        };
        let (fm, po) = answer(7, tunnel(42, 1));
        assert_eq!(check(&sender(), &dst, Some(&fm), &po), Ok(()));
        let (fm, po) = answer(7, tunnel(43, 1));
        assert!(check(&sender(), &dst, Some(&fm), &po).is_err());
        let mut flood = tunnel(42, 1);
        flood.extend(tunnel(44, 2));
        let (fm, po) = answer(7, flood);
        assert!(check(&sender(), &dst, Some(&fm), &po).is_err());
        let (_, po) = answer(7, tunnel(42, 1));
        assert!(check(&sender(), &dst, None, &po).is_err());
        let (fm, po) = answer(8, tunnel(42, 1));
        assert!(check(&sender(), &dst, Some(&fm), &po).is_err());
        let unchecked = Dst {
            expect: None,
            ..dst
        };
        assert_eq!(check(&sender(), &unchecked, None, &po), Ok(()));
    }
}
