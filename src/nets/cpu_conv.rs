//! Dense 2-D convolution for the flex CPU backend: banded im2col in NCHW + one `gemm` per band.
//!
//! burn 0.22's flex `conv2d` converts the whole input to NHWC on one thread, then for every tile
//! of 512 output pixels allocates an im2col buffer, repacks nothing but multiplies by the full
//! weight matrix and scatters the tile back to NCHW. On the large few-channel maps of StyleGAN2,
//! GPEN and BeautyGAN that runs at 11-37 GFLOP/s (`benches/RESULTS.md`). Here each band of output
//! rows gathers its patches channel-major (rows of the input copied whole, so the gather is
//! contiguous), in a per-thread buffer, and one product `W[O, C·kh·kw] · cols[C·kh·kw, rows·W']`
//! writes straight into the NCHW output, bias pre-filled. Bands run in parallel on rayon; when
//! there are too few bands (small, wide maps) one band runs with gemm's own parallelism.
//!
//! Only dense (`groups = 1`), undilated f32 convolutions on the flex device take this path; any
//! other call goes to burn's `conv2d` unchanged. The result is the same convolution up to the
//! order of the float additions (the tests compare it with burn's). Wide 3×3 stride-1 layers
//! go to the Winograd kernel of `cpu_winograd` instead (fewer multiplies; see its thresholds), and
//! stride-1 layers with at most 4 input or output channels to the direct kernel of
//! `cpu_conv_narrow`.

use std::cell::RefCell;

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::tensor::module::{conv_transpose2d as burn_conv_transpose2d, conv2d as burn_conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{DType, Device, Tensor, TensorData};
use rayon::prelude::*;

use super::cpu_conv_narrow;
use super::cpu_conv_transpose::conv_transpose2d_f32;
use super::cpu_winograd;
use super::kernel_switch::KernelSwitch;
use super::profile;

/// Output pixels per band are chosen so that the band's im2col buffer holds about this many
/// floats (4 MiB): large enough to amortise gemm's packing of the weights, small enough to stay
/// in the last-level cache while gemm reads it.
const BAND_ELEMS: usize = 1 << 20;
/// Bounds on the pixels of one band's product.
const MIN_BAND_PIXELS: usize = 256;
const MAX_BAND_PIXELS: usize = 8192;

/// Whether eligible convolutions, and the other host kernels, run on the host (see
/// [`host_kernels_apply`]).
static SWITCH: KernelSwitch = KernelSwitch::on();

pub fn set_enabled(on: bool) {
    SWITCH.set(on);
}

pub fn enabled() -> bool {
    SWITCH.enabled()
}

/// Whether [`read_f32`] reads parameters in place rather than copying them.
static IN_PLACE: KernelSwitch = KernelSwitch::on();

pub fn set_read_in_place(on: bool) {
    IN_PLACE.set(on);
}

thread_local! {
    static COLS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// burn's `conv2d`, with dense undilated f32 convolutions on the flex device run by the banded
/// gemm kernel of this module.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let [_, c, h, w] = x.dims();
    let [o, _, kh, kw] = weight.dims();
    let (stride, groups) = (options.stride[0], options.groups);
    profile::scope(
        "conv2d",
        move || {
            let groups = if groups > 1 {
                format!(" groups {groups}")
            } else {
                String::new()
            };
            format!("{c}->{o} {kh}x{kw}/{stride} @{h}x{w}{groups}")
        },
        || {
            if options.groups != 1 || options.dilation != [1, 1] {
                return burn_conv2d(x, weight, bias, options);
            }
            let (stride, padding) = (options.stride, options.padding);
            on_host(
                x,
                weight,
                bias,
                |xs, shape, ws, wshape, bs| conv2d_f32(xs, shape, ws, wshape, bs, stride, padding),
                |x, weight, bias| burn_conv2d(x, weight, bias, options),
            )
        },
    )
}

/// Whether the host kernels may run on `device`: the flex CPU backend, not under autodiff. They
/// compute on host slices and return a fresh tensor, which would cut a training graph (an
/// autodiff device over flex compares equal to flex itself), so training keeps burn's own ops.
pub(crate) fn host_kernels_apply(device: &Device) -> bool {
    SWITCH.enabled() && *device == Device::flex() && !device.is_autodiff()
}

/// Runs `kernel` on the host values of `x` when it is an f32 tensor on the flex device and the
/// kernels are on, else `fallback` (burn's ops) on it.
pub(crate) fn on_host_unary(
    x: Tensor<4>,
    kernel: impl FnOnce(&[f32], [usize; 4]) -> (Vec<f32>, [usize; 4]),
    fallback: impl FnOnce(Tensor<4>) -> Tensor<4>,
) -> Tensor<4> {
    let device = x.device();
    if !(host_kernels_apply(&device) && x.dtype() == DType::F32) {
        return fallback(x);
    }
    let shape = x.dims();
    let xd = x.into_data();
    match xd.as_slice::<f32>() {
        Ok(xs) => {
            let (out, dims) = kernel(xs, shape);
            Tensor::from_data(TensorData::new(out, dims), &device)
        }
        Err(_) => fallback(Tensor::from_data(xd, &device)),
    }
}

/// Calls `f` with the values of an f32 tensor on the flex device. A contiguous tensor is read
/// in place, even while its module holds it too (`into_data` would copy a shared buffer: every
/// parameter, on every call, some 0.6 GB per AEI-Net call); anything else is copied first.
pub fn read_f32<const D: usize, R>(t: &Tensor<D>, f: impl FnOnce(&[f32]) -> R) -> R {
    if t.dtype() == DType::F32
        && IN_PLACE.enabled()
        && let Ok(flex) = t.clone().try_into_primitive::<burn_flex::Flex>()
    {
        let layout = flex.layout();
        let (len, offset) = (layout.num_elements(), layout.start_offset());
        if flex.is_contiguous()
            && offset == 0
            && let Some(values) = flex.storage::<f32>().get(..len)
        {
            return f(values);
        }
    }
    let data = t.clone().into_data();
    match data.as_slice::<f32>() {
        Ok(values) => f(values),
        Err(_) => f(&data.iter::<f32>().collect::<Vec<f32>>()),
    }
}

/// Runs `kernel` on the host values of `x`, `weight` and `bias` when they are f32 tensors on
/// the flex device and the kernels are on, else `fallback` (burn's op) on the tensors.
///
/// flex keeps tensors in host memory, and reading out a tensor nothing else holds moves its
/// buffer without a copy (the activations); the parameters are read in place ([`read_f32`]).
#[allow(clippy::type_complexity)]
pub(crate) fn on_host(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    kernel: impl FnOnce(&[f32], [usize; 4], &[f32], [usize; 4], Option<&[f32]>) -> (Vec<f32>, [usize; 4]),
    fallback: impl FnOnce(Tensor<4>, Tensor<4>, Option<Tensor<1>>) -> Tensor<4>,
) -> Tensor<4> {
    let device = x.device();
    let eligible = host_kernels_apply(&device)
        && x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && bias.as_ref().is_none_or(|b| b.dtype() == DType::F32);
    if !eligible {
        return fallback(x, weight, bias);
    }
    let shape = x.dims();
    let wshape = weight.dims();
    let xd = x.into_data();
    let Ok(xs) = xd.as_slice::<f32>() else {
        // Unreadable host data (cannot happen for f32 on flex): burn's own op.
        return fallback(Tensor::from_data(xd, &device), weight, bias);
    };
    let (out, dims) = read_f32(&weight, |ws| match &bias {
        Some(b) => read_f32(b, |bs| kernel(xs, shape, ws, wshape, Some(bs))),
        None => kernel(xs, shape, ws, wshape, None),
    });
    Tensor::from_data(TensorData::new(out, dims), &device)
}

/// `burn::nn::conv::Conv2d::forward` through [`conv2d`].
pub fn conv2d_module(m: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let padding = match m.padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        // `Same` depends on burn's private rule: leave it to burn.
        _ => return m.forward(x),
    };
    let options = ConvOptions::new_with_padding(m.stride, padding, m.dilation, m.groups);
    conv2d(x, m.weight.val(), m.bias.as_ref().map(|b| b.val()), options)
}

/// burn's `conv_transpose2d`, timed by the profiler.
pub fn conv_transpose2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvTransposeOptions<2>,
) -> Tensor<4> {
    let [_, c, h, w] = x.dims();
    let [_, o, kh, kw] = weight.dims();
    let (stride, groups) = (options.stride[0], options.groups);
    profile::scope(
        "conv_transpose2d",
        move || format!("{c}->{} {kh}x{kw}/{stride} @{h}x{w} groups {groups}", o * groups),
        || {
            if options.groups != 1 || options.dilation != [1, 1] {
                return burn_conv_transpose2d(x, weight, bias, options);
            }
            let (stride, padding, padding_out) = (options.stride, options.padding, options.padding_out);
            on_host(
                x,
                weight,
                bias,
                |xs, shape, ws, wshape, bs| {
                    conv_transpose2d_f32(xs, shape, ws, wshape, bs, stride, padding, padding_out)
                },
                |x, weight, bias| burn_conv_transpose2d(x, weight, bias, options),
            )
        },
    )
}

/// `burn::nn::conv::ConvTranspose2d::forward` through [`conv_transpose2d`].
pub fn conv_transpose2d_module(m: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    let options = ConvTransposeOptions::new(m.stride, m.padding, m.padding_out, m.dilation, m.groups);
    conv_transpose2d(x, m.weight.val(), m.bias.as_ref().map(|b| b.val()), options)
}

/// Output side of a convolution (no dilation); zero where the kernel does not fit the padded input.
pub(crate) fn out_size(input: usize, kernel: usize, stride: usize, pad: (usize, usize)) -> usize {
    (input + pad.0 + pad.1)
        .checked_sub(kernel)
        .map_or(0, |span| span / stride + 1)
}

/// Checks the arguments of a convolution on host slices (`x` `[B, C, H, W]`, `weight`
/// `[O, C, kh, kw]`, `bias` `[O]`, `padding` `[(top, bottom), (left, right)]`) and returns its
/// output shape `[B, O, oh, ow]`. Every host kernel's entry point calls it, so that a kernel
/// called directly fails on a bad shape just as one reached through [`conv2d_f32`].
pub(crate) fn conv2d_out_shape(
    x: &[f32],
    [b, c, h, w]: [usize; 4],
    weight: &[f32],
    [o, wc, kh, kw]: [usize; 4],
    bias: Option<&[f32]>,
    stride: [usize; 2],
    padding: [(usize, usize); 2],
) -> [usize; 4] {
    assert_eq!(c, wc, "conv2d: input has {c} channels, the weight {wc}");
    assert_eq!(x.len(), b * c * h * w, "conv2d: input length");
    assert_eq!(weight.len(), o * c * kh * kw, "conv2d: weight length");
    if let Some(bias) = bias {
        assert_eq!(bias.len(), o, "conv2d: bias length");
    }
    [
        b,
        o,
        out_size(h, kh, stride[0], padding[0]),
        out_size(w, kw, stride[1], padding[1]),
    ]
}

/// A pointer to the output that bands write disjoint parts of.
#[derive(Clone, Copy)]
pub(crate) struct OutPtr(pub(crate) *mut f32);
// SAFETY: every band writes only its own rows of every output channel (see `conv2d_f32`).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    // A method, so that closures capture the whole Send wrapper rather than its raw field.
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// The convolution on host slices: `x` `[B, C, H, W]`, `weight` `[O, C, kh, kw]`, `bias` `[O]`,
/// `padding` `[(top, bottom), (left, right)]`. Returns the output and its shape.
pub fn conv2d_f32(
    x: &[f32],
    [b, c, h, w]: [usize; 4],
    weight: &[f32],
    [o, wc, kh, kw]: [usize; 4],
    bias: Option<&[f32]>,
    stride: [usize; 2],
    padding: [(usize, usize); 2],
) -> (Vec<f32>, [usize; 4]) {
    let [_, _, oh, ow] = conv2d_out_shape(x, [b, c, h, w], weight, [o, wc, kh, kw], bias, stride, padding);
    if cpu_winograd::applies(c, o, (kh, kw), stride, oh * ow) {
        let shape = [b, c, h, w];
        return cpu_winograd::conv2d_f32(
            x,
            shape,
            weight,
            [o, c, kh, kw],
            bias,
            padding,
            cpu_winograd::DEFAULT_TILE,
        );
    }
    if cpu_conv_narrow::applies(c, o, (kh, kw), stride) {
        return cpu_conv_narrow::conv2d_f32(x, [b, c, h, w], weight, [o, c, kh, kw], bias, padding);
    }
    let plane = oh * ow;
    let k = c * kh * kw;
    let mut out = vec![0.0f32; b * o * plane];
    if let Some(bias) = bias {
        for (chunk, &v) in out.chunks_mut(plane).zip(bias.iter().cycle()) {
            chunk.fill(v);
        }
    }
    if plane == 0 || o == 0 {
        return (out, [b, o, oh, ow]);
    }
    let band_pixels = (BAND_ELEMS / k.max(1)).clamp(MIN_BAND_PIXELS, MAX_BAND_PIXELS);
    let rows = band_pixels.div_ceil(ow).clamp(1, oh);
    let bands_per_image = oh.div_ceil(rows);
    let bands = b * bands_per_image;
    let geometry = Geometry {
        c,
        h,
        w,
        kh,
        kw,
        oh,
        ow,
        stride,
        pad: [padding[0].0, padding[1].0],
    };
    let dst = OutPtr(out.as_mut_ptr());
    let read_dst = bias.is_some();
    // A 1×1 convolution without stride or padding multiplies the input rows as they are.
    let direct = kh == 1 && kw == 1 && stride == [1, 1] && padding == [(0, 0), (0, 0)];
    let threads = rayon::current_num_threads();
    let run_band = |band: usize, parallelism: gemm::Parallelism| {
        let (img, r0) = (band / bands_per_image, (band % bands_per_image) * rows);
        let r1 = (r0 + rows).min(oh);
        let n = (r1 - r0) * ow;
        let xi = &x[img * c * h * w..(img + 1) * c * h * w];
        COLS.with(|cols| {
            let mut cols = cols.borrow_mut();
            let (rhs, rhs_rs) = if direct {
                (xi[r0 * ow..].as_ptr(), h * w)
            } else {
                if cols.len() < k * n {
                    cols.resize(k * n, 0.0);
                }
                geometry.im2col(xi, r0, r1, &mut cols[..k * n]);
                (cols.as_ptr(), n)
            };
            // SAFETY: the destination is rows r0..r1 of every channel of image `img`, inside
            // `out` and written by no other band; the right operand is the band's im2col
            // [k, n], or for a direct 1×1 conv rows r0..r1 of every channel of `xi` ([c, n]
            // with row stride h·w, inside `xi` since oh = h and ow = w).
            unsafe {
                let dst = dst.get().add(img * o * plane + r0 * ow);
                gemm::gemm(
                    o,
                    n,
                    k,
                    dst,
                    1,
                    plane as isize,
                    read_dst,
                    weight.as_ptr(),
                    1,
                    k as isize,
                    rhs,
                    1,
                    rhs_rs as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
        });
    };
    if bands >= 2 * threads {
        (0..bands)
            .into_par_iter()
            .for_each(|band| run_band(band, gemm::Parallelism::None));
    } else {
        let parallelism = if threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        (0..bands).for_each(|band| run_band(band, parallelism));
    }
    (out, [b, o, oh, ow])
}

/// Shapes of one image's convolution.
#[derive(Clone, Copy)]
struct Geometry {
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    stride: [usize; 2],
    pad: [usize; 2],
}

impl Geometry {
    /// Fills `cols` `[C·kh·kw, (r1−r0)·ow]` with the patches of output rows `r0..r1` of one
    /// image `x` `[C, H, W]`; row `(ci·kh + ky)·kw + kx` matches the weight's layout.
    fn im2col(&self, x: &[f32], r0: usize, r1: usize, cols: &mut [f32]) {
        let Geometry {
            c,
            h,
            w,
            kh,
            kw,
            ow,
            stride: [sh, sw],
            pad: [ph, pw],
            ..
        } = *self;
        debug_assert!(r1 <= self.oh);
        let n = (r1 - r0) * ow;
        for ci in 0..c {
            let xc = &x[ci * h * w..(ci + 1) * h * w];
            for ky in 0..kh {
                for kx in 0..kw {
                    let row = &mut cols[((ci * kh + ky) * kw + kx) * n..][..n];
                    // Output columns whose input column ox·sw + kx − pw lies inside [0, w).
                    let lo = pw.saturating_sub(kx).div_ceil(sw).min(ow);
                    let hi = if w + pw > kx {
                        ((w + pw - kx - 1) / sw + 1).min(ow)
                    } else {
                        0
                    }
                    .max(lo);
                    for (r, dst) in (r0..r1).zip(row.chunks_exact_mut(ow)) {
                        let iy = (r * sh + ky) as isize - ph as isize;
                        if iy < 0 || iy >= h as isize {
                            dst.fill(0.0);
                            continue;
                        }
                        let src = &xc[iy as usize * w..(iy as usize + 1) * w];
                        dst[..lo].fill(0.0);
                        dst[hi..].fill(0.0);
                        if hi == lo {
                            continue;
                        }
                        let first = lo * sw + kx - pw;
                        if sw == 1 {
                            dst[lo..hi].copy_from_slice(&src[first..first + (hi - lo)]);
                        } else {
                            for (d, s) in dst[lo..hi].iter_mut().zip(src[first..].iter().step_by(sw)) {
                                *d = *s;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        assert_eq!(a.dims(), b.dims());
        let d = (a - b)
            .abs()
            .max()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        d[0]
    }

    #[allow(clippy::too_many_arguments)]
    fn check(
        b: usize,
        c: usize,
        o: usize,
        (kh, kw): (usize, usize),
        stride: [usize; 2],
        padding: [(usize, usize); 2],
        (h, w): (usize, usize),
        bias: bool,
    ) {
        let device = Device::flex();
        let x = Tensor::<4>::random([b, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        let wt = Tensor::<4>::random([o, c, kh, kw], Distribution::Normal(0.0, 1.0), &device);
        let bias = bias.then(|| Tensor::<1>::random([o], Distribution::Normal(0.0, 1.0), &device));
        let options = ConvOptions::new_with_padding(stride, padding, [1, 1], 1);
        let want = burn_conv2d(x.clone(), wt.clone(), bias.clone(), options.clone());
        let got = conv2d(x, wt, bias, options);
        let diff = max_diff(got, want);
        assert!(
            diff < 1e-3,
            "b {b} c {c} o {o} k {kh}x{kw} stride {stride:?} pad {padding:?} {h}x{w}: {diff}"
        );
    }

    #[test]
    fn matches_burn_for_kernels_strides_paddings_and_bias() {
        check(1, 3, 5, (3, 3), [1, 1], [(1, 1), (1, 1)], (9, 10), false);
        check(2, 4, 3, (4, 4), [2, 2], [(1, 1), (1, 1)], (10, 11), true);
        check(1, 3, 8, (7, 7), [1, 1], [(3, 3), (3, 3)], (12, 9), true);
        check(1, 5, 4, (3, 3), [2, 2], [(0, 0), (0, 0)], (11, 11), false);
        check(2, 6, 7, (1, 1), [1, 1], [(0, 0), (0, 0)], (5, 6), true);
        check(1, 16, 3, (1, 1), [1, 1], [(0, 0), (0, 0)], (130, 90), false);
        check(1, 4, 2, (3, 3), [1, 1], [(2, 1), (0, 3)], (7, 8), false);
        check(1, 2, 3, (4, 4), [1, 2], [(2, 2), (1, 2)], (6, 9), false);
        // Narrower than the kernel with padding, and a kernel as large as the input.
        check(1, 3, 2, (5, 5), [1, 1], [(2, 2), (2, 2)], (3, 2), true);
        check(1, 3, 2, (4, 4), [1, 1], [(0, 0), (0, 0)], (4, 4), false);
    }

    #[test]
    fn many_bands_and_the_single_band_path_agree_with_burn() {
        // 16 channels at 3×3: about 7,000 pixels per band, so 128² makes 3 bands per image
        // (parallel over bands with 2 images), and 512 channels at 8² one band with gemm's threads.
        check(2, 16, 8, (3, 3), [1, 1], [(1, 1), (1, 1)], (128, 128), true);
        check(1, 512, 16, (3, 3), [1, 1], [(1, 1), (1, 1)], (8, 8), false);
    }

    #[test]
    fn grouped_and_dilated_calls_fall_back_to_burn() {
        let device = Device::flex();
        let x = Tensor::<4>::random([1, 4, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let wt = Tensor::<4>::random([4, 2, 3, 3], Distribution::Normal(0.0, 1.0), &device);
        let options = ConvOptions::new([1, 1], [2, 2], [2, 2], 2);
        let want = burn_conv2d(x.clone(), wt.clone(), None, options.clone());
        assert_eq!(max_diff(conv2d(x, wt, None, options), want), 0.0);
    }
}
