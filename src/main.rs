//! The `gongwen` binary: see `gongwen --help`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
use std::process::ExitCode;

// glibc's allocator spent a tenth of the server's time in malloc/free on large traces and write bursts
// (BENCHMARKS.md); mimalloc is the measured replacement.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before the runtime starts any thread.
    gongwen::alloc::tune();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gongwen: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run())
}

async fn run() -> ExitCode {
    let cli = gongwen::cli::Cli::from_command_line();
    let logging = matches!(cli.command, gongwen::cli::Command::Serve(_) | gongwen::cli::Command::Demo { .. });
    if logging {
        init_logging();
    }
    match gongwen::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A collector of JSON logs reads the reason a server stopped as one more event.
            if logging && gongwen::cli::json_logs() {
                tracing::error!(error = %e, "gongwen stopped with an error");
            } else {
                eprintln!("gongwen: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, filtered by RUST_LOG; GONGWEN_LOG_FORMAT=json writes one JSON object a line for collectors.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sled=warn,h2=warn,tower=warn"));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if gongwen::cli::json_logs() {
        fmt.json().init();
    } else {
        fmt.init();
    }
}
