//! `strowger ofp decode HEX`: a user-facing OpenFlow decoder (placeholder until issue 2 lands).

/// Subcommands of `strowger ofp`.
#[derive(clap::Subcommand)]
pub enum OfpCommand {
    /// Decode one OpenFlow message given as hex.
    Decode {
        /// The message bytes in hex; whitespace is ignored.
        hex: Vec<String>,
    },
}

/// Runs an `ofp` subcommand.
pub fn run(_cmd: OfpCommand) -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}
