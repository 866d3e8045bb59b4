//! The first-order phases of one `train.py` iteration, on burn's autodiff.
//!
//! The modules live on an autodiff device (`device.clone().autodiff()`); which of them records a
//! graph is switched per phase, as `train.py`'s `requires_grad(module, flag)` does: the
//! discriminator step runs the generator untracked (the fake batch is a constant), the generator
//! step runs the discriminator untracked (no gradient is kept for its parameters, but the
//! gradient flows through it into the generator).
//!
//! One whole iteration, in `train.py`'s order:
//! 1. [`d_step`]: `d_logistic_loss(D(real), D(G(z)))`, then `d_optim` steps.
//! 2. every `d_reg_every` iterations, the R1 step: `regularizers::r1_penalty`, then `d_optim`
//!    steps again, with D as updated by step 1.
//! 3. [`g_step`]: `g_nonsaturating_loss(D(G(z)))` with D after step 2, then `g_optim` steps.
//! 4. every `g_reg_every` iterations, the path-length step: `regularizers::path_length_penalty`,
//!    with G after step 3, then `g_optim` steps again.
//! 5. `ema::accumulate(g_ema, g, ema::train_py_decay())`.
//!
//! # The regularisers' interface (`super::regularizers`, written beside this module)
//!
//! Both need gradients of gradients, and both hand back what this module needs to step Adam:
//! a gradient for EVERY parameter (zeros included: trap 2) by checkpoint key, plus the values
//! the parity check compares.
//!
//! ```text
//! pub struct R1Output {
//!     pub real_pred: Tensor<2>,      // D(real_img) with the D given, [B, 1]
//!     pub grad_real: Tensor<4>,      // d(real_pred.sum())/d(real_img), [B, 3, S, S]
//!     pub r1_loss: Tensor<1>,        // grad_real².reshape(B, −1).sum(1).mean()
//!     pub weighted_loss: Tensor<1>,  // r1/2 · r1_loss · d_reg_every (+ 0·real_pred[0])
//!     pub grads: Named,              // d(weighted_loss)/d(every D parameter)
//! }
//! pub fn r1_penalty(d: &Discriminator, real_img: Tensor<4>, r1: f64, d_reg_every: usize)
//!     -> Result<R1Output, TrainError>;
//!
//! pub struct PathOutput {
//!     pub fake_img: Tensor<4>,       // G(draws), [b, 3, S, S]
//!     pub latents: Tensor<3>,        // the W+ the gradient is taken against, [b, n_latent, dim]
//!     pub grad_latents: Tensor<3>,
//!     pub path_lengths: Tensor<1>,   // [b]
//!     pub mean_path_length: f64,     // carried to the next regularised iteration (detached)
//!     pub path_loss: Tensor<1>,      // path_mean NOT detached inside (trap 9)
//!     pub weighted_path_loss: Tensor<1>, // path_regularize · g_reg_every · path_loss (+ 0·fake[0,0,0,0])
//!     pub grads: Named,              // d(weighted_path_loss)/d(every G parameter)
//! }
//! pub fn path_length_penalty(
//!     g: &Generator,
//!     draws: &PhaseDraws,            // z, inject_index, noise of the path batch
//!     path_noise: Tensor<4>,         // the raw N(0,1) of randn_like(fake), divided by √(H·W) inside
//!     mean_path_length: f64,
//!     path_regularize: f64,
//!     g_reg_every: usize,
//! ) -> Result<PathOutput, TrainError>;
//! ```
//! The caller toggles `requires_grad` before calling (D tracked for R1, G tracked for the path
//! length) and steps the optimiser with `grads`, exactly as [`d_step`] and [`g_step`] do.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::Tensor;

use super::TrainError;
use super::adam::Adam;
use super::augment::Augmentation;
use super::losses::{d_logistic_loss, g_nonsaturating_loss};
use super::named::{Named, named_grads};
use crate::nets::stylegan2::{Discriminator, Generator, Noise, generator_key};

/// The random draws of one phase, as `train.py` makes them (or as the fixture replays them).
#[derive(Debug, Clone)]
pub struct PhaseDraws {
    /// `mixing_noise`: one z `[B, style_dim]`, or two when style mixing was taken.
    pub z: Vec<Tensor<2>>,
    /// The crossover row with two z (W+ rows `[0, k)` from the first); unused with one.
    pub inject_index: usize,
    /// One map per StyledConv, `[B, 1, r, r]` (`randomize_noise=True` draws them per call).
    pub noise: Vec<Tensor<4>>,
}

/// `requires_grad(module, flag)`.
pub fn requires_grad<M: Module>(module: M, flag: bool) -> M {
    module.set_require_grad(flag)
}

/// The translation from the discriminator's module paths to its checkpoint keys.
pub fn d_key_of(d: &Discriminator) -> impl Fn(&str) -> String + use<> {
    let table: BTreeMap<String, String> = d.key_table().into_iter().collect();
    move |path: &str| table.get(path).cloned().unwrap_or_else(|| path.to_string())
}

/// `G(styles, inject_index, noise)` → (image, W+), through the mapping network.
pub fn generate(g: &Generator, draws: &PhaseDraws) -> Result<(Tensor<4>, Tensor<3>), TrainError> {
    let latents = match draws.z.as_slice() {
        [z] => g.broadcast(g.mapping(z.clone())),
        [z1, z2] => g.mix(g.mapping(z1.clone()), g.mapping(z2.clone()), draws.inject_index)?,
        other => {
            return Err(TrainError::Input(format!(
                "{} latent batches given; mixing_noise makes one or two",
                other.len()
            )));
        }
    };
    let image = g.synthesize_wplus(latents.clone(), &Noise::Given(draws.noise.clone()))?;
    Ok((image, latents))
}

/// What the discriminator step computed (values detached from the graph).
#[derive(Debug, Clone)]
pub struct DStepOutput {
    pub fake_img: Tensor<4>,
    pub fake_pred: Tensor<2>,
    pub real_pred: Tensor<2>,
    pub d_loss: Tensor<1>,
    /// `d(d_loss)/d(every D parameter)` by checkpoint key.
    pub grads: Named,
}

/// The discriminator step's forward and backward, without the optimiser. Returns the modules
/// with `requires_grad(g, false)`, `requires_grad(d, true)`.
pub fn d_step_grads(
    g: Generator,
    d: Discriminator,
    real_img: Tensor<4>,
    draws: &PhaseDraws,
) -> Result<(Generator, Discriminator, DStepOutput), TrainError> {
    d_step_grads_augmented(g, d, real_img, draws, None)
}

/// The augmentations of a discriminator step (`train.py --augment`): one drawn for the real
/// batch, another for the fake one.
#[derive(Debug, Clone)]
pub struct DAugment {
    pub real: Augmentation,
    pub fake: Augmentation,
}

/// [`d_step_grads`] with the real and fake batches augmented before D (when `augment` is
/// given), as `train.py --augment` does. `fake_img` in the output is the generator's image,
/// before augmentation.
pub fn d_step_grads_augmented(
    g: Generator,
    d: Discriminator,
    real_img: Tensor<4>,
    draws: &PhaseDraws,
    augment: Option<&DAugment>,
) -> Result<(Generator, Discriminator, DStepOutput), TrainError> {
    let g = requires_grad(g, false);
    let d = requires_grad(d, true);
    let (fake, _) = generate(&g, draws)?;
    let (real_in, fake_in) = match augment {
        Some(a) => (a.real.apply(real_img)?, a.fake.apply(fake.clone())?),
        None => (real_img, fake.clone()),
    };
    let fake_pred = d.forward(fake_in)?;
    // A separate call for the real batch: the minibatch-stddev groups never mix real and fake.
    let real_pred = d.forward(real_in)?;
    let d_loss = d_logistic_loss(real_pred.clone(), fake_pred.clone());
    let grads = d_loss.backward();
    let named = named_grads(&d, &grads, &d_key_of(&d));
    let out = DStepOutput {
        fake_img: fake.inner(),
        fake_pred: fake_pred.inner(),
        real_pred: real_pred.inner(),
        d_loss: d_loss.inner(),
        grads: named,
    };
    Ok((g, d, out))
}

/// The discriminator step: gradients, then `d_optim.step()`.
pub fn d_step(
    g: Generator,
    d: Discriminator,
    d_optim: &mut Adam,
    real_img: Tensor<4>,
    draws: &PhaseDraws,
) -> Result<(Generator, Discriminator, DStepOutput), TrainError> {
    d_step_augmented(g, d, d_optim, real_img, draws, None)
}

/// [`d_step`] with `train.py --augment`'s augmentation of both batches.
pub fn d_step_augmented(
    g: Generator,
    d: Discriminator,
    d_optim: &mut Adam,
    real_img: Tensor<4>,
    draws: &PhaseDraws,
    augment: Option<&DAugment>,
) -> Result<(Generator, Discriminator, DStepOutput), TrainError> {
    let (g, d, out) = d_step_grads_augmented(g, d, real_img, draws, augment)?;
    let key_of = d_key_of(&d);
    let d = d_optim.step_module(d, &out.grads, &key_of)?;
    Ok((g, d, out))
}

/// What the generator step computed (values detached from the graph).
#[derive(Debug, Clone)]
pub struct GStepOutput {
    pub fake_img: Tensor<4>,
    pub fake_pred: Tensor<2>,
    pub g_loss: Tensor<1>,
    /// `d(g_loss)/d(every G parameter)` by checkpoint key.
    pub grads: Named,
}

/// The generator step's forward and backward, without the optimiser. Returns the modules with
/// `requires_grad(g, true)`, `requires_grad(d, false)`.
pub fn g_step_grads(
    g: Generator,
    d: Discriminator,
    draws: &PhaseDraws,
) -> Result<(Generator, Discriminator, GStepOutput), TrainError> {
    g_step_grads_augmented(g, d, draws, None)
}

/// [`g_step_grads`] with the fake batch augmented before D (the gradient flows through the
/// augmentation into the generator). `fake_img` in the output is before augmentation.
pub fn g_step_grads_augmented(
    g: Generator,
    d: Discriminator,
    draws: &PhaseDraws,
    augment: Option<&Augmentation>,
) -> Result<(Generator, Discriminator, GStepOutput), TrainError> {
    let g = requires_grad(g, true);
    let d = requires_grad(d, false);
    let (fake, _) = generate(&g, draws)?;
    let fake_in = match augment {
        Some(a) => a.apply(fake.clone())?,
        None => fake.clone(),
    };
    let fake_pred = d.forward(fake_in)?;
    let g_loss = g_nonsaturating_loss(fake_pred.clone());
    let grads = g_loss.backward();
    let named = named_grads(&g, &grads, &generator_key);
    let out = GStepOutput {
        fake_img: fake.inner(),
        fake_pred: fake_pred.inner(),
        g_loss: g_loss.inner(),
        grads: named,
    };
    Ok((g, d, out))
}

/// The generator step: gradients, then `g_optim.step()`.
pub fn g_step(
    g: Generator,
    d: Discriminator,
    g_optim: &mut Adam,
    draws: &PhaseDraws,
) -> Result<(Generator, Discriminator, GStepOutput), TrainError> {
    g_step_augmented(g, d, g_optim, draws, None)
}

/// [`g_step`] with `train.py --augment`'s augmentation of the fake batch.
pub fn g_step_augmented(
    g: Generator,
    d: Discriminator,
    g_optim: &mut Adam,
    draws: &PhaseDraws,
    augment: Option<&Augmentation>,
) -> Result<(Generator, Discriminator, GStepOutput), TrainError> {
    let (g, d, out) = g_step_grads_augmented(g, d, draws, augment)?;
    let g = g_optim.step_module(g, &out.grads, &generator_key)?;
    Ok((g, d, out))
}
