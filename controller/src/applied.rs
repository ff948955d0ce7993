//! Applied revisions: how far each connected switch and OVSDB host has caught up with the
//! topology, and waiting until they all have (`?wait=true`, `strowger wait`).
//!
//! A switch has applied a [`Mark`] once it has answered a BARRIER_REQUEST that was sent after
//! every message the app produced for that mark. The marks are issued by the bindings follower
//! (`bindings::follow`) through [`crate::openflow::AppHost::mark`], right after it handed the app
//! a topology snapshot and the bindings built on it: under the app lock, one
//! `Command::Mark` goes into each switch's ordered command queue, behind the outputs of those
//! events. The connection task turns marks into barriers with [`Barriers`]: at most one barrier
//! outstanding per switch, later marks coalesced into the next one, so a burst of revisions
//! costs at most one barrier per round trip to the switch, never one per revision or flow. OpenFlow processes a barrier only
//! after every message before it on the connection, so its reply proves the switch applied the
//! deletes and pipeline changes of every revision up to the mark.
//!
//! A host has applied revision N once its OVSDB session committed (or found nothing to do for)
//! the desired state derived from a snapshot at N or later with the same hosts and zones
//! ([`crate::provision::Provisioner::applied_revision`]).
//!
//! [`Progress`] gathers both for REST: [`Progress::status`] (`GET /revision`) and
//! [`Progress::wait`]. Only connected switches and hosts are waited for: one that disconnects
//! mid-wait drops out of the set, and a host that is not connected is reported as such.

use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use topology::Snapshot;
use uuid::Uuid;

use crate::openflow::Switches;
use crate::provision::Provisioner;

/// A point in the app's ordered stream: the topology revision it had been given, and how many
/// bindings changes. Both only grow, so marks are ordered by either.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Mark {
    /// The topology revision.
    pub revision: u64,
    /// The bindings generation (one more for each bindings change the app was given).
    pub bindings: u64,
}

impl Mark {
    /// Whether a switch at `self` has applied everything up to `target`.
    pub fn covers(&self, target: Mark) -> bool {
        self.revision >= target.revision && self.bindings >= target.bindings
    }
}

/// One switch session's barrier bookkeeping (sans-IO): which mark the next barrier is for,
/// which one is outstanding, which one was last answered.
///
/// Calling order, in the connection task: [`Barriers::want`] for every mark taken off the
/// command queue (in queue order), then, once the commands of a wake-up are taken,
/// [`Barriers::poll_barrier`]; if it returns a mark, send a BARRIER_REQUEST and report its
/// xid with [`Barriers::sent`]; the barrier's outcome goes to [`Barriers::answered`]. Sending
/// the barrier later than its mark was taken is always safe: it then covers more.
#[derive(Debug, Default)]
pub struct Barriers {
    wanted: Option<Mark>,
    outstanding: Option<(u32, Mark)>,
    applied: Option<Mark>,
}

impl Barriers {
    /// A mark taken off the command queue: every output for it is already in the session.
    pub fn want(&mut self, mark: Mark) {
        if self.applied.is_some_and(|a| a.covers(mark)) {
            return;
        }
        self.wanted = Some(self.wanted.map_or(mark, |w| w.max(mark)));
    }

    /// The mark a barrier should be sent for now: one is wanted and none is outstanding.
    pub fn poll_barrier(&self) -> Option<Mark> {
        match self.outstanding {
            Some(_) => None,
            None => self.wanted,
        }
    }

    /// The barrier for `mark` went out with `xid`.
    pub fn sent(&mut self, xid: u32, mark: Mark) {
        self.outstanding = Some((xid, mark));
        if self.wanted == Some(mark) {
            self.wanted = None;
        }
    }

    /// Whether `xid` is our outstanding barrier (its reply is ours, not a requester's).
    pub fn owns(&self, xid: u32) -> bool {
        self.outstanding.is_some_and(|(x, _)| x == xid)
    }

    /// The outcome of barrier `xid`: `Some(mark)` if it was ours and answered, the mark is now
    /// applied. A failed barrier (ERROR, timeout) wants its mark again, merged with later ones.
    pub fn answered(&mut self, xid: u32, ok: bool) -> Option<Mark> {
        let (x, mark) = self.outstanding?;
        if x != xid {
            return None;
        }
        self.outstanding = None;
        if ok {
            self.applied = Some(self.applied.map_or(mark, |a| a.max(mark)));
            self.applied
        } else {
            self.want(mark);
            None
        }
    }

    /// The last mark the switch acknowledged.
    pub fn applied(&self) -> Option<Mark> {
        self.applied
    }
}

/// A host in [`RevisionStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HostStatus {
    /// The host.
    pub host_id: Uuid,
    /// Its name.
    pub name: String,
    /// The topology revision its OVSDB state is known to match (null before its first
    /// reconcile).
    pub applied_revision: Option<u64>,
    /// Whether its OVSDB session is up (only connected hosts are waited for).
    pub connected: bool,
}

/// A switch in [`RevisionStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SwitchStatus {
    /// Datapath id, 16 hex digits.
    pub dpid: String,
    /// The topology revision whose flow changes it has acknowledged with a barrier (null
    /// before the first).
    pub applied_revision: Option<u64>,
    /// The bindings generation it has acknowledged (null before the first).
    pub applied_bindings: Option<u64>,
}

/// `GET /api/v1/revision`: the topology revision, and how far every host and switch got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RevisionStatus {
    /// The topology's current revision.
    pub revision: u64,
    /// The bindings generation the app was last given.
    pub bindings: u64,
    /// Every host of the topology.
    pub hosts: Vec<HostStatus>,
    /// Every connected switch.
    pub switches: Vec<SwitchStatus>,
}

impl RevisionStatus {
    /// The connected hosts and switches that have not applied `target`, by name (hosts) or
    /// datapath id (switches). Switches are checked against both parts of the mark, hosts
    /// against its revision.
    pub fn lagging(&self, target: Mark) -> Vec<String> {
        let hosts = self
            .hosts
            .iter()
            .filter(|h| h.connected && h.applied_revision.is_none_or(|r| r < target.revision))
            .map(|h| format!("host {}", h.name));
        let switches = self
            .switches
            .iter()
            .filter(|s| {
                let applied = Mark {
                    revision: s.applied_revision.unwrap_or(0),
                    bindings: s.applied_bindings.unwrap_or(0),
                };
                s.applied_revision.is_none() || !applied.covers(target)
            })
            .map(|s| format!("switch {}", s.dpid));
        hosts.chain(switches).collect()
    }

    /// The hosts that are not connected (never waited for), by name.
    pub fn disconnected(&self) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|h| !h.connected)
            .map(|h| h.name.as_str())
            .collect()
    }
}

/// What REST reads to report and wait on applied revisions. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Progress {
    switches: Switches,
    provisioner: Provisioner,
    issued: watch::Receiver<Mark>,
    /// The last host sync the marked bindings include (`bindings::follow`); `None`: no sync.
    synced: Option<watch::Receiver<u64>>,
}

impl Progress {
    /// Progress of `switches` (marks issued on `issued`) and of `provisioner`'s hosts.
    pub fn new(
        switches: Switches,
        provisioner: Provisioner,
        issued: watch::Receiver<Mark>,
    ) -> Self {
        Progress {
            switches,
            provisioner,
            issued,
            synced: None,
        }
    }

    /// With the bindings follower's sync progress, so [`Progress::sync`] can wait for it.
    pub fn with_synced(mut self, synced: watch::Receiver<u64>) -> Self {
        self.synced = Some(synced);
        self
    }

    /// Asks every connected host for an OVSDB round trip and waits until the bindings the
    /// switches were marked with include what each host had committed when asked (a VIF
    /// `ovs-vsctl` has just plugged), or `deadline`: `Err` naming the hosts still behind.
    pub async fn sync(&self, deadline: tokio::time::Instant) -> Result<(), Vec<String>> {
        let Some(synced) = &self.synced else {
            return Ok(());
        };
        let mut synced = synced.clone();
        let wanted = self.provisioner.request_sync();
        let done = tokio::time::timeout_at(deadline, synced.wait_for(|s| *s >= wanted)).await;
        match done {
            Ok(Ok(_)) => Ok(()),
            // The follower is gone (shutdown): nothing more will be synced.
            Ok(Err(_)) => Ok(()),
            Err(_) => Err(self
                .provisioner
                .views()
                .borrow()
                .iter()
                .filter(|(_, v)| v.connected && v.synced < wanted)
                .map(|(id, _)| format!("host {id} (OVSDB sync)"))
                .collect()),
        }
    }

    /// The last mark issued to the switches.
    pub fn issued(&self) -> Mark {
        *self.issued.borrow()
    }

    /// Where every host of `snapshot` and every connected switch stands now.
    pub fn status(&self, snapshot: &Snapshot) -> RevisionStatus {
        let views = self.provisioner.views().borrow().clone();
        let hosts = snapshot
            .hosts()
            .map(|h| {
                let view = views.get(&h.id);
                HostStatus {
                    host_id: h.id,
                    name: h.name.clone(),
                    applied_revision: view.and_then(|v| self.provisioner.applied_revision(v)),
                    connected: view.is_some_and(|v| v.connected),
                }
            })
            .collect();
        let switches = self
            .switches
            .list()
            .into_iter()
            .map(|s| {
                let applied = s.applied();
                SwitchStatus {
                    dpid: ofproto::display::Dpid(s.dpid()).to_string(),
                    applied_revision: applied.map(|m| m.revision),
                    applied_bindings: applied.map(|m| m.bindings),
                }
            })
            .collect();
        RevisionStatus {
            revision: snapshot.revision(),
            bindings: self.issued().bindings,
            hosts,
            switches,
        }
    }

    /// Waits until every connected host and switch has applied `target` (see
    /// [`RevisionStatus::lagging`]), or `timeout` passes: `Ok` with the status that satisfied it, or
    /// `Err` with the last status seen. `snapshot` gives the host names (read afresh each time).
    pub async fn wait(
        &self,
        snapshot: impl Fn() -> std::sync::Arc<Snapshot>,
        target: Mark,
        timeout: Duration,
    ) -> Result<RevisionStatus, RevisionStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribed before each check, so a change between the check and the await wakes it.
        let mut switches = self.switches.progress();
        let mut views = self.provisioner.views();
        let mut revisions = self.provisioner.revisions();
        let mut issued = self.issued.clone();
        loop {
            switches.mark_unchanged();
            views.mark_unchanged();
            revisions.mark_unchanged();
            issued.mark_unchanged();
            let status = self.status(&snapshot());
            if status.lagging(target).is_empty() {
                return Ok(status);
            }
            // A closed channel (shutdown) would wake at once for ever: then only the deadline.
            tokio::select! {
                r = switches.changed() => if r.is_err() { tokio::time::sleep_until(deadline).await },
                r = views.changed() => if r.is_err() { tokio::time::sleep_until(deadline).await },
                r = revisions.changed() => if r.is_err() { tokio::time::sleep_until(deadline).await },
                r = issued.changed() => if r.is_err() { tokio::time::sleep_until(deadline).await },
                _ = tokio::time::sleep_until(deadline) => return Err(status),
            }
            if tokio::time::Instant::now() >= deadline {
                let status = self.status(&snapshot());
                return if status.lagging(target).is_empty() {
                    Ok(status)
                } else {
                    Err(status)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(revision: u64, bindings: u64) -> Mark {
        Mark { revision, bindings }
    }

    #[test]
    fn marks_arriving_during_a_barrier_coalesce_into_the_next_one() {
        let mut b = Barriers::default();
        assert_eq!(b.poll_barrier(), None);
        b.want(m(1, 0));
        assert_eq!(b.poll_barrier(), Some(m(1, 0)));
        b.sent(10, m(1, 0));
        // Three revisions while the barrier is out: no second barrier yet.
        for r in 2..=4 {
            b.want(m(r, 1));
            assert_eq!(b.poll_barrier(), None);
        }
        assert!(b.owns(10));
        assert!(!b.owns(11));
        // Somebody else's reply is not ours.
        assert_eq!(b.answered(11, true), None);
        assert_eq!(b.answered(10, true), Some(m(1, 0)));
        assert_eq!(b.applied(), Some(m(1, 0)));
        // One barrier for the three.
        assert_eq!(b.poll_barrier(), Some(m(4, 1)));
        b.sent(12, m(4, 1));
        assert_eq!(b.answered(12, true), Some(m(4, 1)));
        assert_eq!(b.poll_barrier(), None);
        // A mark already covered wants nothing.
        b.want(m(3, 1));
        assert_eq!(b.poll_barrier(), None);
    }

    #[test]
    fn a_failed_barrier_is_retried_with_the_marks_behind_it() {
        let mut b = Barriers::default();
        b.want(m(5, 2));
        b.sent(1, m(5, 2));
        b.want(m(6, 2));
        assert_eq!(b.answered(1, false), None);
        assert_eq!(b.applied(), None);
        assert_eq!(b.poll_barrier(), Some(m(6, 2)));
        b.sent(2, m(6, 2));
        assert_eq!(b.answered(2, true), Some(m(6, 2)));
    }

    fn status(
        hosts: &[(&str, Option<u64>, bool)],
        switches: &[Option<(u64, u64)>],
    ) -> RevisionStatus {
        RevisionStatus {
            revision: 9,
            bindings: 3,
            hosts: hosts
                .iter()
                .map(|(n, r, c)| HostStatus {
                    host_id: Uuid::nil(),
                    name: n.to_string(),
                    applied_revision: *r,
                    connected: *c,
                })
                .collect(),
            switches: switches
                .iter()
                .enumerate()
                .map(|(i, a)| SwitchStatus {
                    dpid: format!("{i:016x}"),
                    applied_revision: a.map(|a| a.0),
                    applied_bindings: a.map(|a| a.1),
                })
                .collect(),
        }
    }

    #[test]
    fn only_connected_laggards_are_waited_for() {
        let s = status(
            &[
                ("hv0", Some(9), true),
                ("hv1", Some(7), true),
                ("hv2", None, false),
            ],
            &[Some((9, 3)), Some((9, 2)), None],
        );
        assert_eq!(
            s.lagging(m(9, 0)),
            vec!["host hv1", "switch 0000000000000002"]
        );
        assert_eq!(
            s.lagging(m(9, 3)),
            vec![
                "host hv1",
                "switch 0000000000000001",
                "switch 0000000000000002"
            ]
        );
        assert_eq!(s.lagging(m(7, 0)), vec!["switch 0000000000000002"]);
        assert_eq!(s.disconnected(), vec!["hv2"]);
        let done = status(&[("hv2", None, false)], &[Some((10, 3))]);
        assert!(done.lagging(m(9, 3)).is_empty());
    }
}
