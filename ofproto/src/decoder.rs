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
            Ok(m) => {
                self.rejected = None;
                Ok(Some(m))
            }
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
