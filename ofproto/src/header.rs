//! The 8-byte `ofp_header` and the message type numbers (`OFPT_*`).

use crate::codec::Reader;
use crate::error::{Ctx, Error};
use crate::OFP_HEADER_LEN;

/// `OFPT_*` message type numbers for OpenFlow 1.3.
#[allow(missing_docs)]
pub mod msg_type {
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    pub const EXPERIMENTER: u8 = 4;
    pub const FEATURES_REQUEST: u8 = 5;
    pub const FEATURES_REPLY: u8 = 6;
    pub const GET_CONFIG_REQUEST: u8 = 7;
    pub const GET_CONFIG_REPLY: u8 = 8;
    pub const SET_CONFIG: u8 = 9;
    pub const PACKET_IN: u8 = 10;
    pub const FLOW_REMOVED: u8 = 11;
    pub const PORT_STATUS: u8 = 12;
    pub const PACKET_OUT: u8 = 13;
    pub const FLOW_MOD: u8 = 14;
    pub const GROUP_MOD: u8 = 15;
    pub const PORT_MOD: u8 = 16;
    pub const TABLE_MOD: u8 = 17;
    pub const MULTIPART_REQUEST: u8 = 18;
    pub const MULTIPART_REPLY: u8 = 19;
    pub const BARRIER_REQUEST: u8 = 20;
    pub const BARRIER_REPLY: u8 = 21;
    pub const QUEUE_GET_CONFIG_REQUEST: u8 = 22;
    pub const QUEUE_GET_CONFIG_REPLY: u8 = 23;
    pub const ROLE_REQUEST: u8 = 24;
    pub const ROLE_REPLY: u8 = 25;
    pub const GET_ASYNC_REQUEST: u8 = 26;
    pub const GET_ASYNC_REPLY: u8 = 27;
    pub const SET_ASYNC: u8 = 28;
    pub const METER_MOD: u8 = 29;
}

/// `ofp_header`, as read from the wire (the length is what the peer announced).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Header {
    /// Protocol version.
    pub version: u8,
    /// Message type (`msg_type::*`).
    pub typ: u8,
    /// Total message length including this header.
    pub length: u16,
    /// Transaction id.
    pub xid: u32,
}

impl Header {
    /// Reads the first 8 bytes of `buf` (which may hold more). Checks only that the announced
    /// length is at least the header size.
    pub fn parse(buf: &[u8]) -> Result<Header, Error> {
        if buf.len() < OFP_HEADER_LEN {
            return Err(Error::Truncated {
                ctx: Ctx::Header,
                needed: OFP_HEADER_LEN,
                available: buf.len(),
            });
        }
        let h = Header {
            version: buf[0],
            typ: buf[1],
            length: u16::from_be_bytes([buf[2], buf[3]]),
            xid: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        };
        if usize::from(h.length) < OFP_HEADER_LEN {
            return Err(Error::BadLength {
                ctx: Ctx::Header,
                length: h.length.into(),
            });
        }
        Ok(h)
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Header, Error> {
        let h = Header::parse(r.peek())?;
        r.array::<OFP_HEADER_LEN>()?;
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hello_header() {
        let h = Header::parse(&[0x04, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x2a]).unwrap();
        assert_eq!(
            h,
            Header {
                version: 4,
                typ: 0,
                length: 16,
                xid: 42
            }
        );
    }

    #[test]
    fn rejects_short_length_and_short_buffer() {
        assert!(matches!(
            Header::parse(&[4, 0, 0, 7, 0, 0, 0, 0]),
            Err(Error::BadLength { length: 7, .. })
        ));
        assert!(matches!(
            Header::parse(&[4, 0, 0]),
            Err(Error::Truncated { needed: 8, .. })
        ));
    }
}
