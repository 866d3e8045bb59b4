//! Times every ported network at its released configuration, with random weights, on the CPU
//! (flex) and wgpu backends: the Facecast side of `scripts/bench-nets.sh`.
//!
//!   bench_nets --serve [--vocab FILE]      line protocol on stdin/stdout (used by bench_nets.py)
//!   bench_nets [--vocab FILE] [--runs N] [--backend cpu|wgpu] CASE...   stand-alone medians
//!   bench_nets --ab [--runs N] CASE...   our CPU kernels against burn's, call by call (A/B)
//!   bench_nets --profile [--runs N] [--top K] CASE...   per-layer CPU times of one call (after a
//!                                                        warm-up call; averaged over N calls)
//!
//! Protocol: each line `run BACKEND CASE` builds the network on first use (reported as
//! `build_ms`), runs it once and answers one JSON line `{"backend","case","ms","finite"}`;
//! `quit` ends. The reference worker (`scripts/bench_nets_reference.py`) answers the same lines,
//! so the driver can alternate the two sides case by case.
//!
//! Weights are random (timing does not depend on their values); inputs and noise are fixed per
//! case. The time runs from the inputs already on the device to the output read back to the host
//! (`try_to_vec`), so lazy backends are fully synchronised.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Distribution, Tensor};
use facecast::compute::Compute;
use facecast::nets::arcface::{ArcFace, ArcFaceConfig};
use facecast::nets::beautygan::{BeautyGanConfig, Generator as BeautyGan};
use facecast::nets::clip_text::{CONTEXT_LENGTH, ClipTextConfig, ClipTextEncoder, ClipTokenizer, Truncate};
use facecast::nets::faceshifter::{AeiConfig, AeiNet};
use facecast::nets::gpen::{FullGenerator, GpenConfig};
use facecast::nets::mobilenetv2::{MobileNetV2, MobileNetV2Config};
use facecast::nets::stylegan2::{Generator, Noise, StyleGan2Config, truncate};

/// Every case: name, what it runs, and the configuration it is built from.
const CASES: &[(&str, &str)] = &[
    (
        "stylegan2-1024",
        "StyleGAN2 FFHQ config-f 1024², z → image, ψ 0.7, fixed noise",
    ),
    (
        "stylegan2-256",
        "StyleGAN2 256² (rosinality Generator(256, 512, 8, 2)), ψ 0.7, fixed noise",
    ),
    (
        "gpen-512",
        "GPEN-BFR-512 FullGenerator(512, 512, 8, 2), one aligned face",
    ),
    (
        "gpen-256",
        "GPEN-BFR-256 FullGenerator(256, 512, 8, 1, narrow 0.5), one aligned face",
    ),
    (
        "arcface-112",
        "ArcFace IR-SE50 (Backbone(50, 0.6, 'ir_se')), one 112² crop",
    ),
    (
        "aei-256",
        "FaceShifter AEI-Net(c_id 512), one 256² target + identity",
    ),
    (
        "beautygan-256",
        "BeautyGAN Generator_branch(64, 6), two 256² faces",
    ),
    (
        "mobilenetv2-224",
        "MobileNetV2 (width 1.0, 2-class head), one 224² photo",
    ),
    (
        "clip-text",
        "CLIP ViT-B/32 text tower, one prompt: tokenizer + encoder (77 tokens)",
    ),
    ("clip-tokenize", "CLIP BPE tokenizer alone, one prompt"),
];

/// The prompt of the CLIP cases (a StyleCLIP-style target text).
const PROMPT: &str = "a photo of a smiling woman with short blond hair and freckles";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut vocab = PathBuf::from("models/clip/bpe_simple_vocab_16e6.txt.gz");
    let mut serve = false;
    let mut runs = 5usize;
    let mut backend = "cpu".to_string();
    let mut cases = Vec::new();
    let mut profile = false;
    let mut ab = false;
    let mut top = 20usize;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--serve" => serve = true,
            "--profile" => profile = true,
            "--ab" => ab = true,
            // Runs every convolution through burn's own conv2d (the state before cpu_conv).
            "--burn-conv" => facecast::nets::cpu_conv::set_enabled(false),
            "--top" => top = it.next().context("--top needs a number")?.parse()?,
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
    let mut bench = Bench::new(vocab);
    if serve {
        return bench.serve();
    }
    if cases.is_empty() {
        cases = CASES.iter().map(|(n, _)| n.to_string()).collect();
    }
    if ab {
        for case in &cases {
            bench.ab(&backend, case, runs.max(1))?;
        }
        return Ok(());
    }
    if profile {
        for case in &cases {
            bench.profile(&backend, case, runs.max(1), top)?;
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

/// Replaces every float parameter by random values: N(0, 1) for the equalised-lr networks
/// (StyleGAN2, GPEN: their stored weights are unscaled, as the reference's `randn` init), a
/// fan-in-scaled uniform for the others so activations stay finite through deep stacks, and
/// U(0.5, 1.5) for 1-D parameters (norm scales and biases, running variances: positive).
struct Randomize {
    device: Device,
    unit_weights: bool,
}

impl ModuleMapper for Randomize {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let device = self.device.clone();
        let unit = self.unit_weights;
        param.map(|t| {
            let dims = t.dims();
            let distribution = if D >= 2 && unit {
                Distribution::Normal(0.0, 1.0)
            } else if D >= 2 {
                let fan_in: usize = dims[1..].iter().product::<usize>().max(1);
                let a = (3.0 / fan_in as f64).sqrt();
                Distribution::Uniform(-a, a)
            } else {
                Distribution::Uniform(0.5, 1.5)
            };
            Tensor::random(dims, distribution, &device)
        })
    }
}

fn randomized<M: Module>(module: M, device: &Device, unit_weights: bool) -> M {
    module.map(&mut Randomize {
        device: device.clone(),
        unit_weights,
    })
}

fn normal<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// Inputs in the networks' ranges ([-1, 1] images).
fn image(shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), device)
}

/// A built network with its fixed inputs.
enum Net {
    StyleGan2 {
        generator: Generator,
        latent_avg: Tensor<1>,
        z: Tensor<2>,
        noise: Noise,
    },
    Gpen {
        net: FullGenerator,
        x: Tensor<4>,
    },
    ArcFace {
        net: ArcFace,
        x: Tensor<4>,
    },
    Aei {
        // Boxed: the network is some 40 kB of module structure, far larger than the other variants.
        net: Box<AeiNet>,
        xt: Tensor<4>,
        z_id: Tensor<2>,
    },
    BeautyGan {
        net: BeautyGan,
        x: Tensor<4>,
        y: Tensor<4>,
    },
    MobileNetV2 {
        net: MobileNetV2,
        x: Tensor<4>,
    },
    ClipText {
        encoder: ClipTextEncoder,
        tokenizer: ClipTokenizer,
    },
    ClipTokenize {
        tokenizer: ClipTokenizer,
    },
}

fn stylegan2(config: &StyleGan2Config, device: &Device) -> Result<Net> {
    let generator = randomized(Generator::new(config, device)?, device, true);
    let noise = (0..generator.num_layers())
        .map(|i| {
            // noise_i of rosinality's buffers: resolution 2^((i + 5) / 2).
            let r = 1usize << ((i + 5) / 2);
            normal([1, 1, r, r], device)
        })
        .collect();
    // The truncation centre is computed once per model, as the reference's generate.py does.
    let latent_avg = generator.mean_latent(4096, device);
    Ok(Net::StyleGan2 {
        generator,
        latent_avg,
        z: normal([1, config.style_dim], device),
        noise: Noise::Given(noise),
    })
}

fn build(case: &str, device: &Device, vocab: &Path) -> Result<Net> {
    Ok(match case {
        "stylegan2-1024" => stylegan2(&StyleGan2Config::ffhq_1024(), device)?,
        "stylegan2-256" => stylegan2(&StyleGan2Config::rosinality(256, 512, 8, 2), device)?,
        "gpen-512" | "gpen-256" => {
            let config = if case == "gpen-512" {
                GpenConfig::bfr_512()
            } else {
                GpenConfig::bfr_256()
            };
            let size = config.size();
            Net::Gpen {
                net: randomized(FullGenerator::new(&config, device)?, device, true),
                x: image([1, 3, size, size], device),
            }
        }
        "arcface-112" => Net::ArcFace {
            net: randomized(ArcFace::new(&ArcFaceConfig::official(), device), device, false),
            x: image([1, 3, 112, 112], device),
        },
        "aei-256" => {
            let config = AeiConfig::official();
            Net::Aei {
                net: Box::new(randomized(AeiNet::new(&config, device)?, device, false)),
                xt: image([1, 3, 256, 256], device),
                z_id: normal([1, 512], device),
            }
        }
        "beautygan-256" => Net::BeautyGan {
            net: randomized(BeautyGan::new(&BeautyGanConfig::default(), device), device, false),
            x: image([1, 3, 256, 256], device),
            y: image([1, 3, 256, 256], device),
        },
        "mobilenetv2-224" => Net::MobileNetV2 {
            net: randomized(
                MobileNetV2::new(&MobileNetV2Config::face_classifier(), device),
                device,
                false,
            ),
            x: image([1, 3, 224, 224], device),
        },
        "clip-text" => Net::ClipText {
            encoder: randomized(ClipTextConfig::default().init(device), device, false),
            tokenizer: facecast::weights::models::load_clip_tokenizer(vocab)?,
        },
        "clip-tokenize" => Net::ClipTokenize {
            tokenizer: facecast::weights::models::load_clip_tokenizer(vocab)?,
        },
        other => bail!("unknown case {other} (bench_nets --list)"),
    })
}

/// Host values of a result: reading them back is what synchronises the device.
fn host(t: Tensor<4>) -> Result<Vec<f32>> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow!("reading the output: {e:?}"))
}

impl Net {
    fn run(&self, device: &Device) -> Result<Vec<f32>> {
        match self {
            Net::StyleGan2 {
                generator,
                latent_avg,
                z,
                noise,
            } => {
                let w = truncate(generator.mapping(z.clone()), 0.7, latent_avg.clone());
                host(generator.synthesize_wplus(generator.broadcast(w), noise)?)
            }
            Net::Gpen { net, x } => host(net.forward(x.clone())?),
            Net::ArcFace { net, x } => host(net.forward(x.clone()).unsqueeze::<4>()),
            Net::Aei { net, xt, z_id } => host(net.forward(xt.clone(), z_id.clone())?.y),
            Net::BeautyGan { net, x, y } => {
                let out = net.forward(x.clone(), y.clone())?;
                let mut a = host(out.with_makeup)?;
                a.extend(host(out.makeup_removed)?);
                Ok(a)
            }
            Net::MobileNetV2 { net, x } => host(net.forward(x.clone()).unsqueeze::<4>()),
            Net::ClipText { encoder, tokenizer } => {
                let ids = tokenizer.tokenize(PROMPT, CONTEXT_LENGTH, Truncate::No)?;
                host(encoder.encode(&[ids], device).unsqueeze::<4>())
            }
            Net::ClipTokenize { tokenizer } => {
                let ids = tokenizer.tokenize(PROMPT, CONTEXT_LENGTH, Truncate::No)?;
                Ok(ids.iter().map(|&i| i as f32).collect())
            }
        }
    }
}

struct Bench {
    vocab: PathBuf,
    computes: HashMap<String, Compute>,
    nets: HashMap<(String, String), Net>,
}

impl Bench {
    fn new(vocab: PathBuf) -> Bench {
        Bench {
            vocab,
            computes: HashMap::new(),
            nets: HashMap::new(),
        }
    }

    fn compute(&mut self, backend: &str) -> Result<Compute> {
        if let Some(c) = self.computes.get(backend) {
            return Ok(c.clone());
        }
        let compute = match backend {
            "cpu" => Compute::cpu(),
            "wgpu" => Compute::wgpu().map_err(|e| anyhow!("{e}"))?,
            other => bail!("unknown backend {other} (cpu or wgpu)"),
        };
        self.computes.insert(backend.to_string(), compute.clone());
        Ok(compute)
    }

    /// Builds the network if needed (build time excluded), then times one run.
    fn run(&mut self, backend: &str, case: &str) -> Result<(f64, bool)> {
        let key = (backend.to_string(), case.to_string());
        let device = self.compute(backend)?.device;
        if !self.nets.contains_key(&key) {
            let net = build(case, &device, &self.vocab)?;
            self.nets.insert(key.clone(), net);
        }
        let net = &self.nets[&key];
        let t = Instant::now();
        let out = net.run(&device)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        Ok((ms, out.iter().all(|v| v.is_finite())))
    }

    /// Alternates calls with Facecast's CPU kernels on (B) and off (A, burn's own ops), one
    /// warm-up call each, and prints both medians and minima with their ratio.
    fn ab(&mut self, backend: &str, case: &str, runs: usize) -> Result<()> {
        let mut times = [Vec::new(), Vec::new()];
        let load_before = load();
        for i in 0..=runs {
            for (side, on) in [(0, false), (1, true)] {
                facecast::nets::cpu_conv::set_enabled(on);
                let (ms, finite) = self.run(backend, case)?;
                if !finite {
                    eprintln!("warning: {case} produced non-finite values");
                }
                if i > 0 {
                    times[side].push(ms);
                }
            }
        }
        facecast::nets::cpu_conv::set_enabled(true);
        for t in &mut times {
            t.sort_by(f64::total_cmp);
        }
        let med = |t: &[f64]| t[t.len() / 2];
        println!(
            "{case:<16} burn ops median {:>9.1} min {:>9.1} | facecast kernels median {:>9.1} min {:>9.1} | speed-up {:.2}x ({:.2}x min), n={runs}, load {load_before} -> {}",
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
    fn profile(&mut self, backend: &str, case: &str, runs: usize, top: usize) -> Result<()> {
        self.run(backend, case)?;
        facecast::nets::profile::set_enabled(true);
        let mut total_ms = 0.0;
        for _ in 0..runs {
            total_ms += self.run(backend, case)?.0;
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

    fn serve(&mut self) -> Result<()> {
        let stdin = std::io::stdin();
        let mut stdout = std::io::stdout();
        writeln!(
            stdout,
            "{}",
            serde_json::json!({
                "ready": true,
                "tool": "facecast bench_nets",
                "rayon_threads": rayon_threads(),
                "profile": if cfg!(debug_assertions) { "dev (opt-level 3)" } else { "release" },
            })
        )?;
        stdout.flush()?;
        for line in stdin.lock().lines() {
            let line = line?;
            let words: Vec<&str> = line.split_whitespace().collect();
            let reply = match words.as_slice() {
                ["quit"] | [] => break,
                ["label", backend] => match self.compute(backend) {
                    Ok(c) => serde_json::json!({ "backend": backend, "label": c.label() }),
                    Err(e) => serde_json::json!({ "error": format!("{e:#}") }),
                },
                ["run", backend, case] => {
                    let key = (backend.to_string(), case.to_string());
                    let first = !self.nets.contains_key(&key);
                    let started = Instant::now();
                    match self.run(backend, case) {
                        Ok((ms, finite)) => {
                            let mut v = serde_json::json!({
                                "backend": backend, "case": case, "ms": ms, "finite": finite,
                            });
                            if first {
                                v["build_ms"] = serde_json::json!(started.elapsed().as_secs_f64() * 1e3 - ms);
                            }
                            v
                        }
                        Err(e) => {
                            serde_json::json!({ "backend": backend, "case": case, "error": format!("{e:#}") })
                        }
                    }
                }
                _ => serde_json::json!({ "error": format!("unknown command {line:?}") }),
            };
            writeln!(stdout, "{reply}")?;
            stdout.flush()?;
        }
        Ok(())
    }
}

/// The 1-minute load average, for the record (the machines running this are shared).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}
