//! StyleCLIP global directions (`global_torch/StyleCLIP.py`, `manipulate.py`): a text pair gives
//! a direction Δt in CLIP space; the relevance matrix `fs3` maps it to the style channels, the
//! threshold β keeps the relevant ones, and S moves by α · (relevance · std) per channel.

use burn::tensor::Device;
use burn::tensor::{Tensor, TensorData};

use super::templates;
use crate::nets::clip_text::{ClipTextEncoder, ClipTokenizer, TokenizerError, Truncate};
use crate::weights::{TensorMap, Value};

#[derive(Debug, thiserror::Error)]
pub enum GlobalError {
    #[error("fs3 has shape {0:?}; expected [channels, clip_dim]")]
    Fs3Shape(Vec<usize>),
    #[error(
        "fs3 has {rows} rows, which ends inside style layer {layer} (the layers' conv channels add up to {total})"
    )]
    Fs3Rows { rows: usize, layer: usize, total: usize },
    #[error("S_mean_std holds no std for style layer {0}")]
    MissingStd(usize),
    #[error("S_mean_std layer {layer} has {got} channels, the style layout {want}")]
    StdShape { layer: usize, got: usize, want: usize },
    #[error("cannot read the relevance back from the device: {0}")]
    Device(String),
    #[error("fs3 has {rows} columns but the text direction has {dim}")]
    DirectionDim { rows: usize, dim: usize },
}

/// Which style layers exist, their widths, and which of them are convolutions (fs3 rows follow
/// those; toRGB layers are never edited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SLayout {
    pub dims: Vec<usize>,
    pub conv_layers: Vec<usize>,
}

impl SLayout {
    /// StyleGAN2-ffhq-1024: 26 layers, 9,088 channels, 6,048 of them in convolutions.
    pub fn ffhq_1024() -> SLayout {
        let mut dims = vec![512; 15];
        dims.extend([256, 256, 256, 128, 128, 128, 64, 64, 64, 32, 32]);
        SLayout::new(dims, None)
    }

    /// Layers in synthesis order (conv1 of 4×4, toRGB, then conv0, conv1, toRGB per resolution);
    /// `conv_layers` defaults to every layer that is not a toRGB (index ≢ 1 mod 3).
    pub fn new(dims: Vec<usize>, conv_layers: Option<Vec<usize>>) -> SLayout {
        let conv_layers = conv_layers.unwrap_or_else(|| (0..dims.len()).filter(|i| i % 3 != 1).collect());
        SLayout { dims, conv_layers }
    }

    pub fn conv_channels(&self) -> usize {
        self.conv_layers.iter().map(|&l| self.dims[l]).sum()
    }
}

/// The relevance matrix and style statistics of one generator.
#[derive(Debug, Clone)]
pub struct GlobalDirections {
    /// [conv channels (or fewer), clip_dim], unit rows.
    fs3: Tensor<2>,
    /// Population std of every style layer, toRGB included.
    s_std: Vec<Vec<f32>>,
    layout: SLayout,
}

/// A direction in S for one text pair and threshold.
#[derive(Debug, Clone)]
pub struct Direction {
    /// Conv channels with |relevance| ≥ β. Zero means β is too high for this text: the direction
    /// is then zero (the official code divides 0/0 and produces NaN).
    pub num_c: usize,
    /// Relevance per conv channel, zeroed below β and divided by the largest kept |relevance|.
    pub ds_imp: Vec<f32>,
    /// One vector per style layer (zeros on toRGB layers): `ds_imp` times that layer's std.
    pub boundary: Vec<Tensor<1>>,
}

impl GlobalDirections {
    pub fn new(
        fs3: Tensor<2>,
        s_std: Vec<Vec<f32>>,
        layout: SLayout,
    ) -> Result<GlobalDirections, GlobalError> {
        let [rows, _] = fs3.dims();
        // fs3 may cover fewer layers than the layout (the rest get no direction), never part of one.
        let mut start = 0;
        for &l in &layout.conv_layers {
            if rows > start && rows < start + layout.dims[l] {
                return Err(GlobalError::Fs3Rows {
                    rows,
                    layer: l,
                    total: layout.conv_channels(),
                });
            }
            start += layout.dims[l];
        }
        if rows > start {
            return Err(GlobalError::Fs3Rows {
                rows,
                layer: layout.dims.len(),
                total: start,
            });
        }
        for (layer, &want) in layout.dims.iter().enumerate() {
            let got = s_std.get(layer).ok_or(GlobalError::MissingStd(layer))?.len();
            if got != want {
                return Err(GlobalError::StdShape { layer, got, want });
            }
        }
        Ok(GlobalDirections { fs3, s_std, layout })
    }

    /// From the parsed `fs3.npy` and `S_mean_std` files.
    pub fn from_values(
        fs3: &Value,
        s_mean_std: &Value,
        layout: SLayout,
        device: &Device,
    ) -> Result<GlobalDirections, GlobalError> {
        let Value::Tensor(raw) = fs3 else {
            return Err(GlobalError::Fs3Shape(Vec::new()));
        };
        if raw.shape.len() != 2 {
            return Err(GlobalError::Fs3Shape(raw.shape.clone()));
        }
        let fs3 = Tensor::<2>::from_data(TensorData::new(raw.to_f32(), raw.shape.clone()), device);
        GlobalDirections::new(
            fs3,
            s_std_of(&s_mean_std.flatten_tensors(), layout.dims.len())?,
            layout,
        )
    }

    pub fn layout(&self) -> &SLayout {
        &self.layout
    }

    pub fn s_std(&self) -> &[Vec<f32>] {
        &self.s_std
    }

    /// `fs3 · Δt`: how strongly each conv channel moves the image towards the text.
    pub fn relevance(&self, dt: Tensor<1>) -> Result<Vec<f32>, GlobalError> {
        let [rows, dim] = self.fs3.dims();
        if dt.dims()[0] != dim {
            return Err(GlobalError::DirectionDim {
                rows: dim,
                dim: dt.dims()[0],
            });
        }
        let r = self.fs3.clone().matmul(dt.reshape([dim, 1])).reshape([rows]);
        r.into_data()
            .try_to_vec::<f32>()
            .map_err(|e| GlobalError::Device(format!("{e:?}")))
    }

    /// `GetBoundary`: the S direction for relevance `r` at threshold β.
    pub fn direction(&self, relevance: &[f32], beta: f32, device: &Device) -> Direction {
        let mut ds_imp: Vec<f32> = relevance
            .iter()
            .map(|&r| if r.abs() < beta { 0.0 } else { r })
            .collect();
        // numpy counts `~(|r| < beta)`, which includes NaN.
        let num_c = relevance.iter().filter(|r| r.abs() >= beta || r.is_nan()).count();
        let max = ds_imp.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        if max > 0.0 {
            ds_imp.iter_mut().for_each(|v| *v /= max);
        }
        let mut boundary = Vec::with_capacity(self.layout.dims.len());
        let mut start = 0;
        for (layer, &dim) in self.layout.dims.iter().enumerate() {
            let values: Vec<f32> = if self.layout.conv_layers.contains(&layer) && start + dim <= ds_imp.len()
            {
                let v = ds_imp[start..start + dim]
                    .iter()
                    .zip(&self.s_std[layer])
                    .map(|(d, s)| d * s)
                    .collect();
                start += dim;
                v
            } else {
                vec![0.0; dim]
            };
            boundary.push(Tensor::<1>::from_data(TensorData::new(values, [dim]), device));
        }
        Direction {
            num_c,
            ds_imp,
            boundary,
        }
    }
}

/// The std list (second entry) of a parsed `S_mean_std` pickle `[means, stds]`.
pub fn s_std_of(s_mean_std: &TensorMap, layers: usize) -> Result<Vec<Vec<f32>>, GlobalError> {
    (0..layers)
        .map(|l| {
            s_mean_std
                .get(&format!("1.{l}"))
                .map(|t| t.to_f32())
                .ok_or(GlobalError::MissingStd(l))
        })
        .collect()
}

/// Conv channels kept at threshold β, compared in f64 like the GUI's sweep over `np.arange`.
pub fn channels_kept(relevance: &[f32], beta: f64) -> usize {
    relevance.iter().filter(|r| (r.abs() as f64) >= beta).count()
}

/// The GUI's automatic β (`Inference.GetDt2`): of β = 0.10, 0.11, …, 0.29, the largest that keeps
/// more than `min_channels` channels (20 for ffhq), else 0.10. Returns β and the sweep.
pub fn auto_beta(relevance: &[f32], min_channels: usize) -> (f64, Vec<(f64, usize)>) {
    let sweep: Vec<(f64, usize)> = (0..20)
        .map(|i| {
            let beta = 0.1 + i as f64 * 0.01;
            (beta, channels_kept(relevance, beta))
        })
        .collect();
    let beta = sweep
        .iter()
        .rev()
        .find(|(_, n)| *n > min_channels)
        .map(|(b, _)| *b)
        .unwrap_or(0.1);
    (beta, sweep)
}

/// `MSCode`: S + α·boundary for every α: per layer [N, K, C_l].
pub fn apply(s: &[Tensor<2>], boundary: &[Tensor<1>], alphas: &[f32]) -> Vec<Tensor<3>> {
    s.iter()
        .zip(boundary)
        .map(|(layer, b)| {
            let [n, c] = layer.dims();
            let k = alphas.len();
            let alpha = Tensor::<1>::from_data(TensorData::new(alphas.to_vec(), [k]), &layer.device());
            let step = alpha.reshape([1, k, 1]) * b.clone().reshape([1, 1, c]);
            layer.clone().reshape([n, 1, c]) + step
        })
        .collect()
}

/// S + α·boundary for one α (what the preview renders).
pub fn apply_one(s: &[Tensor<2>], boundary: &[Tensor<1>], alpha: f32) -> Vec<Tensor<2>> {
    s.iter()
        .zip(boundary)
        .map(|(layer, b)| layer.clone() + b.clone().unsqueeze::<2>() * alpha)
        .collect()
}

/// `GetCodeMS`: per-layer mean and population std (ddof 0) of S samples [n, C_l].
pub fn s_statistics(samples: &[Tensor<2>]) -> (Vec<Tensor<1>>, Vec<Tensor<1>>) {
    samples
        .iter()
        .map(|x| {
            let [_, c] = x.dims();
            let mean = x.clone().mean_dim(0);
            let var = (x.clone() - mean.clone()).powi_scalar(2).mean_dim(0);
            (mean.reshape([c]), var.sqrt().reshape([c]))
        })
        .unzip()
}

fn normalize_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let norm = x.clone().powi_scalar(2).sum_dim(D - 1).sqrt();
    x / norm
}

/// `GetFs`: CLIP image features of single-channel edits [channels, images, 2 (−5σ, +5σ), D] →
/// one unit relevance row per channel.
pub fn channel_relevance(all_f: Tensor<4>) -> Tensor<2> {
    let [c, i, _, d] = all_f.dims();
    let f = normalize_last(all_f);
    let minus = f.clone().narrow(2, 0, 1).reshape([c, i, d]);
    let plus = f.narrow(2, 1, 1).reshape([c, i, d]);
    let diff = normalize_last(plus - minus);
    normalize_last(diff.mean_dim(1).reshape([c, d]))
}

/// `zeroshot_classifier` for one class: normalise each template's features, average, normalise.
pub fn class_embedding(features: Tensor<2>) -> Tensor<1> {
    let [_, d] = features.dims();
    normalize_last(normalize_last(features).mean_dim(0).reshape([d]))
}

/// `GetDt`: (target − neutral) / ‖target − neutral‖ of the two class embeddings.
pub fn text_direction(target: Tensor<1>, neutral: Tensor<1>) -> Tensor<1> {
    normalize_last(target - neutral)
}

/// The class embedding of `text`: all 79 templates tokenised (too long a prompt is an error, as
/// in the reference) and encoded in one batch.
pub fn prompt_embedding(
    tokenizer: &ClipTokenizer,
    encoder: &ClipTextEncoder,
    text: &str,
    device: &Device,
) -> Result<Tensor<1>, TokenizerError> {
    let context = encoder.context_length();
    let tokens = templates::fill(text)
        .iter()
        .map(|prompt| tokenizer.tokenize(prompt, context, Truncate::No))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(class_embedding(encoder.encode(&tokens, device)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(device: &Device) -> GlobalDirections {
        // Three layers: conv (2 channels), toRGB (2), conv (1); fs3 rows are unit vectors in 2-D.
        let layout = SLayout::new(vec![2, 2, 1], None);
        let fs3 = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0, 0.6, 0.8], [3, 2]),
            device,
        );
        GlobalDirections::new(fs3, vec![vec![2.0, 3.0], vec![5.0, 5.0], vec![0.5]], layout)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn threshold_scales_by_the_largest_kept_relevance_and_the_std() {
        let device = Device::flex();
        let g = toy(&device);
        let r = g
            .relevance(Tensor::from_data(
                TensorData::new(vec![0.0f32, -1.0], [2]),
                &device,
            ))
            .unwrap_or_default();
        assert_eq!(r, vec![0.0, -1.0, -0.8]);
        let d = g.direction(&r, 0.8, &device);
        assert_eq!(d.num_c, 2, "|r| == beta is kept");
        assert_eq!(d.ds_imp, vec![0.0, -1.0, -0.8]);
        let b: Vec<Vec<f32>> = d
            .boundary
            .into_iter()
            .map(|t| t.into_data().try_to_vec().unwrap_or_default())
            .collect();
        assert_eq!(b, vec![vec![0.0, -3.0], vec![0.0, 0.0], vec![-0.4]]);
    }

    #[test]
    fn no_surviving_channel_gives_a_zero_direction_not_nan() {
        let device = Device::flex();
        let g = toy(&device);
        let d = g.direction(&[0.1, -0.2, 0.05], 0.3, &device);
        assert_eq!(d.num_c, 0);
        for t in d.boundary {
            assert!(
                t.into_data()
                    .try_to_vec::<f32>()
                    .unwrap_or_default()
                    .iter()
                    .all(|v| *v == 0.0)
            );
        }
    }

    #[test]
    fn fs3_must_end_on_a_layer_boundary() {
        let device = Device::flex();
        let layout = SLayout::new(vec![2, 2, 1], None);
        let fs3 = Tensor::<2>::zeros([1, 2], &device);
        assert!(GlobalDirections::new(fs3, vec![vec![1.0; 2], vec![1.0; 2], vec![1.0]], layout).is_err());
        assert_eq!(SLayout::ffhq_1024().conv_channels(), 6048);
    }
}
