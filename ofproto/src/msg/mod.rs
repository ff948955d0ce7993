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

impl Message {
    /// The `OFPT_*` type number.
    pub fn msg_type(&self) -> u8 {
        use Message::*;
        match self {
            Hello(_) => t::HELLO,
            Error(_) => t::ERROR,
            EchoRequest(_) => t::ECHO_REQUEST,
            EchoReply(_) => t::ECHO_REPLY,
            Experimenter(_) => t::EXPERIMENTER,
            FeaturesRequest => t::FEATURES_REQUEST,
            FeaturesReply(_) => t::FEATURES_REPLY,
            GetConfigRequest => t::GET_CONFIG_REQUEST,
            GetConfigReply(_) => t::GET_CONFIG_REPLY,
            SetConfig(_) => t::SET_CONFIG,
            PacketIn(_) => t::PACKET_IN,
            FlowRemoved(_) => t::FLOW_REMOVED,
            PortStatus(_) => t::PORT_STATUS,
            PacketOut(_) => t::PACKET_OUT,
            FlowMod(_) => t::FLOW_MOD,
            GroupMod(_) => t::GROUP_MOD,
            PortMod(_) => t::PORT_MOD,
            TableMod(_) => t::TABLE_MOD,
            MultipartRequest(_) => t::MULTIPART_REQUEST,
            MultipartReply(_) => t::MULTIPART_REPLY,
            BarrierRequest => t::BARRIER_REQUEST,
            BarrierReply => t::BARRIER_REPLY,
            QueueGetConfigRequest(_) => t::QUEUE_GET_CONFIG_REQUEST,
            QueueGetConfigReply(_) => t::QUEUE_GET_CONFIG_REPLY,
            RoleRequest(_) => t::ROLE_REQUEST,
            RoleReply(_) => t::ROLE_REPLY,
            GetAsyncRequest => t::GET_ASYNC_REQUEST,
            GetAsyncReply(_) => t::GET_ASYNC_REPLY,
            SetAsync(_) => t::SET_ASYNC,
            MeterMod(_) => t::METER_MOD,
        }
    }

    /// The `OFPT_*` name, e.g. `"FLOW_MOD"`.
    pub fn name(&self) -> &'static str {
        use Message::*;
        match self {
            Hello(_) => "HELLO",
            Error(_) => "ERROR",
            EchoRequest(_) => "ECHO_REQUEST",
            EchoReply(_) => "ECHO_REPLY",
            Experimenter(_) => "EXPERIMENTER",
            FeaturesRequest => "FEATURES_REQUEST",
            FeaturesReply(_) => "FEATURES_REPLY",
            GetConfigRequest => "GET_CONFIG_REQUEST",
            GetConfigReply(_) => "GET_CONFIG_REPLY",
            SetConfig(_) => "SET_CONFIG",
            PacketIn(_) => "PACKET_IN",
            FlowRemoved(_) => "FLOW_REMOVED",
            PortStatus(_) => "PORT_STATUS",
            PacketOut(_) => "PACKET_OUT",
            FlowMod(_) => "FLOW_MOD",
            GroupMod(_) => "GROUP_MOD",
            PortMod(_) => "PORT_MOD",
            TableMod(_) => "TABLE_MOD",
            MultipartRequest(_) => "MULTIPART_REQUEST",
            MultipartReply(_) => "MULTIPART_REPLY",
            BarrierRequest => "BARRIER_REQUEST",
            BarrierReply => "BARRIER_REPLY",
            QueueGetConfigRequest(_) => "QUEUE_GET_CONFIG_REQUEST",
            QueueGetConfigReply(_) => "QUEUE_GET_CONFIG_REPLY",
            RoleRequest(_) => "ROLE_REQUEST",
            RoleReply(_) => "ROLE_REPLY",
            GetAsyncRequest => "GET_ASYNC_REQUEST",
            GetAsyncReply(_) => "GET_ASYNC_REPLY",
            SetAsync(_) => "SET_ASYNC",
            MeterMod(_) => "METER_MOD",
        }
    }

    fn body_len(&self) -> usize {
        use Message::*;
        match self {
            Hello(h) => h.encoded_len(),
            Error(e) => e.encoded_len(),
            EchoRequest(d) | EchoReply(d) => d.len(),
            Experimenter(e) => e.encoded_len(),
            FeaturesRequest | GetConfigRequest | BarrierRequest | BarrierReply
            | GetAsyncRequest => 0,
            FeaturesReply(_) => switch::FeaturesReply::LEN,
            GetConfigReply(_) | SetConfig(_) => switch::SwitchConfig::LEN,
            PacketIn(p) => p.encoded_len(),
            FlowRemoved(f) => f.encoded_len(),
            PortStatus(_) => switch::PortStatus::LEN,
            PacketOut(p) => p.encoded_len(),
            FlowMod(f) => f.encoded_len(),
            GroupMod(g) => g.encoded_len(),
            PortMod(_) => switch::PortMod::LEN,
            TableMod(_) => switch::TableMod::LEN,
            MultipartRequest(m) => m.encoded_len(),
            MultipartReply(m) => m.encoded_len(),
            QueueGetConfigRequest(_) => queue::QueueGetConfigRequest::LEN,
            QueueGetConfigReply(q) => q.encoded_len(),
            RoleRequest(_) | RoleReply(_) => role::Role::LEN,
            GetAsyncReply(_) | SetAsync(_) => role::AsyncConfig::LEN,
            MeterMod(m) => m.encoded_len(),
        }
    }

    fn emit_body(&self, out: &mut BytesMut) {
        use Message::*;
        match self {
            Hello(h) => h.emit(out),
            Error(e) => e.emit(out),
            EchoRequest(d) | EchoReply(d) => out.put_slice(d),
            Experimenter(e) => e.emit(out),
            FeaturesRequest | GetConfigRequest | BarrierRequest | BarrierReply
            | GetAsyncRequest => {}
            FeaturesReply(f) => f.emit(out),
            GetConfigReply(c) | SetConfig(c) => c.emit(out),
            PacketIn(p) => p.emit(out),
            FlowRemoved(f) => f.emit(out),
            PortStatus(p) => p.emit(out),
            PacketOut(p) => p.emit(out),
            FlowMod(f) => f.emit(out),
            GroupMod(g) => g.emit(out),
            PortMod(p) => p.emit(out),
            TableMod(t) => t.emit(out),
            MultipartRequest(m) => m.emit(out),
            MultipartReply(m) => m.emit(out),
            QueueGetConfigRequest(q) => q.emit(out),
            QueueGetConfigReply(q) => q.emit(out),
            RoleRequest(r) | RoleReply(r) => r.emit(out),
            GetAsyncReply(a) | SetAsync(a) => a.emit(out),
            MeterMod(m) => m.emit(out),
        }
    }

    fn read(typ: u8, xid: u32, r: &mut Reader) -> Result<Message, Error> {
        use Message as M;
        Ok(match typ {
            t::HELLO => M::Hello(Hello::read(r)?),
            t::ERROR => M::Error(ErrorMsg::read(r)?),
            t::ECHO_REQUEST => M::EchoRequest(r.rest()),
            t::ECHO_REPLY => M::EchoReply(r.rest()),
            t::EXPERIMENTER => M::Experimenter(Experimenter::read(r)?),
            t::FEATURES_REQUEST => M::FeaturesRequest,
            t::FEATURES_REPLY => M::FeaturesReply(FeaturesReply::read(r)?),
            t::GET_CONFIG_REQUEST => M::GetConfigRequest,
            t::GET_CONFIG_REPLY => M::GetConfigReply(SwitchConfig::read(r)?),
            t::SET_CONFIG => M::SetConfig(SwitchConfig::read(r)?),
            t::PACKET_IN => M::PacketIn(PacketIn::read(r)?),
            t::FLOW_REMOVED => M::FlowRemoved(FlowRemoved::read(r)?),
            t::PORT_STATUS => M::PortStatus(PortStatus::read(r)?),
            t::PACKET_OUT => M::PacketOut(PacketOut::read(r)?),
            t::FLOW_MOD => M::FlowMod(FlowMod::read(r)?),
            t::GROUP_MOD => M::GroupMod(GroupMod::read(r)?),
            t::PORT_MOD => M::PortMod(PortMod::read(r)?),
            t::TABLE_MOD => M::TableMod(TableMod::read(r)?),
            t::MULTIPART_REQUEST => M::MultipartRequest(MultipartRequest::read(r)?),
            t::MULTIPART_REPLY => M::MultipartReply(MultipartReply::read(r)?),
            t::BARRIER_REQUEST => M::BarrierRequest,
            t::BARRIER_REPLY => M::BarrierReply,
            t::QUEUE_GET_CONFIG_REQUEST => {
                M::QueueGetConfigRequest(QueueGetConfigRequest::read(r)?)
            }
            t::QUEUE_GET_CONFIG_REPLY => M::QueueGetConfigReply(QueueGetConfigReply::read(r)?),
            t::ROLE_REQUEST => M::RoleRequest(Role::read(r)?),
            t::ROLE_REPLY => M::RoleReply(Role::read(r)?),
            t::GET_ASYNC_REQUEST => M::GetAsyncRequest,
            t::GET_ASYNC_REPLY => M::GetAsyncReply(AsyncConfig::read(r)?),
            t::SET_ASYNC => M::SetAsync(AsyncConfig::read(r)?),
            t::METER_MOD => M::MeterMod(MeterMod::read(r)?),
            _ => return Err(Error::BadType { typ, xid }),
        })
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
