//! `strowger ofp decode HEX`: a user-facing OpenFlow 1.3 decoder, like `ovs-ofctl ofp-print`.
//!
//! Output is the decoded message as JSON (serde), or with `--text` one `ovs-ofctl`-style line;
//! `--reencode` appends the hex of emitting the decoded message again, so a reader can see at a
//! glance whether the codec round-trips it. Bad input is one line on stderr and a non-zero exit.

use std::process::ExitCode;

use ofproto::OfMessage;

/// Subcommands of `strowger ofp`.
#[derive(clap::Subcommand)]
pub enum OfpCommand {
    /// Decode one OpenFlow message given as hex.
    Decode {
        /// The message bytes in hex; whitespace is ignored, so the hex may span several arguments.
        #[arg(required = true)]
        hex: Vec<String>,
        /// Print one ovs-ofctl-style line instead of JSON.
        #[arg(long)]
        text: bool,
        /// Append, as the last line, the hex of re-emitting the decoded message.
        #[arg(long)]
        reencode: bool,
    },
}

/// Why decoding failed; printed as one line on stderr.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// No hex digits at all.
    #[error("no input: give the message as hex, e.g. `strowger ofp decode 0400000800000001`")]
    Empty,
    /// Not valid hex.
    #[error("invalid hex: {0}")]
    Hex(#[from] hex::FromHexError),
    /// Hex, but not a well-formed OpenFlow 1.3 message; `reply` is the ERROR a switch would
    /// send back for it.
    #[error("malformed OpenFlow message: {error}{reply}")]
    Malformed {
        /// What is wrong.
        error: ofproto::Error,
        /// ` (a switch would answer …)`, or empty.
        reply: String,
    },
}

/// Runs an `ofp` subcommand.
pub fn run(cmd: OfpCommand) -> ExitCode {
    match cmd {
        OfpCommand::Decode {
            hex,
            text,
            reencode,
        } => match decode(&hex, text, reencode) {
            Ok(out) => {
                println!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("strowger ofp decode: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Decodes `args` (hex, whitespace anywhere) and renders the output `run` prints.
pub fn decode(args: &[String], text: bool, reencode: bool) -> Result<String, DecodeError> {
    let digits: String = args
        .iter()
        .flat_map(|a| a.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    if digits.is_empty() {
        return Err(DecodeError::Empty);
    }
    let bytes = hex::decode(&digits)?;
    let msg = OfMessage::parse(&bytes).map_err(|error| DecodeError::Malformed {
        reply: error
            .ofp_error()
            .map(|t| format!(" (a switch would answer ERROR {t:?})"))
            .unwrap_or_default(),
        error,
    })?;
    let mut out = if text {
        // `OfMessage`'s Display is the one-line `ovs-ofctl ofp-print` form for every type.
        msg.to_string()
    } else {
        // Serializing plain data types into a String cannot fail; fall back to Debug anyway
        // rather than panic if a future type gains a fallible serializer.
        serde_json::to_string_pretty(&msg).unwrap_or_else(|e| format!("{msg:?} ({e})"))
    };
    if reencode {
        out.push('\n');
        out.push_str(&hex::encode(msg.to_bytes()));
    }
    Ok(out)
}
