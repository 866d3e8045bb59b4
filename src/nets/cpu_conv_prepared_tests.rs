//! Convolutions prepared once (`cpu_conv_prepared`, the prepared Winograd of
//! `cpu_winograd`) and ArcFace's prepared path (`arcface_cpu`) against burn's own ops and
//! against the path without preparation, on the CPU backend.

use crate::nets::arcface::{ArcFace, ArcFaceConfig};
use crate::nets::arcface_cpu;
use crate::nets::cpu_conv_prepared::{PreparedConv, winograd_tile};
use crate::nets::cpu_winograd::{PreparedWeights, Tile, conv2d_prepared};
use burn::module::{Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};

fn rand<const D: usize>(shape: [usize; D], lo: f64, hi: f64) -> Tensor<D> {
    Tensor::random(shape, Distribution::Uniform(lo, hi), &Device::flex())
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// The largest difference relative to the largest magnitude of `want`.
fn rel_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
        / scale
}

#[test]
fn prepared_winograd_matches_burns_conv2d() {
    // (batch, in, out, h, w, padding): ArcFace's small maps (one block per output-channel range),
    // odd sides, more outputs than a multiple of 8, uneven padding, no padding, two images, and a
    // map large enough to take the blocks of tiles instead.
    type Case = (usize, usize, usize, usize, usize, [(usize, usize); 2]);
    let cases: [Case; 7] = [
        (1, 64, 64, 14, 14, [(1, 1), (1, 1)]),
        (1, 64, 70, 7, 7, [(1, 1), (1, 1)]),
        (2, 33, 21, 9, 11, [(1, 1), (1, 1)]),
        (1, 16, 24, 10, 13, [(2, 0), (0, 1)]),
        (1, 8, 8, 6, 5, [(0, 0), (0, 0)]),
        (1, 3, 5, 1, 1, [(1, 1), (1, 1)]),
        (1, 64, 64, 130, 130, [(1, 1), (1, 1)]),
    ];
    for (b, c, o, h, w, padding) in cases {
        let x = rand([b, c, h, w], -1.0, 1.0);
        let a = (3.0 / (9 * c) as f64).sqrt();
        let weight = rand([o, c, 3, 3], -a, a);
        let bias = rand([o], -0.5, 0.5);
        let options = ConvOptions::new_with_padding([1, 1], padding, [1, 1], 1);
        let want = conv2d(x.clone(), weight.clone(), Some(bias.clone()), options);
        let want_dims = want.dims();
        let want = values(want);
        let (xs, ws, bs) = (values(x), values(weight), values(bias));
        for tile in [Tile::F2, Tile::F4] {
            let prepared = PreparedWeights::new(&ws, [o, c, 3, 3], tile);
            let (got, dims) = conv2d_prepared(&xs, [b, c, h, w], &prepared, Some(&bs), padding);
            assert_eq!(dims, want_dims, "{tile:?} {b}x{c}->{o} {h}x{w} {padding:?}");
            let diff = rel_diff(&got, &want);
            assert!(diff < 1e-4, "{tile:?} {b}x{c}->{o} {h}x{w} {padding:?}: {diff}");
        }
    }
}

fn conv(c: usize, o: usize, k: usize, stride: usize) -> Conv2d {
    let pad = k / 2;
    let mut conv = Conv2dConfig::new([c, o], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .init(&Device::flex());
    let a = (3.0 / (k * k * c) as f64).sqrt();
    conv.weight = Param::from_tensor(rand([o, c, k, k], -a, a));
    conv.bias = Some(Param::from_tensor(rand([o], -0.5, 0.5)));
    conv
}

fn batch_norm(c: usize) -> BatchNorm {
    let mut bn = BatchNormConfig::new(c).init(&Device::flex());
    bn.gamma = Param::from_tensor(rand([c], 0.5, 1.5));
    bn.beta = Param::from_tensor(rand([c], -0.5, 0.5));
    bn.running_mean = RunningState::new(rand([c], -0.5, 0.5));
    bn.running_var = RunningState::new(rand([c], 0.5, 2.0));
    bn
}

#[test]
fn prepared_convs_with_a_folded_norm_match_burns_conv_then_norm() {
    // (in, out, kernel, stride, side): Winograd F(2×2) at 14² and 7², F(4×4) at 28², the direct
    // path at 4², a stride-2 3×3 on an odd side, and ArcFace's stride-2 1×1 shortcut.
    let cases = [
        (64, 64, 3, 1, 14, Some(Tile::F2)),
        (64, 64, 3, 1, 28, Some(Tile::F4)),
        (64, 96, 3, 1, 7, Some(Tile::F2)),
        (64, 96, 3, 1, 4, None),
        (32, 48, 3, 2, 15, None),
        (32, 64, 1, 2, 14, None),
    ];
    for (c, o, k, stride, side, tile) in cases {
        let (cv, bn) = (conv(c, o, k, stride), batch_norm(o));
        let x = rand([1, c, side, side], -1.0, 1.0);
        let want = bn.forward(cv.forward(x.clone()));
        let prepared =
            PreparedConv::new(&cv, Some(&bn), 1, [side; 2]).expect("an f32 conv with explicit padding");
        assert_eq!(prepared.tile(), tile, "{c}->{o} {k}x{k}/{stride} @{side}");
        let got = prepared.forward(x.clone());
        assert_eq!(got.dims(), want.dims());
        let diff = rel_diff(&values(got), &values(want));
        assert!(diff < 1e-4, "{c}->{o} {k}x{k}/{stride} @{side}: {diff}");
        // Prepared for another size: the same result through the path that size takes.
        let other = PreparedConv::new(&cv, Some(&bn), 1, [side + 3; 2]).expect("prepared");
        let diff = rel_diff(
            &values(other.forward(x.clone())),
            &values(bn.forward(cv.forward(x))),
        );
        assert!(diff < 1e-4, "{c}->{o} prepared for {}: {diff}", side + 3);
    }
}

#[test]
fn the_tile_follows_the_cost_of_the_products() {
    // ArcFace-112's stride-1 3×3 layers, and what must stay on the direct path.
    assert_eq!(
        winograd_tile((256, 256), (3, 3), [1, 1], (1, 14, 14)),
        Some(Tile::F2)
    );
    assert_eq!(
        winograd_tile((128, 128), (3, 3), [1, 1], (1, 28, 28)),
        Some(Tile::F4)
    );
    assert_eq!(
        winograd_tile((64, 64), (3, 3), [1, 1], (1, 112, 112)),
        Some(Tile::F4)
    );
    assert_eq!(
        winograd_tile((512, 512), (3, 3), [1, 1], (1, 7, 7)),
        Some(Tile::F2)
    );
    assert_eq!(winograd_tile((512, 512), (3, 3), [1, 1], (1, 4, 4)), None);
    assert_eq!(winograd_tile((256, 256), (3, 3), [2, 2], (1, 14, 14)), None);
    assert_eq!(winograd_tile((256, 256), (1, 1), [1, 1], (1, 14, 14)), None);
    assert_eq!(winograd_tile((32, 256), (3, 3), [1, 1], (1, 14, 14)), None);
    assert_eq!(winograd_tile((256, 256), (3, 3), [1, 1], (1, 2, 2)), None);
}

/// A small IR-SE network wide enough (64-128 channels) that its stride-1 3×3 layers take the
/// prepared Winograd path: 56² → 28² → 14², with a shortcut projection.
fn small_arcface() -> ArcFace {
    let config = ArcFaceConfig::from_json(&serde_json::json!({
        "mode": "ir_se", "stem_width": 64, "stage_depths": [64, 128], "stage_units": [1, 2],
        "embedding_dim": 64, "input_hw": [56, 56]
    }))
    .expect("a valid config");
    let mut net = ArcFace::new(&config, &Device::flex());
    // Norms that are not the identity, so that folding them shows.
    net.input_layer.bn = batch_norm(64);
    for unit in &mut net.body {
        let depth = unit.res_layer.bn2.gamma.dims()[0];
        let width = unit.res_layer.bn1.gamma.dims()[0];
        unit.res_layer.bn1 = batch_norm(width);
        unit.res_layer.bn2 = batch_norm(depth);
        if let Some(sc) = &mut unit.shortcut_layer {
            sc.bn = batch_norm(depth);
        }
    }
    net
}

#[test]
fn arcface_prepared_matches_the_unprepared_path_and_follows_new_weights() {
    let mut net = small_arcface();
    let x = rand([1, 3, 56, 56], -1.0, 1.0);
    let run = |net: &ArcFace, prepared: bool| {
        arcface_cpu::set_enabled(prepared);
        let trace = net.forward_traced(x.clone());
        arcface_cpu::set_enabled(true);
        (values(trace.body[2].clone()), values(trace.embedding))
    };
    let (body_b, emb_b) = run(&net, true);
    let (body_a, emb_a) = run(&net, false);
    assert!(
        rel_diff(&body_b, &body_a) < 1e-3,
        "{}",
        rel_diff(&body_b, &body_a)
    );
    assert!(rel_diff(&emb_b, &emb_a) < 1e-3, "{}", rel_diff(&emb_b, &emb_a));
    // New weights for a Winograd layer and a folded norm after the cache was filled: the next
    // call must use them.
    let r = &mut net.body[2].res_layer;
    r.conv2.weight = Param::from_tensor(rand([128, 128, 3, 3], -0.05, 0.05));
    r.bn2 = batch_norm(128);
    let (body_new, _) = run(&net, true);
    let (body_want, _) = run(&net, false);
    assert!(
        rel_diff(&body_new, &body_want) < 1e-3,
        "{}",
        rel_diff(&body_new, &body_want)
    );
    assert!(
        rel_diff(&body_new, &body_b) > 1e-2,
        "the new weights changed nothing"
    );
    // A clone prepares its own (and agrees).
    let (body_clone, _) = run(&net.clone(), true);
    assert!(rel_diff(&body_clone, &body_want) < 1e-3);
}
