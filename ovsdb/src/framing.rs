//! JSON-RPC framing: OVSDB sends concatenated JSON values with no delimiter (RFC 7047 §3.1).
//!
//! Messages are split with serde_json's streaming deserializer and its `byte_offset`, never by
//! counting braces (strings may hold any brace). Bytes are buffered until one whole value
//! parses; one message larger than the cap is an error, so a peer cannot make us buffer without
//! bound. After an error the stream is unusable and the connection must be closed.

use crate::error::{Error, Result};

/// Default cap on one message: the vswitch schema is ~60 KiB; big initial monitor replies of a
/// busy host reach a few MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 20;

/// Incremental decoder of a byte stream into JSON values.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    max: usize,
    /// Set once a complete parse attempt failed as incomplete: avoids reparsing until more
    /// bytes arrive.
    incomplete: bool,
}

impl Decoder {
    /// A decoder that rejects any one message longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            max,
            incomplete: false,
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        self.incomplete = false;
    }

    /// Bytes buffered and not yet returned as a value.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole value, `Ok(None)` if more bytes are needed.
    pub fn decode(&mut self) -> Result<Option<serde_json::Value>> {
        if self.incomplete {
            return Ok(None);
        }
        let mut stream =
            serde_json::Deserializer::from_slice(&self.buf).into_iter::<serde_json::Value>();
        match stream.next() {
            None => {
                // Only whitespace: drop it.
                self.buf.clear();
                Ok(None)
            }
            Some(Ok(v)) => {
                let end = stream.byte_offset();
                if end > self.max {
                    return Err(Error::MessageTooLarge { limit: self.max });
                }
                self.buf.drain(..end);
                Ok(Some(v))
            }
            Some(Err(e)) if e.is_eof() => {
                if self.buf.len() > self.max {
                    return Err(Error::MessageTooLarge { limit: self.max });
                }
                self.incomplete = true;
                Ok(None)
            }
            Some(Err(e)) => Err(Error::MalformedJson(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_concatenated_values_at_any_cut() {
        let wire = br#"{"id":1,"result":["a}","{b"]}  {"method":"echo","params":[],"id":"echo"}{"x":"\"}"}"#;
        for cut in 0..wire.len() {
            let mut d = Decoder::new(1 << 20);
            let mut got = vec![];
            d.feed(&wire[..cut]);
            while let Some(v) = d.decode().unwrap() {
                got.push(v);
            }
            d.feed(&wire[cut..]);
            while let Some(v) = d.decode().unwrap() {
                got.push(v);
            }
            assert_eq!(got.len(), 3, "cut at {cut}");
            assert_eq!(got[0]["result"][0], "a}");
            assert_eq!(got[2]["x"], "\"}");
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn malformed_is_an_error() {
        let mut d = Decoder::new(1024);
        d.feed(b"{\"id\": 1} {nope}");
        assert!(d.decode().unwrap().is_some());
        assert!(matches!(d.decode(), Err(Error::MalformedJson(_))));
    }

    #[test]
    fn oversized_message_is_an_error() {
        let mut d = Decoder::new(16);
        d.feed(b"{\"a\": \"0123456789");
        assert!(matches!(d.decode(), Err(Error::MessageTooLarge { .. })));
        let mut d = Decoder::new(16);
        d.feed(b"{\"a\": \"0123456789\"}");
        assert!(matches!(d.decode(), Err(Error::MessageTooLarge { .. })));
    }

    proptest! {
        #[test]
        fn never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
            let mut d = Decoder::new(256);
            for c in chunks {
                d.feed(&c);
                while let Ok(Some(_)) = d.decode() {}
            }
        }

        #[test]
        fn reassembles_json_in_chunks(vals in proptest::collection::vec("[a-z{}\\[\\]\" ]{0,12}", 1..5), split in 0usize..200) {
            let values: Vec<serde_json::Value> = vals.iter().map(|s| serde_json::json!({"s": s, "n": [1, {"k": s}]})).collect();
            let wire: Vec<u8> = values.iter().flat_map(|v| serde_json::to_vec(v).unwrap()).collect();
            let cut = split.min(wire.len());
            let mut d = Decoder::new(1 << 16);
            let mut got = vec![];
            for part in [&wire[..cut], &wire[cut..]] {
                d.feed(part);
                while let Some(v) = d.decode().unwrap() { got.push(v); }
            }
            prop_assert_eq!(got, values);
        }
    }
}
