//! Controller applications: pure functions of switch events to OpenFlow messages; no I/O.
