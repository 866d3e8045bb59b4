//! `facecast`: no arguments opens the window; subcommands run the same pipeline headless.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = facecast::cli::Cli::parse();
    facecast::cli::init_logging(cli.verbose);
    match facecast::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("facecast: {err:#}");
            ExitCode::FAILURE
        }
    }
}
