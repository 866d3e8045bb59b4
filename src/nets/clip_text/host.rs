//! The text transformer on host slices for the flex CPU backend.
//!
//! burn runs every block as some twenty separate ops (matmuls on [1, 77, 512] views, the
//! permutes and narrows of the packed q/k/v, a masked softmax over all 77×77 scores, the layer
//! norms as several reductions), each a pass with its own allocation; at one prompt that cost
//! twice PyTorch's time (`benches/RESULTS.md`). Here the activations stay `[rows, width]`
//! row-major from the embedding to the projection: one pass per layer norm, one `gemm` for q, k
//! and v together (the checkpoint's `in_proj_weight` is already `[3·width, width]`), attention
//! row by row over the keys the causal mask lets through, and the residual additions done by
//! `gemm` accumulating onto the stream. The weights are read in place (`cpu_conv::read_f32`).
//!
//! Only the hidden state at the `<|endoftext|>` token leaves the encoder, and with the causal
//! mask no position sees a later one, so the positions after it (the zero padding up to 77) cannot
//! change it: without a trace each prompt runs only its tokens up to and including the EOT. The
//! prompts' rows are packed one after another, so a batch of short prompts (StyleCLIP's 79
//! templates) costs its real tokens, not 79·77 rows. With a trace every position is computed, as
//! the parity fixtures compare them all.

use super::encoder::{ClipTextEncoder, ResidualAttentionBlock, TextTrace, eot_positions};
use super::host_kernels::{Weight, add_rows, causal_attention, fill_rows, layer_norm, linear, quick_gelu};
use crate::nets::cpu_conv::{host_kernels_apply, read_f32};
use crate::nets::kernel_switch::KernelSwitch;
use burn::nn::LayerNorm;
use burn::tensor::{Device, Tensor, TensorData};

/// Whether the encoder takes this path on the flex device (on unless a benchmark compares).
static SWITCH: KernelSwitch = KernelSwitch::on();

/// Turns the host path on or off for the whole process (for A/B benchmarks; on by default).
pub fn set_enabled(on: bool) {
    SWITCH.set(on);
}

/// Whether the host path is on (see [`set_enabled`]).
pub fn enabled() -> bool {
    SWITCH.enabled()
}

/// Whether untraced passes stop each prompt at its EOT (on unless a benchmark measures the
/// host kernels alone on all 77 positions, as the reference computes them).
static UP_TO_EOT: KernelSwitch = KernelSwitch::on();

/// Turns stopping at the EOT on or off for the whole process (for benchmarks; on by default).
pub fn set_up_to_eot(on: bool) {
    UP_TO_EOT.set(on);
}

/// Whether [`forward`] serves this encoder and these tokens on `device`: the host kernels are
/// on, everything lives on the flex device, the heads divide the width, and every id is in the
/// vocabulary (burn's path is left to report anything else as it always has).
pub(crate) fn applies(encoder: &ClipTextEncoder, tokens: &[Vec<u32>], device: &Device) -> bool {
    let [vocab, width] = encoder.token_embedding.weight.dims();
    let context = encoder.context_length();
    let heads = encoder.transformer.resblocks.first().map_or(1, |b| b.attn.heads);
    enabled()
        && host_kernels_apply(device)
        && host_kernels_apply(&encoder.positional_embedding.device())
        && heads > 0
        && width % heads == 0
        && context > 0
        && tokens
            .iter()
            .all(|row| row.iter().take(context).all(|&id| (id as usize) < vocab))
}

/// The rows of the prompts once packed: prompt `b` holds rows `start[b]..start[b] + len[b]`.
struct Packing {
    start: Vec<usize>,
    len: Vec<usize>,
    rows: usize,
}

impl Packing {
    /// Each prompt up to its EOT, or (`full`) all `context` positions.
    fn new(tokens: &[Vec<u32>], context: usize, full: bool) -> Packing {
        let len: Vec<usize> = if full {
            vec![context; tokens.len()]
        } else {
            eot_positions(tokens)
                .iter()
                .map(|&p| p.min(context - 1) + 1)
                .collect()
        };
        let mut start = Vec::with_capacity(len.len());
        let mut rows = 0;
        for &n in &len {
            start.push(rows);
            rows += n;
        }
        Packing { start, len, rows }
    }
}

/// Text features `[N, embed_dim]` of `tokens`, as [`ClipTextEncoder::forward`] computes them;
/// call only where [`applies`] holds.
pub(crate) fn forward(
    encoder: &ClipTextEncoder,
    tokens: &[Vec<u32>],
    device: &Device,
    mut trace: Option<&mut TextTrace>,
) -> Tensor<2> {
    let [context, width] = encoder.positional_embedding.dims();
    let [_, embed] = encoder.text_projection.dims();
    let n = tokens.len();
    let full = trace.is_some() || !UP_TO_EOT.enabled();
    let pack = Packing::new(tokens, context, full);
    let rows = pack.rows;
    let to_tensor = |v: Vec<f32>| Tensor::<3>::from_data(TensorData::new(v, [n, context, width]), device);

    let mut x = vec![0.0f32; rows * width];
    read_f32(&encoder.token_embedding.weight.val(), |table| {
        for (b, row) in tokens.iter().enumerate() {
            for t in 0..pack.len[b] {
                let id = row.get(t).copied().unwrap_or(0) as usize;
                let dst = (pack.start[b] + t) * width;
                x[dst..dst + width].copy_from_slice(&table[id * width..(id + 1) * width]);
            }
        }
    });
    if let Some(t) = trace.as_deref_mut() {
        t.token_embedding = Some(to_tensor(x.clone()));
    }
    read_f32(&encoder.positional_embedding.val(), |pos| {
        for b in 0..n {
            let rows_b = &mut x[pack.start[b] * width..(pack.start[b] + pack.len[b]) * width];
            for (v, p) in rows_b.iter_mut().zip(pos) {
                *v += p;
            }
        }
    });
    if let Some(t) = trace.as_deref_mut() {
        t.embed_plus_pos = Some(to_tensor(x.clone()));
    }

    let mut buffers = Buffers::new(rows, width);
    for (i, block) in encoder.transformer.resblocks.iter().enumerate() {
        let mut block_trace = if i == 0 { trace.as_deref_mut() } else { None };
        with_block_weights(block, |weights| {
            let shape = Shape {
                width,
                heads: block.attn.heads,
                context,
            };
            run_block(
                &mut x,
                &mut buffers,
                &pack,
                shape,
                &weights,
                block_trace.take(),
                device,
            )
        });
        if let Some(t) = trace.as_deref_mut() {
            t.resblocks.push(to_tensor(x.clone()));
        }
    }

    // Only the EOT rows are needed from here on (all rows when tracing, for `ln_final`).
    let eot: Vec<usize> = eot_positions(tokens)
        .iter()
        .enumerate()
        .map(|(b, &p)| pack.start[b] + p.min(context - 1))
        .collect();
    let mut hidden = vec![0.0f32; n * width];
    if let Some(t) = trace {
        let mut normed = vec![0.0f32; rows * width];
        layer_norm_ln(&encoder.ln_final, &x, &mut normed, width);
        for (b, &r) in eot.iter().enumerate() {
            hidden[b * width..(b + 1) * width].copy_from_slice(&normed[r * width..(r + 1) * width]);
        }
        t.ln_final = Some(to_tensor(normed));
        t.eot_hidden = Some(Tensor::from_data(
            TensorData::new(hidden.clone(), [n, width]),
            device,
        ));
    } else {
        for (b, &r) in eot.iter().enumerate() {
            hidden[b * width..(b + 1) * width].copy_from_slice(&x[r * width..(r + 1) * width]);
        }
        let gathered = hidden.clone();
        layer_norm_ln(&encoder.ln_final, &gathered, &mut hidden, width);
    }
    let mut features = vec![0.0f32; n * embed];
    read_f32(&encoder.text_projection.val(), |proj| {
        linear(
            &mut features,
            &hidden,
            proj,
            Weight::InOut,
            n,
            width,
            embed,
            false,
        );
    });
    Tensor::from_data(TensorData::new(features, [n, embed]), device)
}

/// Scratch of one forward pass, reused by every block.
struct Buffers {
    normed: Vec<f32>,
    qkv: Vec<f32>,
    attn: Vec<f32>,
    hidden: Vec<f32>,
}

impl Buffers {
    fn new(rows: usize, width: usize) -> Buffers {
        Buffers {
            normed: vec![0.0; rows * width],
            qkv: vec![0.0; rows * 3 * width],
            attn: vec![0.0; rows * width],
            hidden: vec![0.0; rows * 4 * width],
        }
    }
}

/// One block's parameters as host slices. `in_w` is PyTorch's `[3·width, width]`; the `Linear`
/// weights are burn's `[in, out]`.
struct BlockWeights<'a> {
    ln1: (&'a [f32], Option<&'a [f32]>),
    in_w: &'a [f32],
    in_b: &'a [f32],
    out_w: &'a [f32],
    out_b: Option<&'a [f32]>,
    ln2: (&'a [f32], Option<&'a [f32]>),
    fc_w: &'a [f32],
    fc_b: Option<&'a [f32]>,
    proj_w: &'a [f32],
    proj_b: Option<&'a [f32]>,
}

/// A parameter of any rank, readable in place.
trait HostValues {
    fn with_values(&self, f: &mut dyn FnMut(&[f32]));
}

impl<const D: usize> HostValues for Tensor<D> {
    fn with_values(&self, f: &mut dyn FnMut(&[f32])) {
        read_f32(self, |v| f(v));
    }
}

/// Calls `f` with the values of every parameter of `params`, each read in place (the borrows
/// of [`read_f32`] nest, one per parameter).
fn with_values_of(params: &[&dyn HostValues], read: &[&[f32]], f: &mut dyn FnMut(&[&[f32]])) {
    match params.split_first() {
        None => f(read),
        Some((first, rest)) => first.with_values(&mut |values| {
            let mut more = read.to_vec();
            more.push(values);
            with_values_of(rest, &more, f);
        }),
    }
}

fn with_block_weights(block: &ResidualAttentionBlock, mut f: impl FnMut(BlockWeights<'_>)) {
    let attn = &block.attn;
    let mlp = &block.mlp;
    let matrices = [
        attn.in_proj_weight.val(),
        attn.out_proj.weight.val(),
        mlp.c_fc.weight.val(),
        mlp.c_proj.weight.val(),
    ];
    // Absent biases (none in CLIP) are empty slices, read back as `None`.
    let empty = || Tensor::<1>::zeros([0], &block.ln_1.gamma.device());
    let opt = |p: &Option<burn::module::Param<Tensor<1>>>| p.as_ref().map_or_else(empty, |p| p.val());
    let vectors = [
        block.ln_1.gamma.val(),
        opt(&block.ln_1.beta),
        attn.in_proj_bias.val(),
        opt(&attn.out_proj.bias),
        block.ln_2.gamma.val(),
        opt(&block.ln_2.beta),
        opt(&mlp.c_fc.bias),
        opt(&mlp.c_proj.bias),
    ];
    let mut params: Vec<&dyn HostValues> = Vec::with_capacity(12);
    params.extend(matrices.iter().map(|t| t as &dyn HostValues));
    params.extend(vectors.iter().map(|t| t as &dyn HostValues));
    with_values_of(&params, &[], &mut |v| {
        f(BlockWeights {
            in_w: v[0],
            out_w: v[1],
            fc_w: v[2],
            proj_w: v[3],
            ln1: (v[4], non_empty(v[5])),
            in_b: v[6],
            out_b: non_empty(v[7]),
            ln2: (v[8], non_empty(v[9])),
            fc_b: non_empty(v[10]),
            proj_b: non_empty(v[11]),
        })
    });
}

/// Sizes a block needs besides its weights.
#[derive(Clone, Copy)]
struct Shape {
    width: usize,
    heads: usize,
    context: usize,
}

/// An absent bias (read as an empty slice) as `None`.
fn non_empty(values: &[f32]) -> Option<&[f32]> {
    (!values.is_empty()).then_some(values)
}

/// One pre-LN residual block on the packed rows `x` (`[rows, width]`), in place.
fn run_block(
    x: &mut [f32],
    buf: &mut Buffers,
    pack: &Packing,
    shape: Shape,
    w: &BlockWeights<'_>,
    trace: Option<&mut TextTrace>,
    device: &Device,
) {
    let Shape {
        width,
        heads,
        context,
    } = shape;
    let rows = pack.rows;
    let (w3, w4) = (3 * width, 4 * width);
    layer_norm(x, &mut buf.normed, w.ln1.0, w.ln1.1, width);
    fill_rows(&mut buf.qkv, Some(w.in_b), w3);
    linear(
        &mut buf.qkv,
        &buf.normed,
        w.in_w,
        Weight::OutIn,
        rows,
        width,
        w3,
        true,
    );
    causal_attention(&buf.qkv, &mut buf.attn, &pack.start, &pack.len, width, heads);
    match trace {
        // The parity fixture records the attention output before the residual addition.
        Some(t) => {
            let mut out = vec![0.0f32; rows * width];
            fill_rows(&mut out, w.out_b, width);
            linear(
                &mut out,
                &buf.attn,
                w.out_w,
                Weight::InOut,
                rows,
                width,
                width,
                true,
            );
            for (v, a) in x.iter_mut().zip(&out) {
                *v += a;
            }
            // Traced passes hold every position, so the rows are [N, context, width].
            let dims = [pack.len.len(), context, width];
            t.first_ln_1 = Some(Tensor::from_data(
                TensorData::new(buf.normed.clone(), dims),
                device,
            ));
            t.first_attn = Some(Tensor::from_data(TensorData::new(out, dims), device));
        }
        None => {
            add_rows(x, w.out_b, width);
            linear(x, &buf.attn, w.out_w, Weight::InOut, rows, width, width, true);
        }
    }
    layer_norm(x, &mut buf.normed, w.ln2.0, w.ln2.1, width);
    fill_rows(&mut buf.hidden, w.fc_b, w4);
    linear(
        &mut buf.hidden,
        &buf.normed,
        w.fc_w,
        Weight::InOut,
        rows,
        width,
        w4,
        true,
    );
    quick_gelu(&mut buf.hidden);
    add_rows(x, w.proj_b, width);
    linear(x, &buf.hidden, w.proj_w, Weight::InOut, rows, w4, width, true);
}

/// `ln` of burn (its scale and shift; CLIP's epsilon) on rows of `width`.
fn layer_norm_ln(ln: &LayerNorm, x: &[f32], out: &mut [f32], width: usize) {
    read_f32(&ln.gamma.val(), |gamma| match &ln.beta {
        Some(beta) => read_f32(&beta.val(), |beta| layer_norm(x, out, gamma, Some(beta), width)),
        None => layer_norm(x, out, gamma, None, width),
    });
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
