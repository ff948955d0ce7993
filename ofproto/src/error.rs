//! The crate's one error enum, and the OpenFlow error types/codes (`OFPET_*` / `OFP*C_*`) that
//! ERROR messages carry and that each decoding error maps to.

use serde::Serialize;

/// Declares a protocol-number enum with an `Unknown(raw)` catch-all (smoltcp's
/// `enum_with_unknown!`), so every value on the wire parses and re-emits unchanged.
macro_rules! enum_with_unknown {
    (
        $(#[$m:meta])*
        pub enum $name:ident($ty:ty) {
            $( $(#[$vm:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
        pub enum $name {
            $( $(#[$vm])* $variant, )+
            /// A value this crate has no name for, kept as received.
            Unknown($ty),
        }
        impl From<$ty> for $name {
            fn from(v: $ty) -> Self {
                match v {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }
        impl From<$name> for $ty {
            fn from(v: $name) -> $ty {
                match v {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}
pub(crate) use enum_with_unknown;

/// Which part of a message a decoding error was found in; decides the OpenFlow error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Ctx {
    /// The 8-byte header or the framing.
    Header,
    /// The fixed part of a message body.
    Message,
    /// A HELLO element.
    Hello,
    /// An `ofp_match` / OXM TLV.
    Match,
    /// An action.
    Action,
    /// An instruction.
    Instruction,
    /// A multipart request/reply body.
    Multipart,
    /// A group bucket.
    Group,
    /// A meter band.
    Meter,
    /// A queue or queue property.
    Queue,
    /// A table-features entry or property.
    TableFeatures,
}

impl std::fmt::Display for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Ctx::Header => "header",
            Ctx::Message => "message body",
            Ctx::Hello => "hello element",
            Ctx::Match => "match",
            Ctx::Action => "action",
            Ctx::Instruction => "instruction",
            Ctx::Multipart => "multipart body",
            Ctx::Group => "group bucket",
            Ctx::Meter => "meter band",
            Ctx::Queue => "queue",
            Ctx::TableFeatures => "table features",
        };
        f.write_str(s)
    }
}

/// Everything that can go wrong decoding OpenFlow bytes. Each variant maps, through
/// [`Error::ofp_error`], to the ERROR type/code a switch would answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[non_exhaustive]
pub enum Error {
    /// A field or part runs past the end of the bytes that contain it.
    #[error("{ctx}: truncated, needed {needed} bytes but {available} available")]
    Truncated {
        /// Where.
        ctx: Ctx,
        /// Bytes the next read needed.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A length field is impossible (shorter than its own header, not a multiple of 8, ...).
    #[error("{ctx}: bad length {length}")]
    BadLength {
        /// Where.
        ctx: Ctx,
        /// The length read from the wire.
        length: usize,
    },
    /// A length-prefixed part has bytes left after its last field.
    #[error("{ctx}: {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// Where.
        ctx: Ctx,
        /// How many bytes were left.
        extra: usize,
    },
    /// Padding or a reserved field is not zero.
    #[error("{ctx}: non-zero padding")]
    NonZeroPadding {
        /// Where.
        ctx: Ctx,
    },
    /// A field holds a value we cannot represent (e.g. a port name that is not UTF-8).
    #[error("{ctx}: bad value: {what}")]
    BadValue {
        /// Where.
        ctx: Ctx,
        /// What was wrong.
        what: &'static str,
    },
    /// The header announces more than the framing allows.
    #[error("message length {length} exceeds the limit of {max} bytes")]
    TooLong {
        /// The announced length.
        length: usize,
        /// The decoder's limit.
        max: usize,
    },
    /// A non-HELLO message in a version other than OpenFlow 1.3.
    #[error("unsupported OpenFlow version {version:#04x} (xid {xid})")]
    BadVersion {
        /// Version byte of the header.
        version: u8,
        /// Transaction id, so the session can answer with an ERROR.
        xid: u32,
    },
    /// A message type OpenFlow 1.3 does not define.
    #[error("unknown message type {typ} (xid {xid})")]
    BadType {
        /// The type byte.
        typ: u8,
        /// Transaction id.
        xid: u32,
    },
    /// A multipart type OpenFlow 1.3 does not define.
    #[error("unknown multipart type {typ}")]
    BadMultipartType {
        /// The multipart type.
        typ: u16,
    },
    /// `ofp_match.type` is not `OFPMT_OXM`.
    #[error("unsupported match type {typ}")]
    BadMatchType {
        /// The match type.
        typ: u16,
    },
    /// A known OXM field with a payload length that does not fit it.
    #[error("OXM field class {class:#06x} field {field} has bad length {length}")]
    BadOxmLength {
        /// OXM class.
        class: u16,
        /// OXM field number.
        field: u8,
        /// Payload length read.
        length: u8,
    },
    /// A match field is present without the fields it requires (OF1.3.5 §7.2.3.6).
    #[error("match field {field} is missing its prerequisite {requires}")]
    BadPrerequisite {
        /// The field.
        field: &'static str,
        /// What it needs.
        requires: &'static str,
    },
    /// A field appears twice in one match.
    #[error("match field {field} appears more than once")]
    DuplicateField {
        /// The field.
        field: &'static str,
    },
    /// A masked field has value bits set where the mask is zero.
    #[error("match field {field} has value bits outside its mask")]
    BadWildcards {
        /// The field.
        field: &'static str,
    },
    /// A mask on a field that cannot be masked (OF1.3.5 §7.2.3.7: `in_port`).
    #[error("match field {field} cannot be masked")]
    BadMask {
        /// The field.
        field: &'static str,
    },
    /// A field value out of its range (e.g. register index above 7).
    #[error("match field {field} has an invalid value")]
    BadField {
        /// The field.
        field: &'static str,
    },
    /// An action type OpenFlow 1.3 does not define.
    #[error("unknown action type {typ}")]
    BadActionType {
        /// The action type.
        typ: u16,
    },
    /// An instruction type OpenFlow 1.3 does not define.
    #[error("unknown instruction type {typ}")]
    BadInstructionType {
        /// The instruction type.
        typ: u16,
    },
    /// A meter band type OpenFlow 1.3 does not define.
    #[error("unknown meter band type {typ}")]
    BadMeterBand {
        /// The band type.
        typ: u16,
    },
}

impl Error {
    /// The ERROR (type and code) a switch would send back for this input; the session layer
    /// uses it to answer a malformed message.
    pub fn ofp_error(&self) -> Option<ErrorType> {
        use Error::*;
        Some(match self {
            Truncated { ctx, .. }
            | BadLength { ctx, .. }
            | TrailingBytes { ctx, .. }
            | NonZeroPadding { ctx }
            | BadValue { ctx, .. } => bad_len(*ctx),
            TooLong { .. } => ErrorType::BadRequest(BadRequestCode::BadLen),
            BadVersion { .. } => ErrorType::BadRequest(BadRequestCode::BadVersion),
            BadType { .. } => ErrorType::BadRequest(BadRequestCode::BadType),
            BadMultipartType { .. } => ErrorType::BadRequest(BadRequestCode::BadMultipart),
            BadMatchType { .. } => ErrorType::BadMatch(BadMatchCode::BadType),
            BadOxmLength { .. } => ErrorType::BadMatch(BadMatchCode::BadLen),
            BadPrerequisite { .. } => ErrorType::BadMatch(BadMatchCode::BadPrereq),
            DuplicateField { .. } => ErrorType::BadMatch(BadMatchCode::DupField),
            BadWildcards { .. } => ErrorType::BadMatch(BadMatchCode::BadWildcards),
            BadMask { .. } => ErrorType::BadMatch(BadMatchCode::BadMask),
            BadField { .. } => ErrorType::BadMatch(BadMatchCode::BadField),
            BadActionType { .. } => ErrorType::BadAction(BadActionCode::BadType),
            BadInstructionType { .. } => ErrorType::BadInstruction(BadInstructionCode::UnknownInst),
            BadMeterBand { .. } => ErrorType::MeterModFailed(MeterModFailedCode::BadBand),
        })
    }

    /// True when the byte stream cannot be resynchronised after this error (the length in the
    /// header is unusable); the connection must be closed. Other errors consumed exactly one
    /// message and the stream may continue.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Error::TooLong { .. }
                | Error::BadLength {
                    ctx: Ctx::Header,
                    ..
                }
        )
    }
}

fn bad_len(ctx: Ctx) -> ErrorType {
    match ctx {
        Ctx::Header | Ctx::Message | Ctx::Hello | Ctx::Multipart | Ctx::Queue => {
            ErrorType::BadRequest(BadRequestCode::BadLen)
        }
        Ctx::Match => ErrorType::BadMatch(BadMatchCode::BadLen),
        Ctx::Action => ErrorType::BadAction(BadActionCode::BadLen),
        Ctx::Instruction => ErrorType::BadInstruction(BadInstructionCode::BadLen),
        Ctx::Group => ErrorType::GroupModFailed(GroupModFailedCode::BadBucket),
        Ctx::Meter => ErrorType::MeterModFailed(MeterModFailedCode::BadBand),
        Ctx::TableFeatures => ErrorType::TableFeaturesFailed(TableFeaturesFailedCode::BadLen),
    }
}

/// `ofp_error_msg.type` together with its code: what an ERROR message reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ErrorType {
    /// OFPET_HELLO_FAILED
    HelloFailed(HelloFailedCode),
    /// OFPET_BAD_REQUEST
    BadRequest(BadRequestCode),
    /// OFPET_BAD_ACTION
    BadAction(BadActionCode),
    /// OFPET_BAD_INSTRUCTION
    BadInstruction(BadInstructionCode),
    /// OFPET_BAD_MATCH
    BadMatch(BadMatchCode),
    /// OFPET_FLOW_MOD_FAILED
    FlowModFailed(FlowModFailedCode),
    /// OFPET_GROUP_MOD_FAILED
    GroupModFailed(GroupModFailedCode),
    /// OFPET_PORT_MOD_FAILED
    PortModFailed(PortModFailedCode),
    /// OFPET_TABLE_MOD_FAILED
    TableModFailed(TableModFailedCode),
    /// OFPET_QUEUE_OP_FAILED
    QueueOpFailed(QueueOpFailedCode),
    /// OFPET_SWITCH_CONFIG_FAILED
    SwitchConfigFailed(SwitchConfigFailedCode),
    /// OFPET_ROLE_REQUEST_FAILED
    RoleRequestFailed(RoleRequestFailedCode),
    /// OFPET_METER_MOD_FAILED
    MeterModFailed(MeterModFailedCode),
    /// OFPET_TABLE_FEATURES_FAILED
    TableFeaturesFailed(TableFeaturesFailedCode),
    /// OFPET_EXPERIMENTER: the code field is the experimenter-defined type.
    Experimenter {
        /// Experimenter-defined error type.
        exp_type: u16,
        /// Experimenter id.
        experimenter: u32,
    },
    /// An error type OpenFlow 1.3 does not define.
    Unknown {
        /// The type.
        typ: u16,
        /// The code.
        code: u16,
    },
}

/// `OFPET_EXPERIMENTER`.
pub const OFPET_EXPERIMENTER: u16 = 0xffff;

impl ErrorType {
    /// Builds the typed value from the wire `type` and `code` (not for `OFPET_EXPERIMENTER`,
    /// whose layout differs; see `ErrorMsg`).
    pub fn from_type_code(typ: u16, code: u16) -> ErrorType {
        use ErrorType::*;
        match typ {
            0 => HelloFailed(code.into()),
            1 => BadRequest(code.into()),
            2 => BadAction(code.into()),
            3 => BadInstruction(code.into()),
            4 => BadMatch(code.into()),
            5 => FlowModFailed(code.into()),
            6 => GroupModFailed(code.into()),
            7 => PortModFailed(code.into()),
            8 => TableModFailed(code.into()),
            9 => QueueOpFailed(code.into()),
            10 => SwitchConfigFailed(code.into()),
            11 => RoleRequestFailed(code.into()),
            12 => MeterModFailed(code.into()),
            13 => TableFeaturesFailed(code.into()),
            _ => Unknown { typ, code },
        }
    }

    /// The wire `type` and `code` (for experimenter errors: `0xffff` and the exp_type).
    pub fn type_code(&self) -> (u16, u16) {
        use ErrorType::*;
        match *self {
            HelloFailed(c) => (0, c.into()),
            BadRequest(c) => (1, c.into()),
            BadAction(c) => (2, c.into()),
            BadInstruction(c) => (3, c.into()),
            BadMatch(c) => (4, c.into()),
            FlowModFailed(c) => (5, c.into()),
            GroupModFailed(c) => (6, c.into()),
            PortModFailed(c) => (7, c.into()),
            TableModFailed(c) => (8, c.into()),
            QueueOpFailed(c) => (9, c.into()),
            SwitchConfigFailed(c) => (10, c.into()),
            RoleRequestFailed(c) => (11, c.into()),
            MeterModFailed(c) => (12, c.into()),
            TableFeaturesFailed(c) => (13, c.into()),
            Experimenter { exp_type, .. } => (OFPET_EXPERIMENTER, exp_type),
            Unknown { typ, code } => (typ, code),
        }
    }
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use ErrorType::*;
        match self {
            HelloFailed(c) => write!(f, "OFPET_HELLO_FAILED/{c:?}"),
            BadRequest(c) => write!(f, "OFPET_BAD_REQUEST/{c:?}"),
            BadAction(c) => write!(f, "OFPET_BAD_ACTION/{c:?}"),
            BadInstruction(c) => write!(f, "OFPET_BAD_INSTRUCTION/{c:?}"),
            BadMatch(c) => write!(f, "OFPET_BAD_MATCH/{c:?}"),
            FlowModFailed(c) => write!(f, "OFPET_FLOW_MOD_FAILED/{c:?}"),
            GroupModFailed(c) => write!(f, "OFPET_GROUP_MOD_FAILED/{c:?}"),
            PortModFailed(c) => write!(f, "OFPET_PORT_MOD_FAILED/{c:?}"),
            TableModFailed(c) => write!(f, "OFPET_TABLE_MOD_FAILED/{c:?}"),
            QueueOpFailed(c) => write!(f, "OFPET_QUEUE_OP_FAILED/{c:?}"),
            SwitchConfigFailed(c) => write!(f, "OFPET_SWITCH_CONFIG_FAILED/{c:?}"),
            RoleRequestFailed(c) => write!(f, "OFPET_ROLE_REQUEST_FAILED/{c:?}"),
            MeterModFailed(c) => write!(f, "OFPET_METER_MOD_FAILED/{c:?}"),
            TableFeaturesFailed(c) => write!(f, "OFPET_TABLE_FEATURES_FAILED/{c:?}"),
            Experimenter {
                exp_type,
                experimenter,
            } => write!(f, "OFPET_EXPERIMENTER/{experimenter:#010x}/{exp_type}"),
            Unknown { typ, code } => write!(f, "type {typ}/code {code}"),
        }
    }
}

enum_with_unknown! {
    /// OFPHFC_* codes.
    pub enum HelloFailedCode(u16) {
        /// No compatible version.
        Incompatible = 0,
        /// Permissions error.
        Eperm = 1,
    }
}

enum_with_unknown! {
    /// OFPBRC_* codes.
    pub enum BadRequestCode(u16) {
        /// Header version not supported.
        BadVersion = 0,
        /// Message type not supported.
        BadType = 1,
        /// Multipart type not supported.
        BadMultipart = 2,
        /// Experimenter id not supported.
        BadExperimenter = 3,
        /// Experimenter type not supported.
        BadExpType = 4,
        /// Permissions error.
        Eperm = 5,
        /// Wrong request length for type.
        BadLen = 6,
        /// Specified buffer has already been used.
        BufferEmpty = 7,
        /// Specified buffer does not exist.
        BufferUnknown = 8,
        /// Specified table-id invalid or does not exist.
        BadTableId = 9,
        /// Denied because controller is slave.
        IsSlave = 10,
        /// Invalid port.
        BadPort = 11,
        /// Invalid packet in packet-out.
        BadPacket = 12,
        /// Multipart request overflowed the assigned buffer.
        MultipartBufferOverflow = 13,
    }
}

enum_with_unknown! {
    /// OFPBAC_* codes.
    pub enum BadActionCode(u16) {
        /// Unknown or unsupported action type.
        BadType = 0,
        /// Length problem in actions.
        BadLen = 1,
        /// Unknown experimenter id specified.
        BadExperimenter = 2,
        /// Unknown action for experimenter id.
        BadExpType = 3,
        /// Problem validating output port.
        BadOutPort = 4,
        /// Bad action argument.
        BadArgument = 5,
        /// Permissions error.
        Eperm = 6,
        /// Can't handle this many actions.
        TooMany = 7,
        /// Problem validating output queue.
        BadQueue = 8,
        /// Invalid group id in forward action.
        BadOutGroup = 9,
        /// Action can't apply for this match, or set-field missing prerequisite.
        MatchInconsistent = 10,
        /// Action order is unsupported for the action list.
        UnsupportedOrder = 11,
        /// Actions uses an unsupported tag/encap.
        BadTag = 12,
        /// Unsupported type in set-field action.
        BadSetType = 13,
        /// Length problem in set-field action.
        BadSetLen = 14,
        /// Bad argument in set-field action.
        BadSetArgument = 15,
    }
}

enum_with_unknown! {
    /// OFPBIC_* codes.
    pub enum BadInstructionCode(u16) {
        /// Unknown instruction.
        UnknownInst = 0,
        /// Switch or table does not support the instruction.
        UnsupInst = 1,
        /// Invalid table-id specified.
        BadTableId = 2,
        /// Metadata value unsupported by datapath.
        UnsupMetadata = 3,
        /// Metadata mask value unsupported by datapath.
        UnsupMetadataMask = 4,
        /// Unknown experimenter id specified.
        BadExperimenter = 5,
        /// Unknown instruction for experimenter id.
        BadExpType = 6,
        /// Length problem in instructions.
        BadLen = 7,
        /// Permissions error.
        Eperm = 8,
    }
}

enum_with_unknown! {
    /// OFPBMC_* codes.
    pub enum BadMatchCode(u16) {
        /// Unsupported match type specified by the match.
        BadType = 0,
        /// Length problem in match.
        BadLen = 1,
        /// Match uses an unsupported tag/encap.
        BadTag = 2,
        /// Unsupported datalink addr mask.
        BadDlAddrMask = 3,
        /// Unsupported network addr mask.
        BadNwAddrMask = 4,
        /// Unsupported combination of fields masked or omitted in the match.
        BadWildcards = 5,
        /// Unsupported field type in the match.
        BadField = 6,
        /// Unsupported value in a match field.
        BadValue = 7,
        /// Unsupported mask specified in the match.
        BadMask = 8,
        /// A prerequisite was not met.
        BadPrereq = 9,
        /// A field type was duplicated.
        DupField = 10,
        /// Permissions error.
        Eperm = 11,
    }
}

enum_with_unknown! {
    /// OFPFMFC_* codes.
    pub enum FlowModFailedCode(u16) {
        /// OFPFMFC_UNKNOWN: unspecified error.
        Unspecified = 0,
        /// Flow not added because table was full.
        TableFull = 1,
        /// Table does not exist.
        BadTableId = 2,
        /// Attempted to add overlapping flow with CHECK_OVERLAP flag set.
        Overlap = 3,
        /// Permissions error.
        Eperm = 4,
        /// Flow not added because of unsupported idle/hard timeout.
        BadTimeout = 5,
        /// Unsupported or unknown command.
        BadCommand = 6,
        /// Unsupported or unknown flags.
        BadFlags = 7,
    }
}

enum_with_unknown! {
    /// OFPGMFC_* codes.
    pub enum GroupModFailedCode(u16) {
        /// Group not added because a group ADD attempted to replace an existing group.
        GroupExists = 0,
        /// Group not added because the group specified is invalid.
        InvalidGroup = 1,
        /// Switch does not support unequal load sharing with select groups.
        WeightUnsupported = 2,
        /// The group table is full.
        OutOfGroups = 3,
        /// The maximum number of action buckets for a group has been exceeded.
        OutOfBuckets = 4,
        /// Switch does not support groups that forward to groups.
        ChainingUnsupported = 5,
        /// This group cannot watch the watch_port or watch_group specified.
        WatchUnsupported = 6,
        /// Group entry would cause a loop.
        Loop = 7,
        /// Group not modified because a group MODIFY attempted to modify a non-existent group.
        UnknownGroup = 8,
        /// Group not deleted because another group is forwarding to it.
        ChainedGroup = 9,
        /// Unsupported or unknown group type.
        BadType = 10,
        /// Unsupported or unknown command.
        BadCommand = 11,
        /// Error in bucket.
        BadBucket = 12,
        /// Error in watch port/group.
        BadWatch = 13,
        /// Permissions error.
        Eperm = 14,
    }
}

enum_with_unknown! {
    /// OFPPMFC_* codes.
    pub enum PortModFailedCode(u16) {
        /// Specified port number does not exist.
        BadPort = 0,
        /// Specified hardware address does not match the port number.
        BadHwAddr = 1,
        /// Specified config is invalid.
        BadConfig = 2,
        /// Specified advertise is invalid.
        BadAdvertise = 3,
        /// Permissions error.
        Eperm = 4,
    }
}

enum_with_unknown! {
    /// OFPTMFC_* codes.
    pub enum TableModFailedCode(u16) {
        /// Specified table does not exist.
        BadTable = 0,
        /// Specified config is invalid.
        BadConfig = 1,
        /// Permissions error.
        Eperm = 2,
    }
}

enum_with_unknown! {
    /// OFPQOFC_* codes.
    pub enum QueueOpFailedCode(u16) {
        /// Invalid port (or port does not exist).
        BadPort = 0,
        /// Queue does not exist.
        BadQueue = 1,
        /// Permissions error.
        Eperm = 2,
    }
}

enum_with_unknown! {
    /// OFPSCFC_* codes.
    pub enum SwitchConfigFailedCode(u16) {
        /// Specified flags is invalid.
        BadFlags = 0,
        /// Specified len is invalid.
        BadLen = 1,
        /// Permissions error.
        Eperm = 2,
    }
}

enum_with_unknown! {
    /// OFPRRFC_* codes.
    pub enum RoleRequestFailedCode(u16) {
        /// Stale message: old generation_id.
        Stale = 0,
        /// Controller role change unsupported.
        Unsup = 1,
        /// Invalid role.
        BadRole = 2,
    }
}

enum_with_unknown! {
    /// OFPMMFC_* codes.
    pub enum MeterModFailedCode(u16) {
        /// OFPMMFC_UNKNOWN: unspecified error.
        Unspecified = 0,
        /// Meter not added because a meter ADD attempted to replace an existing meter.
        MeterExists = 1,
        /// Meter not added because the meter specified is invalid.
        InvalidMeter = 2,
        /// Meter not modified because a meter MODIFY attempted to modify a non-existent meter.
        UnknownMeter = 3,
        /// Unsupported or unknown command.
        BadCommand = 4,
        /// Flag configuration unsupported.
        BadFlags = 5,
        /// Rate unsupported.
        BadRate = 6,
        /// Burst size unsupported.
        BadBurst = 7,
        /// Band unsupported.
        BadBand = 8,
        /// Band value unsupported.
        BadBandValue = 9,
        /// No more meters available.
        OutOfMeters = 10,
        /// The maximum number of properties for a meter has been exceeded.
        OutOfBands = 11,
    }
}

enum_with_unknown! {
    /// OFPTFFC_* codes.
    pub enum TableFeaturesFailedCode(u16) {
        /// Specified table does not exist.
        BadTable = 0,
        /// Invalid metadata mask.
        BadMetadata = 1,
        /// Unknown property type.
        BadType = 2,
        /// Length problem in properties.
        BadLen = 3,
        /// Unsupported property value.
        BadArgument = 4,
        /// Permissions error.
        Eperm = 5,
    }
}
