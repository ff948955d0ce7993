//! `strowger bench`: an OpenFlow 1.3 load generator in the spirit of cbench (which speaks only
//! OpenFlow 1.0) and the trivial responder that calibrates it.
//!
//! `ofload` emulates N switches over TCP, streams PACKET_INs with distinct MACs keeping K in
//! flight per switch, and measures the answers (FLOW_MOD/PACKET_OUT per second, latency
//! percentiles). The protocol side is the sans-IO [`switch::EmulatedSwitch`]; [`ofload`] only
//! moves bytes and keeps time. `bench/ofload-compare.sh` at the repository root runs it against
//! Strowger, os-ken and ovs-testcontroller side by side.

pub mod frame;
pub mod hostdb;
pub mod ofload;
pub mod report;
pub mod responder;
pub mod switch;
pub mod virt;
pub mod vtopo;

/// Subcommands of `strowger bench`.
#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Load a controller with emulated OpenFlow 1.3 switches and report its throughput and
    /// latency.
    Ofload(ofload::OfloadArgs),
    /// A trivial controller answering every PACKET_IN at once (the generator's ceiling).
    Responder(responder::ResponderArgs),
}

/// Runs a `bench` subcommand on its own runtime.
pub fn run(cmd: BenchCommand) -> std::process::ExitCode {
    let threads = match &cmd {
        BenchCommand::Ofload(a) => a.threads,
        BenchCommand::Responder(_) => None,
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = threads {
        builder.worker_threads(n.max(1));
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strowger bench: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cmd {
            BenchCommand::Ofload(args) => {
                let report = ofload::run(&args).await?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    println!("{}", report.human());
                }
                Ok(())
            }
            BenchCommand::Responder(args) => responder::main(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strowger bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
