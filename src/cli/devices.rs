//! `facecast devices`: every adapter wgpu sees, which device runs the networks and why, and with
//! `--bench` how fast one small network is on each, so a user can see the difference for themselves.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use burn::tensor::{Distribution, Tensor};
use serde::Serialize;

use crate::compute::adapters::{Adapter, AdapterType, list_adapters};
use crate::compute::{BackendChoice, Compute, ComputeKind};
use crate::nets::mobilenetv2::{MobileNetV2, MobileNetV2Config};

#[derive(Debug, clap::Args)]
pub struct DevicesArgs {
    /// Print JSON on stdout: {"adapters":[…],"chosen":{…}} (and "bench" with --bench).
    #[arg(long)]
    pub json: bool,
    /// Time MobileNetV2 (random weights at the released width, one 224² image) on the CPU backend
    /// and on every adapter. The first call on a wgpu device compiles its kernels: it is reported
    /// apart, and on a software adapter it takes minutes.
    #[arg(long)]
    pub bench: bool,
    /// Timed calls per device after the first.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub runs: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    adapters: Vec<Adapter>,
    chosen: Chosen,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bench: Vec<BenchRow>,
}

#[derive(Debug, Serialize)]
struct Chosen {
    /// "wgpu" or "cpu".
    backend: &'static str,
    /// The adapter's name, or "CPU (flex)".
    adapter: String,
    reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback: Option<String>,
}

#[derive(Debug, Serialize)]
struct BenchRow {
    device: String,
    /// Seconds for the first call (kernel compilation and autotuning included on wgpu).
    first_call_s: Option<f64>,
    /// Median seconds of the later calls.
    median_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn run(args: DevicesArgs, backend: BackendChoice) -> anyhow::Result<ExitCode> {
    let adapters = list_adapters();
    let compute = match backend {
        BackendChoice::Auto => Compute::auto(&adapters),
        other => Compute::select(other).context("starting the asked-for backend")?,
    };
    let chosen = Chosen {
        backend: match compute.kind {
            ComputeKind::Cpu => "cpu",
            ComputeKind::Wgpu { .. } => "wgpu",
        },
        adapter: match &compute.kind {
            ComputeKind::Cpu => "CPU (flex)".to_string(),
            ComputeKind::Wgpu { adapter, .. } => adapter.clone(),
        },
        reason: compute.reason.clone(),
        fallback: compute.fallback_reason.clone(),
    };
    // The chosen device is already started; the others are started one by one for the bench.
    let bench = if args.bench {
        bench_all(&adapters, compute, args.runs.max(1), args.json)
    } else {
        Vec::new()
    };
    let report = Report {
        adapters,
        chosen,
        bench,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(report: &Report) {
    if report.adapters.is_empty() {
        println!("wgpu sees no adapter.");
    } else {
        println!("{:<40} {:<16} {:<8} driver", "adapter", "type", "api");
        for a in &report.adapters {
            println!(
                "{:<40} {:<16} {:<8} {}",
                a.name,
                a.device_type.label(),
                a.api,
                a.driver
            );
        }
    }
    let chosen = &report.chosen;
    println!(
        "\nThe networks run on {} ({}): {}.",
        chosen.adapter, chosen.backend, chosen.reason
    );
    if let Some(fallback) = &chosen.fallback {
        println!("Fell back: {fallback}");
    }
    if !report.bench.is_empty() {
        println!("\nMobileNetV2, one 224² image:");
        println!("{:<48} {:>12} {:>12}", "device", "first call", "median");
        for row in &report.bench {
            match &row.error {
                Some(error) => println!("{:<48} failed: {error}", row.device),
                None => println!(
                    "{:<48} {:>11.3}s {:>11.3}s",
                    row.device,
                    row.first_call_s.unwrap_or(f64::NAN),
                    row.median_s.unwrap_or(f64::NAN)
                ),
            }
        }
    }
}

/// The CPU backend first, then every addressable adapter (the chosen one reuses its device).
fn bench_all(adapters: &[Adapter], chosen: Compute, runs: usize, quiet: bool) -> Vec<BenchRow> {
    let mut rows = Vec::new();
    let chosen_name = match &chosen.kind {
        ComputeKind::Wgpu { adapter, .. } => Some(adapter.clone()),
        ComputeKind::Cpu => None,
    };
    rows.push(bench_one("CPU (flex)", &Compute::cpu(), runs, quiet));
    if chosen_name.is_some() {
        rows.push(bench_one(&chosen.label(), &chosen, runs, quiet));
    }
    for adapter in adapters {
        if chosen_name.as_deref() == Some(adapter.name.as_str()) || adapter.device_type == AdapterType::Other
        {
            continue;
        }
        let device = format!(
            "{} ({} {})",
            adapter.name,
            adapter.device_type.label(),
            adapter.api
        );
        match Compute::on_adapter(adapter, "benchmark") {
            Ok(compute) => rows.push(bench_one(&device, &compute, runs, quiet)),
            Err(err) => rows.push(BenchRow {
                device,
                first_call_s: None,
                median_s: None,
                error: Some(err.to_string()),
            }),
        }
    }
    rows
}

fn bench_one(name: &str, compute: &Compute, runs: usize, quiet: bool) -> BenchRow {
    if !quiet {
        eprintln!("facecast: timing MobileNetV2 on {name}…");
    }
    let device = &compute.device;
    let net = MobileNetV2::new(&MobileNetV2Config::face_classifier(), device);
    let x = Tensor::<4>::random([1, 3, 224, 224], Distribution::Normal(0.0, 1.0), device);
    let call = || -> Result<Duration, String> {
        let start = Instant::now();
        // Reading the result back is what waits for a lazy device.
        net.forward(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| format!("reading the output: {e:?}"))?;
        Ok(start.elapsed())
    };
    let result = call().and_then(|first| {
        let mut times = (0..runs).map(|_| call()).collect::<Result<Vec<_>, _>>()?;
        times.sort();
        Ok((first, times[times.len() / 2]))
    });
    match result {
        Ok((first, median)) => BenchRow {
            device: name.to_string(),
            first_call_s: Some(first.as_secs_f64()),
            median_s: Some(median.as_secs_f64()),
            error: None,
        },
        Err(error) => BenchRow {
            device: name.to_string(),
            first_call_s: None,
            median_s: None,
            error: Some(error),
        },
    }
}
