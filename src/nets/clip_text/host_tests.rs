//! Tests of the host path: the whole encoder against burn's (`forward_burn`, same weights), with
//! and without a trace, and each kernel against burn's own op on the shapes it serves.

use super::*;
use crate::nets::clip_text::ClipTextConfig;
use crate::nets::clip_text::encoder::LN_EPS;
use burn::module::Param;
use burn::nn::LayerNormConfig;
use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::{Bool, Distribution};

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 values")
}

/// Largest |got − want| over the largest |want|, with the place of the worst value.
fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let (mut worst, mut at) = (0.0f32, 0);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(g.is_finite(), "{what}: non-finite value at {i}");
        let err = (g - w).abs();
        if err > worst {
            (worst, at) = (err, i);
        }
    }
    assert!(
        worst <= tol * scale,
        "{what}: max abs err {worst:.3e} at {at} (got {}, want {}), scale {scale:.3e}",
        got[at],
        want[at]
    );
}

fn uniform<const D: usize>(shape: [usize; D], bound: f64, device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::random(
        shape,
        Distribution::Uniform(-bound, bound),
        device,
    ))
}

fn around_one(n: usize, device: &Device) -> Param<Tensor<1>> {
    Param::from_tensor(Tensor::random([n], Distribution::Uniform(0.5, 1.5), device))
}

/// An encoder of `config`'s sizes with random weights scaled by fan-in (so activations stay in
/// the range of trained ones), random norm scales and shifts.
fn random_encoder(config: &ClipTextConfig, device: &Device) -> ClipTextEncoder {
    let mut enc = config.init(device);
    let w = config.transformer_width;
    let inv = |fan_in: usize| 1.0 / (fan_in as f64).sqrt();
    enc.token_embedding.weight = uniform([config.vocab_size, w], 1.0, device);
    enc.positional_embedding = uniform([config.context_length, w], 0.5, device);
    enc.text_projection = uniform([w, config.embed_dim], inv(w), device);
    let norm = |ln: &mut LayerNorm| {
        ln.gamma = around_one(w, device);
        ln.beta = Some(uniform([w], 0.2, device));
    };
    norm(&mut enc.ln_final);
    for block in &mut enc.transformer.resblocks {
        norm(&mut block.ln_1);
        norm(&mut block.ln_2);
        block.attn.in_proj_weight = uniform([3 * w, w], inv(w), device);
        block.attn.in_proj_bias = uniform([3 * w], 0.1, device);
        block.attn.out_proj.weight = uniform([w, w], inv(w), device);
        block.attn.out_proj.bias = Some(uniform([w], 0.1, device));
        block.mlp.c_fc.weight = uniform([w, 4 * w], inv(w), device);
        block.mlp.c_fc.bias = Some(uniform([4 * w], 0.1, device));
        block.mlp.c_proj.weight = uniform([4 * w, w], inv(4 * w), device);
        block.mlp.c_proj.bias = Some(uniform([w], 0.1, device));
    }
    enc
}

/// A prompt of `context` ids: SOT, `words` ordinary ids, EOT (the largest id), zero padding;
/// `cut` shortens the row (the encoder pads it).
fn prompt(words: usize, context: usize, vocab: u32, cut: Option<usize>) -> Vec<u32> {
    let mut row = vec![vocab - 2];
    row.extend((0..words as u32).map(|i| 1 + (i * 37 + 11) % (vocab - 3)));
    row.push(vocab - 1);
    row.resize(context, 0);
    if let Some(n) = cut {
        row.truncate(n);
    }
    row
}

fn small_config() -> ClipTextConfig {
    ClipTextConfig {
        embed_dim: 24,
        context_length: 20,
        vocab_size: 300,
        transformer_width: 64,
        transformer_heads: Some(4),
        transformer_layers: 2,
    }
}

#[test]
fn host_encoder_matches_burns_on_a_mixed_batch() {
    let device = Device::flex();
    let config = small_config();
    let enc = random_encoder(&config, &device);
    let (l, v) = (config.context_length, config.vocab_size as u32);
    // EOT early, in the middle, at the last position, a row shorter than the context, a prompt
    // of SOT and EOT alone, and a row with no EOT at all (argmax then falls on the SOT).
    let mut tokens = vec![
        prompt(3, l, v, None),
        prompt(9, l, v, None),
        prompt(l - 2, l, v, None),
        prompt(5, l, v, Some(9)),
        prompt(0, l, v, None),
    ];
    tokens.push((0..l as u32).map(|i| 5 + i % 7).collect());
    assert!(applies(&enc, &tokens, &device));
    let want = host(enc.forward_burn(&tokens, &device, None));
    let got = host(forward(&enc, &tokens, &device, None));
    assert_close(&got, &want, 2e-5, "features, EOT rows only");
    // A single prompt, the benchmark's and the app's smallest batch.
    let one = &tokens[1..2];
    let want = host(enc.forward_burn(one, &device, None));
    assert_close(
        &host(forward(&enc, one, &device, None)),
        &want,
        2e-5,
        "one prompt",
    );
}

#[test]
fn host_trace_matches_burns_at_every_position() {
    let device = Device::flex();
    let config = small_config();
    let enc = random_encoder(&config, &device);
    let (l, v) = (config.context_length, config.vocab_size as u32);
    let tokens = vec![prompt(4, l, v, None), prompt(11, l, v, Some(15))];
    let (mut want, mut got) = (TextTrace::default(), TextTrace::default());
    let want_f = host(enc.forward_burn(&tokens, &device, Some(&mut want)));
    let got_f = host(forward(&enc, &tokens, &device, Some(&mut got)));
    assert_close(&got_f, &want_f, 2e-5, "features");
    let pairs: [(&str, Option<Tensor<3>>, Option<Tensor<3>>); 5] = [
        ("token_embedding", got.token_embedding, want.token_embedding),
        ("embed_plus_pos", got.embed_plus_pos, want.embed_plus_pos),
        ("first_ln_1", got.first_ln_1, want.first_ln_1),
        ("first_attn", got.first_attn, want.first_attn),
        ("ln_final", got.ln_final, want.ln_final),
    ];
    for (name, g, w) in pairs {
        let (g, w) = (g.expect(name), w.expect(name));
        assert_eq!(g.dims(), w.dims(), "{name}");
        assert_close(&host(g), &host(w), 2e-5, name);
    }
    assert_eq!(got.resblocks.len(), config.transformer_layers);
    for (i, (g, w)) in got.resblocks.into_iter().zip(want.resblocks).enumerate() {
        assert_close(&host(g), &host(w), 2e-5, &format!("resblocks.{i}"));
    }
    let (g, w) = (got.eot_hidden.expect("eot"), want.eot_hidden.expect("eot"));
    assert_close(&host(g), &host(w), 2e-5, "eot_hidden");
}

#[test]
fn host_encoder_matches_burns_at_vit_b32_sizes() {
    let device = Device::flex();
    let config = ClipTextConfig {
        transformer_layers: 2,
        ..ClipTextConfig::default()
    };
    let enc = random_encoder(&config, &device);
    let (l, v) = (config.context_length, config.vocab_size as u32);
    let tokens = vec![prompt(12, l, v, None), prompt(40, l, v, None)];
    let want = host(enc.forward_burn(&tokens, &device, None));
    let got = host(forward(&enc, &tokens, &device, None));
    assert_close(&got, &want, 5e-5, "ViT-B/32 widths");
}

#[test]
fn host_path_leaves_out_of_vocabulary_ids_to_burn() {
    let device = Device::flex();
    let config = small_config();
    let enc = config.init(&device);
    let mut row = prompt(3, config.context_length, config.vocab_size as u32, None);
    assert!(applies(&enc, std::slice::from_ref(&row), &device));
    row[2] = config.vocab_size as u32;
    assert!(!applies(&enc, &[row], &device));
}

#[test]
fn layer_norm_matches_burns() {
    let device = Device::flex();
    // One row, CLIP's rows at both widths, and enough rows for the parallel branch.
    for (rows, width, with_beta) in [
        (1, 512, true),
        (7, 32, true),
        (77, 512, true),
        (150, 512, false),
        (3, 5, true),
    ] {
        let mut ln = LayerNormConfig::new(width).with_epsilon(LN_EPS).init(&device);
        ln.gamma = around_one(width, &device);
        ln.beta = with_beta.then(|| uniform([width], 0.3, &device));
        // An offset row mean, as the residual stream has.
        let x = Tensor::<2>::random([rows, width], Distribution::Normal(0.7, 2.0), &device);
        let want = host(ln.forward(x.clone()));
        let mut got = vec![0.0; rows * width];
        layer_norm_ln(&ln, &host(x), &mut got, width);
        assert_close(&got, &want, 1e-5, &format!("layer norm {rows}x{width}"));
    }
}

#[test]
fn linear_matches_burns_matmul_in_both_layouts() {
    let device = Device::flex();
    for (rows, k, n) in [
        (1, 512, 1536),
        (14, 512, 2048),
        (14, 2048, 512),
        (77, 512, 512),
        (5, 3, 7),
        (2, 512, 24),
    ] {
        let x = Tensor::<2>::random([rows, k], Distribution::Normal(0.0, 1.0), &device);
        let start = Tensor::<2>::random([rows, n], Distribution::Normal(0.0, 1.0), &device);
        for layout in [Weight::InOut, Weight::OutIn] {
            let w = match layout {
                Weight::InOut => Tensor::<2>::random([k, n], Distribution::Normal(0.0, 1.0), &device),
                Weight::OutIn => Tensor::<2>::random([n, k], Distribution::Normal(0.0, 1.0), &device),
            };
            let product = match layout {
                Weight::InOut => x.clone().matmul(w.clone()),
                Weight::OutIn => x.clone().matmul(w.clone().transpose()),
            };
            let (xs, ws) = (host(x.clone()), host(w));
            let mut got = host(start.clone());
            linear(&mut got, &xs, &ws, layout, rows, k, n, true);
            let want = host(start.clone() + product.clone());
            assert_close(
                &got,
                &want,
                1e-5,
                &format!("{rows}x{k}->{n} {layout:?} accumulated"),
            );
            let mut got = vec![f32::NAN; rows * n];
            linear(&mut got, &xs, &ws, layout, rows, k, n, false);
            assert_close(&got, &host(product), 1e-5, &format!("{rows}x{k}->{n} {layout:?}"));
        }
    }
}

#[test]
fn quick_gelu_matches_burns() {
    let device = Device::flex();
    // Small and past the parallel threshold, with tails far enough out to saturate exp().
    for len in [37, 200_000] {
        let x = Tensor::<1>::random([len], Distribution::Normal(0.0, 30.0), &device);
        let want = host(x.clone() * sigmoid(x.clone() * 1.702));
        let mut got = host(x);
        quick_gelu(&mut got);
        assert_close(&got, &want, 1e-6, &format!("QuickGELU of {len}"));
    }
}

#[test]
fn causal_attention_matches_burns_masked_softmax() {
    let device = Device::flex();
    // A prompt of one token, one of two, a longer one, and CLIP's head width.
    for (lens, width, heads) in [(vec![1, 2, 9], 32, 4), (vec![77], 512, 8), (vec![14, 3], 512, 8)] {
        let tokens: Vec<Vec<u32>> = lens
            .iter()
            .map(|&n| {
                let mut row = vec![1u32; n];
                row[n - 1] = 2;
                row
            })
            .collect();
        let context = *lens.iter().max().expect("lengths");
        let pack = Packing::new(&tokens, context, false);
        assert_eq!(pack.len, lens);
        let qkv = Tensor::<2>::random([pack.rows, 3 * width], Distribution::Normal(0.0, 1.5), &device);
        let mut got = vec![0.0; pack.rows * width];
        causal_attention(&host(qkv.clone()), &mut got, &pack.start, &pack.len, width, heads);
        let d = width / heads;
        let mut want = Vec::new();
        for (&s, &n) in pack.start.iter().zip(&pack.len) {
            // [n, 3, H, d] → q, k, v as [H, n, d]
            let rows = qkv
                .clone()
                .narrow(0, s, n)
                .reshape([n, 3, heads, d])
                .permute([1, 2, 0, 3]);
            let part = |i: usize| rows.clone().narrow(0, i, 1).reshape([heads, n, d]);
            let scores = part(0).matmul(part(1).swap_dims(1, 2)) * (1.0 / (d as f64).sqrt());
            let mask = Tensor::<2, Bool>::tril_mask([n, n], 0, &device).unsqueeze::<3>();
            let out = softmax(scores.mask_fill(mask, -1.0e9), 2).matmul(part(2));
            want.extend(host(out.swap_dims(0, 1).reshape([n, width])));
        }
        assert_close(&got, &want, 1e-5, &format!("attention {lens:?} {width}/{heads}"));
    }
}
