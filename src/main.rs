//! `facecast`: no arguments opens the window; subcommands run the same pipeline headless. This is
//! the binary's edge, the one place that knows both the window and the command line.

use std::process::ExitCode;

use clap::Parser;
use facecast::cli::Cli;
use facecast::compute::BackendChoice;

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let backend = BackendChoice::resolve(cli.backend)?;
    // Before any device starts: the GPU runtime's autotune results live with the user's data, so
    // a network's slow first call on wgpu happens once per machine, not once per run.
    if let Ok(dir) = facecast::weights::store::resolve_data_dir(cli.data_dir.clone()) {
        facecast::compute::kernel_cache::keep_kernels_in(&dir);
    }
    match cli.command {
        Some(command) => facecast::cli::run(command, backend, cli.data_dir),
        None => {
            let mut open = cli.open;
            if cli.samples {
                open.extend(facecast::cli::install_samples(cli.data_dir.clone())?);
            }
            facecast::app::run_window(facecast::app::WindowOptions {
                backend,
                data_dir: cli.data_dir,
                open,
                samples: cli.samples,
            })
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    facecast::cli::init_logging(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("facecast: {err:#}");
            ExitCode::FAILURE
        }
    }
}
