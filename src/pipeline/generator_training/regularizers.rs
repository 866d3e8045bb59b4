//! The lazy regularisers of rosinality's `train.py`, which differentiate through a gradient:
//! path-length regularisation of the generator (`g_path_regularize`) and, with the
//! discriminator, R1 (`d_r1_loss`).
//!
//! burn 0.22 cannot take a gradient of a gradient (no `create_graph`, and an autodiff device
//! cannot wrap another: see the tests below), so the inner gradient is written out layer by layer
//! as ordinary differentiable operations ([`vjp`], [`synthesis`]); one first-order backward pass
//! over the penalty built on it gives the exact second-order parameter gradients.

pub mod grads;
pub mod synthesis;
pub mod vjp;

#[cfg(test)]
mod testing;

use burn::tensor::Tensor;

use crate::nets::stylegan2::{Generator, StyleGanError};
use crate::weights::{RawTensor, TensorMap};

#[derive(Debug, thiserror::Error)]
pub enum RegularizerError {
    #[error("regulariser input: {0}")]
    Input(String),
    #[error(transparent)]
    Generator(#[from] StyleGanError),
    #[error("reading a result back from the device: {0}")]
    Readback(String),
}

/// The path-length hyper-parameters (`train.py` defaults: 2, 4, 0.01).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathSettings {
    pub path_regularize: f64,
    pub g_reg_every: usize,
    pub decay: f64,
}

impl Default for PathSettings {
    fn default() -> Self {
        PathSettings {
            path_regularize: 2.0,
            g_reg_every: 4,
            decay: 0.01,
        }
    }
}

/// One path-length step's random draws, as `train.py` makes them.
#[derive(Debug, Clone)]
pub struct PathInputs {
    /// `[n_z, B, style_dim]`: one z, or two with style mixing.
    pub z: Tensor<3>,
    /// The mixing crossover (ignored with one z).
    pub inject_index: usize,
    /// One `[B, 1, r, r]` map per StyledConv.
    pub noise: Vec<Tensor<4>>,
    /// The raw `randn_like(fake)`, before the division by `sqrt(H·W)`.
    pub path_noise: Tensor<4>,
    /// The running mean carried into the step.
    pub mean_path_length: f64,
}

/// What the path-length step computes, on the host.
#[derive(Debug, Clone)]
pub struct PathOutputs {
    pub fake_img: RawTensor,
    /// W+ `[B, n_latent, style_dim]`, the gradient's target.
    pub latents: RawTensor,
    pub grad_latents: RawTensor,
    pub path_lengths: RawTensor,
    /// The detached running mean to carry to the next regularised step.
    pub mean_path_length: f64,
    pub path_loss: f64,
    /// `path_regularize · g_reg_every · path_loss`, the loss whose gradient is taken.
    pub weighted_path_loss: f64,
    /// `∂weighted_path_loss/∂path_lengths`, the undetached mean's term included.
    pub dpenalty_dpath_lengths: RawTensor,
    /// Every generator parameter's gradient, by rosinality's name (zeros where unreached).
    pub grads: TensorMap,
    pub grad_norm: f64,
}

fn host<const D: usize>(t: Tensor<D>) -> Result<RawTensor, RegularizerError> {
    let shape = t.dims().to_vec();
    let data = t
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| RegularizerError::Readback(format!("{e:?}")))?;
    Ok(RawTensor::f32(shape, data))
}

fn scalar(t: Tensor<1>) -> Result<f64, RegularizerError> {
    host(t)?
        .to_f32()
        .first()
        .map(|&v| v as f64)
        .ok_or_else(|| RegularizerError::Readback("an empty scalar".into()))
}

/// `(path_lengths − path_mean)²` averaged, with `path_mean = mean + decay·(mean(pl) − mean)` left
/// undetached (trap 9: the gradient also flows through `mean(pl)`). Returns the loss and the mean.
fn path_penalty(path_lengths: Tensor<1>, mean: f64, decay: f64) -> (Tensor<1>, Tensor<1>) {
    let path_mean = path_lengths
        .clone()
        .mean()
        .sub_scalar(mean)
        .mul_scalar(decay)
        .add_scalar(mean);
    let loss = (path_lengths - path_mean.clone()).square().mean();
    (loss, path_mean)
}

/// W+ from the z's: one z broadcast, or two mixed at `inject_index`.
fn latents(g: &Generator, inputs: &PathInputs) -> Result<Tensor<3>, RegularizerError> {
    let [n_z, b, d] = inputs.z.dims();
    let w = |i: usize| g.mapping(inputs.z.clone().narrow(0, i, 1).reshape([b, d]));
    match n_z {
        1 => Ok(g.broadcast(w(0))),
        2 => Ok(g.mix(w(0), w(1), inputs.inject_index)?),
        n => Err(RegularizerError::Input(format!("{n} z batches, expected 1 or 2"))),
    }
}

/// `train.py`'s path-length step on generator `g`, which must live on an autodiff device: the
/// image, `grad_latents = ∂(fake·noise/√(HW)).sum()/∂W+`, the path lengths and their penalty,
/// and the gradient of the weighted penalty with respect to every parameter of `g`.
pub fn path_length_penalty(
    g: &Generator,
    inputs: &PathInputs,
    settings: &PathSettings,
) -> Result<PathOutputs, RegularizerError> {
    if !g.input.input.val().is_autodiff() {
        return Err(RegularizerError::Input(
            "the generator must be on an autodiff device".into(),
        ));
    }
    if inputs.noise.len() != g.num_layers() {
        return Err(RegularizerError::Input(format!(
            "{} noise maps, the generator has {} noise inputs",
            inputs.noise.len(),
            g.num_layers()
        )));
    }
    let wplus = latents(g, inputs)?;
    let (fake, tape) = synthesis::synthesize_taped(g, &wplus, &inputs.noise);
    let [_, _, h, w] = fake.dims();
    if inputs.path_noise.dims() != fake.dims() {
        return Err(RegularizerError::Input(format!(
            "path noise {:?} for an image {:?}",
            inputs.path_noise.dims(),
            fake.dims()
        )));
    }
    let g_image = inputs.path_noise.clone().div_scalar(((h * w) as f64).sqrt());
    let grad = synthesis::wplus_gradient(g, &tape, g_image);
    let [b, _, _] = grad.dims();
    let lengths = grad.clone().square().sum_dim(2).mean_dim(1).sqrt().reshape([b]);
    let weight = settings.path_regularize * settings.g_reg_every as f64;
    let (loss, path_mean) = path_penalty(lengths.clone(), inputs.mean_path_length, settings.decay);
    let weighted = loss.clone().mul_scalar(weight);

    // The penalty's derivative in the path lengths, on a detached copy (its own small graph).
    let leaf = lengths.clone().detach().require_grad();
    let (leaf_loss, _) = path_penalty(leaf.clone(), inputs.mean_path_length, settings.decay);
    let leaf_grads = leaf_loss.mul_scalar(weight).backward();
    let dpenalty = leaf
        .grad(&leaf_grads)
        .ok_or_else(|| RegularizerError::Readback("no gradient for the path lengths".into()))?;

    let outputs_before = (
        host(fake.detach())?,
        host(wplus.detach())?,
        host(grad.detach())?,
        host(lengths.detach())?,
        scalar(path_mean.detach())?,
        scalar(loss.detach())?,
    );
    let all = weighted.backward();
    let named = grads::parameter_gradients(g, &all).map_err(RegularizerError::Readback)?;
    let grads = TensorMap {
        tensors: named
            .tensors
            .into_iter()
            .map(|(k, v)| (grads::rosinality_generator_name(&k), v))
            .collect(),
    };
    let (fake_img, latents, grad_latents, path_lengths, mean_path_length, path_loss) = outputs_before;
    Ok(PathOutputs {
        fake_img,
        latents,
        grad_latents,
        path_lengths,
        mean_path_length,
        path_loss,
        weighted_path_loss: path_loss * weight,
        dpenalty_dpath_lengths: host(dpenalty)?,
        grad_norm: grads::gradient_norm(&grads),
        grads,
    })
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor, TensorData};

    /// burn's gradients come back outside autodiff, and asking for an autodiff device over an
    /// autodiff device gives the same single level back: a gradient cannot be differentiated
    /// again, which is why the regularisers spell their inner gradient out.
    #[test]
    fn burn_cannot_differentiate_a_gradient() {
        let ad = Device::flex().autodiff();
        let nested = ad.clone().autodiff();
        let x = Tensor::<1>::from_data(TensorData::new(vec![2.0f32], [1]), &nested).require_grad();
        let grads = x.clone().powi_scalar(3).sum().backward();
        let g = x.grad(&grads).expect("x is in the graph");
        assert!(
            !g.is_autodiff(),
            "a gradient with a graph would allow second order directly"
        );
        let v = g.into_data().try_into_vec_as::<f32>().expect("readable");
        assert!((v[0] - 12.0).abs() < 1e-5, "{v:?}");
    }
}
