//! Times every ported network at its released configuration, with random weights, on the CPU
//! (flex) and wgpu backends: the Facecast side of `scripts/bench-nets.sh`.
//!
//!   bench_nets --serve [--vocab FILE]      line protocol on stdin/stdout (used by bench_nets.py)
//!   bench_nets [--vocab FILE] [--runs N] [--backend cpu|wgpu] CASE...   stand-alone medians
//!
//! The networks and the protocol are in `bench_common/nets.rs` (shared with `gpu_bench`).

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use facecast::compute::Compute;

#[path = "bench_common/nets.rs"]
mod nets;

use nets::{Bench, CASES};

/// "cpu" is flex; "wgpu" is wgpu's default adapter, software or not (as `--backend wgpu`).
fn select(backend: &str) -> Result<Compute> {
    match backend {
        "cpu" => Ok(Compute::cpu()),
        "wgpu" => Compute::wgpu().map_err(|e| anyhow!("{e}")),
        other => bail!("unknown backend {other} (cpu or wgpu)"),
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut vocab = PathBuf::from("models/clip/bpe_simple_vocab_16e6.txt.gz");
    let mut serve = false;
    let mut runs = 5usize;
    let mut backend = "cpu".to_string();
    let mut cases = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--serve" => serve = true,
            "--vocab" => vocab = PathBuf::from(it.next().context("--vocab needs a file")?),
            "--runs" => runs = it.next().context("--runs needs a number")?.parse()?,
            "--backend" => backend = it.next().context("--backend needs cpu or wgpu")?.clone(),
            "--list" => {
                for (name, what) in CASES {
                    println!("{name:<16} {what}");
                }
                return Ok(());
            }
            other if !other.starts_with('-') => cases.push(other.to_string()),
            other => bail!("unknown option {other}"),
        }
    }
    let mut bench = Bench::new("facecast bench_nets", vocab, select);
    if serve {
        return bench.serve();
    }
    if cases.is_empty() {
        cases = CASES.iter().map(|(n, _)| n.to_string()).collect();
    }
    for case in &cases {
        let mut times = Vec::new();
        for i in 0..=runs {
            let (ms, finite) = bench.run(&backend, case)?;
            if !finite {
                eprintln!("warning: {case} produced non-finite values");
            }
            if i > 0 {
                times.push(ms);
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{case:<16} {backend:<5} median {:>10.1} ms  (n={runs})",
            times[times.len() / 2]
        );
    }
    Ok(())
}
