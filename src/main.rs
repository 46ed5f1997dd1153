//! The `gongwen` binary: see `gongwen --help`.
use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = gongwen::cli::Cli::parse();
    if matches!(cli.command, gongwen::cli::Command::Serve(_) | gongwen::cli::Command::Demo { .. }) {
        init_logging();
    }
    match gongwen::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gongwen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sled=warn,h2=warn,tower=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
