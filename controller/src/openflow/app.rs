//! The app runner: one task that feeds every switch's events, in order, to the chosen
//! `apps::App`, and routes what it answers to the switches.
//!
//! It keeps the connection id of each datapath's current session and drops events from older
//! ones, so a reconnecting switch cannot have its new `SwitchUp` undone by the old session's
//! late `SwitchDown` or packet-ins. Outputs are queued with `try_send`: a switch whose queue is
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
            Event::SwitchUp { .. } => {
                current.insert(dpid, envelope.conn);
                true
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
