//! The Ethernet frames the load generator wraps in its packet-ins: IPv4/UDP between two emulated
//! hosts, with a sequence tag in the UDP payload so a PACKET_OUT that echoes the frame names the
//! packet-in it answers (controllers pick their own xids, so the xid cannot do that).

/// Length of every generated frame: the 60-byte Ethernet minimum plus the 8-byte tag room.
pub const FRAME_LEN: usize = 64;
/// Offset of the destination MAC in the frame.
pub const ETH_DST: std::ops::Range<usize> = 0..6;
/// Offset of the source MAC in the frame.
pub const ETH_SRC: std::ops::Range<usize> = 6..12;
/// Offset of the big-endian sequence tag (UDP payload, after Ethernet 14 + IPv4 20 + UDP 8).
pub const TAG: std::ops::Range<usize> = 42..50;
/// A marker before the tag, so a frame that merely happens to be long enough is not mistaken
/// for one of ours.
const MAGIC: [u8; 4] = *b"OFLD";
const MAGIC_AT: std::ops::Range<usize> = 50..54;

/// The MAC of host `host` behind emulated switch `switch`: locally administered, unicast, unique
/// across switches so that no two switches teach the controller the same address.
pub fn host_mac(switch: u32, host: u32) -> [u8; 6] {
    let s = switch.to_be_bytes();
    let h = host.to_be_bytes();
    [0x02, s[2], s[3], h[1], h[2], h[3]]
}

/// Builds a frame from `src` to `dst` with tag 0. IPv4 addresses are fixed: learning switches
/// only look at MACs, and a constant IP header keeps its checksum constant when the tag changes.
/// The UDP checksum is 0 (none), which IPv4 allows, for the same reason.
pub fn build(src: [u8; 6], dst: [u8; 6]) -> [u8; FRAME_LEN] {
    build_udp(src, dst, [10, 0, 0, 1], [10, 0, 0, 2], 40000, 9) // discard
}

/// Builds an IPv4/UDP frame (TTL 64) with tag 0 between the given MACs, addresses and ports.
pub fn build_udp(
    src: [u8; 6],
    dst: [u8; 6],
    src_ip: [u8; 4],
    dst_ip: [u8; 4],
    sport: u16,
    dport: u16,
) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[ETH_DST].copy_from_slice(&dst);
    f[ETH_SRC].copy_from_slice(&src);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_total = (FRAME_LEN - 14) as u16;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_total.to_be_bytes());
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&src_ip);
    ip[16..20].copy_from_slice(&dst_ip);
    let csum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    let udp_len = ip_total - 20;
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f[38..40].copy_from_slice(&udp_len.to_be_bytes());
    f[MAGIC_AT].copy_from_slice(&MAGIC);
    f
}

/// Writes `tag` into a frame built by [`build`] (or into the frame bytes inside an encoded
/// message; `frame` must start at the Ethernet header).
pub fn set_tag(frame: &mut [u8], tag: u64) {
    frame[TAG].copy_from_slice(&tag.to_be_bytes());
}

/// Reads the tag back from a frame echoed by a controller; `None` when the bytes are not one of
/// our frames (too short, or without the marker).
pub fn tag(frame: &[u8]) -> Option<u64> {
    if frame.get(MAGIC_AT)? != MAGIC {
        return None;
    }
    let bytes: [u8; 8] = frame.get(TAG)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_frame_tag_round_trips_and_ip_header_checks() {
        let mut f = build(host_mac(1, 2), host_mac(1, 3));
        assert_eq!(&f[ETH_SRC], &[2, 0, 1, 0, 0, 2]);
        assert_eq!(&f[ETH_DST], &[2, 0, 1, 0, 0, 3]);
        set_tag(&mut f, 0x0102_0304_0506_0708);
        assert_eq!(tag(&f), Some(0x0102_0304_0506_0708));
        // A valid IPv4 header sums to 0xffff, i.e. its checksum over itself is 0.
        assert_eq!(ipv4_checksum(&f[14..34]), 0);
        assert_eq!(tag(&f[..40]), None);
        let mut foreign = f;
        foreign[MAGIC_AT].copy_from_slice(b"XXXX");
        assert_eq!(tag(&foreign), None);
    }

    #[test]
    fn bench_host_macs_differ_across_switches() {
        assert_ne!(host_mac(1, 7), host_mac(2, 7));
        assert_ne!(host_mac(1, 7), host_mac(1, 8));
        assert_eq!(host_mac(1, 7)[0] & 1, 0, "unicast");
    }
}
