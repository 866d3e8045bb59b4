//! AEI-Net's host kernels on the CPU backend against burn's own ops on the same values: the fused
//! AAD layer (`facecast::nets::fused_aad`, through `AadLayer` and `AadResBlk`) and the bilinear
//! align-corners resize (`facecast::nets::cpu_resize`).

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};
use facecast::nets::faceshifter::AadBlockConfig;
use facecast::nets::faceshifter::aad::{AadLayer, AadResBlk};
use facecast::nets::{common, cpu_conv, cpu_resize, fused_aad};

#[path = "common/host_kernels.rs"]
mod host_kernels;

use host_kernels::{max_diff, rand};

fn assert_kernels_on() {
    host_kernels::assert_kernels_on(&[
        ("cpu_conv", cpu_conv::enabled()),
        ("fused_aad", fused_aad::enabled()),
        ("cpu_resize", cpu_resize::enabled()),
    ]);
}

fn burn_resize(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let options = InterpolateOptions {
        align_corners: true,
        ..InterpolateOptions::new(InterpolateMode::Bilinear)
    }
    .with_output_size(size);
    interpolate(x, options)
}

#[test]
fn bilinear_resize_matches_burns_interpolate() {
    assert_kernels_on();
    let cases: [([usize; 4], [usize; 2]); 8] = [
        // AEI-Net's ×2 steps, a single pixel, a single row, odd sizes up and down, and planes
        // large enough to run on several threads.
        ([2, 3, 5, 7], [10, 14]),
        ([1, 2, 1, 1], [2, 2]),
        ([1, 1, 1, 4], [2, 8]),
        ([1, 2, 5, 3], [7, 11]),
        ([1, 2, 9, 9], [4, 4]),
        ([1, 2, 6, 6], [1, 1]),
        ([1, 4, 16, 16], [32, 32]),
        ([2, 3, 64, 48], [128, 96]),
    ];
    for (shape, size) in cases {
        let x = rand(shape, -2.0, 2.0);
        let want = burn_resize(x.clone(), size);
        let [n, c, h, w] = shape;
        let values: Vec<f32> = x.clone().into_data().iter::<f32>().collect();
        let host = cpu_resize::resize_bilinear_aligned_f32(&values, shape, size);
        let host = Tensor::<4>::from_data(
            burn::tensor::TensorData::new(host, [n, c, size[0], size[1]]),
            &Device::flex(),
        );
        let d = max_diff(host, want.clone());
        assert!(d < 1e-5, "{shape:?} -> {size:?}: kernel max |diff| {d}");
        // The tensor entry point, which AEI-Net's upsampling calls.
        let d = max_diff(cpu_resize::resize_bilinear_aligned(x, size), want);
        assert!(d < 1e-5, "{shape:?} -> {size:?} ({h}x{w}): max |diff| {d}");
    }
}

/// A 1×1 conv's bias far from zero, so that a dropped bias cannot pass.
fn with_bias(mut conv: Conv2d, o: usize) -> Conv2d {
    conv.bias = Some(Param::from_tensor(rand([o], -0.5, 0.5)));
    conv
}

fn random_layer(c: usize, ca: usize, c_id: usize) -> AadLayer {
    let mut layer = AadLayer::new(c, ca, c_id, &Device::flex());
    layer.conv1 = with_bias(layer.conv1, c);
    layer.conv2 = with_bias(layer.conv2, c);
    layer.conv_h = with_bias(layer.conv_h, 1);
    layer
}

/// The reference's `AADLayer.forward` op by op through burn (its convs are burn's own, not
/// `cpu_conv`'s): returns the blended map, through a ReLU when `then_relu`, and the mask.
fn reference_aad(
    layer: &AadLayer,
    h: Tensor<4>,
    z_attr: Tensor<4>,
    z_id: Tensor<2>,
    then_relu: bool,
) -> (Tensor<4>, Tensor<4>) {
    let [n, c, _, _] = h.dims();
    let hn = common::instance_norm(h);
    let gamma_attr = layer.conv1.forward(z_attr.clone());
    let beta_attr = layer.conv2.forward(z_attr);
    let gamma_id = layer.fc1.forward(z_id.clone()).reshape([n, c, 1, 1]);
    let beta_id = layer.fc2.forward(z_id).reshape([n, c, 1, 1]);
    let a = gamma_attr * hn.clone() + beta_attr;
    let i = gamma_id * hn.clone() + beta_id;
    let m = sigmoid(layer.conv_h.forward(hn));
    let out = (m.clone().neg() + 1.0) * a + m.clone() * i;
    (if then_relu { relu(out) } else { out }, m)
}

#[test]
fn fused_aad_layer_matches_burns_ops() {
    assert_kernels_on();
    // (batch, C, Cₐ, H, W): a few pixels with wide weights (one band, gemm's threads), odd sizes,
    // and maps cut into many bands over several images (the parallel band path).
    for (n, c, ca, hh, ww) in [
        (1, 64, 128, 4, 4),
        (2, 8, 6, 9, 10),
        (1, 16, 32, 128, 128),
        (2, 32, 16, 50, 70),
    ] {
        let layer = random_layer(c, ca, 12);
        // An offset and a spread far from 0 and 1, where a careless instance norm loses digits.
        let h = rand([n, c, hh, ww], 5.0, 9.0);
        let z_attr = rand([n, ca, hh, ww], -1.0, 1.0);
        let z_id = rand([n, 12], -1.0, 1.0);
        let (want, want_mask) = reference_aad(&layer, h.clone(), z_attr.clone(), z_id.clone(), false);
        let (got, mask) = layer.forward(h, z_attr, z_id);
        let d = max_diff(got, want);
        assert!(
            d < 1e-4,
            "{n}x{c}x{hh}x{ww}, {ca} attribute channels: max |diff| {d}"
        );
        let d = max_diff(mask, want_mask);
        assert!(d < 1e-5, "{n}x{c}x{hh}x{ww}: mask max |diff| {d}");
    }
}

#[test]
fn fused_aad_blocks_match_burns_ops() {
    assert_kernels_on();
    let device = Device::flex();
    // A block that changes the width (AAD3 and conv3 on the shortcut) and one that keeps it.
    for (cin, cout, c_attr, size) in [(8, 4, 6, 33), (6, 6, 10, 24)] {
        let mut block = AadResBlk::new(AadBlockConfig { cin, cout, c_attr }, 12, &device);
        block.AAD1 = random_layer(cin, c_attr, 12);
        block.AAD2 = random_layer(cin, c_attr, 12);
        block.AAD3 = block.AAD3.is_some().then(|| random_layer(cin, c_attr, 12));
        let h = rand([2, cin, size, size], -3.0, 3.0);
        let z_attr = rand([2, c_attr, size, size], -1.0, 1.0);
        let z_id = rand([2, 12], -1.0, 1.0);

        let mut want_masks = Vec::new();
        let (x, m) = reference_aad(&block.AAD1, h.clone(), z_attr.clone(), z_id.clone(), true);
        want_masks.push(m);
        let x = block.conv1.forward(x);
        let (x, m) = reference_aad(&block.AAD2, x, z_attr.clone(), z_id.clone(), true);
        want_masks.push(m);
        let x = block.conv2.forward(x);
        let shortcut = match (&block.AAD3, &block.conv3) {
            (Some(aad), Some(conv)) => {
                let (s, m) = reference_aad(aad, h.clone(), z_attr.clone(), z_id.clone(), true);
                want_masks.push(m);
                conv.forward(s)
            }
            _ => h.clone(),
        };
        let want = x + shortcut;

        let mut masks = Vec::new();
        let got = block.forward(h, z_attr, z_id, &mut |m| masks.push(m));
        let d = max_diff(got, want);
        assert!(d < 1e-4, "{cin}->{cout}: max |diff| {d}");
        assert_eq!(masks.len(), want_masks.len(), "{cin}->{cout}: masks");
        for (k, (m, w)) in masks.into_iter().zip(want_masks).enumerate() {
            let d = max_diff(m, w);
            assert!(d < 1e-5, "{cin}->{cout}: mask {k} max |diff| {d}");
        }
    }
}

#[test]
fn parameters_read_in_place_hold_the_tensors_values() {
    assert_kernels_on();
    let t = rand([4, 6, 3, 5], -1.0, 1.0);
    let kept = t.clone();
    let values = |t: Tensor<4>| t.into_data().iter::<f32>().collect::<Vec<f32>>();
    // Shared (as a module's parameter is), transposed (not contiguous), sliced (an offset), and
    // a slice of the last dimension (strided rows).
    for view in [
        t.clone(),
        t.clone().swap_dims(1, 3),
        t.clone().slice([1..3, 0..6, 0..3, 0..5]),
        t.clone().slice([0..4, 0..6, 0..3, 1..4]),
    ] {
        let want = values(view.clone());
        let got = cpu_conv::read_f32(&view, |xs| xs.to_vec());
        assert_eq!(got, want, "dims {:?}", view.dims());
    }
    assert_eq!(values(kept), values(t), "the tensor was changed");
}
