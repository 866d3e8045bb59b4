//! MobileNetV2's features on host memory, for the flex CPU backend.
//!
//! Each element of `features` (the stem, an inverted residual block, the last 1×1 conv) runs
//! here as one host computation: its input tensor's buffer is taken once, every layer writes a
//! plain `Vec` that the next one reads, and one tensor is built from the result. A conv followed
//! by an eval BatchNorm and a ReLU6 is one kernel call whose output pass applies the norm and
//! the activation (and the block's residual): the 1×1 layers on `cpu_pointwise`, the depthwise
//! 3×3 layers on `cpu_depthwise`, any other conv (the 3×3 stride-2 stem) on `cpu_conv` with the
//! norm folded into a copy of its weights (864 values for the stem). The norms' scale and shift
//! are computed from the parameters on every call (one value per channel, 17,056 in all); the
//! conv weights are read where they lie.
//!
//! Anything else (autodiff, wgpu, a layer sequence or shape this file does not know) returns the
//! input untouched for the tensor path of `mobilenetv2.rs`.

use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::{Tensor, TensorData};

use super::Op;
use crate::nets::cpu_conv::{self, read_f32};
use crate::nets::cpu_depthwise::{self, ChannelEpilogue};
use crate::nets::cpu_pointwise;
use crate::nets::fused::{fusable, host_values};
use crate::nets::kernel_switch::KernelSwitch;
use crate::nets::profile;

/// Whether MobileNetV2 takes this path on the CPU (on unless a benchmark turns it off).
static SWITCH: KernelSwitch = KernelSwitch::on();

/// Turns the host path on or off for the whole process (for A/B benchmarks; on by default).
pub fn set_enabled(on: bool) {
    SWITCH.set(on);
}

/// Whether the host path is on (see [`set_enabled`]).
pub fn enabled() -> bool {
    SWITCH.enabled()
}

/// A conv with the norm and activation that follow it.
struct Layer<'a> {
    conv: &'a Conv2d,
    norm: Option<&'a BatchNorm>,
    relu6: bool,
}

/// How a layer runs, from its conv's shape and the channels it receives.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Pointwise,
    Depthwise { stride: usize },
    Dense,
}

impl Layer<'_> {
    fn kind(&self, channels: usize) -> Option<Kind> {
        let conv = self.conv;
        let [o, ci, kh, kw] = conv.weight.dims();
        if conv.dilation != [1, 1] {
            return None;
        }
        let pad = match conv.padding {
            PaddingConfig2d::Valid => 0,
            PaddingConfig2d::Explicit(t, l, b, r) if t == l && l == b && b == r => t,
            _ => return None,
        };
        let [sh, sw] = conv.stride;
        if conv.groups == 1 && ci == channels {
            if (kh, kw, pad, sh, sw) == (1, 1, 0, 1, 1) {
                return Some(Kind::Pointwise);
            }
            return Some(Kind::Dense);
        }
        let depthwise = conv.groups == channels && o == channels && ci == 1;
        if depthwise && (kh, kw, pad) == (3, 3, 1) && sh == sw && (sh == 1 || sh == 2) {
            return Some(Kind::Depthwise { stride: sh });
        }
        None
    }
}

/// Groups `ops` into layers: each conv, then at most one norm, then at most one ReLU6.
fn layers<'a>(ops: impl Iterator<Item = &'a Op>) -> Option<Vec<Layer<'a>>> {
    let mut layers: Vec<Layer> = Vec::new();
    for op in ops {
        match op {
            Op::Conv(conv) => layers.push(Layer {
                conv,
                norm: None,
                relu6: false,
            }),
            Op::Norm(bn) => match layers.last_mut() {
                Some(last) if last.norm.is_none() && !last.relu6 => last.norm = Some(bn),
                _ => return None,
            },
            Op::Relu6(_) => match layers.last_mut() {
                Some(last) if !last.relu6 => last.relu6 = true,
                _ => return None,
            },
        }
    }
    Some(layers)
}

/// The norm's `(scale, shift)` after the conv's bias: `y = conv_without_bias(x)·scale + shift`.
fn affine(layer: &Layer) -> (Vec<f32>, Vec<f32>) {
    let o = layer.conv.weight.dims()[0];
    let bias = layer
        .conv
        .bias
        .as_ref()
        .map(|b| read_f32(&b.val(), <[f32]>::to_vec));
    let (scale, shift) = match layer.norm {
        Some(bn) => {
            let gamma = read_f32(&bn.gamma.val(), <[f32]>::to_vec);
            let beta = read_f32(&bn.beta.val(), <[f32]>::to_vec);
            let mean = read_f32(&bn.running_mean.value(), <[f32]>::to_vec);
            let var = read_f32(&bn.running_var.value(), <[f32]>::to_vec);
            let scale: Vec<f32> = gamma
                .iter()
                .zip(&var)
                .map(|(&g, &v)| (g as f64 / (v as f64 + bn.epsilon).sqrt()) as f32)
                .collect();
            let shift = beta
                .iter()
                .zip(&mean)
                .zip(&scale)
                .map(|((&b, &m), &s)| b - m * s)
                .collect();
            (scale, shift)
        }
        None => (vec![1.0; o], vec![0.0; o]),
    };
    match bias {
        Some(bias) => {
            let shift = shift
                .iter()
                .zip(&bias)
                .zip(&scale)
                .map(|((&t, &b), &s)| b * s + t)
                .collect();
            (scale, shift)
        }
        None => (scale, shift),
    }
}

/// Runs `ops` (then adds the input back when `residual`) on the host, or gives `x` back when
/// the host path does not apply to it (the caller's own tensor, not an error: not boxed).
#[allow(clippy::result_large_err)]
pub(super) fn run<'a>(
    ops: impl Iterator<Item = &'a Op>,
    residual: bool,
    x: Tensor<4>,
) -> Result<Tensor<4>, Tensor<4>> {
    if !(enabled() && fusable(&x)) {
        return Err(x);
    }
    let Some(layers) = layers(ops) else {
        return Err(x);
    };
    let [b, mut c, mut h, mut w] = x.dims();
    let mut kinds = Vec::with_capacity(layers.len());
    for layer in &layers {
        let Some(kind) = layer.kind(c) else {
            return Err(x);
        };
        let [o, _, kh, kw] = layer.conv.weight.dims();
        let [sh, sw] = layer.conv.stride;
        let pad = match layer.conv.padding {
            PaddingConfig2d::Explicit(p, ..) => p,
            _ => 0,
        };
        if h + 2 * pad < kh || w + 2 * pad < kw {
            return Err(x);
        }
        (c, h, w) = (o, (h + 2 * pad - kh) / sh + 1, (w + 2 * pad - kw) / sw + 1);
        kinds.push(kind);
    }
    let input_dims = x.dims();
    if residual && [b, c, h, w] != input_dims {
        return Err(x);
    }
    let device = x.device();
    let input = host_values(x);
    let mut cur: Option<(Vec<f32>, [usize; 4])> = None;
    let last = layers.len().saturating_sub(1);
    for (i, (layer, kind)) in layers.iter().zip(kinds).enumerate() {
        let (xs, shape) = match &cur {
            Some((v, s)) => (&v[..], *s),
            None => (&input[..], input_dims),
        };
        let skip = (residual && i == last).then_some(&input[..]);
        cur = Some(run_layer(layer, kind, xs, shape, skip));
    }
    let (out, dims) = match cur {
        Some(done) => done,
        None => (input, input_dims),
    };
    Ok(Tensor::from_data(TensorData::new(out, dims), &device))
}

/// One layer on host values, `skip` added to its output when given.
fn run_layer(
    layer: &Layer,
    kind: Kind,
    x: &[f32],
    shape: [usize; 4],
    skip: Option<&[f32]>,
) -> (Vec<f32>, [usize; 4]) {
    let [o, ci, kh, kw] = layer.conv.weight.dims();
    let [_, c, h, w] = shape;
    let (scale, shift) = affine(layer);
    let epilogue = ChannelEpilogue {
        scale: Some(&scale),
        shift: Some(&shift),
        relu6: layer.relu6,
    };
    let weight = layer.conv.weight.val();
    match kind {
        Kind::Pointwise => profile::scope(
            "pointwise",
            || format!("{c}->{o} @{h}x{w}"),
            || {
                read_f32(&weight, |ws| {
                    cpu_pointwise::pointwise_f32(x, shape, ws, o, epilogue, skip)
                })
            },
        ),
        Kind::Depthwise { stride } => profile::scope(
            "depthwise3x3",
            || format!("{c} /{stride} @{h}x{w}"),
            || {
                let (mut out, dims) = read_f32(&weight, |ws| {
                    cpu_depthwise::depthwise3x3_f32(x, shape, ws, stride, epilogue)
                });
                add_skip(&mut out, skip);
                (out, dims)
            },
        ),
        Kind::Dense => profile::scope(
            "conv2d",
            || format!("{c}->{o} {kh}x{kw}/{} @{h}x{w} +bn", layer.conv.stride[0]),
            || {
                let taps = ci * kh * kw;
                let folded: Vec<f32> = read_f32(&weight, |ws| {
                    ws.chunks_exact(taps)
                        .zip(&scale)
                        .flat_map(|(row, &s)| row.iter().map(move |&v| v * s))
                        .collect()
                });
                let pad = match layer.conv.padding {
                    PaddingConfig2d::Explicit(p, ..) => p,
                    _ => 0,
                };
                let (mut out, dims) = cpu_conv::conv2d_f32(
                    x,
                    shape,
                    &folded,
                    [o, ci, kh, kw],
                    Some(&shift),
                    layer.conv.stride,
                    [(pad, pad), (pad, pad)],
                );
                if layer.relu6 {
                    for v in &mut out {
                        *v = v.clamp(0.0, 6.0);
                    }
                }
                add_skip(&mut out, skip);
                (out, dims)
            },
        ),
    }
}

fn add_skip(out: &mut [f32], skip: Option<&[f32]>) {
    if let Some(skip) = skip {
        for (v, &s) in out.iter_mut().zip(skip) {
            *v += s;
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{Module, ModuleMapper, Param, RunningState};
    use burn::tensor::{Device, Distribution, Tensor};

    use super::super::{BlockPart, Feature, MobileNetV2, MobileNetV2Config, Op};
    use super::*;

    /// Random weights (fan-in scaled) and norm parameters in U(0.5, 1.5), so every norm scales
    /// and shifts (a fresh network's norms are the identity).
    struct Randomize(Device);

    impl ModuleMapper for Randomize {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let device = self.0.clone();
            param.map(|t| {
                let dims = t.dims();
                let distribution = if D >= 2 {
                    let a = (3.0 / dims[1..].iter().product::<usize>().max(1) as f64).sqrt();
                    Distribution::Uniform(-a, a)
                } else {
                    Distribution::Uniform(0.5, 1.5)
                };
                Tensor::random(dims, distribution, &device)
            })
        }
    }

    fn randomize_stats(ops: &mut [Op], device: &Device) {
        for op in ops {
            if let Op::Norm(bn) = op {
                let [c] = bn.gamma.dims();
                bn.running_mean =
                    RunningState::new(Tensor::random([c], Distribution::Normal(0.0, 0.5), device));
                bn.running_var =
                    RunningState::new(Tensor::random([c], Distribution::Uniform(0.5, 2.0), device));
            }
        }
    }

    fn taps(net: &MobileNetV2, x: Tensor<4>) -> Vec<Vec<f32>> {
        let mut out = Vec::new();
        net.features_tapped(x, |_, t| {
            out.push(t.clone().into_data().try_to_vec::<f32>().unwrap_or_default());
        });
        out
    }

    #[test]
    fn every_feature_matches_the_tensor_path() {
        let device = Device::flex();
        let config = MobileNetV2Config {
            num_classes: 2,
            width_mult: 0.5,
            ..MobileNetV2Config::default()
        };
        let mut net = MobileNetV2::new(&config, &device).map(&mut Randomize(device.clone()));
        for feature in &mut net.features {
            match feature {
                Feature::ConvBnRelu6(ops) => randomize_stats(ops, &device),
                Feature::Block(block) => {
                    for part in &mut block.conv {
                        match part {
                            BlockPart::ConvBnRelu6(ops) => randomize_stats(ops, &device),
                            BlockPart::Op(op) => randomize_stats(std::slice::from_mut(op), &device),
                        }
                    }
                }
            }
        }
        // Odd sides, so stride-2 layers see odd and even maps; two images.
        let x = Tensor::<4>::random([2, 3, 45, 38], Distribution::Normal(0.0, 1.0), &device);
        set_enabled(false);
        let want = taps(&net, x.clone());
        set_enabled(true);
        let got = taps(&net, x);
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.len(), w.len(), "feature {i}");
            let peak = w.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let diff = crate::parity::max_abs_diff(g, w);
            assert!(diff <= 1e-4 * peak, "feature {i}: {diff} (peak {peak})");
        }
    }
}
