//! `strowger`: the controller (`serve`), the CLI over its REST API, and tools (`ofp decode`, `bench`).

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "strowger",
    version,
    about = "Network virtualization controller for Open vSwitch"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Run the controller.
    Serve(strowger::serve::ServeArgs),
    /// Decode (and re-encode) OpenFlow 1.3 messages, like `ovs-ofctl ofp-print`.
    #[command(subcommand)]
    Ofp(strowger::ofp_cmd::OfpCommand),
    /// Benchmarks: the OpenFlow load generator and its calibration responder.
    #[command(subcommand)]
    Bench(strowger::bench::BenchCommand),
    /// The topology CLI: `strowger <resource> <verb> …` over the REST API.
    #[command(flatten)]
    Topology(strowger::cli::Command),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(std::io::stderr)
                .init();
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("strowger: cannot start the runtime: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            match rt.block_on(strowger::serve::run(args)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("strowger: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Command::Ofp(cmd) => strowger::ofp_cmd::run(cmd),
        Command::Bench(cmd) => strowger::bench::run(cmd),
        Command::Topology(cmd) => strowger::cli::run(cmd),
    }
}
