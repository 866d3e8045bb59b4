//! StyleGAN2's and GPEN's activations as one pass over the map on the flex CPU backend.
//!
//! burn runs `√2 · leaky_relu(x + b, 0.2)` as a broadcast add, a leaky ReLU and a scale, and a
//! StyledConv adds (StyleGAN2) or concatenates (GPEN) its noise first: three to five passes
//! over the map and, for GPEN, a concatenated copy twice the conv output's size. Here the bias,
//! the noise and the activation are one pass, in place where the shape does not change.
//!
//! Only f32 maps on flex outside autodiff take this path (training keeps burn's graph); the
//! sums are the same float operations in the same order as burn's, and the tests compare.
//!
//! Where the pass does not apply, `Err` hands the input tensor back untouched for burn's ops: it
//! is the caller's own tensor, not an error, so it is not boxed.
#![allow(clippy::result_large_err)]

use std::f64::consts::SQRT_2;

use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use crate::nets::cpu_conv::read_f32;
use crate::nets::fused::{fusable, host_values};
use crate::nets::kernel_switch::KernelSwitch;

/// Planes smaller than this are handed to rayon several at a time.
const MIN_PARALLEL_VALUES: usize = 1 << 14;

static SWITCH: KernelSwitch = KernelSwitch::on();

/// Turns the one-pass activations on or off for the whole process (for A/B benchmarks).
pub fn set_enabled(on: bool) {
    SWITCH.set(on);
}

/// Whether the one-pass activations are on (see [`set_enabled`]).
pub fn enabled() -> bool {
    SWITCH.enabled()
}

/// `√2 · leaky_relu(v, 0.2)`, rounded as burn's three ops round it.
#[inline(always)]
fn act(v: f32) -> f32 {
    let a = if v >= 0.0 { v } else { v * 0.2 };
    a * SQRT_2 as f32
}

/// `√2 · leaky_relu(x + bias, 0.2)` with the bias along dimension 1; Err gives `x` back where
/// the host path does not apply.
pub fn bias_leaky_relu<const D: usize>(x: Tensor<D>, bias: &Tensor<1>) -> Result<Tensor<D>, Tensor<D>> {
    let dims = x.dims();
    if !(enabled() && D >= 2 && fusable(&x) && bias.dtype() == DType::F32 && bias.dims()[0] == dims[1]) {
        return Err(x);
    }
    let device = x.device();
    let plane: usize = dims[2..].iter().product();
    let mut values = host_values(x);
    read_f32(bias, |b| bias_act_in_place(&mut values, b, plane));
    Ok(Tensor::from_data(TensorData::new(values, dims), &device))
}

/// `v ← √2 · leaky_relu(v + bias[channel], 0.2)` over `[N, C, plane]` values.
pub fn bias_act_in_place(values: &mut [f32], bias: &[f32], plane: usize) {
    let (c, plane) = (bias.len().max(1), plane.max(1));
    values
        .par_chunks_mut(plane)
        .enumerate()
        .with_min_len(MIN_PARALLEL_VALUES.div_ceil(plane))
        .for_each(|(p, v)| {
            let b = bias.get(p % c).copied().unwrap_or(0.0);
            for v in v {
                *v = act(*v + b);
            }
        });
}

/// A StyledConv's noise step and activation in one pass: `act(x + s·noise + bias)` (noise
/// `[1 or B, 1 or C, H, W]` broadcast), or with `concat` `act(cat([x, s·noise], 1) + bias)` (noise
/// `[1 or B, Cₙ, H, W]`); `strength` is NoiseInjection's `[1]` weight. Err gives `x` back where
/// the host path does not apply.
pub fn noise_bias_leaky_relu(
    x: Tensor<4>,
    noise: &Tensor<4>,
    strength: &Tensor<1>,
    concat: bool,
    bias: &Tensor<1>,
) -> Result<Tensor<4>, Tensor<4>> {
    let [b, c, h, w] = x.dims();
    let [nb, nc, nh, nw] = noise.dims();
    let out_c = if concat { c + nc } else { c };
    let shapes_fit = (nb == 1 || nb == b)
        && (nh, nw) == (h, w)
        && (concat || nc == 1 || nc == c)
        && strength.dims() == [1]
        && bias.dims() == [out_c];
    let f32s = noise.dtype() == DType::F32 && strength.dtype() == DType::F32 && bias.dtype() == DType::F32;
    if !(enabled() && shapes_fit && f32s && fusable(&x) && fusable(noise)) {
        return Err(x);
    }
    let device = x.device();
    let s = read_f32(strength, |v| v.first().copied().unwrap_or(0.0));
    let mut xs = host_values(x);
    let shape = NoiseShape {
        x: [b, c, h * w],
        noise: [nb, nc],
    };
    let out = read_f32(noise, |n| {
        read_f32(bias, |bs| {
            if concat {
                Some(concat_act(&xs, n, s, bs, shape))
            } else {
                add_act_in_place(&mut xs, n, s, bs, shape);
                None
            }
        })
    });
    let values = out.unwrap_or(xs);
    Ok(Tensor::from_data(
        TensorData::new(values, [b, out_c, h, w]),
        &device,
    ))
}

/// The shapes of [`add_act_in_place`] and [`concat_act`]: `x` `[B, C, H·W]`, noise `[B', C']`
/// planes of the same size.
#[derive(Clone, Copy, Debug)]
pub struct NoiseShape {
    pub x: [usize; 3],
    pub noise: [usize; 2],
}

impl NoiseShape {
    /// Offset of the noise plane for image `img` and channel `ch` (broadcast where 1).
    fn noise_plane(&self, img: usize, ch: usize) -> usize {
        let [nb, nc] = self.noise;
        let plane = self.x[2];
        ((img % nb) * nc + ch % nc) * plane
    }
}

/// `x ← act(x + s·noise + bias[c])`, the noise broadcast over images and channels of size 1.
pub fn add_act_in_place(x: &mut [f32], noise: &[f32], s: f32, bias: &[f32], shape: NoiseShape) {
    let [_, c, plane] = shape.x;
    let plane = plane.max(1);
    x.par_chunks_mut(plane)
        .enumerate()
        .with_min_len(MIN_PARALLEL_VALUES.div_ceil(plane))
        .for_each(|(p, v)| {
            let (img, ch) = (p / c, p % c);
            let n = &noise[shape.noise_plane(img, ch)..][..v.len()];
            let bc = bias[ch];
            for (v, &n) in v.iter_mut().zip(n) {
                *v = act((*v + n * s) + bc);
            }
        });
}

/// `act(cat([x, s·noise], 1) + bias)`: `[B, C + Cₙ, H·W]`.
pub fn concat_act(x: &[f32], noise: &[f32], s: f32, bias: &[f32], shape: NoiseShape) -> Vec<f32> {
    let [b, c, plane] = shape.x;
    let nc = shape.noise[1];
    let out_c = c + nc;
    let mut out = vec![0.0f32; b * out_c * plane];
    if plane == 0 {
        return out;
    }
    out.par_chunks_mut(plane)
        .enumerate()
        .with_min_len(MIN_PARALLEL_VALUES.div_ceil(plane))
        .for_each(|(p, o)| {
            let (img, ch) = (p / out_c, p % out_c);
            let bc = bias[ch];
            if ch < c {
                let src = &x[(img * c + ch) * plane..][..plane];
                for (o, &v) in o.iter_mut().zip(src) {
                    *o = act(v + bc);
                }
            } else {
                let n = &noise[shape.noise_plane(img, ch - c)..][..plane];
                for (o, &v) in o.iter_mut().zip(n) {
                    *o = act(v * s + bc);
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::stylegan2::blocks::NoiseInjection;
    use crate::nets::stylegan2::layers::FusedLeakyRelu;
    use burn::module::Param;
    use burn::tensor::{Device, Distribution};

    fn random<const D: usize>(shape: [usize; D]) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Device::flex())
    }

    fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        assert_eq!(a.dims(), b.dims());
        let d = (a - b)
            .abs()
            .max()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        d[0]
    }

    /// burn's ops, as the layers run them with the host path off.
    fn burn_act<const D: usize>(x: Tensor<D>, bias: Tensor<1>) -> Tensor<D> {
        let mut shape = [1usize; D];
        shape[1] = bias.dims()[0];
        burn::tensor::activation::leaky_relu(x + bias.reshape(shape), 0.2).mul_scalar(SQRT_2)
    }

    #[test]
    fn bias_leaky_relu_matches_burn_in_2d_and_4d() {
        let (x, b) = (random([3, 5, 7, 9]), random([5]));
        let Ok(got) = bias_leaky_relu(x.clone(), &b) else {
            panic!("host path refused a flex f32 map");
        };
        assert!(max_diff(got, burn_act(x, b)) < 1e-5);
        let (x, b) = (random([4, 33]), random([33]));
        let Ok(got) = bias_leaky_relu(x.clone(), &b) else {
            panic!("host path refused a flex f32 matrix");
        };
        assert!(max_diff(got, burn_act(x, b)) < 1e-5);
        // A bias that does not follow dimension 1 is left to burn.
        assert!(bias_leaky_relu(random([2, 3, 4, 4]), &random([4])).is_err());
    }

    /// StyleGAN2's added noise (one map for the batch, or one per image and channel) and GPEN's
    /// concatenated one (per image, or one for the batch), against NoiseInjection + FusedLeakyRelu.
    #[test]
    fn noise_steps_match_burn() {
        let device = Device::flex();
        for (concat, noise_shape) in [
            (false, [1, 1, 6, 5]),
            (false, [2, 1, 6, 5]),
            (false, [2, 4, 6, 5]),
            (true, [2, 3, 6, 5]),
            (true, [1, 3, 6, 5]),
        ] {
            let x = random([2, 4, 6, 5]);
            let noise = random(noise_shape);
            let mut inject = NoiseInjection::new(concat, &device);
            inject.weight = Param::from_tensor(random([1]));
            let channels = if concat { 4 + noise_shape[1] } else { 4 };
            let mut activate = FusedLeakyRelu::new(channels, &device);
            activate.bias = Param::from_tensor(random([channels]));
            let want = burn_act(burn_noise(&inject, x.clone(), noise.clone()), activate.bias.val());
            let Ok(got) =
                noise_bias_leaky_relu(x, &noise, &inject.weight.val(), concat, &activate.bias.val())
            else {
                panic!("host path refused {noise_shape:?}");
            };
            let diff = max_diff(got, want);
            assert!(diff < 1e-5, "concat {concat} noise {noise_shape:?}: {diff}");
        }
    }

    /// NoiseInjection through burn's ops alone.
    fn burn_noise(inject: &NoiseInjection, x: Tensor<4>, noise: Tensor<4>) -> Tensor<4> {
        let scaled = noise * inject.weight.val().reshape([1, 1, 1, 1]);
        if inject.isconcat {
            let [b, _, h, w] = x.dims();
            let c = scaled.dims()[1];
            Tensor::cat(vec![x, scaled.expand([b, c, h, w])], 1)
        } else {
            x + scaled
        }
    }

    #[test]
    fn mismatched_noise_is_left_to_burn() {
        let x = random([2, 4, 6, 5]);
        let strength = random([1]);
        // Another size, and a channel count that does not broadcast.
        assert!(
            noise_bias_leaky_relu(x.clone(), &random([1, 1, 5, 5]), &strength, false, &random([4])).is_err()
        );
        assert!(
            noise_bias_leaky_relu(x.clone(), &random([1, 3, 6, 5]), &strength, false, &random([4])).is_err()
        );
        // A bias that does not cover the concatenated channels.
        assert!(noise_bias_leaky_relu(x, &random([2, 3, 6, 5]), &strength, true, &random([4])).is_err());
    }
}
