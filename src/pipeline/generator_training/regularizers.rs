//! The lazy regularisers of rosinality's `train.py`, which differentiate through a gradient:
//! path-length regularisation of the generator (`g_path_regularize`) and, with the
//! discriminator, R1 (`d_r1_loss`).
//!
//! burn 0.22 cannot take a gradient of a gradient (no `create_graph`, and an autodiff device
//! cannot wrap another: see the tests below), so the inner gradient is written out layer by layer
//! as ordinary differentiable operations ([`vjp`], [`synthesis`], [`discriminator`]); one
//! first-order backward pass
//! over the penalty built on it gives the exact second-order parameter gradients.

pub mod discriminator;
pub mod synthesis;
pub mod vjp;

#[cfg(test)]
mod testing;

use burn::tensor::Tensor;

use super::TrainError;
use super::augment::Augmentation;
use super::named::{Named, named_grads};
use super::step::{PhaseDraws, d_key_of};
use crate::nets::stylegan2::{Discriminator, Generator, generator_key};

/// `g_path_regularize`'s running-mean decay (a default argument `train.py` never changes).
pub const PATH_LENGTH_DECAY: f64 = 0.01;

/// What the R1 step computes. Values are detached; `grads` holds every D parameter by
/// checkpoint key, zeros for those R1 does not reach (`final_linear.1.bias`, and the biases after
/// the minibatch stddev, whose leaky ReLU has no second derivative).
#[derive(Debug, Clone)]
pub struct R1Output {
    /// `D(real_img)` `[B, 1]`.
    pub real_pred: Tensor<2>,
    /// `∂real_pred.sum()/∂real_img` `[B, 3, S, S]`.
    pub grad_real: Tensor<4>,
    /// `grad_real².reshape(B, −1).sum(1).mean()`.
    pub r1_loss: Tensor<1>,
    /// `r1/2 · r1_loss · d_reg_every`, the loss whose gradient is taken.
    pub weighted_loss: Tensor<1>,
    pub grads: Named,
}

/// `train.py`'s R1 step on `d` (on an autodiff device, its parameters requiring gradients): the
/// prediction on the real batch, the gradient of its sum with respect to the images, R1, and
/// the gradient of the weighted R1 with respect to every parameter of `d`.
pub fn r1_penalty(
    d: &Discriminator,
    real_img: Tensor<4>,
    r1: f64,
    d_reg_every: usize,
) -> Result<R1Output, TrainError> {
    r1_penalty_augmented(d, real_img, None, r1, d_reg_every)
}

/// [`r1_penalty`] under `train.py --augment`: D sees `augment.apply(real_img)`, and, as
/// `train.py` sets `real_img.requires_grad` before augmenting, the gradient R1 penalises is taken
/// with respect to the image *before* augmentation: the input gradient at the augmented image
/// carried back through the augmentation's transpose ([`Augmentation::adjoint`], a scatter and
/// a matrix product, both differentiable, so the second-order route stays exact). `real_pred`
/// is D's prediction on the augmented batch.
pub fn r1_penalty_augmented(
    d: &Discriminator,
    real_img: Tensor<4>,
    augment: Option<&Augmentation>,
    r1: f64,
    d_reg_every: usize,
) -> Result<R1Output, TrainError> {
    require_autodiff(&d.final_out.weight.val(), "discriminator")?;
    // Checks the shape and the stddev grouping the same way the plain forward pass does.
    let [batch, _, _, _] = real_img.dims();
    let group = batch.min(d.stddev_group);
    if batch == 0 || !batch.is_multiple_of(group) || real_img.dims()[1..] != [3, d.size(), d.size()] {
        return Err(TrainError::Input(format!(
            "R1 on a batch {:?}: the discriminator takes [B, 3, {s}, {s}] with B a multiple of {group}",
            real_img.dims(),
            s = d.size()
        )));
    }
    let real_in = match augment {
        Some(a) => a.apply(real_img.detach())?.detach(),
        None => real_img.detach(),
    };
    let (real_pred, tape) = discriminator::discriminate_taped(d, real_in);
    let grad_in = discriminator::input_gradient(d, &tape);
    let grad_real = match augment {
        Some(a) => a.adjoint(grad_in)?,
        None => grad_in,
    };
    let r1_loss = grad_real
        .clone()
        .square()
        .reshape([batch as i32, -1])
        .sum_dim(1)
        .mean();
    let weighted = r1_loss.clone().mul_scalar(r1 / 2.0 * d_reg_every as f64);
    let all = weighted.backward();
    let grads = named_grads(d, &all, &d_key_of(d));
    Ok(R1Output {
        real_pred: real_pred.inner(),
        grad_real: grad_real.inner(),
        r1_loss: r1_loss.inner(),
        weighted_loss: weighted.inner(),
        grads,
    })
}

/// What the path-length step computes. Values are detached; `grads` holds every G parameter by
/// checkpoint key, zeros for those the penalty does not reach (the ToRGB biases).
#[derive(Debug, Clone)]
pub struct PathOutput {
    /// `G(draws)` `[b, 3, S, S]`.
    pub fake_img: Tensor<4>,
    /// The W+ the gradient is taken against `[b, n_latent, dim]`.
    pub latents: Tensor<3>,
    /// `∂(fake·noise/√(HW)).sum()/∂latents`.
    pub grad_latents: Tensor<3>,
    /// `sqrt(grad_latents².sum(2).mean(1))` `[b]`.
    pub path_lengths: Tensor<1>,
    /// The running mean to carry to the next regularised iteration.
    pub mean_path_length: f64,
    /// `(path_lengths − path_mean)².mean()` with `path_mean` not detached (trap 9).
    pub path_loss: Tensor<1>,
    /// `path_regularize · g_reg_every · path_loss`, the loss whose gradient is taken.
    pub weighted_path_loss: Tensor<1>,
    /// `∂weighted_path_loss/∂path_lengths`, the undetached mean's share included.
    pub dpenalty_dpath_lengths: Tensor<1>,
    pub grads: Named,
}

fn require_autodiff(t: &Tensor<2>, what: &str) -> Result<(), TrainError> {
    if t.is_autodiff() {
        Ok(())
    } else {
        Err(TrainError::Input(format!(
            "the {what} must be on an autodiff device"
        )))
    }
}

/// `(path_lengths − path_mean)²` averaged, with `path_mean = mean + decay·(mean(pl) − mean)` left
/// undetached (the gradient also flows through `mean(pl)`). Returns the loss and the mean.
fn path_penalty(path_lengths: Tensor<1>, mean: f64) -> (Tensor<1>, Tensor<1>) {
    let path_mean = path_lengths
        .clone()
        .mean()
        .sub_scalar(mean)
        .mul_scalar(PATH_LENGTH_DECAY)
        .add_scalar(mean);
    let loss = (path_lengths - path_mean.clone()).square().mean();
    (loss, path_mean)
}

/// W+ from the draws: one z broadcast, or two mixed at `inject_index`.
fn latents(g: &Generator, draws: &PhaseDraws) -> Result<Tensor<3>, TrainError> {
    match draws.z.as_slice() {
        [z] => Ok(g.broadcast(g.mapping(z.clone()))),
        [z1, z2] => Ok(g.mix(g.mapping(z1.clone()), g.mapping(z2.clone()), draws.inject_index)?),
        other => Err(TrainError::Input(format!(
            "{} latent batches given; mixing_noise makes one or two",
            other.len()
        ))),
    }
}

/// `train.py`'s path-length step on `g` (on an autodiff device, its parameters requiring
/// gradients): the image, `grad_latents`, the path lengths and their penalty, and the gradient of
/// the weighted penalty with respect to every parameter of `g`. `path_noise` is the raw
/// `randn_like(fake)`; the division by `√(H·W)` happens here.
pub fn path_length_penalty(
    g: &Generator,
    draws: &PhaseDraws,
    path_noise: Tensor<4>,
    mean_path_length: f64,
    path_regularize: f64,
    g_reg_every: usize,
) -> Result<PathOutput, TrainError> {
    require_autodiff(&g.style[0].weight.val(), "generator")?;
    if draws.noise.len() != g.num_layers() {
        return Err(TrainError::Input(format!(
            "{} noise maps, the generator has {} noise inputs",
            draws.noise.len(),
            g.num_layers()
        )));
    }
    let wplus = latents(g, draws)?;
    let (fake, tape) = synthesis::synthesize_taped(g, &wplus, &draws.noise);
    let [_, _, h, w] = fake.dims();
    if path_noise.dims() != fake.dims() {
        return Err(TrainError::Input(format!(
            "path noise {:?} for an image {:?}",
            path_noise.dims(),
            fake.dims()
        )));
    }
    let g_image = path_noise.div_scalar(((h * w) as f64).sqrt());
    let grad = synthesis::wplus_gradient(g, &tape, g_image);
    let [b, _, _] = grad.dims();
    let lengths = grad.clone().square().sum_dim(2).mean_dim(1).sqrt().reshape([b]);
    let weight = path_regularize * g_reg_every as f64;
    let (loss, path_mean) = path_penalty(lengths.clone(), mean_path_length);
    let weighted = loss.clone().mul_scalar(weight);

    // The penalty's derivative in the path lengths, on a detached copy (its own small graph).
    let leaf = lengths.clone().detach().require_grad();
    let (leaf_loss, _) = path_penalty(leaf.clone(), mean_path_length);
    let leaf_grads = leaf_loss.mul_scalar(weight).backward();
    let dpenalty = leaf
        .grad(&leaf_grads)
        .ok_or_else(|| TrainError::Input("the path lengths took no part in their penalty".into()))?;
    let mean = path_mean
        .inner()
        .into_data()
        .try_into_vec_as::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .ok_or_else(|| TrainError::Input("the path mean could not be read back".into()))?;

    let all = weighted.backward();
    let grads = named_grads(g, &all, &generator_key);
    Ok(PathOutput {
        fake_img: fake.inner(),
        latents: wplus.inner(),
        grad_latents: grad.inner(),
        path_lengths: lengths.inner(),
        mean_path_length: mean as f64,
        path_loss: loss.inner(),
        weighted_path_loss: weighted.inner(),
        dpenalty_dpath_lengths: dpenalty,
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
