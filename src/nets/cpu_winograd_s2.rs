//! Stride-2 4×4 convolutions and stride-2 4×4 transposed convolutions (padding 1) as 2×2
//! stride-1 convolutions, run by Winograd F(4×4, 2×2) (`cpu_winograd`): BeautyGAN's down- and
//! up-sampling layers.
//!
//! - A 4×4 stride-2 convolution reads, for kernel tap (2a + p, 2b + q), the input pixel
//!   (2(i + a) + p − top, 2(j + b) + q − left). Split into its four phase images
//!   `x_pq[u, v] = x[2u + p − top, 2v + q − left]` (stacked as 4·C channels), it is a 2×2
//!   stride-1 convolution of those with the weight `w'[o, (p, q, c), a, b] = w[o, c, 2a + p, 2b + q]`.
//! - A 4×4 stride-2 transposed convolution with padding 1 writes output pixel (2i + py, 2j + px)
//!   from input pixels (i + a + py − 1, j + b + px − 1), a, b ∈ {0, 1}, with taps
//!   (3 − py − 2a, 3 − px − 2b): each of the four output phases is a 2×2 stride-1 convolution of
//!   the input (padding 1 − py before, py after), written interleaved. No col2im scatter-adds.
//!
//! F(4×4, 2×2) does 25 products per 16 outputs where the direct 2×2 convolution does 64. The
//! networks opt in through [`conv2d_module`] and [`conv_transpose2d_module`] (BeautyGAN does);
//! everything else goes to `cpu_conv` unchanged. Results match burn's up to rounding.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::cpu_conv;
use super::cpu_winograd::{self, OutLayout, Tile};
use super::kernel_switch::KernelSwitch;
use super::profile;

/// Channels (the 2×2 convolution's inputs and outputs) and output pixels per phase below which
/// the direct paths are kept: the bounds `cpu_winograd` measured for its 3×3 layers.
const MIN_CHANNELS: usize = cpu_winograd::MIN_CHANNELS;
const MIN_PIXELS: usize = cpu_winograd::MIN_PIXELS;

/// Whether eligible stride-2 4×4 layers take these paths.
static SWITCH: KernelSwitch = KernelSwitch::on();

pub fn set_enabled(on: bool) {
    SWITCH.set(on);
}

/// `Conv2d::forward` with 4×4 stride-2 layers run here when wide and large enough, any other
/// through [`cpu_conv::conv2d_module`].
pub fn conv2d_module(m: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [_, c, h, w] = x.dims();
    let [o, _, kh, kw] = m.weight.dims();
    let padding = match m.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        _ => return cpu_conv::conv2d_module(m, x),
    };
    let oh = cpu_conv::out_size(h, kh, 2, padding[0]);
    let ow = cpu_conv::out_size(w, kw, 2, padding[1]);
    let eligible = SWITCH.enabled()
        && (kh, kw) == (4, 4)
        && m.stride == [2, 2]
        && m.dilation == [1, 1]
        && m.groups == 1
        && 4 * c >= MIN_CHANNELS
        && o >= MIN_CHANNELS
        && oh * ow >= MIN_PIXELS;
    if !eligible {
        return cpu_conv::conv2d_module(m, x);
    }
    profile::scope(
        "conv2d",
        move || format!("{c}->{o} {kh}x{kw}/2 @{h}x{w} winograd"),
        || {
            cpu_conv::on_host(
                x,
                m.weight.val(),
                m.bias.as_ref().map(|b| b.val()),
                |xs, shape, ws, wshape, bs| conv2d_s2k4_f32(xs, shape, ws, wshape, bs, padding),
                |x, _, _| cpu_conv::conv2d_module(m, x),
            )
        },
    )
}

/// `ConvTranspose2d::forward` with 4×4 stride-2 padding-1 layers run here when wide and large
/// enough, any other through [`cpu_conv::conv_transpose2d_module`].
pub fn conv_transpose2d_module(m: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    let [_, c, h, w] = x.dims();
    let [_, o, kh, kw] = m.weight.dims();
    let eligible = SWITCH.enabled()
        && (kh, kw) == (4, 4)
        && m.stride == [2, 2]
        && m.padding == [1, 1]
        && m.padding_out == [0, 0]
        && m.dilation == [1, 1]
        && m.groups == 1
        && c >= MIN_CHANNELS
        && o >= MIN_CHANNELS
        && h * w >= MIN_PIXELS;
    if !eligible {
        return cpu_conv::conv_transpose2d_module(m, x);
    }
    profile::scope(
        "conv_transpose2d",
        move || format!("{c}->{o} {kh}x{kw}/2 @{h}x{w} winograd"),
        || {
            cpu_conv::on_host(
                x,
                m.weight.val(),
                m.bias.as_ref().map(|b| b.val()),
                conv_transpose2d_s2k4_f32,
                |x, _, _| cpu_conv::conv_transpose2d_module(m, x),
            )
        },
    )
}

/// A 4×4 stride-2 convolution of `x` `[B, C, H, W]` with `weight` `[O, C, 4, 4]`, `bias` `[O]`,
/// `padding` `[(top, bottom), (left, right)]`, through the phase images. Returns the output and
/// its shape.
pub fn conv2d_s2k4_f32(
    x: &[f32],
    [b, c, h, w]: [usize; 4],
    weight: &[f32],
    [o, wc, kh, kw]: [usize; 4],
    bias: Option<&[f32]>,
    padding: [(usize, usize); 2],
) -> (Vec<f32>, [usize; 4]) {
    assert_eq!((kh, kw), (4, 4), "conv2d_s2k4: the kernel is {kh}x{kw}");
    let [_, _, oh, ow] =
        cpu_conv::conv2d_out_shape(x, [b, c, h, w], weight, [o, wc, kh, kw], bias, [2, 2], padding);
    if oh == 0 || ow == 0 {
        return (Vec::new(), [b, o, 0, 0]);
    }
    let (uh, uw) = (oh + 1, ow + 1);
    let [top, left] = [padding[0].0, padding[1].0];
    // Phase images [B, (p, q, C), oh + 1, ow + 1].
    let mut xs = vec![0.0f32; b * 4 * c * uh * uw];
    xs.par_chunks_mut(uh * uw).enumerate().for_each(|(plane, dst)| {
        let (img, pqc) = (plane / (4 * c), plane % (4 * c));
        let (p, q, ci) = (pqc / (2 * c), (pqc / c) % 2, pqc % c);
        let src = &x[(img * c + ci) * h * w..][..h * w];
        for (u, row) in dst.chunks_exact_mut(uw).enumerate() {
            let Some(iy) = (2 * u + p).checked_sub(top).filter(|&iy| iy < h) else {
                continue;
            };
            let line = &src[iy * w..(iy + 1) * w];
            for (v, d) in row.iter_mut().enumerate() {
                if let Some(ix) = (2 * v + q).checked_sub(left).filter(|&ix| ix < w) {
                    *d = line[ix];
                }
            }
        }
    });
    // w'[o, (p, q, c), a, b] = w[o, c, 2a + p, 2b + q].
    let mut wp = vec![0.0f32; o * 4 * c * 4];
    for (n, v) in wp.iter_mut().enumerate() {
        let (oc, pqc, ab) = (n / (16 * c), (n / 4) % (4 * c), n % 4);
        let (p, q, ci, a, bb) = (pqc / (2 * c), (pqc / c) % 2, pqc % c, ab / 2, ab % 2);
        *v = weight[((oc * c + ci) * 4 + 2 * a + p) * 4 + 2 * bb + q];
    }
    cpu_winograd::conv2d_f32(
        &xs,
        [b, 4 * c, uh, uw],
        &wp,
        [o, 4 * c, 2, 2],
        bias,
        [(0, 0), (0, 0)],
        Tile::F4K2,
    )
}

/// A 4×4 stride-2 transposed convolution with padding 1 of `x` `[B, C, H, W]`, `weight`
/// `[C, O, 4, 4]` (PyTorch's layout), `bias` `[O]`: four interleaved 2×2 convolutions. Returns
/// the output `[B, O, 2H, 2W]` and its shape.
pub fn conv_transpose2d_s2k4_f32(
    x: &[f32],
    [b, c, h, w]: [usize; 4],
    weight: &[f32],
    [wc, o, kh, kw]: [usize; 4],
    bias: Option<&[f32]>,
) -> (Vec<f32>, [usize; 4]) {
    assert_eq!((kh, kw), (4, 4), "conv_transpose2d_s2k4: the kernel is {kh}x{kw}");
    assert_eq!(
        c, wc,
        "conv_transpose2d_s2k4: input has {c} channels, the weight {wc}"
    );
    assert_eq!(x.len(), b * c * h * w, "conv_transpose2d_s2k4: input length");
    assert_eq!(weight.len(), c * o * 16, "conv_transpose2d_s2k4: weight length");
    let (oh, ow) = (2 * h, 2 * w);
    let mut out = vec![0.0f32; b * o * oh * ow];
    if out.is_empty() {
        return (out, [b, o, oh, ow]);
    }
    let mut kp = vec![0.0f32; o * c * 4];
    for (py, px) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        // K[o, c, a, b] = W[c, o, 3 − py − 2a, 3 − px − 2b].
        for (n, v) in kp.iter_mut().enumerate() {
            let (oc, ci, a, bb) = (n / (4 * c), (n / 4) % c, (n / 2) % 2, n % 2);
            *v = weight[((ci * o + oc) * 4 + 3 - py - 2 * a) * 4 + 3 - px - 2 * bb];
        }
        let layout = OutLayout {
            plane: oh * ow,
            row: ow,
            step: [2, 2],
            offset: [py, px],
        };
        cpu_winograd::conv2d_into(
            x,
            [b, c, h, w],
            &kp,
            [o, c, 2, 2],
            bias,
            [(1 - py, py), (1 - px, px)],
            Tile::F4K2,
            &mut out,
            layout,
        );
    }
    (out, [b, o, oh, ow])
}

#[cfg(test)]
mod tests {
    use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
    use burn::tensor::module::{conv_transpose2d as burn_conv_transpose2d, conv2d as burn_conv2d};
    use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
    use burn::tensor::{Device, Distribution};

    use super::*;

    fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap_or_default()
    }

    /// Largest difference relative to the largest output (F(4×4, 2×2) rounds to about 1e-5 of
    /// it; a wrong tap or phase is off by the outputs' own size).
    fn rel_diff(got: &[f32], want: &[f32]) -> f32 {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        got.iter()
            .zip(want)
            .map(|(g, w)| (g - w).abs())
            .fold(0.0, f32::max)
            / scale
    }

    fn inputs(
        shape: [usize; 4],
        wshape: [usize; 4],
        fan_in: usize,
        bias: usize,
    ) -> (Tensor<4>, Tensor<4>, Tensor<1>) {
        let device = Device::flex();
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let wt = Tensor::<4>::random(wshape, Distribution::Normal(0.0, 1.0), &device)
            .mul_scalar(1.0 / (fan_in as f64).sqrt());
        (
            x,
            wt,
            Tensor::<1>::random([bias], Distribution::Normal(0.0, 1.0), &device),
        )
    }

    fn check_conv(b: usize, c: usize, o: usize, (h, w): (usize, usize), padding: [(usize, usize); 2]) {
        let (x, wt, bias) = inputs([b, c, h, w], [o, c, 4, 4], 16 * c, o);
        let options = ConvOptions::new_with_padding([2, 2], padding, [1, 1], 1);
        let want = burn_conv2d(x.clone(), wt.clone(), Some(bias.clone()), options);
        let want_dims = want.dims();
        let (got, dims) = conv2d_s2k4_f32(
            &host(x),
            [b, c, h, w],
            &host(wt),
            [o, c, 4, 4],
            Some(&host(bias)),
            padding,
        );
        assert_eq!(dims, want_dims);
        let d = rel_diff(&got, &host(want));
        assert!(d < 3e-5, "conv b {b} c {c} o {o} {h}x{w} pad {padding:?}: {d}");
    }

    fn check_transpose(b: usize, c: usize, o: usize, (h, w): (usize, usize)) {
        let (x, wt, bias) = inputs([b, c, h, w], [c, o, 4, 4], 4 * c, o);
        let options = ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], 1);
        let want = burn_conv_transpose2d(x.clone(), wt.clone(), Some(bias.clone()), options);
        let want_dims = want.dims();
        let (got, dims) =
            conv_transpose2d_s2k4_f32(&host(x), [b, c, h, w], &host(wt), [c, o, 4, 4], Some(&host(bias)));
        assert_eq!(dims, want_dims);
        let d = rel_diff(&got, &host(want));
        assert!(d < 3e-5, "transposed b {b} c {c} o {o} {h}x{w}: {d}");
    }

    #[test]
    fn strided_convs_match_burn() {
        // BeautyGAN's padding 1 on even and odd sizes (odd drops the last row, as PyTorch does),
        // no and uneven padding, one output pixel, batches.
        check_conv(1, 8, 16, (32, 32), [(1, 1), (1, 1)]);
        check_conv(2, 5, 7, (13, 10), [(1, 1), (1, 1)]);
        check_conv(1, 3, 4, (9, 12), [(0, 0), (0, 0)]);
        check_conv(1, 4, 3, (7, 6), [(2, 0), (1, 3)]);
        check_conv(2, 2, 2, (4, 4), [(0, 0), (0, 0)]);
    }

    #[test]
    fn strided_transposed_convs_match_burn() {
        check_transpose(1, 16, 8, (16, 16));
        check_transpose(2, 5, 7, (9, 6));
        check_transpose(1, 3, 2, (1, 1));
        check_transpose(1, 4, 4, (1, 5));
    }

    #[test]
    fn the_modules_agree_with_the_direct_paths() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([16, 64], [4, 4])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let x = Tensor::<4>::random([1, 16, 66, 64], Distribution::Normal(0.0, 1.0), &device);
        let got = host(conv2d_module(&conv, x.clone()));
        set_enabled(false);
        let want = host(conv2d_module(&conv, x));
        set_enabled(true);
        assert!(rel_diff(&got, &want) < 3e-5);

        let up = ConvTranspose2dConfig::new([64, 64], [4, 4])
            .with_stride([2, 2])
            .with_padding([1, 1])
            .init(&device);
        let x = Tensor::<4>::random([1, 64, 32, 33], Distribution::Normal(0.0, 1.0), &device);
        let got = host(conv_transpose2d_module(&up, x.clone()));
        set_enabled(false);
        let want = host(conv_transpose2d_module(&up, x));
        set_enabled(true);
        assert!(rel_diff(&got, &want) < 3e-5);
    }
}
