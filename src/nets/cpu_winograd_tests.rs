//! Tests of `cpu_winograd`: the transforms against the 1-D correlation in f64, and the kernel
//! against burn's `conv2d` on odd shapes, both tiles, and through `cpu_conv`'s dispatch.

use super::*;
use crate::nets::cpu_conv;
use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};

/// A small deterministic generator (xorshift) for the f64 checks.
fn values(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}

#[test]
fn transforms_compute_the_one_dimensional_correlation() {
    for tile in [Tile::F2, Tile::F4, Tile::F4K2] {
        let tf = tile.transforms();
        let (m, r, a, bt, g, at) = (tf.m, tf.r, tf.a, tf.bt, tf.g, tf.at);
        assert_eq!((a, bt.len(), g.len(), at.len()), (m + r - 1, a * a, a * r, m * a));
        let (d, k) = (values(1, a), values(2, r));
        let gk: Vec<f64> = (0..a)
            .map(|i| (0..r).map(|j| g[i * r + j] * k[j]).sum())
            .collect();
        let bd: Vec<f64> = (0..a)
            .map(|i| (0..a).map(|j| bt[i * a + j] * d[j]).sum())
            .collect();
        for r in 0..m {
            let got: f64 = (0..a).map(|i| at[r * a + i] * gk[i] * bd[i]).sum();
            let want: f64 = (0..tf.r).map(|j| d[r + j] * k[j]).sum();
            assert!((got - want).abs() < 1e-12, "{tile:?} output {r}: {got} vs {want}");
        }
    }
}

fn host(t: Tensor<4>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap_or_default()
}

/// Random input N(0, 1) and r×r weights N(0, 1/(r²c)) (outputs of order 1, like the networks'
/// layers after their weight scaling), with an optional bias.
fn case(
    b: usize,
    c: usize,
    o: usize,
    r: usize,
    (h, w): (usize, usize),
    bias: bool,
) -> (Tensor<4>, Tensor<4>, Option<Tensor<1>>) {
    let device = Device::flex();
    let x = Tensor::<4>::random([b, c, h, w], Distribution::Normal(0.0, 1.0), &device);
    let wt = Tensor::<4>::random([o, c, r, r], Distribution::Normal(0.0, 1.0), &device)
        .mul_scalar(1.0 / ((r * r * c) as f64).sqrt());
    let bias = bias.then(|| Tensor::<1>::random([o], Distribution::Normal(0.0, 1.0), &device));
    (x, wt, bias)
}

#[allow(clippy::too_many_arguments)]
fn check(
    tile: Tile,
    b: usize,
    c: usize,
    o: usize,
    hw: (usize, usize),
    padding: [(usize, usize); 2],
    bias: bool,
    tol: f32,
) {
    let r = tile.kernel();
    let (x, wt, bias_t) = case(b, c, o, r, hw, bias);
    let options = ConvOptions::new_with_padding([1, 1], padding, [1, 1], 1);
    let want_t = burn_conv2d(x.clone(), wt.clone(), bias_t.clone(), options);
    let want_dims = want_t.dims();
    let want = host(want_t);
    let bias_v = bias_t.map(host_1d);
    let (got, dims) = conv2d_f32(
        &host(x),
        [b, c, hw.0, hw.1],
        &host(wt),
        [o, c, r, r],
        bias_v.as_deref(),
        padding,
        tile,
    );
    assert_eq!(dims, want_dims, "{tile:?} shape");
    let diff = crate::parity::max_abs_diff(&got, &want);
    // F(4×4) rounds to about 1e-5 of the outputs' size (f64 comparison in `bench_layers`); a
    // wrong tap or tile edge is off by the size of the outputs themselves.
    let tol = tol * want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    assert!(
        diff < tol,
        "{tile:?} b {b} c {c} o {o} {hw:?} pad {padding:?} bias {bias}: max diff {diff}"
    );
}

fn host_1d(t: Tensor<1>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap_or_default()
}

#[test]
fn matches_burn_on_odd_sizes_paddings_channels_and_batches() {
    let same = [(1, 1), (1, 1)];
    let valid = [(0, 0), (0, 0)];
    for tile in [Tile::F2, Tile::F4, Tile::F4K2] {
        // One channel; sizes that are not multiples of either tile.
        check(tile, 1, 1, 1, (5, 7), same, false, 3e-5);
        check(tile, 2, 3, 5, (9, 10), same, true, 3e-5);
        check(tile, 1, 8, 4, (13, 6), valid, true, 3e-5);
        check(tile, 2, 40, 33, (11, 17), same, true, 3e-5);
        // Asymmetric padding, an output of one pixel, and a map narrower than the tile.
        check(tile, 1, 4, 3, (7, 8), [(2, 0), (0, 1)], false, 3e-5);
        check(tile, 2, 2, 3, (3, 3), valid, true, 3e-5);
        check(tile, 1, 3, 2, (1, 2), same, false, 3e-5);
    }
}

#[test]
fn many_blocks_agree_with_burn() {
    // Blocks are cut evenly over all tiles of the batch: with three images of 575 tiles each
    // (100×90 at F(4×4)) the cuts fall inside tile rows and images for 2, 4 or 8 threads.
    check(Tile::F4, 3, 64, 64, (100, 90), [(1, 1), (1, 1)], true, 3e-5);
    check(Tile::F2, 1, 64, 48, (61, 67), [(1, 1), (1, 1)], false, 3e-5);
    check(Tile::F4K2, 3, 64, 64, (100, 90), [(1, 0), (0, 1)], true, 3e-5);
}

#[test]
fn cpu_conv_dispatches_wide_3x3_layers_here() {
    let (b, c, o, hw) = (2, MIN_CHANNELS, MIN_CHANNELS + 3, (33, 35));
    assert!(applies(c, o, (3, 3), [1, 1], hw.0 * hw.1));
    assert!(!applies(c, o, (3, 3), [2, 2], hw.0 * hw.1));
    assert!(!applies(c, o, (4, 4), [1, 1], hw.0 * hw.1));
    assert!(!applies(MIN_CHANNELS / 2 - 1, o, (3, 3), [1, 1], hw.0 * hw.1));
    let (x, wt, bias) = case(b, c, o, 3, hw, true);
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let want = host(burn_conv2d(x.clone(), wt.clone(), bias.clone(), options.clone()));
    let got = host(cpu_conv::conv2d(x, wt, bias, options));
    let diff = crate::parity::max_abs_diff(&got, &want);
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    assert!(diff < 3e-5 * scale, "max diff {diff}, largest output {scale}");
}

#[test]
fn half_wide_layers_are_dispatched_here_up_to_256_squared() {
    // GPEN-256's 64→32 at 256² (reduced to 34×33, still over MIN_PIXELS) and its mirror; 32→32
    // and maps over 256² stay on the direct path.
    assert!(applies(64, 32, (3, 3), [1, 1], 34 * 33));
    assert!(applies(32, 64, (3, 3), [1, 1], 256 * 256));
    assert!(!applies(32, 32, (3, 3), [1, 1], 34 * 33));
    assert!(!applies(64, 32, (3, 3), [1, 1], 512 * 512));
    for (b, c, o, hw) in [(1, 64, 32, (34, 33)), (2, 32, 64, (33, 35))] {
        let (x, wt, bias) = case(b, c, o, 3, hw, b == 1);
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let want = host(burn_conv2d(x.clone(), wt.clone(), bias.clone(), options.clone()));
        let got = host(cpu_conv::conv2d(x, wt, bias, options));
        let diff = crate::parity::max_abs_diff(&got, &want);
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        assert!(
            diff < 3e-5 * scale,
            "{c}->{o}: max diff {diff}, largest output {scale}"
        );
    }
}
