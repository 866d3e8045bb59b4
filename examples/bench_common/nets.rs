//! The networks of the benchmarks at their released configurations, with random weights, and the
//! line protocol that times them: shared by `bench_nets` (CPU and wgpu against the reference on
//! the CPU) and `gpu_bench` (the GPU kit), so both time exactly the same work.
//!
//! Protocol: each line `run BACKEND CASE` builds the network on first use (reported as
//! `build_ms`), runs it once and answers one JSON line `{"backend","case","ms","finite"}`;
//! `label BACKEND` answers the device's name; `quit` ends. The reference worker
//! (`scripts/bench_nets_reference.py`) answers the same lines, so a driver can alternate the two
//! sides case by case.
//!
//! Weights are random (timing does not depend on their values); inputs and noise are fixed per
//! case. The time runs from the inputs already on the device to the output read back to the host
//! (`try_to_vec`), so lazy backends are fully synchronised.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, anyhow, bail};
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
pub const CASES: &[(&str, &str)] = &[
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
    (
        "clip-prompt",
        "CLIP text tower, StyleCLIP's 79 templates of one prompt in one batch (a text edit's cost)",
    ),
];

/// The prompt of the CLIP cases (a StyleCLIP-style target text).
pub const PROMPT: &str = "a photo of a smiling woman with short blond hair and freckles";
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

pub fn randomized<M: Module>(module: M, device: &Device, unit_weights: bool) -> M {
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
    ClipPrompt {
        encoder: ClipTextEncoder,
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
        "clip-prompt" => Net::ClipPrompt {
            encoder: randomized(ClipTextConfig::default().init(device), device, false),
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
            Net::ClipPrompt { encoder, tokenizer } => {
                let embedding =
                    facecast::nets::styleclip::global::prompt_embedding(tokenizer, encoder, PROMPT, device)?;
                host(embedding.unsqueeze::<4>())
            }
            Net::ClipTokenize { tokenizer } => {
                let ids = tokenizer.tokenize(PROMPT, CONTEXT_LENGTH, Truncate::No)?;
                Ok(ids.iter().map(|&i| i as f32).collect())
            }
        }
    }
}

/// Starts the device of a backend name ("cpu", "wgpu"); each tool decides which adapter "wgpu" is.
pub type Select = fn(&str) -> Result<Compute>;

/// The devices and networks built so far, kept between calls of the protocol.
pub struct Bench {
    /// The tool's name in the protocol's greeting.
    tool: &'static str,
    vocab: PathBuf,
    select: Select,
    computes: HashMap<String, Compute>,
    nets: HashMap<(String, String), Net>,
}

impl Bench {
    pub fn new(tool: &'static str, vocab: PathBuf, select: Select) -> Bench {
        Bench {
            tool,
            vocab,
            select,
            computes: HashMap::new(),
            nets: HashMap::new(),
        }
    }

    fn compute(&mut self, backend: &str) -> Result<Compute> {
        if let Some(c) = self.computes.get(backend) {
            return Ok(c.clone());
        }
        let compute = (self.select)(backend)?;
        self.computes.insert(backend.to_string(), compute.clone());
        Ok(compute)
    }

    /// Builds the network if needed (build time excluded), then times one run.
    pub fn run(&mut self, backend: &str, case: &str) -> Result<(f64, bool)> {
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

    pub fn serve(&mut self) -> Result<()> {
        let stdin = std::io::stdin();
        let mut stdout = std::io::stdout();
        writeln!(
            stdout,
            "{}",
            serde_json::json!({
                "ready": true,
                "tool": self.tool,
                "rayon_threads": rayon_threads(),
                "profile": profile(),
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

/// The build's profile. The dev profile's opt-level for this crate may be raised for a benchmark
/// (`CARGO_PROFILE_DEV_OPT_LEVEL=3`, as bench-nets.sh does); rustc records the variable, so a
/// change rebuilds this and the report says which it was.
pub fn profile() -> String {
    if !cfg!(debug_assertions) {
        return "release".to_string();
    }
    match option_env!("CARGO_PROFILE_DEV_OPT_LEVEL") {
        Some(level) => format!("dev (opt-level {level})"),
        None => "dev (Cargo.toml's opt-level for this crate)".to_string(),
    }
}

pub fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}
