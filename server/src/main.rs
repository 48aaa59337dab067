//! The `readroom` binary: parses the command line and maps errors to a non-zero exit status.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = readroom_server::cli::Cli::parse();
    match readroom_server::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("readroom: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
