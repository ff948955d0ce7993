//! Stream framing: feed received bytes, pull whole OpenFlow messages (mini-redis style).

use bytes::BytesMut;

use crate::error::Error;
use crate::header::Header;
use crate::msg::OfMessage;
use crate::{OFP_HEADER_LEN, OFP_MAX_LEN};

/// Splits a byte stream into messages. Holds no buffer of its own: the caller owns the
/// `BytesMut` it reads into, and complete messages are split off it without copying.
#[derive(Debug, Clone)]
pub struct Decoder {
    max_len: usize,
    rejected: Option<bytes::Bytes>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder accepting messages up to 65535 bytes (all the length field can say).
    pub fn new() -> Self {
        Decoder::with_max_len(OFP_MAX_LEN)
    }

    /// A decoder rejecting messages longer than `max_len` (clamped to 8..=65535).
    pub fn with_max_len(max_len: usize) -> Self {
        Decoder {
            max_len: max_len.clamp(OFP_HEADER_LEN, OFP_MAX_LEN),
            rejected: None,
        }
    }

    /// `Ok(None)`: `buf` does not hold a whole message yet (see [`Decoder::needed`]).
    /// `Ok(Some(m))`: one message was split off the front of `buf`.
    ///
    /// On `Err`, if [`Error::is_fatal`] the header's length is unusable, nothing was consumed
    /// and the connection must be closed. Otherwise the offending message was consumed (so the
    /// stream can continue) and its bytes are available from [`Decoder::rejected`] to build the
    /// ERROR reply (its xid and first 64 bytes).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<OfMessage>, Error> {
        // What an earlier call rejected must not be mistaken for this call's bad message.
        self.rejected = None;
        if buf.len() < OFP_HEADER_LEN {
            return Ok(None);
        }
        let h = Header::parse(buf)?;
        let len = usize::from(h.length);
        if len > self.max_len {
            return Err(Error::TooLong {
                length: len,
                max: self.max_len,
            });
        }
        if buf.len() < len {
            return Ok(None);
        }
        let frame = buf.split_to(len).freeze();
        match OfMessage::parse_bytes(frame.clone()) {
            Ok(m) => Ok(Some(m)),
            Err(e) => {
                self.rejected = Some(frame);
                Err(e)
            }
        }
    }

    /// Bytes still missing before `decode` can return a message (0 when one is complete or
    /// when the header is invalid, in which case `decode` reports the error).
    pub fn needed(&self, buf: &[u8]) -> usize {
        if buf.len() < OFP_HEADER_LEN {
            return OFP_HEADER_LEN - buf.len();
        }
        match Header::parse(buf) {
            Ok(h) if usize::from(h.length) <= self.max_len => {
                usize::from(h.length).saturating_sub(buf.len())
            }
            _ => 0,
        }
    }

    /// The raw bytes of the last message that failed to parse, if the last `decode` failed
    /// on a message body.
    pub fn rejected(&self) -> Option<&bytes::Bytes> {
        self.rejected.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::error::Ctx;
    use crate::msg::Message;

    #[test]
    fn frames_across_partial_reads() {
        let mut d = Decoder::new();
        let mut buf = BytesMut::new();
        assert_eq!(d.needed(&buf), 8);
        buf.extend_from_slice(&[4, 2, 0, 12, 0, 0]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert_eq!(d.needed(&buf), 2);
        buf.extend_from_slice(&[0, 9, b'a']);
        assert_eq!(d.needed(&buf), 3);
        assert_eq!(d.decode(&mut buf), Ok(None));
        // The rest of this echo and the start of a barrier request.
        buf.extend_from_slice(&[b'b', b'c', b'd', 4, 20, 0, 8]);
        let m = d.decode(&mut buf).unwrap().unwrap();
        assert_eq!(
            (m.xid, m.body),
            (9, Message::EchoRequest(bytes::Bytes::from_static(b"abcd")))
        );
        assert_eq!(d.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&[0, 0, 0, 1]);
        assert_eq!(
            d.decode(&mut buf).unwrap().unwrap().body,
            Message::BarrierRequest
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn length_limits_are_fatal_and_consume_nothing() {
        let mut d = Decoder::new();
        let mut buf = BytesMut::from(&[4u8, 0, 0, 7, 0, 0, 0, 0][..]);
        let e = d.decode(&mut buf).unwrap_err();
        assert_eq!(
            e,
            Error::BadLength {
                ctx: Ctx::Header,
                length: 7
            }
        );
        assert!(e.is_fatal());
        assert_eq!(buf.len(), 8);
        let mut d = Decoder::with_max_len(1024);
        let mut buf = BytesMut::from(&[4u8, 0, 0x04, 0x01, 0, 0, 0, 0][..]);
        let e = d.decode(&mut buf).unwrap_err();
        assert_eq!(
            e,
            Error::TooLong {
                length: 1025,
                max: 1024
            }
        );
        assert!(e.is_fatal());
        // Without a limit the largest message the header can describe is accepted.
        let mut d = Decoder::new();
        let mut buf = BytesMut::from(&[4u8, 2, 0xff, 0xff, 0, 0, 0, 3][..]);
        buf.resize(65535, 0x55);
        let m = d.decode(&mut buf).unwrap().unwrap();
        assert!(matches!(m.body, Message::EchoRequest(ref b) if b.len() == 65527));
    }

    #[test]
    fn bad_message_is_consumed_and_kept_for_the_error_reply() {
        let mut d = Decoder::new();
        // Unknown type 0x63 with xid 5, then a barrier reply.
        let mut buf = BytesMut::from(&[4u8, 0x63, 0, 8, 0, 0, 0, 5, 4, 21, 0, 8, 0, 0, 0, 6][..]);
        let e = d.decode(&mut buf).unwrap_err();
        assert_eq!(e, Error::BadType { typ: 0x63, xid: 5 });
        assert!(!e.is_fatal());
        assert_eq!(d.rejected().map(|b| b.len()), Some(8));
        let m = d.decode(&mut buf).unwrap().unwrap();
        assert_eq!((m.xid, m.body), (6, Message::BarrierReply));
        assert!(d.rejected().is_none());
    }
}
