//! The fused CPU steps of `facecast::nets::fused` (batch norm folded into the conv or deconv before
//! it, batch norm as one multiply-add, the one-pass instance norm, AEI-Net's AAD blend) against
//! burn's own ops on the same values.

use burn::module::{Param, RunningState};
use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::Device;
use burn::tensor::activation::relu;
use facecast::nets::{common, cpu_conv, fused};

#[path = "common/host_kernels.rs"]
mod host_kernels;

use host_kernels::{max_diff, rand};

/// A batch norm with statistics and affine parameters far from the identity.
fn trained_bn(c: usize) -> BatchNorm {
    let mut bn = BatchNormConfig::new(c).init(&Device::flex());
    bn.gamma = Param::from_tensor(rand([c], 0.5, 1.5));
    bn.beta = Param::from_tensor(rand([c], -0.5, 0.5));
    bn.running_mean = RunningState::new(rand([c], -0.3, 0.3));
    bn.running_var = RunningState::new(rand([c], 0.2, 2.0));
    bn
}

fn assert_kernels_on() {
    host_kernels::assert_kernels_on(&[("cpu_conv", cpu_conv::enabled())]);
}

#[test]
fn folded_conv_bn_matches_conv_then_bn() {
    assert_kernels_on();
    let device = Device::flex();
    for (k, stride, groups, bias) in [
        (3, 1, 1, false),
        (3, 2, 1, true),
        (1, 1, 1, false),
        (4, 2, 1, false),
        (3, 1, 8, false),
    ] {
        let pad = k / 2;
        let conv = Conv2dConfig::new([8, 8], [k, k])
            .with_stride([stride, stride])
            .with_groups(groups)
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_bias(bias)
            .init(&device);
        let bn = trained_bn(8);
        let x = rand([2, 8, 11, 9], -1.0, 1.0);
        let d = max_diff(fused::conv_bn(&conv, &bn, x.clone()), bn.forward(conv.forward(x)));
        assert!(d < 1e-4, "k{k} s{stride} g{groups} bias {bias}: max |diff| {d}");
    }
}

#[test]
fn folded_deconv_bn_matches_deconv_then_bn() {
    assert_kernels_on();
    let deconv = ConvTranspose2dConfig::new([6, 5], [4, 4])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .with_bias(false)
        .init(&Device::flex());
    let bn = trained_bn(5);
    let x = rand([2, 6, 7, 8], -1.0, 1.0);
    let d = max_diff(
        fused::conv_transpose_bn(&deconv, &bn, x.clone()),
        bn.forward(deconv.forward(x)),
    );
    assert!(d < 1e-4, "max |diff| {d}");
}

#[test]
fn batch_norm_as_one_multiply_add_matches_burn() {
    assert_kernels_on();
    let bn = trained_bn(5);
    let x = rand([2, 5, 13, 7], -2.0, 2.0);
    let d = max_diff(fused::batch_norm(&bn, x.clone()), bn.forward(x));
    assert!(d < 1e-5, "max |diff| {d}");
}

#[test]
fn one_pass_instance_norm_matches_burn() {
    assert_kernels_on();
    // An offset and a spread far from 0 and 1, where a careless variance would lose digits.
    let x = rand([2, 3, 40, 33], 9.0, 13.0);
    let d = max_diff(fused::instance_norm(x.clone()), common::instance_norm(x));
    assert!(d < 1e-3, "max |diff| {d}");
}

#[test]
fn aad_blend_matches_burns_ops() {
    assert_kernels_on();
    let (n, c, h, w) = (2, 4, 9, 10);
    let hn = rand([n, c, h, w], -2.0, 2.0);
    let ga = rand([n, c, h, w], -1.0, 1.0);
    let ba = rand([n, c, h, w], -1.0, 1.0);
    let gi = rand([n, c], -1.0, 1.0);
    let bi = rand([n, c], -1.0, 1.0);
    let m = rand([n, 1, h, w], 0.0, 1.0);
    // The reference's AADLayer.forward, op by op.
    let a = ga.clone() * hn.clone() + ba.clone();
    let i = gi.clone().reshape([n, c, 1, 1]) * hn.clone() + bi.clone().reshape([n, c, 1, 1]);
    let want = (m.clone().neg() + 1.0) * a + m.clone() * i;
    for then_relu in [false, true] {
        let got = fused::aad_blend(
            hn.clone(),
            ga.clone(),
            ba.clone(),
            gi.clone(),
            bi.clone(),
            m.clone(),
            then_relu,
        );
        let want = if then_relu {
            relu(want.clone())
        } else {
            want.clone()
        };
        let d = max_diff(got, want);
        assert!(d < 1e-5, "relu {then_relu}: max |diff| {d}");
    }
}
