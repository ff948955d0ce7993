//! `strowger ofp decode` as a user runs it: the real binary, its stdout, stderr and exit code.

use std::process::{Command, Output};

/// What `ovs-ofctl -O OpenFlow13 add-flow br 'table=1,priority=100,ip,nw_src=10.0.0.0/8,
/// actions=mod_dl_src:00:00:00:00:00:01,output:2'` sends (recorded from OVS 3.1).
const OVS_FLOW_MOD: &str = "040e007000000002000000000000000000000000000000000100000000000064ffffffffffffffffffffffff000000000001001680000a020800800017080a000000ff000000000000040028000000000019001080000806000000000001000000000010000000020000000000000000";
/// A PACKET_IN (no buffer, table miss, in_port=1) carrying a 42-byte ARP request.
const PACKET_IN: &str = "040a00540000000affffffff002a000000000000000000000001000c8000000400000001000000000000ffffffffffff000000000001080600010800060400010000000000010a0000010000000000000a0000fe";

fn strowger(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strowger"))
        .args(args)
        .output()
        .expect("the strowger binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf-8 stderr")
}

#[test]
fn json_of_an_ovs_flow_mod() {
    let out = strowger(&["ofp", "decode", OVS_FLOW_MOD]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("stdout is JSON");
    assert_eq!(json["version"], 4);
    assert_eq!(json["xid"], 2);
    let fm = &json["body"]["FlowMod"];
    assert_eq!(fm["table_id"], 1, "{json:#}");
    assert_eq!(fm["priority"], 100, "{json:#}");
}

#[test]
fn text_is_one_ovs_style_line() {
    let out = strowger(&["ofp", "decode", "--text", OVS_FLOW_MOD]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("OFPT_FLOW_MOD (OF1.3) (xid=0x2): "),
        "{text}"
    );
    for want in [
        "priority=100",
        "nw_src=10.0.0.0/8",
        "output:2",
        "00:00:00:00:00:01",
    ] {
        assert!(text.contains(want), "{want} missing from {text}");
    }
}

#[test]
fn packet_in_text_summarises_the_frame() {
    let out = strowger(&["ofp", "decode", "--text", PACKET_IN]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("OFPT_PACKET_IN (OF1.3) (xid=0xa): "),
        "{text}"
    );
    for want in ["in_port=1", "arp_op=1", "arp_tpa=10.0.0.254", "data_len=42"] {
        assert!(text.contains(want), "{want} missing from {text}");
    }
}

#[test]
fn reencode_appends_identical_hex_as_last_line() {
    for hex in [OVS_FLOW_MOD, PACKET_IN, "0402000c0000000761626364"] {
        for text in [false, true] {
            let mut args = vec!["ofp", "decode", "--reencode"];
            if text {
                args.push("--text");
            }
            args.push(hex);
            let out = strowger(&args);
            assert!(out.status.success(), "stderr: {}", stderr(&out));
            let s = stdout(&out);
            assert_eq!(s.lines().last(), Some(hex), "{s}");
            assert!(s.lines().count() >= 2, "{s}");
        }
    }
}

#[test]
fn whitespace_anywhere_is_ignored() {
    let spaced: Vec<String> = OVS_FLOW_MOD
        .as_bytes()
        .chunks(6)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let joined = format!("  {}\n\t", spaced.join(" \n "));
    let mut args = vec!["ofp", "decode", "--reencode"];
    args.extend(spaced.iter().map(String::as_str));
    let split = strowger(&args);
    let one = strowger(&["ofp", "decode", "--reencode", &joined]);
    let plain = strowger(&["ofp", "decode", "--reencode", OVS_FLOW_MOD]);
    assert!(
        split.status.success() && one.status.success(),
        "{}",
        stderr(&split)
    );
    assert_eq!(stdout(&split), stdout(&plain));
    assert_eq!(stdout(&one), stdout(&plain));
}

/// Each bad input gives a non-zero exit, nothing on stdout, one line on stderr naming the problem.
#[test]
fn malformed_input_is_one_clear_line() {
    let cases: &[(&[&str], &str)] = &[
        (&["zz00"], "invalid hex"),
        (&["040"], "invalid hex"),
        (&["  "], "no input"),
        (&["0400"], "malformed"),
        // Length field says 16, only 8 bytes follow.
        (&["0400001000000001"], "malformed"),
        // Length field shorter than the header.
        (&["0402000400000001"], "malformed"),
        // A FLOW_MOD cut in the middle of its match.
        (&[&OVS_FLOW_MOD[..120]], "malformed"),
        // Trailing garbage after a whole BARRIER_REQUEST.
        (&["0414000800000003ff"], "malformed"),
        // Unknown message type 0xee.
        (&["04ee000800000001"], "malformed"),
        // … and the line names the ERROR a switch would send back.
        (&["04ee000800000001"], "BadType"),
        (&["0400001000000001"], "BadLen"),
    ];
    for (args, want) in cases {
        let mut full = vec!["ofp", "decode"];
        full.extend_from_slice(args);
        let out = strowger(&full);
        let err = stderr(&out);
        assert!(
            !out.status.success(),
            "{args:?} succeeded: {}",
            stdout(&out)
        );
        assert!(stdout(&out).is_empty(), "{args:?} printed {}", stdout(&out));
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// `--text` gives every kind of message its own one-line ovs-ofctl form, never JSON.
#[test]
fn text_for_other_messages() {
    let cases = [
        // HELLO with a version bitmap offering OpenFlow 1.3.
        (
            "04000010000000010001000800000010",
            "OFPT_HELLO (OF1.3) (xid=0x1): version bitmap: 0x04",
        ),
        // FEATURES_REPLY of datapath 0x1234.
        (
            "0406002000000009000000000000123400000100fe0000000000004f00000000",
            "OFPT_FEATURES_REPLY (OF1.3) (xid=0x9): dpid:0000000000001234 n_tables:254, \
             n_buffers:256 capabilities: FLOW_STATS TABLE_STATS PORT_STATS GROUP_STATS QUEUE_STATS",
        ),
        // GROUP_MOD adding a select group with two buckets.
        (
            "040f00500000001700000100000000010020000affffffffffffffff000000000000001000000002000000000000000000200014ffffffffffffffff0000000000000010000000030000000000000000",
            "OFPT_GROUP_MOD (OF1.3) (xid=0x17): ADD group_id=1,type=select,\
             bucket=weight:10,actions=output:2,bucket=weight:20,actions=output:3",
        ),
        // METER_MOD adding a 1000 kbps drop meter.
        (
            "041d002000000046000000010000000100010010000003e80000000000000000",
            "OFPT_METER_MOD (OF1.3) (xid=0x46): ADD meter=1 kbps bands= type=drop rate=1000",
        ),
        // Port-stats request for every port, and a port-description reply with more to come.
        (
            "041200180000001f0004000000000000ffffffff00000000",
            "OFPST_PORT request (OF1.3) (xid=0x1f): port_no=ANY",
        ),
        (
            "041300100000003c000d000100000000",
            "OFPST_PORT_DESC reply (OF1.3) (xid=0x3c): flags=[more]",
        ),
        // ROLE_REQUEST to become master (OVS 3.1 says "primary").
        (
            "041800180000004100000002000000000000000000000001",
            "OFPT_ROLE_REQUEST (OF1.3) (xid=0x41): role=primary generation_id=1",
        ),
        (
            "041400080000003d",
            "OFPT_BARRIER_REQUEST (OF1.3) (xid=0x3d):",
        ),
    ];
    for (hex, want) in cases {
        let out = strowger(&["ofp", "decode", "--text", hex]);
        assert!(out.status.success(), "{hex}: {}", stderr(&out));
        assert_eq!(stdout(&out), format!("{want}\n"), "{hex}");
    }
}
