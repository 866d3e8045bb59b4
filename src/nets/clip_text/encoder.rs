//! CLIP's text transformer (`CLIP.encode_text`): token and positional embeddings, pre-LN residual
//! blocks with causal self-attention and QuickGELU MLPs, `ln_final`, the hidden state at the
//! first `<|endoftext|>` (the largest id), times `text_projection`. Field names follow the
//! official state dict, so `ViT-B-32.pt`'s text keys load without renaming.

use burn::module::{Module, Param};
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::Device;
use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::{Bool, Int, Tensor, TensorData};
use serde::Deserialize;

use crate::nets::profile;
use crate::weights::TensorMap;

/// Sizes of the text tower (`clip.model.build_model`'s names).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClipTextConfig {
    pub embed_dim: usize,
    pub context_length: usize,
    pub vocab_size: usize,
    pub transformer_width: usize,
    /// `build_model` derives `width / 64`; reduced test models state it.
    #[serde(default)]
    pub transformer_heads: Option<usize>,
    pub transformer_layers: usize,
}

impl Default for ClipTextConfig {
    /// ViT-B/32, the model StyleCLIP uses.
    fn default() -> Self {
        ClipTextConfig {
            embed_dim: 512,
            context_length: 77,
            vocab_size: 49408,
            transformer_width: 512,
            transformer_heads: Some(8),
            transformer_layers: 12,
        }
    }
}

impl ClipTextConfig {
    pub fn heads(&self) -> usize {
        self.transformer_heads
            .unwrap_or(self.transformer_width / 64)
            .max(1)
    }

    /// Reads the sizes from a config object such as a fixture's `meta.json` `config`.
    pub fn from_json(value: &serde_json::Value) -> Result<ClipTextConfig, String> {
        ClipTextConfig::deserialize(value).map_err(|e| e.to_string())
    }

    /// The sizes of the checkpoint's tensors, as `build_model` reads them (heads = width / 64).
    pub fn from_state_dict(tensors: &TensorMap) -> Option<ClipTextConfig> {
        let dim = |key: &str, axis: usize| tensors.get(key).and_then(|t| t.shape.get(axis).copied());
        let layers = tensors
            .tensors
            .keys()
            .filter_map(|k| {
                k.strip_prefix("transformer.resblocks.")?
                    .split('.')
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .max()
            .map(|n| n + 1)?;
        let width = dim("ln_final.weight", 0)?;
        Some(ClipTextConfig {
            embed_dim: dim("text_projection", 1)?,
            context_length: dim("positional_embedding", 0)?,
            vocab_size: dim("token_embedding.weight", 0)?,
            transformer_width: width,
            transformer_heads: Some((width / 64).max(1)),
            transformer_layers: layers,
        })
    }

    /// A module of these sizes with zero weights, to be filled by the loader.
    pub fn init(&self, device: &Device) -> ClipTextEncoder {
        let w = self.transformer_width;
        let zeros1 = |n: usize| Param::from_tensor(Tensor::<1>::zeros([n], device));
        let zeros2 = |a: usize, b: usize| Param::from_tensor(Tensor::<2>::zeros([a, b], device));
        // burn's Linear stores [in, out]; the loader transposes PyTorch's [out, in].
        let linear = |i: usize, o: usize| Linear {
            weight: zeros2(i, o),
            bias: Some(zeros1(o)),
        };
        let ln = || LayerNormConfig::new(w).with_epsilon(LN_EPS).init(device);
        let resblocks = (0..self.transformer_layers)
            .map(|_| ResidualAttentionBlock {
                attn: CausalSelfAttention {
                    in_proj_weight: zeros2(3 * w, w),
                    in_proj_bias: zeros1(3 * w),
                    out_proj: linear(w, w),
                    heads: self.heads(),
                },
                ln_1: ln(),
                mlp: Mlp {
                    c_fc: linear(w, 4 * w),
                    c_proj: linear(4 * w, w),
                },
                ln_2: ln(),
            })
            .collect();
        ClipTextEncoder {
            token_embedding: Embedding {
                weight: zeros2(self.vocab_size, w),
            },
            positional_embedding: zeros2(self.context_length, w),
            transformer: Transformer { resblocks },
            ln_final: ln(),
            text_projection: zeros2(w, self.embed_dim),
        }
    }
}

/// Keys of a full CLIP checkpoint that the text tower does not hold: the image tower, the
/// contrastive scale, and the scalars `build_model` drops.
pub const NON_TEXT_PREFIXES: [&str; 5] = [
    "visual.",
    "logit_scale",
    "input_resolution",
    "context_length",
    "vocab_size",
];

#[derive(Module, Debug)]
pub struct ClipTextEncoder {
    pub token_embedding: Embedding,
    pub positional_embedding: Param<Tensor<2>>,
    pub transformer: Transformer,
    pub ln_final: LayerNorm,
    /// [width, embed_dim], used as `x · P` (not transposed).
    pub text_projection: Param<Tensor<2>>,
}

#[derive(Module, Debug)]
pub struct Transformer {
    pub resblocks: Vec<ResidualAttentionBlock>,
}

#[derive(Module, Debug)]
pub struct ResidualAttentionBlock {
    pub attn: CausalSelfAttention,
    pub ln_1: LayerNorm,
    pub mlp: Mlp,
    pub ln_2: LayerNorm,
}

/// `nn.MultiheadAttention` with its packed q/k/v projection, used with CLIP's causal mask.
#[derive(Module, Debug)]
pub struct CausalSelfAttention {
    /// [3·width, width]: rows of q, then k, then v (PyTorch layout, `y = x·Wᵀ + b`).
    pub in_proj_weight: Param<Tensor<2>>,
    pub in_proj_bias: Param<Tensor<1>>,
    pub out_proj: Linear,
    pub heads: usize,
}

#[derive(Module, Debug)]
pub struct Mlp {
    pub c_fc: Linear,
    pub c_proj: Linear,
}

/// `nn.LayerNorm`'s epsilon, which CLIP keeps (burn's layer keeps its own private, so the host
/// path reads this one).
pub const LN_EPS: f64 = 1e-5;

/// Score of a key a query must not see.
const MASKED: f32 = -1.0e9;

/// Activations of one forward pass, for parity checks; filled only when asked for.
#[derive(Debug, Default)]
pub struct TextTrace {
    pub token_embedding: Option<Tensor<3>>,
    pub embed_plus_pos: Option<Tensor<3>>,
    pub first_ln_1: Option<Tensor<3>>,
    pub first_attn: Option<Tensor<3>>,
    pub resblocks: Vec<Tensor<3>>,
    pub ln_final: Option<Tensor<3>>,
    pub eot_hidden: Option<Tensor<2>>,
}

impl CausalSelfAttention {
    /// `x`: [N, L, W]; `mask`: [L, L], true where a query must not see a key.
    fn forward(&self, x: Tensor<3>, mask: Tensor<2, Bool>) -> Tensor<3> {
        let [n, l, w] = x.dims();
        let h = self.heads;
        let d = w / h;
        let qkv = x
            .reshape([n * l, w])
            .matmul(self.in_proj_weight.val().transpose())
            + self.in_proj_bias.val().unsqueeze();
        // [N·L, 3W] → [3, N, H, L, d]
        let qkv = qkv.reshape([n, l, 3, h, d]).permute([2, 0, 3, 1, 4]);
        let part = |i: usize| qkv.clone().narrow(0, i, 1).reshape([n, h, l, d]);
        let (q, k, v) = (part(0), part(1), part(2));
        let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (d as f64).sqrt());
        // CLIP adds -inf above the diagonal; a finite value that exp() turns into exactly 0 gives
        // the same weights without the NaN that -inf produces in burn's softmax.
        let scores = scores.mask_fill(mask.unsqueeze::<4>(), MASKED);
        let out = softmax(scores, 3).matmul(v); // [N, H, L, d]
        let out = out.swap_dims(1, 2).reshape([n, l, w]);
        self.out_proj.forward(out)
    }
}

impl ResidualAttentionBlock {
    fn forward(&self, x: Tensor<3>, mask: Tensor<2, Bool>, trace: Option<&mut TextTrace>) -> Tensor<3> {
        let dims = x.dims();
        let shape = move || format!("{dims:?}");
        let normed = profile::scope("burn layer_norm", shape, || self.ln_1.forward(x.clone()));
        let attn = profile::scope("burn attention", shape, || {
            self.attn.forward(normed.clone(), mask)
        });
        if let Some(t) = trace {
            t.first_ln_1 = Some(normed);
            t.first_attn = Some(attn.clone());
        }
        let x = x + attn;
        let normed = profile::scope("burn layer_norm", shape, || self.ln_2.forward(x.clone()));
        profile::scope("burn mlp", shape, || {
            let hidden = self.mlp.c_fc.forward(normed);
            let hidden = hidden.clone() * sigmoid(hidden * 1.702); // QuickGELU
            x.clone() + self.mlp.c_proj.forward(hidden)
        })
    }
}

/// Position of the first largest id of each row (`tokens.argmax(-1)`): where the EOT sits.
pub fn eot_positions(tokens: &[Vec<u32>]) -> Vec<usize> {
    tokens
        .iter()
        .map(|row| {
            let mut best = 0;
            for (i, &id) in row.iter().enumerate() {
                if id > row[best] {
                    best = i;
                }
            }
            best
        })
        .collect()
}

impl ClipTextEncoder {
    pub fn context_length(&self) -> usize {
        self.positional_embedding.dims()[0]
    }

    /// Text features ([N, embed_dim], not normalised) of tokenised prompts, each row as long as
    /// the context (77).
    pub fn encode(&self, tokens: &[Vec<u32>], device: &Device) -> Tensor<2> {
        self.forward(tokens, device, None)
    }

    /// Like [`encode`](Self::encode), optionally recording the activations. On the flex CPU
    /// backend this runs the host path of [`super::host`]; elsewhere (and with it switched off)
    /// burn's ops, [`forward_burn`](Self::forward_burn).
    pub fn forward(&self, tokens: &[Vec<u32>], device: &Device, trace: Option<&mut TextTrace>) -> Tensor<2> {
        if super::host::applies(self, tokens, device) {
            return profile::scope(
                "clip_text",
                || format!("host, {} prompts", tokens.len()),
                || super::host::forward(self, tokens, device, trace),
            );
        }
        profile::scope(
            "clip_text",
            || format!("burn, {} prompts", tokens.len()),
            || self.forward_burn(tokens, device, trace),
        )
    }

    /// The forward pass on burn's tensor ops (any backend; the host path's reference).
    pub fn forward_burn(
        &self,
        tokens: &[Vec<u32>],
        device: &Device,
        mut trace: Option<&mut TextTrace>,
    ) -> Tensor<2> {
        let n = tokens.len();
        let [l, w] = self.positional_embedding.dims();
        let flat: Vec<i64> = tokens
            .iter()
            .flat_map(|row| (0..l).map(move |i| row.get(i).copied().unwrap_or(0) as i64))
            .collect();
        let ids = Tensor::<1, Int>::from_data(TensorData::new(flat, [n * l]), device);
        let embedded = self
            .token_embedding
            .weight
            .val()
            .select(0, ids)
            .reshape([n, l, w]);
        let mut x = embedded.clone() + self.positional_embedding.val().unsqueeze::<3>();
        if let Some(t) = trace.as_deref_mut() {
            t.token_embedding = Some(embedded);
            t.embed_plus_pos = Some(x.clone());
        }
        // burn's tril_mask is true outside the lower triangle: exactly the keys after each query.
        let mask = Tensor::<2, Bool>::tril_mask([l, l], 0, device);
        for (i, block) in self.transformer.resblocks.iter().enumerate() {
            let block_trace = if i == 0 { trace.as_deref_mut() } else { None };
            x = block.forward(x, mask.clone(), block_trace);
            if let Some(t) = trace.as_deref_mut() {
                t.resblocks.push(x.clone());
            }
        }
        let x = self.ln_final.forward(x);
        let rows: Vec<i64> = eot_positions(tokens)
            .iter()
            .enumerate()
            .map(|(b, &p)| (b * l + p.min(l - 1)) as i64)
            .collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), device);
        let eot = x.clone().reshape([n * l, w]).select(0, rows);
        if let Some(t) = trace {
            t.ln_final = Some(x);
            t.eot_hidden = Some(eot.clone());
        }
        eot.matmul(self.text_projection.val())
    }
}

/// Rows divided by their L2 norm (what every StyleCLIP consumer does with text features).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt();
    x / norm
}
