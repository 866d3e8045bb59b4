//! Times single layers of the ported networks on the CPU backend, each way Facecast can run
//! them, to choose a lowering by measurement (see `benches/RESULTS.md`, "Where the time goes").
//!
//!   bench_layers [--runs N] [FILTER]     (FILTER: a substring of the layer names)
//!   bench_layers --winograd [--runs N] [FILTER]   the 3×3 stride-1 layers: direct vs Winograd
//!   bench_layers --prepared [--runs N]   ArcFace's small maps: direct vs Winograd with prepared weights
//!
//! Every line: the layer, its shape, the median ms of each formulation and its GFLOP/s, and the
//! largest difference between the formulations' outputs (they must agree). The two sides are
//! called alternately, so load from other processes falls on both alike.

mod prepared;

use std::time::Instant;

use anyhow::Result;
use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Distribution, Tensor};
use facecast::nets::cpu_conv;
use facecast::nets::cpu_winograd::{self, Tile};
use facecast::nets::stylegan2::upfirdn::{Pad, upfirdn2d};

struct Conv {
    name: &'static str,
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    hw: usize,
}

const CONVS: &[Conv] = &[
    // StyleGAN2 FFHQ synthesis 3×3 convs (per resolution) and GPEN-512's decoder (×2 inputs).
    Conv {
        name: "sg2.conv.1024",
        c_in: 32,
        c_out: 32,
        k: 3,
        stride: 1,
        pad: 1,
        hw: 1024,
    },
    Conv {
        name: "sg2.conv.512",
        c_in: 64,
        c_out: 64,
        k: 3,
        stride: 1,
        pad: 1,
        hw: 512,
    },
    Conv {
        name: "sg2.conv.256",
        c_in: 128,
        c_out: 128,
        k: 3,
        stride: 1,
        pad: 1,
        hw: 256,
    },
    Conv {
        name: "sg2.conv.128",
        c_in: 256,
        c_out: 256,
        k: 3,
        stride: 1,
        pad: 1,
        hw: 128,
    },
    Conv {
        name: "sg2.conv.64",
        c_in: 512,
        c_out: 512,
        k: 3,
        stride: 1,
        pad: 1,
        hw: 64,
    },
    Conv {
        name: "sg2.conv.32",
        c_in: 512,
        c_out: 512,
        k: 3,
        stride: 1,
        pad: 1,
        hw: 32,
    },
    Conv {
        name: "sg2.conv.8",
        c_in: 512,
        c_out: 512,
        k: 3,
        stride: 1,
        pad: 1,
        hw: 8,
    },
    Conv {
        name: "gpen.dec.512",
        c_in: 128,
        c_out: 64,
        k: 3,
        stride: 1,
        pad: 1,
        hw: 512,
    },
    // GPEN encoder: stride-2 3×3 after the blur (input side given).
    Conv {
        name: "gpen.ecd.512",
        c_in: 64,
        c_out: 128,
        k: 3,
        stride: 2,
        pad: 0,
        hw: 513,
    },
    // BeautyGAN.
    Conv {
        name: "bg.in7x7.256",
        c_in: 3,
        c_out: 64,
        k: 7,
        stride: 1,
        pad: 3,
        hw: 256,
    },
    Conv {
        name: "bg.down4x4.256",
        c_in: 64,
        c_out: 128,
        k: 4,
        stride: 2,
        pad: 1,
        hw: 256,
    },
    Conv {
        name: "bg.res.64",
        c_in: 256,
        c_out: 256,
        k: 3,
        stride: 1,
        pad: 1,
        hw: 64,
    },
    Conv {
        name: "bg.head3x3.256",
        c_in: 64,
        c_out: 64,
        k: 3,
        stride: 1,
        pad: 1,
        hw: 256,
    },
    Conv {
        name: "bg.out7x7.256",
        c_in: 64,
        c_out: 3,
        k: 7,
        stride: 1,
        pad: 3,
        hw: 256,
    },
    // AEI-Net: attribute encoder and the AAD convs at 128² and 256².
    Conv {
        name: "aei.conv2.128",
        c_in: 32,
        c_out: 64,
        k: 4,
        stride: 2,
        pad: 1,
        hw: 128,
    },
    Conv {
        name: "aei.aad.128",
        c_in: 128,
        c_out: 128,
        k: 3,
        stride: 1,
        pad: 1,
        hw: 128,
    },
    Conv {
        name: "aei.aad.256",
        c_in: 64,
        c_out: 64,
        k: 3,
        stride: 1,
        pad: 1,
        hw: 256,
    },
    // ArcFace IR-SE50 bodies.
    Conv {
        name: "arc.unit.56",
        c_in: 64,
        c_out: 64,
        k: 3,
        stride: 1,
        pad: 1,
        hw: 56,
    },
    Conv {
        name: "arc.unit.14",
        c_in: 256,
        c_out: 256,
        k: 3,
        stride: 1,
        pad: 1,
        hw: 14,
    },
];

/// Medians of `a` and `b`, called alternately `runs` times after one warm-up call each, and
/// their last outputs.
fn time_ab<T>(runs: usize, mut a: impl FnMut() -> T, mut b: impl FnMut() -> T) -> ((f64, T), (f64, T)) {
    let mut out_a = a();
    let mut out_b = b();
    let (mut ta, mut tb) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        let t = Instant::now();
        out_a = a();
        ta.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        out_b = b();
        tb.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    ((median(ta), out_a), (median(tb), out_b))
}

fn host(t: Tensor<4>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap_or_default()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs = 5;
    let mut filter = String::new();
    let mut winograd = false;
    let mut prepared = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--runs" {
            runs = it.next().map(|v| v.parse()).transpose()?.unwrap_or(5);
        } else if a == "--winograd" {
            winograd = true;
        } else if a == "--prepared" {
            prepared = true;
        } else {
            filter = a.clone();
        }
    }
    let device = Device::flex();
    let normal = Distribution::Normal(0.0, 1.0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the start: {}", load.trim());
    if prepared {
        prepared::run(runs);
        return Ok(());
    }
    if winograd {
        winograd_ab(runs, &filter);
        return Ok(());
    }
    println!(
        "{:<16} {:>22} {:>14} {:>14} {:>9}",
        "layer", "shape", "burn conv2d", "cpu_conv", "max diff"
    );
    for c in CONVS.iter().filter(|c| c.name.contains(&filter)) {
        let x = Tensor::<4>::random([1, c.c_in, c.hw, c.hw], normal, &device);
        let w = Tensor::<4>::random([c.c_out, c.c_in, c.k, c.k], normal, &device)
            .mul_scalar(1.0 / ((c.c_in * c.k * c.k) as f64).sqrt());
        let options = ConvOptions::new([c.stride; 2], [c.pad; 2], [1, 1], 1);
        let ((t_burn, a), (t_gemm, b)) = time_ab(
            runs,
            || host(conv2d(x.clone(), w.clone(), None, options.clone())),
            || host(cpu_conv::conv2d(x.clone(), w.clone(), None, options.clone())),
        );
        let oh = (c.hw + 2 * c.pad - c.k) / c.stride + 1;
        let gflop = 2.0 * (c.c_in * c.c_out * c.k * c.k * oh * oh) as f64 / 1e9;
        println!(
            "{:<16} {:>22} {:>8.1} {:>4.0}GF {:>8.1} {:>4.0}GF {:>9.1e}",
            c.name,
            format!("{}→{} {}×{}/{} @{}", c.c_in, c.c_out, c.k, c.k, c.stride, c.hw),
            t_burn,
            gflop / t_burn * 1e3,
            t_gemm,
            gflop / t_gemm * 1e3,
            max_diff(&a, &b)
        );
    }
    // The modulated conv's upsampling path and the blurs, as StyleGAN2/GPEN run them.
    if "sg2.up".contains(&filter) || filter.is_empty() {
        for (c_in, c_out, hw) in [(64usize, 32usize, 512usize), (512, 512, 32), (128, 64, 256)] {
            let x = Tensor::<4>::random([1, c_in, hw, hw], normal, &device);
            let w = Tensor::<4>::random([c_in, c_out, 3, 3], normal, &device);
            let options = ConvTransposeOptions::new([2, 2], [0, 0], [0, 0], [1, 1], 1);
            let ((t, a), (t_ours, b)) = time_ab(
                runs,
                || host(conv_transpose2d(x.clone(), w.clone(), None, options.clone())),
                || {
                    host(cpu_conv::conv_transpose2d(
                        x.clone(),
                        w.clone(),
                        None,
                        options.clone(),
                    ))
                },
            );
            let y = conv_transpose2d(x.clone(), w.clone(), None, options.clone());
            let [_, _, h2, _] = y.dims();
            let gflop = 2.0 * (c_in * c_out * 9 * hw * hw) as f64 / 1e9;
            let taps = [0.25f32, 0.75, 0.75, 0.25];
            let ((tb, _), _) = time_ab(
                runs,
                || host(upfirdn2d(y.clone(), &taps, 1, 1, Pad(1, 1))),
                Vec::new,
            );
            println!(
                "sg2.up.{hw:<8} {:>22} transposed: burn {:>8.1} ms {:>4.0}GF, cpu_conv {:>8.1} ms {:>4.0}GF (max diff {:.1e}); blur {}² {:>8.1} ms",
                format!("{c_in}→{c_out} 3×3/2 @{hw}"),
                t,
                gflop / t * 1e3,
                t_ours,
                gflop / t_ours * 1e3,
                max_diff(&a, &b),
                h2,
                tb
            );
        }
    }
    Ok(())
}

/// The layers Winograd could take (3×3, stride 1) plus the smaller shapes that set the
/// thresholds: direct banded gemm (`cpu_conv` with Winograd off) against Winograd F(4×4) and
/// F(2×2) on host slices, alternating; and each one's error against an f64 direct sum over the
/// first output channels (inputs N(0, 1), weights N(0, 1/(9·C)): outputs of order 1).
fn winograd_ab(runs: usize, filter: &str) {
    let extra = [
        ("thr.c16.64", 16, 16, 64),
        ("thr.c32.64", 32, 32, 64),
        ("thr.c64.32", 64, 64, 32),
        ("thr.c64.24", 64, 64, 24),
        ("thr.c256.16", 256, 256, 16),
        ("arc.unit.28", 128, 128, 28),
        ("arc.unit.7", 512, 512, 7),
    ];
    let shapes = CONVS
        .iter()
        .filter(|c| c.k == 3 && c.stride == 1)
        .map(|c| (c.name, c.c_in, c.c_out, c.hw))
        .chain(extra);
    println!(
        "{:<14} {:>18} {:>9} {:>9} {:>6} {:>9} {:>6} | max |err| vs f64: {:>8} {:>8} {:>8} (max |y|)",
        "layer", "shape", "direct", "F4 ms", "×", "F2 ms", "×", "direct", "F4", "F2"
    );
    for (name, c, o, hw) in shapes.filter(|s| s.0.contains(filter)) {
        let x = random(1, c * hw * hw, 1.0);
        let w = random(2, o * c * 9, 1.0 / ((9 * c) as f32).sqrt());
        let (xs, ws) = ([1, c, hw, hw], [o, c, 3, 3]);
        let pad = [(1, 1), (1, 1)];
        let direct = || {
            cpu_winograd::set_enabled(false);
            let y = cpu_conv::conv2d_f32(&x, xs, &w, ws, None, [1, 1], pad).0;
            cpu_winograd::set_enabled(true);
            y
        };
        let wino = |tile: Tile| {
            let (x, w) = (&x, &w);
            move || cpu_winograd::conv2d_f32(x, xs, w, ws, None, pad, tile).0
        };
        let ((t_d, y_d), (t_4, y_4)) = time_ab(runs, direct, wino(Tile::F4));
        let ((_, _), (t_2, y_2)) = time_ab(1.max(runs / 2), Vec::new, wino(Tile::F2));
        // The f64 reference for the first two output channels.
        let chans = o.min(2);
        let mut want = vec![0.0f64; chans * hw * hw];
        for oc in 0..chans {
            for ci in 0..c {
                for ky in 0..3 {
                    for kx in 0..3 {
                        let wv = w[((oc * c + ci) * 3 + ky) * 3 + kx] as f64;
                        for oy in 0..hw {
                            let Some(iy) = (oy + ky).checked_sub(1).filter(|&i| i < hw) else {
                                continue;
                            };
                            for ox in 0..hw {
                                let Some(ix) = (ox + kx).checked_sub(1).filter(|&i| i < hw) else {
                                    continue;
                                };
                                want[(oc * hw + oy) * hw + ox] += wv * x[(ci * hw + iy) * hw + ix] as f64;
                            }
                        }
                    }
                }
            }
        }
        let err = |y: &[f32]| {
            y.iter()
                .zip(&want)
                .map(|(a, b)| (*a as f64 - b).abs())
                .fold(0.0, f64::max)
        };
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        println!(
            "{:<14} {:>18} {:>9.2} {:>9.2} {:>6.2} {:>9.2} {:>6.2} | {:>25.1e} {:>8.1e} {:>8.1e} ({scale:.1})",
            name,
            format!("{c}→{o} @{hw}"),
            t_d,
            t_4,
            t_d / t_4,
            t_2,
            t_d / t_2,
            err(&y_d),
            err(&y_4),
            err(&y_2),
        );
    }
}

/// `n` values uniform in ±scale·√3 (variance scale²), from a fixed seed (xorshift).
fn random(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * scale * 3f32.sqrt()
        })
        .collect()
}
