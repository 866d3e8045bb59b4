//! Times every ported network at its released configuration, with random weights, on the CPU
//! (flex) and wgpu backends: the Facecast side of `scripts/bench-nets.sh`.
//!
//!   bench_nets --serve [--vocab FILE]      line protocol on stdin/stdout (used by bench_nets.py)
//!   bench_nets [--vocab FILE] [--runs N] [--backend cpu|wgpu] CASE...   stand-alone medians
//!   bench_nets --ab [--runs N] CASE...   our CPU kernels against burn's, call by call (A/B)
//!   bench_nets --ab-winograd [--runs N] CASE...   the same with only Winograd off (A) and on (B)
//!   bench_nets --ab-beautygan [--runs N] CASE...   the same with only the kernels added for
//!                                                   BeautyGAN off (A) and on (B): the narrow
//!                                                   direct conv, the one-pass norm and the
//!                                                   stride-2 Winograd convs
//!   bench_nets --ab-gpen [--runs N] CASE...   the same with only the kernels added for GPEN
//!                                              off (A) and on (B): one-pass bias/noise/leaky
//!                                              ReLU, Winograd for half-wide (32-63 channel)
//!                                              3×3 layers
//!   bench_nets --ab-aad [--runs N] CASE...   AEI-Net's AAD layers as separate steps (A) or fused (B)
//!   bench_nets --ab-resize [--runs N] CASE...   burn's bilinear resize (A) or the host kernel (B)
//!   bench_nets --ab-params [--runs N] CASE...   parameters copied (A) or read in place (B)
//!   bench_nets --ab-mobilenet [--runs N] CASE...   MobileNetV2 op by op on tensors (A) or each
//!                                                   block on the host kernels (B)
//!   bench_nets --ab-arcface-prepared [--runs N] CASE...   ArcFace's convolutions prepared on every
//!                                                          call (A) or once (B: norms folded and
//!                                                          Winograd weights kept)
//!   bench_nets --ab-clip [--runs N] CASE...   CLIP's text encoder on burn's ops (A) or the host
//!                                              path of `clip_text::host` (B)
//!   bench_nets --profile [--runs N] [--top K] CASE...   per-layer CPU times of one call (after a
//!                                                        warm-up call; averaged over N calls)
//!   --burn-conv, --no-beautygan-kernels, --no-gpen-kernels   (any mode) start with all of
//!                                          Facecast's CPU kernels, or only the BeautyGAN or
//!                                          the GPEN ones, off
//!   --no-arcface-prepared   (any mode) start with ArcFace's prepared convolutions off
//!   --separate-aad, --burn-resize, --copy-params   (any mode) start with one of AEI-Net's
//!                                          changes off (for a "before" column)
//!   --no-mobilenet-host                    (any mode) MobileNetV2 on its per-op tensor path
//!   --no-clip-host   (any mode) CLIP's text encoder on burn's ops (for a "before" column)
//!   --clip-all-positions   (any mode) the host text encoder on all 77 positions, not only up
//!                           to the EOT
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
    let mut profile_layers = false;
    let mut ab_test = false;
    let mut ab_switch = Switch::Kernels;
    let mut top = 20usize;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--serve" => serve = true,
            "--vocab" => vocab = PathBuf::from(it.next().context("--vocab needs a file")?),
            "--runs" => runs = it.next().context("--runs needs a number")?.parse()?,
            "--backend" => backend = it.next().context("--backend needs cpu or wgpu")?.clone(),
            "--profile" => profile_layers = true,
            "--ab" => ab_test = true,
            "--ab-winograd" => {
                ab_test = true;
                ab_switch = Switch::Winograd;
            }
            "--ab-aad" => {
                ab_test = true;
                ab_switch = Switch::FusedAad;
            }
            "--ab-resize" => {
                ab_test = true;
                ab_switch = Switch::Resize;
            }
            "--ab-params" => {
                ab_test = true;
                ab_switch = Switch::ParamsInPlace;
            }
            "--ab-mobilenet" => {
                ab_test = true;
                ab_switch = Switch::MobileNetHost;
            }
            "--ab-arcface-prepared" => {
                ab_test = true;
                ab_switch = Switch::ArcFacePrepared;
            }
            "--no-arcface-prepared" => facecast::nets::arcface_cpu::set_enabled(false),
            "--ab-clip" => {
                ab_test = true;
                ab_switch = Switch::ClipHost;
            }
            "--ab-beautygan" => {
                ab_test = true;
                ab_switch = Switch::BeautyGan;
            }
            "--ab-gpen" => {
                ab_test = true;
                ab_switch = Switch::Gpen;
            }
            // Runs every convolution through burn's own conv2d (the state before cpu_conv).
            "--burn-conv" => facecast::nets::cpu_conv::set_enabled(false),
            // AEI-Net as before the fused AAD layer and the host resize (for a "before" column).
            "--separate-aad" => facecast::nets::fused_aad::set_enabled(false),
            "--burn-resize" => facecast::nets::cpu_resize::set_enabled(false),
            "--copy-params" => facecast::nets::cpu_conv::set_read_in_place(false),
            // MobileNetV2 as before its host path (the per-op tensor path, depthwise on burn).
            "--no-mobilenet-host" => facecast::nets::mobilenetv2::host::set_enabled(false),
            "--no-clip-host" => facecast::nets::clip_text::host::set_enabled(false),
            // The host encoder on all 77 positions, as the reference runs them (not only up to
            // the EOT), to tell its kernels' gain from the skipped rows'.
            "--clip-all-positions" => facecast::nets::clip_text::host::set_up_to_eot(false),
            // The state before the BeautyGAN kernels (B side of --ab-beautygan off), e.g. as a
            // second Facecast column of scripts/bench_nets.py.
            "--no-beautygan-kernels" => beautygan_kernels(false),
            "--no-gpen-kernels" => gpen_kernels(false),
            "--top" => top = it.next().context("--top needs a number")?.parse()?,
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
    if ab_test {
        for case in &cases {
            ab(&mut bench, &backend, case, runs.max(1), ab_switch)?;
        }
        return Ok(());
    }
    if profile_layers {
        for case in &cases {
            profile(&mut bench, &backend, case, runs.max(1), top)?;
        }
        return Ok(());
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

/// What an A/B run turns off (A) and on (B).
#[derive(Clone, Copy)]
enum Switch {
    /// Every CPU kernel of Facecast against burn's own ops.
    Kernels,
    /// Only the Winograd 3×3 path (against the direct banded gemm).
    Winograd,
    /// Only AEI-Net's fused AAD layer (against its separate norm, convs and blend).
    FusedAad,
    /// Only the host bilinear resize (against burn's interpolate).
    Resize,
    /// Only reading the parameters in place (against copying them on every call).
    ParamsInPlace,
    /// Only the kernels added for BeautyGAN (against the state before them).
    BeautyGan,
    /// Only MobileNetV2's host path (against its per-op tensor path).
    MobileNetHost,
    /// Only ArcFace's convolutions prepared once (against folding and transforming per call).
    ArcFacePrepared,
    /// Only the kernels added for GPEN (against the state before them).
    Gpen,
    /// Only CLIP's host text encoder (against burn's ops).
    ClipHost,
}

/// Turns the kernels added for BeautyGAN on or off: the narrow direct convolution, the one-pass
/// instance norm, the stride-2 Winograd convolutions.
fn beautygan_kernels(on: bool) {
    facecast::nets::cpu_conv_narrow::set_enabled(on);
    facecast::nets::fused_norm::set_enabled(on);
    facecast::nets::cpu_winograd_s2::set_enabled(on);
}

/// Turns the kernels added for GPEN on or off: the one-pass bias, noise and leaky ReLU, and
/// Winograd for half-wide 3×3 layers.
fn gpen_kernels(on: bool) {
    facecast::nets::stylegan2::host_act::set_enabled(on);
    facecast::nets::cpu_winograd::set_half_wide(on);
}

/// Alternates calls with one switch (see [`Switch`]) off (A) and on (B), one warm-up call
/// each, and prints both medians and minima with their ratio.
fn ab(bench: &mut Bench, backend: &str, case: &str, runs: usize, switch: Switch) -> Result<()> {
    let toggle = |on: bool| match switch {
        Switch::Kernels => facecast::nets::cpu_conv::set_enabled(on),
        Switch::Winograd => facecast::nets::cpu_winograd::set_enabled(on),
        Switch::FusedAad => facecast::nets::fused_aad::set_enabled(on),
        Switch::Resize => facecast::nets::cpu_resize::set_enabled(on),
        Switch::ParamsInPlace => facecast::nets::cpu_conv::set_read_in_place(on),
        Switch::BeautyGan => beautygan_kernels(on),
        Switch::MobileNetHost => facecast::nets::mobilenetv2::host::set_enabled(on),
        Switch::ArcFacePrepared => facecast::nets::arcface_cpu::set_enabled(on),
        Switch::Gpen => gpen_kernels(on),
        Switch::ClipHost => facecast::nets::clip_text::host::set_enabled(on),
    };
    let (a, b) = match switch {
        Switch::Kernels => ("burn ops", "facecast kernels"),
        Switch::Winograd => ("direct 3x3", "winograd"),
        Switch::FusedAad => ("separate AAD", "fused AAD"),
        Switch::Resize => ("burn resize", "host resize"),
        Switch::ParamsInPlace => ("params copied", "params in place"),
        Switch::BeautyGan => ("before", "after"),
        Switch::MobileNetHost => ("tensor ops", "host blocks"),
        Switch::ArcFacePrepared => ("per call", "prepared"),
        Switch::Gpen => ("before", "after"),
        Switch::ClipHost => ("burn encoder", "host encoder"),
    };
    let mut times = [Vec::new(), Vec::new()];
    let load_before = load();
    for i in 0..=runs {
        for (side, on) in [(0, false), (1, true)] {
            toggle(on);
            let (ms, finite) = bench.run(backend, case)?;
            if !finite {
                eprintln!("warning: {case} produced non-finite values");
            }
            if i > 0 {
                times[side].push(ms);
            }
        }
    }
    toggle(true);
    for t in &mut times {
        t.sort_by(f64::total_cmp);
    }
    let med = |t: &[f64]| t[t.len() / 2];
    println!(
        "{case:<16} {a} median {:>9.1} min {:>9.1} | {b} median {:>9.1} min {:>9.1} | speed-up {:.2}x ({:.2}x min), n={runs}, load {load_before} -> {}",
        med(&times[0]),
        times[0][0],
        med(&times[1]),
        times[1][0],
        med(&times[0]) / med(&times[1]),
        times[0][0] / times[1][0],
        load()
    );
    Ok(())
}

/// One warm-up call, then `runs` calls with the layer profiler on: prints the time per op kind
/// and the `top` layers by their own time, per call.
fn profile(bench: &mut Bench, backend: &str, case: &str, runs: usize, top: usize) -> Result<()> {
    bench.run(backend, case)?;
    facecast::nets::profile::set_enabled(true);
    let mut total_ms = 0.0;
    for _ in 0..runs {
        total_ms += bench.run(backend, case)?.0;
    }
    facecast::nets::profile::set_enabled(false);
    let records = facecast::nets::profile::take();
    let per_call = |d: std::time::Duration| d.as_secs_f64() * 1e3 / runs as f64;
    let call_ms = total_ms / runs as f64;
    println!(
        "== {case} ({backend}): {call_ms:.1} ms per call, mean of {runs}, load {}",
        load()
    );
    let mut kinds: Vec<(&str, f64, usize)> = Vec::new();
    for ((kind, _), e) in &records {
        match kinds.iter_mut().find(|k| k.0 == *kind) {
            Some(k) => {
                k.1 += per_call(e.own);
                k.2 += e.calls;
            }
            None => kinds.push((kind, per_call(e.own), e.calls)),
        }
    }
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
    let tracked: f64 = kinds.iter().map(|k| k.1).sum();
    println!(
        "{:<22} {:>10} {:>7} {:>7}",
        "op kind (own time)", "ms/call", "share", "calls"
    );
    for (kind, ms, calls) in &kinds {
        println!(
            "{kind:<22} {ms:>10.1} {:>6.1}% {:>7}",
            100.0 * ms / call_ms,
            calls / runs
        );
    }
    let rest = call_ms - tracked;
    println!(
        "{:<22} {rest:>10.1} {:>6.1}%",
        "(untracked)",
        100.0 * rest / call_ms
    );
    println!(
        "{:<22} {:<34} {:>10} {:>10} {:>6}",
        "layer", "shape", "own ms", "total ms", "calls"
    );
    for ((kind, detail), e) in records.iter().take(top) {
        println!(
            "{kind:<22} {detail:<34} {:>10.1} {:>10.1} {:>6}",
            per_call(e.own),
            per_call(e.total),
            e.calls / runs
        );
    }
    Ok(())
}

/// The 1-minute load average, for the record (the machines running this are shared).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}
