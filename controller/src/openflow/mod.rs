//! OpenFlow 1.3 switch sessions: the sans-IO [`session`] state machine, and the tokio side that
//! moves its bytes.
pub mod session;
