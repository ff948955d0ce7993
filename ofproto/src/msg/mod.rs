//! Whole OpenFlow messages: [`OfMessage`] (header fields + typed body) and the [`Message`]
//! enum with one variant per OpenFlow 1.3 message type. One file per message family.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::codec::{patch_len, put_len_placeholder, ser, Reader};
use crate::error::{Ctx, Error};
use crate::header::{msg_type as t, Header};
use crate::multipart::{MultipartReply, MultipartRequest};
use crate::{OFP_HEADER_LEN, OFP_MAX_LEN, OFP_VERSION};

pub mod flow;
pub mod group;
pub mod hello;
pub mod meter;
pub mod packet;
pub mod queue;
pub mod role;
pub mod switch;

pub use flow::{FlowMod, FlowModCommand, FlowRemoved, FlowRemovedReason};
pub use group::{Bucket, GroupMod, GroupModCommand, GroupType};
pub use hello::{ErrorMsg, Experimenter, Hello, HelloElement};
pub use meter::{MeterBand, MeterMod, MeterModCommand};
pub use packet::{PacketIn, PacketInReason, PacketOut};
pub use queue::{PacketQueue, QueueGetConfigReply, QueueGetConfigRequest, QueueProp};
pub use role::{AsyncConfig, ControllerRole, Role};
pub use switch::{FeaturesReply, Port, PortMod, PortReason, PortStatus, SwitchConfig, TableMod};

/// One whole OpenFlow message. The header's type and length are derived from `body`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfMessage {
    /// Header version (0x04 for everything but a peer's HELLO).
    pub version: u8,
    /// Transaction id.
    pub xid: u32,
    /// Typed body.
    pub body: Message,
}

/// A typed message body, one variant per `OFPT_*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs)] // Each variant is the OpenFlow 1.3 message of the same name.
pub enum Message {
    Hello(Hello),
    Error(ErrorMsg),
    EchoRequest(#[serde(serialize_with = "ser::hex")] Bytes),
    EchoReply(#[serde(serialize_with = "ser::hex")] Bytes),
    Experimenter(Experimenter),
    FeaturesRequest,
    FeaturesReply(FeaturesReply),
    GetConfigRequest,
    GetConfigReply(SwitchConfig),
    SetConfig(SwitchConfig),
    PacketIn(PacketIn),
    FlowRemoved(FlowRemoved),
    PortStatus(PortStatus),
    PacketOut(PacketOut),
    FlowMod(FlowMod),
    GroupMod(GroupMod),
    PortMod(PortMod),
    TableMod(TableMod),
    MultipartRequest(MultipartRequest),
    MultipartReply(MultipartReply),
    BarrierRequest,
    BarrierReply,
    QueueGetConfigRequest(QueueGetConfigRequest),
    QueueGetConfigReply(QueueGetConfigReply),
    RoleRequest(Role),
    RoleReply(Role),
    GetAsyncRequest,
    GetAsyncReply(AsyncConfig),
    SetAsync(AsyncConfig),
    MeterMod(MeterMod),
}

/// A message body as it sits after the header: its length, emit and read mirror each other.
trait Body: Sized {
    fn body_len(&self) -> usize;
    fn put(&self, out: &mut BytesMut);
    fn get(r: &mut Reader) -> Result<Self, Error>;
}

/// Bodies of a fixed length (`LEN`).
macro_rules! fixed_bodies {
    ($($t:ty),* $(,)?) => {$(
        impl Body for $t {
            fn body_len(&self) -> usize {
                <$t>::LEN
            }
            fn put(&self, out: &mut BytesMut) {
                self.emit(out)
            }
            fn get(r: &mut Reader) -> Result<Self, Error> {
                <$t>::read(r)
            }
        }
    )*};
}

/// Bodies whose length depends on their contents (`encoded_len`).
macro_rules! sized_bodies {
    ($($t:ty),* $(,)?) => {$(
        impl Body for $t {
            fn body_len(&self) -> usize {
                self.encoded_len()
            }
            fn put(&self, out: &mut BytesMut) {
                self.emit(out)
            }
            fn get(r: &mut Reader) -> Result<Self, Error> {
                <$t>::read(r)
            }
        }
    )*};
}

fixed_bodies!(
    FeaturesReply,
    SwitchConfig,
    PortStatus,
    PortMod,
    TableMod,
    QueueGetConfigRequest,
    Role,
    AsyncConfig,
);
sized_bodies!(
    Hello,
    ErrorMsg,
    Experimenter,
    PacketIn,
    FlowRemoved,
    PacketOut,
    FlowMod,
    GroupMod,
    MultipartRequest,
    MultipartReply,
    QueueGetConfigReply,
    MeterMod,
);

/// Opaque data (echo): the rest of the message.
impl Body for Bytes {
    fn body_len(&self) -> usize {
        self.len()
    }
    fn put(&self, out: &mut BytesMut) {
        out.put_slice(self)
    }
    fn get(r: &mut Reader) -> Result<Self, Error> {
        Ok(r.rest())
    }
}

/// Generates, from one row per message type, its number, name, body length, emit and read,
/// as `oxm_fields!` does for match fields: a type is added in one place.
macro_rules! messages {
    (
        empty { $( $ev:ident = $ec:ident; )* }
        body { $( $bv:ident($bt:ty) = $bc:ident; )* }
    ) => {
        impl Message {
            /// The `OFPT_*` type number.
            pub fn msg_type(&self) -> u8 {
                match self {
                    $( Message::$ev => t::$ec, )*
                    $( Message::$bv(_) => t::$bc, )*
                }
            }

            /// The `OFPT_*` name, e.g. `"FLOW_MOD"`.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Message::$ev => stringify!($ec), )*
                    $( Message::$bv(_) => stringify!($bc), )*
                }
            }

            /// The `OFPT_*` name of message type `typ`, if OpenFlow 1.3 defines one.
            pub fn type_name(typ: u8) -> Option<&'static str> {
                Some(match typ {
                    $( t::$ec => stringify!($ec), )*
                    $( t::$bc => stringify!($bc), )*
                    _ => return None,
                })
            }

            fn body_len(&self) -> usize {
                match self {
                    $( Message::$ev => 0, )*
                    $( Message::$bv(b) => Body::body_len(b), )*
                }
            }

            fn emit_body(&self, out: &mut BytesMut) {
                match self {
                    $( Message::$ev => {} )*
                    $( Message::$bv(b) => Body::put(b, out), )*
                }
            }

            fn read(typ: u8, xid: u32, r: &mut Reader) -> Result<Message, Error> {
                Ok(match typ {
                    $( t::$ec => Message::$ev, )*
                    $( t::$bc => Message::$bv(<$bt as Body>::get(r)?), )*
                    _ => return Err(Error::BadType { typ, xid }),
                })
            }
        }
    };
}

messages! {
    empty {
        FeaturesRequest = FEATURES_REQUEST;
        GetConfigRequest = GET_CONFIG_REQUEST;
        BarrierRequest = BARRIER_REQUEST;
        BarrierReply = BARRIER_REPLY;
        GetAsyncRequest = GET_ASYNC_REQUEST;
    }
    body {
        Hello(Hello) = HELLO;
        Error(ErrorMsg) = ERROR;
        EchoRequest(Bytes) = ECHO_REQUEST;
        EchoReply(Bytes) = ECHO_REPLY;
        Experimenter(Experimenter) = EXPERIMENTER;
        FeaturesReply(FeaturesReply) = FEATURES_REPLY;
        GetConfigReply(SwitchConfig) = GET_CONFIG_REPLY;
        SetConfig(SwitchConfig) = SET_CONFIG;
        PacketIn(PacketIn) = PACKET_IN;
        FlowRemoved(FlowRemoved) = FLOW_REMOVED;
        PortStatus(PortStatus) = PORT_STATUS;
        PacketOut(PacketOut) = PACKET_OUT;
        FlowMod(FlowMod) = FLOW_MOD;
        GroupMod(GroupMod) = GROUP_MOD;
        PortMod(PortMod) = PORT_MOD;
        TableMod(TableMod) = TABLE_MOD;
        MultipartRequest(MultipartRequest) = MULTIPART_REQUEST;
        MultipartReply(MultipartReply) = MULTIPART_REPLY;
        QueueGetConfigRequest(QueueGetConfigRequest) = QUEUE_GET_CONFIG_REQUEST;
        QueueGetConfigReply(QueueGetConfigReply) = QUEUE_GET_CONFIG_REPLY;
        RoleRequest(Role) = ROLE_REQUEST;
        RoleReply(Role) = ROLE_REPLY;
        GetAsyncReply(AsyncConfig) = GET_ASYNC_REPLY;
        SetAsync(AsyncConfig) = SET_ASYNC;
        MeterMod(MeterMod) = METER_MOD;
    }
}

impl OfMessage {
    /// A message in OpenFlow 1.3.
    pub fn new(xid: u32, body: Message) -> Self {
        OfMessage {
            version: OFP_VERSION,
            xid,
            body,
        }
    }

    /// Parses exactly one message from `buf` (copied once into a `Bytes`; use
    /// [`OfMessage::parse_bytes`] to slice payloads out of a buffer you already own).
    pub fn parse(buf: &[u8]) -> Result<OfMessage, Error> {
        OfMessage::parse_bytes(Bytes::copy_from_slice(buf))
    }

    /// Parses exactly one message; payloads (packet data, opaque experimenter bodies) are
    /// zero-copy slices of `buf`. Trailing bytes beyond the header's length are an error.
    pub fn parse_bytes(buf: Bytes) -> Result<OfMessage, Error> {
        let mut r = Reader::new(&buf, Ctx::Header);
        let h = Header::read(&mut r)?;
        let body_len = usize::from(h.length) - OFP_HEADER_LEN;
        if r.remaining() != body_len {
            return Err(if r.remaining() < body_len {
                Error::Truncated {
                    ctx: Ctx::Header,
                    needed: body_len,
                    available: r.remaining(),
                }
            } else {
                Error::TrailingBytes {
                    ctx: Ctx::Header,
                    extra: r.remaining() - body_len,
                }
            });
        }
        if h.version != OFP_VERSION && h.typ != t::HELLO {
            return Err(Error::BadVersion {
                version: h.version,
                xid: h.xid,
            });
        }
        let mut body = r.rest_reader(Ctx::Message);
        let msg = Message::read(h.typ, h.xid, &mut body)?;
        body.finish()?;
        Ok(OfMessage {
            version: h.version,
            xid: h.xid,
            body: msg,
        })
    }

    /// Total bytes on the wire, header included.
    pub fn encoded_len(&self) -> usize {
        OFP_HEADER_LEN + self.body.body_len()
    }

    /// Appends the message to `out`.
    ///
    /// # Panics
    /// If the encoding exceeds 65535 bytes, which only a caller building an oversized message
    /// can cause (parsed messages always fit). Use [`OfMessage::try_emit`] when unsure.
    pub fn emit(&self, out: &mut BytesMut) {
        if let Err(e) = self.try_emit(out) {
            panic!("OfMessage::emit: {e}");
        }
    }

    /// Appends the message, or fails with [`Error::TooLong`] (writing nothing) if it does
    /// not fit the 16-bit length field.
    pub fn try_emit(&self, out: &mut BytesMut) -> Result<(), Error> {
        let start = out.len();
        out.put_u8(self.version);
        out.put_u8(self.body.msg_type());
        let at = put_len_placeholder(out);
        out.put_u32(self.xid);
        self.body.emit_body(out);
        let len = out.len() - start;
        debug_assert_eq!(len, self.encoded_len(), "encoded_len disagrees with emit");
        if len > OFP_MAX_LEN {
            out.truncate(start);
            return Err(Error::TooLong {
                length: len,
                max: OFP_MAX_LEN,
            });
        }
        patch_len(out, at, start);
        Ok(())
    }

    /// The encoded message.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.emit(&mut out);
        out.freeze()
    }
}

#[cfg(test)]
mod tests;
