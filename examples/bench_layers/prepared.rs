//! ArcFace's small-map 3×3 layers one at a time (`bench_layers --prepared [--runs N]`): the direct
//! path of `cpu_conv` (banded im2col + gemm, or Winograd with the weights transformed per call where
//! its thresholds take the layer) against Winograd F(2×2) and F(4×4) with prepared weights
//! (`cpu_winograd::conv2d_prepared`), called in turn; medians and minima in ms and the largest
//! difference from the direct output (see `benches/RESULTS.md`, the ArcFace section of 2026-12-08).

use std::time::Instant;

use facecast::nets::cpu_conv;
use facecast::nets::cpu_winograd::{PreparedWeights, Tile, conv2d_prepared};

/// `n` values uniform in ±`half_width` (bench_layers' generator, which takes the standard deviation).
fn random(seed: u64, n: usize, half_width: f32) -> Vec<f32> {
    super::random(seed, n, half_width / 3f32.sqrt())
}

/// Each small-map layer: direct, prepared F(2×2), prepared F(4×4), call by call.
pub fn run(runs: usize) {
    println!(
        "load {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    for (c, o, hw) in [
        (256usize, 256usize, 14usize),
        (512, 512, 7),
        (128, 128, 28),
        (64, 64, 56),
    ] {
        let x = random(1, c * hw * hw, 1.0);
        let w = random(2, o * c * 9, 1.0 / (9.0 * c as f32).sqrt());
        let pad = [(1, 1), (1, 1)];
        let p2 = PreparedWeights::new(&w, [o, c, 3, 3], Tile::F2);
        let p4 = PreparedWeights::new(&w, [o, c, 3, 3], Tile::F4);
        let mut t = [Vec::new(), Vec::new(), Vec::new()];
        let mut outs: [Vec<f32>; 3] = Default::default();
        for i in 0..=runs {
            for (k, tk) in t.iter_mut().enumerate() {
                let s = Instant::now();
                let y = match k {
                    0 => cpu_conv::conv2d_f32(&x, [1, c, hw, hw], &w, [o, c, 3, 3], None, [1, 1], pad).0,
                    1 => conv2d_prepared(&x, [1, c, hw, hw], &p2, None, pad).0,
                    _ => conv2d_prepared(&x, [1, c, hw, hw], &p4, None, pad).0,
                };
                if i > 0 {
                    tk.push(s.elapsed().as_secs_f64() * 1e3);
                }
                outs[k] = y;
            }
        }
        for v in &mut t {
            v.sort_by(f64::total_cmp);
        }
        let d = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        println!(
            "{c}->{o} @{hw}: direct {:.2} (min {:.2}) | F2 {:.2} (min {:.2}) | F4 {:.2} (min {:.2}) | diff F2 {:.1e} F4 {:.1e}",
            t[0][runs / 2],
            t[0][0],
            t[1][runs / 2],
            t[1][0],
            t[2][runs / 2],
            t[2][0],
            d(&outs[0], &outs[1]),
            d(&outs[0], &outs[2])
        );
    }
    println!(
        "load {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
