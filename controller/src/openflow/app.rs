//! The app runner: one task that feeds every switch's events, in order, to the chosen
//! `apps::App`, and routes what it answers to the switches.
//!
//! It keeps the connection id of each datapath's current session (the one the registry holds
//! when its `SwitchUp` is processed) and drops events from any other, so a reconnecting switch
//! cannot have its new `SwitchUp` undone by the old session's late `SwitchUp`, `SwitchDown` or
//! packet-ins. Outputs are queued with `try_send`: a switch whose queue is
//! full loses that message (logged) instead of stalling the app for every other switch; the
//! reactive messages of a learning switch are re-derived from the next packet-in anyway.

use std::collections::HashMap;

use apps::{App, Event, Output};
use tokio::sync::mpsc;

use super::{ConnId, Envelope, SendError, Switches};
use crate::serve::Shutdown;

/// Runs `app` until the event channel closes or `shutdown` turns true.
pub async fn run(
    mut app: Box<dyn App>,
    mut events: mpsc::Receiver<Envelope>,
    switches: Switches,
    mut shutdown: Shutdown,
) {
    let mut current: HashMap<u64, ConnId> = HashMap::new();
    let mut out = Vec::new();
    let mut dropped: u64 = 0;
    loop {
        let envelope = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break,
            e = events.recv() => match e {
                Some(e) => e,
                None => break,
            },
        };
        let dpid = envelope.event.dpid();
        let fresh = match &envelope.event {
            // Only the registered connection's SwitchUp counts: an older session's SwitchUp
            // can arrive after its replacement registered (their tasks race to this channel).
            Event::SwitchUp { .. } => {
                let registered = switches
                    .get(dpid)
                    .is_some_and(|h| h.conn() == envelope.conn);
                if registered {
                    current.insert(dpid, envelope.conn);
                }
                registered
            }
            Event::SwitchDown { .. } => {
                let is_current = current.get(&dpid) == Some(&envelope.conn);
                if is_current {
                    current.remove(&dpid);
                }
                is_current
            }
            _ => current.get(&dpid) == Some(&envelope.conn),
        };
        if !fresh {
            continue;
        }
        app.handle(&envelope.event, &mut out);
        for Output { dpid, message } in out.drain(..) {
            let Some(switch) = switches.get(dpid) else {
                continue;
            };
            match switch.try_send(message) {
                Ok(()) => {}
                Err(SendError::Gone) => {}
                Err(SendError::Full) => {
                    dropped += 1;
                    if dropped.is_power_of_two() {
                        tracing::warn!(dpid, dropped, "switch queue full: app output dropped");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::openflow::registry::SwitchHandle;
    use crate::openflow::test_util::features;

    struct Record(Arc<Mutex<Vec<Event>>>);

    impl App for Record {
        fn name(&self) -> &'static str {
            "record"
        }
        fn handle(&mut self, event: &Event, _out: &mut Vec<Output>) {
            if let Ok(mut seen) = self.0.lock() {
                seen.push(event.clone());
            }
        }
    }

    fn packet_in(dpid: u64, cookie: u64) -> Event {
        Event::PacketIn {
            dpid,
            packet_in: ofproto::PacketIn {
                buffer_id: ofproto::OFP_NO_BUFFER,
                total_len: 0,
                reason: ofproto::PacketInReason::NoMatch,
                table_id: 0,
                cookie,
                match_: ofproto::Match::new(),
                data: bytes::Bytes::new(),
            },
        }
    }

    #[tokio::test]
    async fn events_of_replaced_sessions_are_dropped() {
        let switches = Switches::new();
        let (tx, _rx) = mpsc::channel(1);
        let peer = "127.0.0.1:1".parse().expect("literal address");
        // Connection 2 replaced connection 1 for datapath 7.
        switches.register(SwitchHandle::new(2, peer, features(7), tx, Arc::default()));
        let up = Event::SwitchUp {
            dpid: 7,
            features: features(7),
            ports: vec![],
        };
        let (events_tx, events_rx) = mpsc::channel(16);
        for (conn, event) in [
            (2, up.clone()),
            (1, up.clone()),
            (1, packet_in(7, 1)),
            (2, packet_in(7, 2)),
            (1, Event::SwitchDown { dpid: 7 }),
        ] {
            events_tx
                .send(Envelope { conn, event })
                .await
                .expect("queued");
        }
        drop(events_tx);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (_stop, stop_rx) = tokio::sync::watch::channel(false);
        run(Box::new(Record(seen.clone())), events_rx, switches, stop_rx).await;
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(seen, vec![up, packet_in(7, 2)]);
    }
}
