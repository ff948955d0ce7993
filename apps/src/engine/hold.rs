//! Packet-outs held until another switch has a flow: the first packet of a request whose
//! reply's flow was predicted (`Engine::predict_reply`) leaves its host only once the
//! destination's switch has answered a barrier sent behind that flow, so the reply cannot reach
//! the destination's br-int before its flow does.
//!
//! Why a barrier: the request's packet-out goes to the ingress switch and the predicted flow to
//! another one, over two connections that nothing orders. Sent together, the packet often wins:
//! it crosses the tunnel and the VM answers before the destination's connection task has even
//! written the flow-mod, so the reply comes to the controller after all (measured in
//! BENCHMARKS.md: two replies in five lost that race). One barrier round trip to a local switch
//! is a fraction of the reply's packet-in round trip it saves.
//!
//! Delivered at the destination instead (`Engine::at_destination`: the packet-out on the
//! destination's own connection, behind the flow), it waits only when the answers' flows are
//! off (`Config::answer_flows`): OVS runs that packet-out in the same main-loop turn as the
//! flow-mod, before its revalidators replace the datapath flows cached from the VM's earlier
//! misses, and without the answers' flows the VM's answered packets (its gateway's ARP, a ping
//! to its gateway) leave one that takes every IPv4 packet of the port to the controller, the
//! quick answer included (5 of 5 in BENCHMARKS.md). Such a packet carries a fallback through
//! the ingress switch for when the destination's session ends first.
//!
//! Sans-IO like the rest of the engine: the caller says when, and the barrier's answer comes
//! back as `Event::Barrier`. A held packet is never lost: it goes when its barrier is answered,
//! when the destination's session ends or restarts, or at its deadline, whichever comes first;
//! at worst its reply comes to the controller as it would without the prediction.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::Output;

/// How long a packet waits for a barrier before it goes anyway: far above a switch's barrier
/// round trip (tens to hundreds of microseconds), far below a retransmission timer.
pub const HOLD_LIMIT: Duration = Duration::from_millis(50);

/// At most this many packets wait per destination; beyond, a packet goes at once (its reply
/// may then come to the controller: a burst of first packets is not worth unbounded memory).
pub const MAX_HELD: usize = 1024;

#[derive(Debug)]
struct Held {
    /// The number of the barrier it waits for (the n-th sent to its destination).
    barrier: u64,
    until: Instant,
    output: Output,
    /// What goes instead if the destination's session ends first.
    fallback: Option<Output>,
}

#[derive(Debug, Default)]
struct Destination {
    /// Barriers sent to this switch in the current session, and answered.
    sent: u64,
    answered: u64,
    /// In the order held, so in barrier order and deadline order.
    held: VecDeque<Held>,
}

/// The held packets, by the switch whose barrier they wait for.
#[derive(Debug, Default)]
pub struct Holds {
    by_dest: FxHashMap<u64, Destination>,
}

impl Holds {
    /// Holds `output` until switch `dest` answers the barrier the caller sends it now (it is
    /// returned as `Some` if too many wait already: the caller sends it, and no barrier);
    /// `fallback`, if any, goes instead should `dest`'s session end or restart first (`output`
    /// may be addressed to `dest` itself).
    pub fn hold(
        &mut self,
        now: Instant,
        dest: u64,
        output: Output,
        fallback: Option<Output>,
    ) -> Option<Output> {
        let d = self.by_dest.entry(dest).or_default();
        if d.held.len() >= MAX_HELD {
            return Some(output);
        }
        d.sent += 1;
        d.held.push_back(Held {
            barrier: d.sent,
            until: now + HOLD_LIMIT,
            output,
            fallback,
        });
        None
    }

    /// Switch `dest` answered one more barrier: what waited for the barriers answered so far.
    pub fn answered(&mut self, dest: u64, out: &mut Vec<Output>) {
        let Some(d) = self.by_dest.get_mut(&dest) else {
            return;
        };
        d.answered += 1;
        while d.held.front().is_some_and(|h| h.barrier <= d.answered) {
            out.extend(d.held.pop_front().map(|h| h.output));
        }
        if d.held.is_empty() && d.answered >= d.sent {
            self.by_dest.remove(&dest);
        }
    }

    /// Switch `dest`'s session ended or started again: its barriers will not be answered (a new
    /// session's flows come from scratch anyway), so everything waiting for it goes now, by
    /// its fallback where it has one.
    pub fn reset(&mut self, dest: u64, out: &mut Vec<Output>) {
        if let Some(d) = self.by_dest.remove(&dest) {
            out.extend(d.held.into_iter().map(|h| h.fallback.unwrap_or(h.output)));
        }
    }

    /// What has waited until its deadline goes now.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Output>) -> usize {
        let mut n = 0;
        for d in self.by_dest.values_mut() {
            while d.held.front().is_some_and(|h| h.until <= now) {
                out.extend(d.held.pop_front().map(|h| h.output));
                n += 1;
            }
        }
        // Destinations kept for barriers still out: their answers must still count.
        self.by_dest
            .retain(|_, d| !d.held.is_empty() || d.answered < d.sent);
        n
    }

    /// The earliest deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.by_dest
            .values()
            .filter_map(|d| d.held.front().map(|h| h.until))
            .min()
    }

    /// How many packets wait.
    pub fn len(&self) -> usize {
        self.by_dest.values().map(|d| d.held.len()).sum()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ofproto::Message;

    fn out(n: u64) -> Output {
        Output {
            dpid: n,
            message: Message::EchoRequest(bytes::Bytes::new()),
        }
    }

    fn dpids(v: &[Output]) -> Vec<u64> {
        v.iter().map(|o| o.dpid).collect()
    }

    #[test]
    fn each_answer_releases_what_waited_for_the_barriers_answered_so_far() {
        let t = Instant::now();
        let mut h = Holds::default();
        assert!(h.hold(t, 9, out(1), None).is_none());
        assert!(h.hold(t, 9, out(2), None).is_none());
        assert!(h.hold(t, 8, out(3), None).is_none());
        let mut v = Vec::new();
        h.answered(9, &mut v);
        // The first barrier to 9 answered: only the first packet waited for it.
        assert_eq!(dpids(&v), [1]);
        h.answered(9, &mut v);
        assert_eq!(dpids(&v), [1, 2]);
        assert_eq!(h.len(), 1);
        h.answered(8, &mut v);
        assert_eq!(dpids(&v), [1, 2, 3]);
        assert!(h.is_empty() && h.poll_timeout().is_none());
    }

    #[test]
    fn a_barrier_answered_after_its_packet_expired_still_counts() {
        let t = Instant::now();
        let mut h = Holds::default();
        h.hold(t, 9, out(1), None);
        h.hold(t + Duration::from_millis(10), 9, out(2), None);
        assert_eq!(h.poll_timeout(), Some(t + HOLD_LIMIT));
        let mut v = Vec::new();
        assert_eq!(h.expire(t + HOLD_LIMIT, &mut v), 1);
        assert_eq!(dpids(&v), [1]);
        // The late answer is the first barrier's: the second packet still waits for its own.
        h.answered(9, &mut v);
        assert_eq!(dpids(&v), [1]);
        h.answered(9, &mut v);
        assert_eq!(dpids(&v), [1, 2]);
        assert!(h.by_dest.is_empty());
    }

    #[test]
    fn a_session_that_ends_releases_everything_waiting_for_it() {
        let t = Instant::now();
        let mut h = Holds::default();
        // The first one is addressed to the destination itself, with a way round it.
        h.hold(t, 9, out(9), Some(out(1)));
        h.hold(t, 9, out(2), None);
        let mut v = Vec::new();
        h.reset(9, &mut v);
        assert_eq!(dpids(&v), [1, 2]);
        // A late answer from the old session is ignored, and a new hold counts from scratch.
        h.answered(9, &mut v);
        h.hold(t, 9, out(3), None);
        assert_eq!(h.len(), 1);
        h.answered(9, &mut v);
        assert_eq!(dpids(&v), [1, 2, 3]);
        // Answered, it goes as held, not by its fallback.
        h.hold(t, 9, out(9), Some(out(1)));
        h.answered(9, &mut v);
        assert_eq!(dpids(&v), [1, 2, 3, 9]);
    }

    #[test]
    fn past_the_bound_a_packet_is_handed_back() {
        let t = Instant::now();
        let mut h = Holds::default();
        for i in 0..MAX_HELD as u64 {
            assert!(h.hold(t, 9, out(i), None).is_none());
        }
        assert_eq!(h.hold(t, 9, out(7), None), Some(out(7)));
        assert_eq!(h.len(), MAX_HELD);
    }
}
