//! JSON-RPC framing: OVSDB sends concatenated JSON values with no delimiter (RFC 7047 §3.1).
//!
//! Messages are split with serde_json's streaming deserializer and its `byte_offset`: it alone
//! decides where a value ends and whether it is valid. Bytes are buffered until one whole value
//! parses; one message larger than the cap is an error, so a peer cannot make us buffer without
//! bound. After an error the stream is unusable and the connection must be closed.
//!
//! Parsing a partial value and starting again from its first byte on every read would cost
//! O(size²) for a message arriving in many reads (4 MB in 4 KiB reads: 2 GB parsed, seconds
//! of CPU that one unauthenticated peer could make us spend). So a [`Scan`] walks each byte
//! once, keeping the bracket depth and whether it is inside a string, and resumes where the
//! last read stopped; serde_json parses only once the scan has seen a value close (or has seen
//! something that is not an object, array or string, which serde_json then judges). The scan is
//! a hint of when to parse, never the splitter: a wrong hint costs one early parse attempt,
//! never a wrong split.

use crate::error::{Error, Result};

/// Default cap on one message: the vswitch schema is ~60 KiB; big initial monitor replies of a
/// busy host reach a few MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 20;

/// Cap on one message from a peer that has not identified itself yet (a host that dialed in,
/// before its `system-id` is known): what identifying needs (a schema of ~60 KiB, one small
/// `select`) with room to spare, so an unknown peer cannot make us buffer or parse megabytes.
pub const UNIDENTIFIED_MAX_MESSAGE: usize = 1 << 20;

/// serde_json's nesting limit: a deeper value is an error, so the scan need not go deeper.
const MAX_DEPTH: usize = 128;

/// Where the byte scan of the value being buffered stands.
#[derive(Debug, Default, Clone)]
struct Scan {
    /// Offset in `buf` of the next byte to scan.
    pos: usize,
    /// The closers of the `{`/`[` not yet closed, innermost last; never deeper than serde_json
    /// nests, so bounded.
    open: Vec<u8>,
    /// Inside a string.
    in_string: bool,
    /// The previous byte inside a string was a lone backslash.
    escaped: bool,
}

/// Incremental decoder of a byte stream into JSON values.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes before this offset were returned as values (or were whitespace between them).
    start: usize,
    scan: Scan,
    /// The scan found where a value may end, but serde_json said the value is incomplete
    /// there: parse again once `buf` is longer than this. Only a bare scalar or malformed
    /// input gets here.
    retry: Option<usize>,
    max: usize,
    work: u64,
}

impl Decoder {
    /// A decoder that rejects any one message longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            start: 0,
            scan: Scan::default(),
            retry: None,
            max,
            work: 0,
        }
    }

    /// Changes the cap on one message (a peer that identified itself may send more).
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        if self.start > 0 {
            // Values already returned go, once per read: the rest moves at most once per value.
            self.buf.drain(..self.start);
            self.scan.pos -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned as a value.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Bytes examined so far, counting a byte again each time it is looked at again: the
    /// decoder's CPU cost in a deterministic unit, for tests.
    pub fn work(&self) -> u64 {
        self.work
    }

    /// Scans on from where the last scan stopped. `Some(end)` when a top-level value may end
    /// before `end`; `None` when every buffered byte is scanned and no value closed.
    fn scan(&mut self) -> Option<usize> {
        let s = &mut self.scan;
        let from = s.pos;
        let mut found = None;
        while s.pos < self.buf.len() {
            let b = self.buf[s.pos];
            s.pos += 1;
            if s.in_string {
                if s.escaped {
                    s.escaped = false;
                } else if b == b'\\' {
                    s.escaped = true;
                } else if b == b'"' {
                    s.in_string = false;
                    if s.open.is_empty() {
                        found = Some(s.pos);
                        break;
                    }
                }
                continue;
            }
            match b {
                b'"' => s.in_string = true,
                b'{' | b'[' => {
                    s.open.push(if b == b'{' { b'}' } else { b']' });
                    if s.open.len() > MAX_DEPTH {
                        // serde_json refuses this nesting: let it say so.
                        found = Some(s.pos);
                        break;
                    }
                }
                // Whitespace between values is dropped at once.
                b' ' | b'\t' | b'\n' | b'\r' if s.open.is_empty() => self.start = s.pos,
                b' ' | b'\t' | b'\n' | b'\r' => {}
                b'}' | b']' if s.open.last() == Some(&b) => {
                    s.open.pop();
                    if s.open.is_empty() {
                        found = Some(s.pos);
                        break;
                    }
                }
                // A mismatched closer: malformed, serde_json says how.
                b'}' | b']' => {
                    found = Some(s.pos);
                    break;
                }
                // A scalar or garbage at the top level: serde_json judges what is buffered.
                _ if s.open.is_empty() => {
                    found = Some(self.buf.len());
                    break;
                }
                _ => {}
            }
        }
        self.work += (s.pos - from) as u64;
        found
    }

    /// The next whole value, `Ok(None)` if more bytes are needed.
    pub fn decode(&mut self) -> Result<Option<serde_json::Value>> {
        let end = if let Some(len) = self.retry {
            if self.buf.len() == len {
                return Ok(None);
            }
            self.buf.len()
        } else {
            match self.scan() {
                Some(end) => end,
                None => {
                    if self.buffered() > self.max {
                        return Err(Error::MessageTooLarge { limit: self.max });
                    }
                    return Ok(None);
                }
            }
        };
        if end - self.start > self.max {
            return Err(Error::MessageTooLarge { limit: self.max });
        }
        self.work += (end - self.start) as u64;
        let mut stream = serde_json::Deserializer::from_slice(&self.buf[self.start..end])
            .into_iter::<serde_json::Value>();
        match stream.next() {
            None => {
                // Only whitespace.
                self.start = self.buf.len();
                self.scan = Scan {
                    pos: self.start,
                    ..Scan::default()
                };
                self.retry = None;
                Ok(None)
            }
            Some(Ok(v)) => {
                let len = stream.byte_offset();
                if len > self.max {
                    return Err(Error::MessageTooLarge { limit: self.max });
                }
                self.start += len;
                self.scan = Scan {
                    pos: self.start,
                    ..Scan::default()
                };
                self.retry = None;
                Ok(Some(v))
            }
            Some(Err(e)) if e.is_eof() => {
                if self.buffered() > self.max {
                    return Err(Error::MessageTooLarge { limit: self.max });
                }
                self.retry = Some(self.buf.len());
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
        // Judged as soon as the scan sees it, not once the cap is reached.
        for bad in ["{\"a\": [}", &"[".repeat(200)] {
            let mut d = Decoder::new(1 << 20);
            d.feed(bad.as_bytes());
            assert!(matches!(d.decode(), Err(Error::MalformedJson(_))), "{bad}");
        }
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

    /// A multi-MB message arriving in small reads (one unauthenticated peer's worth) is looked
    /// at a bounded number of times per byte, not once per read: re-parsing the whole buffer
    /// on every read cost O(size²) (6.5 s of CPU for 4 MB).
    #[test]
    fn a_huge_message_in_small_chunks_costs_linear_work() {
        let big = "x\\\"{[".repeat((4 << 20) / 7 + 1);
        let msg = serde_json::json!({"id": 1, "result": [{"a": big, "b": [[1, 2], {"c": "}"}]}]});
        let wire = serde_json::to_vec(&msg).unwrap();
        assert!(wire.len() > 4 << 20, "{}", wire.len());
        let mut d = Decoder::new(DEFAULT_MAX_MESSAGE);
        let started = std::time::Instant::now();
        let mut got = vec![];
        for chunk in wire.chunks(4096) {
            d.feed(chunk);
            while let Some(v) = d.decode().unwrap() {
                got.push(v);
            }
        }
        eprintln!(
            "{} bytes in {} reads: work {} bytes ({:.1} per byte), {:?}",
            wire.len(),
            wire.len().div_ceil(4096),
            d.work(),
            d.work() as f64 / wire.len() as f64,
            started.elapsed()
        );
        assert_eq!(got, vec![msg]);
        assert!(d.work() <= 3 * wire.len() as u64, "work {}", d.work());
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
