//! `strowger`: the controller (`serve`), the CLI over its REST API, and tools (`ofp decode`, `bench`).

use clap::Parser;

#[derive(Parser)]
#[command(name = "strowger", version, about = "Network virtualization controller for Open vSwitch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Decode (and re-encode) OpenFlow 1.3 messages, like `ovs-ofctl ofp-print`.
    #[command(subcommand)]
    Ofp(strowger::ofp_cmd::OfpCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Ofp(cmd) => strowger::ofp_cmd::run(cmd),
    }
}
