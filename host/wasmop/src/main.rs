//! `wasmop`: the host binary. Parses the command line, sets up logging and runs a subcommand of the
//! `wasmop` library.

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use wasmop::cli::{Cli, Command};
use wasmop::{commands, offline, plugins};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log.log).context("invalid --log filter")?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // kube's TLS uses rustls with ring; one process-wide provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Run(args) => commands::run(args).await?,
        Command::Dev(args) => commands::dev(args).await?,
        Command::Plugins(args) => plugins::status::print(args.status.status_addr).await?,
        Command::Apiserver(args) => commands::apiserver(args).await?,
        Command::Test(args) => offline::test(args).await?,
        Command::Inspect(args) => offline::inspect(args).await?,
        Command::Crd(args) => offline::crd(args).await?,
        Command::Rbac(args) => wasmop::rbac::rbac(args).await?,
        Command::Compile(args) => commands::compile(args).await?,
        Command::New(args) => wasmop::scaffold::new_command(args)?,
        Command::Build(args) => wasmop::scaffold::build_command(args)?,
    }
    Ok(())
}
