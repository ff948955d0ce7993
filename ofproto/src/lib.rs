//! OpenFlow 1.3 wire codec: bytes in, typed messages out, and back. Knows no socket and no runtime.
pub mod packet;
