//! The fixed part of every `br-int`: classification, tunnel demux and the flow cache's miss.
//!
//! | table | role | entries |
//! |---|---|---|
//! | 0 classify | where did it come from? | `in_port=<vif of port P>` → `metadata=P.key`, goto 20; `in_port=<tunnel>` → goto 10; `in_port=<unbound interface>` → drop; miss → drop |
//! | 10 tunnel demux | egress host: deliver by key, no simulation | `tun_id=K` → output the local interface of the port with key K; miss → drop |
//! | 20 flow cache | results of simulations | reactive flows (unique cookies, idle + hard timeouts, `send_flow_rem`); miss → CONTROLLER, whole packet |
//! | 21 MTU | after a routed flow's `check_pkt_larger` | `reg0[0]` set → clear the written actions, CONTROLLER; miss → nothing (the written actions leave) |
//!
//! The desired entries of a datapath are a pure function of the bindings ([`desired`]); the
//! engine keeps what it installed and sends only the difference ([`diff`]) when bindings change.

use std::collections::HashMap;

use ofproto::consts::OFPCML_NO_BUFFER;
use ofproto::{port_no, Action, FlowMod, FlowModCommand, Instruction, Match, OxmField};

use crate::bindings::{Attachment, Bindings};

/// Classification by ingress port.
pub const TABLE_CLASSIFY: u8 = 0;
/// Delivery of tunnelled packets by key.
pub const TABLE_TUNNEL: u8 = 10;
/// The flow cache: simulation results.
pub const TABLE_CACHE: u8 = 20;
/// After a routed flow's MTU check: too long → the controller, else its written actions.
pub const TABLE_MTU: u8 = 21;
/// The register bit a routed flow's `check_pkt_larger` sets (reg0, bit 0).
pub const REG_TOO_BIG: (u8, u16) = (0, 0);

/// The cookie of every pipeline entry ("ST" in the top 16 bits, bit 47 clear).
pub const PIPELINE_COOKIE: u64 = 0x5354 << 48;
/// The bits that identify engine cookies.
pub const ENGINE_COOKIE_MASK: u64 = 0xffff << 48;
/// Set in the cookie of every reactive (flow cache) entry.
pub const REACTIVE_BIT: u64 = 1 << 47;
/// The phase bit of pipeline entries (reactive ones use it as part of their number): the
/// reconcile on connect flips entries between the two phases (see [`reconcile`]).
pub const PHASE_BIT: u64 = 1 << 46;
/// The cookie of every pipeline entry once reconciled.
pub const PIPELINE_ENTRY: u64 = PIPELINE_COOKIE | PHASE_BIT;

/// Priority of the per-port entries of tables 0 and 10.
const PRIO_PORT: u16 = 100;

/// One pipeline entry, by what identifies it on the switch.
pub type Key = (u8, u16, Match);

/// The pipeline entries datapath `dpid` should have, by (table, priority, match).
pub fn desired(bindings: &Bindings, dpid: u64) -> HashMap<Key, Vec<Instruction>> {
    let mut m = HashMap::new();
    m.insert((TABLE_CLASSIFY, 0, Match::new()), vec![]);
    m.insert((TABLE_TUNNEL, 0, Match::new()), vec![]);
    m.insert(
        (TABLE_CACHE, 0, Match::new()),
        vec![Instruction::ApplyActions(vec![Action::Output {
            port: port_no::CONTROLLER,
            max_len: OFPCML_NO_BUFFER,
        }])],
    );
    // A routed flow wrote its actions and checked the length: a packet too long for the path
    // goes to the controller instead (which answers fragmentation needed), anything else
    // leaves with the written actions at the end of the pipeline.
    m.insert(
        (
            TABLE_MTU,
            PRIO_PORT,
            Match::from_iter([OxmField::Reg {
                idx: REG_TOO_BIG.0,
                value: 1 << REG_TOO_BIG.1,
                mask: Some(1 << REG_TOO_BIG.1),
            }]),
        ),
        vec![
            Instruction::ClearActions,
            Instruction::ApplyActions(vec![Action::Output {
                port: port_no::CONTROLLER,
                max_len: OFPCML_NO_BUFFER,
            }]),
        ],
    );
    m.insert((TABLE_MTU, 0, Match::new()), vec![]);
    for (ofport, att) in bindings.attachments_of(dpid) {
        let in_port = Match::from_iter([OxmField::InPort(ofport)]);
        match att {
            Attachment::Vif { key, .. } => {
                m.insert(
                    (TABLE_CLASSIFY, PRIO_PORT, in_port),
                    vec![
                        Instruction::WriteMetadata {
                            metadata: u64::from(key),
                            mask: u64::MAX,
                        },
                        Instruction::GotoTable(TABLE_CACHE),
                    ],
                );
                m.insert(
                    (
                        TABLE_TUNNEL,
                        PRIO_PORT,
                        Match::from_iter([OxmField::TunnelId {
                            value: u64::from(key),
                            mask: None,
                        }]),
                    ),
                    vec![Instruction::ApplyActions(vec![Action::Output {
                        port: ofport,
                        max_len: 0,
                    }])],
                );
            }
            Attachment::Tunnel { .. } => {
                m.insert(
                    (TABLE_CLASSIFY, PRIO_PORT, in_port),
                    vec![Instruction::GotoTable(TABLE_TUNNEL)],
                );
            }
            // Explicit, so its packets never reach the controller however the miss is set.
            Attachment::Unbound => {
                m.insert((TABLE_CLASSIFY, PRIO_PORT, in_port), vec![]);
            }
        }
    }
    m
}

/// The FLOW_MODs that turn `installed` into `desired`: adds (which replace an entry with the same
/// match and priority) for what is new or different, strict deletes for what is gone.
pub fn diff(
    installed: &HashMap<Key, Vec<Instruction>>,
    desired: &HashMap<Key, Vec<Instruction>>,
) -> Vec<FlowMod> {
    let mut mods = Vec::new();
    let mut gone: Vec<&Key> = installed
        .keys()
        .filter(|k| !desired.contains_key(*k))
        .collect();
    gone.sort_by_key(|(t, p, m)| (*t, *p, format!("{m:?}")));
    for (table, priority, match_) in gone {
        mods.push(FlowMod {
            command: FlowModCommand::DeleteStrict,
            table_id: *table,
            priority: *priority,
            match_: match_.clone(),
            cookie: PIPELINE_ENTRY,
            cookie_mask: u64::MAX,
            out_port: port_no::ANY,
            out_group: ofproto::consts::OFPG_ANY,
            ..FlowMod::default()
        });
    }
    let mut new: Vec<(&Key, &Vec<Instruction>)> = desired
        .iter()
        .filter(|(k, v)| installed.get(*k) != Some(*v))
        .collect();
    new.sort_by_key(|((t, p, m), _)| (*t, *p, format!("{m:?}")));
    for ((table, priority, match_), instructions) in new {
        mods.push(FlowMod {
            table_id: *table,
            priority: *priority,
            match_: match_.clone(),
            cookie: PIPELINE_ENTRY,
            instructions: instructions.clone(),
            ..FlowMod::default()
        });
    }
    mods
}

/// The asynchronous messages the engine wants: packet-ins for table misses, `output:CONTROLLER`
/// and expired TTLs (`dec_ttl` at TTL ≤ 1; OVS leaves these off unless asked), every port
/// status, and every flow removal.
pub fn async_config() -> ofproto::AsyncConfig {
    const NO_MATCH: u32 = 1 << 0;
    const ACTION: u32 = 1 << 1;
    const INVALID_TTL: u32 = 1 << 2;
    ofproto::AsyncConfig {
        packet_in_mask: [NO_MATCH | ACTION | INVALID_TTL, 0],
        port_status_mask: [0b111, 0b111],
        flow_removed_mask: [0b1111, 0],
    }
}

/// The reconcile on (re)connect — a controller restart or a switch coming back — without a gap
/// in forwarding and without reading the switch's tables back:
///
/// 1. every desired entry is added with phase A (an add replaces an entry with the same table,
///    priority and match in place: traffic never meets a missing pipeline);
/// 2. pipeline entries of phase B go (stale ones of an earlier phase B);
/// 3. every desired entry is added again with phase B;
/// 4. pipeline entries of phase A go: what survives is exactly the desired set, whatever phase
///    a stale entry had;
/// 5. every reactive flow goes (the engine has no record of them after a restart; packets
///    meet the miss and are simulated again, so allowed traffic keeps flowing, through the
///    controller for a moment);
/// 6. flows with cookie 0 (added by hand) go from the pipeline's tables. Flows with other
///    foreign cookies, and any flow in another table, are left alone.
pub fn reconcile(desired: &HashMap<Key, Vec<Instruction>>) -> Vec<FlowMod> {
    let mut entries: Vec<(&Key, &Vec<Instruction>)> = desired.iter().collect();
    entries.sort_by_key(|((t, p, m), _)| (*t, *p, format!("{m:?}")));
    let add = |cookie: u64| {
        entries
            .iter()
            .map(move |((table, priority, match_), instructions)| FlowMod {
                table_id: *table,
                priority: *priority,
                match_: match_.clone(),
                cookie,
                instructions: (*instructions).clone(),
                ..FlowMod::default()
            })
    };
    let delete_in = |table_id: u8, cookie: u64, cookie_mask: u64| FlowMod {
        command: FlowModCommand::Delete,
        table_id,
        cookie,
        cookie_mask,
        out_port: port_no::ANY,
        out_group: ofproto::consts::OFPG_ANY,
        ..FlowMod::default()
    };
    let delete = |cookie: u64, cookie_mask: u64| FlowMod {
        command: FlowModCommand::Delete,
        table_id: ofproto::consts::OFPTT_ALL,
        cookie,
        cookie_mask,
        out_port: port_no::ANY,
        out_group: ofproto::consts::OFPG_ANY,
        ..FlowMod::default()
    };
    let phase_mask = ENGINE_COOKIE_MASK | REACTIVE_BIT | PHASE_BIT;
    let mut mods: Vec<FlowMod> = add(PIPELINE_COOKIE).collect();
    mods.push(delete(PIPELINE_ENTRY, phase_mask));
    mods.extend(add(PIPELINE_ENTRY));
    mods.push(delete(PIPELINE_COOKIE, phase_mask));
    mods.push(delete(
        PIPELINE_COOKIE | REACTIVE_BIT,
        ENGINE_COOKIE_MASK | REACTIVE_BIT,
    ));
    // Per table, not in all tables: OVS refuses (EPERM) a delete that matches its own read-only
    // flows, which have cookie 0 too (seen on the userspace datapath), and then deletes nothing.
    for table in [TABLE_CLASSIFY, TABLE_TUNNEL, TABLE_CACHE, TABLE_MTU] {
        mods.push(delete_in(table, 0, u64::MAX));
    }
    mods
}

/// Deletes the flow cache entry with this cookie.
pub fn delete_cookie(cookie: u64) -> FlowMod {
    FlowMod {
        command: FlowModCommand::Delete,
        table_id: TABLE_CACHE,
        cookie,
        cookie_mask: u64::MAX,
        out_port: port_no::ANY,
        out_group: ofproto::consts::OFPG_ANY,
        ..FlowMod::default()
    }
}
