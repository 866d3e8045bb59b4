//! A fine-tuning run: `train.py`'s loop body over the networks, the optimisers and the run's
//! random stream, as one [`Trainer`].
//!
//! Randomness: every iteration draws from its own Mersenne-Twister stream, seeded from the run's
//! seed and the iteration number. `train.py` keeps one global stream instead, which a resumed run
//! cannot continue (it is not saved); seeding per iteration makes a resumed run draw exactly what
//! the uninterrupted run would have drawn.
//!
//! Regularisation: R1 every `d_reg_every` and path length every `g_reg_every` iterations, as
//! `train.py`, with the second-order penalties of [`super::regularizers`]. With a weight of 0,
//! `train.py` still steps the optimiser on the all-zero gradient (Adam's step count grows and its
//! second moment decays), and so does this trainer, without evaluating the penalty.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};

use super::TrainError;
use super::ada::{ADA_UPDATE_EVERY, AdaptiveAugment, AugmentSettings};
use super::adam::{Adam, AdamHyper};
use super::augment;
use super::checkpoint::TrainingCheckpoint;
use super::data::TrainingSet;
use super::ema::{accumulate, train_py_decay};
use super::named::{Named, named_params};
use super::regularizers::{path_length_penalty, r1_penalty_augmented};
use super::step::{DAugment, PhaseDraws, d_key_of, d_step_augmented, g_step_augmented, requires_grad};
use crate::nets::stylegan2::{
    Discriminator, DiscriminatorConfig, Generator, generator_key, generator_param_order,
};
use crate::pipeline::generate::SeedStream;
use crate::weights::{TensorMap, Value, read_checkpoint};

/// `train.py`'s hyper-parameters (its argparse defaults, except the batch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainSettings {
    pub batch: usize,
    pub lr: f64,
    pub r1: f64,
    pub d_reg_every: usize,
    pub path_regularize: f64,
    pub path_batch_shrink: usize,
    pub g_reg_every: usize,
    pub mixing: f64,
    pub seed: u64,
    /// `--augment`, `--augment_p`, `--ada_target`, `--ada_length`.
    pub augment: AugmentSettings,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            batch: 4,
            lr: 0.002,
            r1: 10.0,
            d_reg_every: 16,
            path_regularize: 2.0,
            path_batch_shrink: 2,
            g_reg_every: 4,
            mixing: 0.9,
            seed: 0,
            augment: AugmentSettings::default(),
        }
    }
}

impl TrainSettings {
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |what: String| Err(TrainError::Input(what));
        if self.batch == 0 || !self.batch.is_multiple_of(self.batch.min(4)) {
            // The minibatch-stddev layer groups min(batch, 4) samples.
            return bad(format!("batch {}: use 1, 2, 3 or a multiple of 4", self.batch));
        }
        if self.d_reg_every == 0 || self.g_reg_every == 0 || self.path_batch_shrink == 0 {
            return bad("d_reg_every, g_reg_every and path_batch_shrink must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.mixing) || self.r1 < 0.0 || self.path_regularize < 0.0 {
            return bad("mixing must lie in [0, 1], r1 and path_regularize must not be negative".into());
        }
        self.augment.validate().map_err(TrainError::Input)
    }

    fn path_batch(&self) -> usize {
        (self.batch / self.path_batch_shrink).max(1)
    }
}

/// What one iteration measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Losses {
    pub iteration: u64,
    pub d_loss: f64,
    pub g_loss: f64,
    /// R1, on iterations that regularise D with a positive weight.
    pub r1_loss: Option<f64>,
    /// The path-length loss, on iterations that regularise G with a positive weight.
    pub path_loss: Option<f64>,
    pub mean_path_length: f64,
    /// The augmentation probability after this iteration (0 without `--augment`).
    pub ada_aug_p: f64,
    /// ADA's last `r_t` (the mean sign of D on the reals over its last window), when p adapts.
    pub r_t: Option<f64>,
}

/// The networks and optimisers of a run, with the state dicts they came from (their buffers,
/// noise maps and blur kernels, go back into every checkpoint unchanged, as in `train.py`).
pub struct Trainer {
    pub g: Generator,
    pub d: Discriminator,
    pub g_ema: Generator,
    pub g_optim: Adam,
    pub d_optim: Adam,
    /// The next iteration to run (`train.py`'s `i`).
    pub iteration: u64,
    pub mean_path_length: f64,
    pub settings: TrainSettings,
    /// The augmentation probability and ADA's running sums (`train.py`'s `ada_augment`).
    pub ada: AdaptiveAugment,
    pub(super) sources: Sources,
    autodiff: Device,
}

/// State dicts as read, checkpoint keys without prefix.
#[derive(Debug, Clone)]
pub(super) struct Sources {
    pub g: TensorMap,
    pub d: TensorMap,
    pub g_ema: TensorMap,
}

fn sub_state(root: &Value, name: &str) -> Option<TensorMap> {
    root.get(name)
        .map(Value::flatten_tensors)
        .filter(|t| !t.is_empty())
}

/// The iteration recorded in a checkpoint: Facecast's own entry in `args`, else `train.py`'s
/// convention of the file name (`001200.pt` → 1200).
fn saved_iteration(root: &Value, file: &Path) -> Option<u64> {
    let args = root.get("args");
    if let Some(i) = args
        .and_then(|a| a.get("facecast_iteration"))
        .and_then(Value::as_f64)
    {
        return Some(i as u64);
    }
    file.file_stem()?.to_str()?.parse().ok()
}

impl Trainer {
    /// A run starting from `file`: a `train.py` checkpoint (its `g`, `d`, `g_ema` and, when
    /// present, its optimiser states), or a generator file with `g_ema` and `d`.
    pub fn from_file(file: &Path, settings: TrainSettings, device: &Device) -> Result<Trainer, TrainError> {
        settings.validate()?;
        let root = read_checkpoint(file)?;
        let layout = |what: String| TrainError::Layout {
            file: file.to_path_buf(),
            what,
        };
        let g_ema = sub_state(&root, "g_ema").ok_or_else(|| {
            layout("no \"g_ema\" generator (expected a StyleGAN2 checkpoint from rosinality's code)".into())
        })?;
        let d = sub_state(&root, "d").ok_or_else(|| {
            layout(
                "no discriminator (\"d\"): the released FFHQ generator file ships only g_ema, and \
                 fine-tuning needs the discriminator trained with it. Pass --from a checkpoint of \
                 rosinality's train.py that holds \"d\" (e.g. its 550000.pt for FFHQ 1024, or a \
                 checkpoint of an earlier Facecast run)"
                    .into(),
            )
        })?;
        let g = sub_state(&root, "g").unwrap_or_else(|| g_ema.clone());
        let sources = Sources { g, d, g_ema };
        let has_optim = root.get("g_optim").is_some() && root.get("d_optim").is_some();
        let mut trainer = Trainer::build(sources, file, settings, device)?;
        if has_optim {
            // As `train.py --ckpt`: the optimisers continue from their saved state.
            let saved = TrainingCheckpoint::from_value(&root, file)?;
            trainer.g_optim = saved.g_optim.to_adam(&trainer.g_optim.order, device, file)?;
            trainer.d_optim = saved.d_optim.to_adam(&trainer.d_optim.order, device, file)?;
        }
        Ok(trainer)
    }

    /// Continues a run from one of its checkpoints: networks, optimisers, the iteration and the
    /// running path-length mean (which `train.py` does not save; a foreign file restarts it at 0).
    pub fn resume(file: &Path, settings: TrainSettings, device: &Device) -> Result<Trainer, TrainError> {
        let root = read_checkpoint(file)?;
        let saved = TrainingCheckpoint::from_value(&root, file)?;
        let sources = Sources {
            g: saved.g.clone(),
            d: saved.d.clone(),
            g_ema: saved.g_ema.clone(),
        };
        settings.validate()?;
        let mut trainer = Trainer::build(sources, file, settings, device)?;
        trainer.g_optim = saved.g_optim.to_adam(&trainer.g_optim.order, device, file)?;
        trainer.d_optim = saved.d_optim.to_adam(&trainer.d_optim.order, device, file)?;
        trainer.iteration = saved_iteration(&root, file).unwrap_or(0);
        let arg = |name: &str| root.get("args").and_then(|a| a.get(name)).and_then(Value::as_f64);
        trainer.mean_path_length = arg("facecast_mean_path_length").unwrap_or(0.0);
        if settings.augment.adaptive() {
            // The probability goes on from where the run stopped (`train.py` itself restarts it
            // at 0), and so do the sums of the window in progress when they were saved.
            trainer.ada.p = saved.ada_aug_p.clamp(0.0, 1.0);
            trainer.ada.sign_sum = arg("facecast_ada_sign_sum").unwrap_or(0.0);
            trainer.ada.count = arg("facecast_ada_count").unwrap_or(0.0);
            trainer.ada.calls = arg("facecast_ada_calls").unwrap_or(0.0) as u64 % ADA_UPDATE_EVERY;
        }
        Ok(trainer)
    }

    fn build(
        sources: Sources,
        file: &Path,
        settings: TrainSettings,
        device: &Device,
    ) -> Result<Trainer, TrainError> {
        let autodiff = device.clone().autodiff();
        let reader = TrainingCheckpoint {
            file: file.to_path_buf(),
            g: sources.g.clone(),
            d: sources.d.clone(),
            g_ema: sources.g_ema.clone(),
            g_optim: empty_optimizer(),
            d_optim: empty_optimizer(),
            ada_aug_p: 0.0,
        };
        let g = reader.generator(&sources.g, &autodiff)?;
        let g_ema = reader.generator(&sources.g_ema, device)?;
        // train.py's Discriminator: stddev_group 4, stddev_feat 1.
        let config = DiscriminatorConfig::from_state(&sources.d, 4, 1)?;
        let d = reader.discriminator(4, 1, &autodiff)?;
        if d.size() != g.size {
            return Err(TrainError::Layout {
                file: file.to_path_buf(),
                what: format!(
                    "the discriminator takes {} px, the generator makes {} px",
                    config.size, g.size
                ),
            });
        }
        let g_order = generator_param_order(&g);
        let d_order: Vec<String> = d.key_table().into_iter().map(|(_, key)| key).collect();
        let g_optim = Adam::new(
            AdamHyper::lazy_regularisation(settings.lr, settings.g_reg_every),
            g_order,
        );
        let d_optim = Adam::new(
            AdamHyper::lazy_regularisation(settings.lr, settings.d_reg_every),
            d_order,
        );
        Ok(Trainer {
            g,
            d,
            g_ema,
            g_optim,
            d_optim,
            iteration: 0,
            mean_path_length: 0.0,
            settings,
            ada: AdaptiveAugment::new(
                settings.augment.ada_target,
                settings.augment.ada_length,
                if settings.augment.augment {
                    settings.augment.augment_p
                } else {
                    0.0
                },
            ),
            sources,
            autodiff,
        })
    }

    /// The side of the images the generator makes.
    pub fn size(&self) -> usize {
        self.g.size
    }

    /// The stream of iteration `i` for one purpose (splitmix64 of the three, cut to 32 bits).
    fn stream(&self, purpose: u64) -> SeedStream {
        let mut x = self.settings.seed ^ self.iteration.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (purpose << 56);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        SeedStream::new((x ^ (x >> 32)) as u32)
    }

    /// The real batch of this iteration: `batch` uniform draws from the faces and their mirrors.
    pub fn draw_batch(&self, set: &TrainingSet) -> Vec<usize> {
        let mut s = self.stream(0);
        (0..self.settings.batch)
            .map(|_| (s.next_f64() * set.len() as f64) as usize % set.len().max(1))
            .collect()
    }

    fn gauss<const D: usize>(&self, s: &mut SeedStream, shape: [usize; D]) -> Tensor<D> {
        let n = shape.iter().product();
        Tensor::from_data(TensorData::new(s.gauss_f32(n), shape), &self.autodiff)
    }

    /// `mixing_noise` and `make_noise` for a batch of `b`: one or two z, the crossover, noise maps.
    fn draws(&self, s: &mut SeedStream, b: usize) -> PhaseDraws {
        let dim = self.g.style_dim;
        let n_z = if self.settings.mixing > 0.0 && s.next_f64() < self.settings.mixing {
            2
        } else {
            1
        };
        let z = (0..n_z).map(|_| self.gauss(s, [b, dim])).collect();
        // random.randint(1, n_latent − 1), inclusive.
        let n_latent = self.g.n_latent;
        let inject_index = 1 + (s.next_f64() * (n_latent - 1) as f64) as usize % (n_latent - 1).max(1);
        let mut sides = vec![4usize];
        for k in 0..self.g.to_rgbs.len() {
            sides.extend([8 << k, 8 << k]);
        }
        let noise = sides.into_iter().map(|r| self.gauss(s, [b, 1, r, r])).collect();
        PhaseDraws {
            z,
            inject_index,
            noise,
        }
    }

    /// One iteration of `train.py`'s loop on the faces of `set`.
    pub fn iteration(&mut self, set: &TrainingSet) -> Result<Losses, TrainError> {
        let settings = self.settings;
        settings.validate()?;
        let i = self.iteration;
        let real = set.batch(&self.draw_batch(set), &self.autodiff)?;
        let mut s = self.stream(1);
        let batch = settings.batch;

        let draws = self.draws(&mut s, batch);
        let real_again = real.clone().detach();
        // Augmentation draws come from their own stream, so that a run without augmentation (or
        // at p = 0, where every draw is the identity and is skipped) is the same as before.
        let mut aug_stream = self.stream(2);
        let augmenting = settings.augment.augment;
        let size = self.size();
        let mut augmentation = |p: f64| augmenting.then(|| augment::sample(&mut aug_stream, p, batch, size));
        let d_aug = match (augmentation(self.ada.p), augmentation(self.ada.p)) {
            (Some(real), Some(fake)) => Some(DAugment { real, fake }),
            _ => None,
        };
        let (g, mut d, dout) = d_step_augmented(
            self.g.clone(),
            self.d.clone(),
            &mut self.d_optim,
            real,
            &draws,
            d_aug.as_ref(),
        )?;
        if settings.augment.adaptive() {
            let preds = host(dout.real_pred.clone())?;
            self.ada.tune(&preds);
        }
        let mut r1_loss = None;
        if i.is_multiple_of(settings.d_reg_every as u64) {
            let key_of = d_key_of(&d);
            let grads = if settings.r1 > 0.0 {
                // The R1 step re-runs D, as updated by the D step, on the same real batch.
                d = requires_grad(d, true);
                // `train.py` augments the real batch afresh, with p as just tuned.
                let r1_aug = augmentation(self.ada.p);
                let out =
                    r1_penalty_augmented(&d, real_again, r1_aug.as_ref(), settings.r1, settings.d_reg_every)?;
                r1_loss = Some(scalar(out.r1_loss)?);
                out.grads
            } else {
                zero_grads(&named_params(&d, &key_of))
            };
            d = self.d_optim.step_module(d, &grads, &key_of)?;
        }

        let draws = self.draws(&mut s, batch);
        let g_aug = augmentation(self.ada.p);
        let (mut g, d, gout) = g_step_augmented(g, d, &mut self.g_optim, &draws, g_aug.as_ref())?;
        let mut path_loss = None;
        if i.is_multiple_of(settings.g_reg_every as u64) {
            let grads = if settings.path_regularize > 0.0 {
                let b = settings.path_batch();
                let draws = self.draws(&mut s, b);
                let image = [b, 3, self.size(), self.size()];
                let path_noise = self.gauss(&mut s, image);
                // `g_step` left g tracked, as the penalty's backward pass needs.
                let out = path_length_penalty(
                    &g,
                    &draws,
                    path_noise,
                    self.mean_path_length,
                    settings.path_regularize,
                    settings.g_reg_every,
                )?;
                self.mean_path_length = out.mean_path_length;
                path_loss = Some(scalar(out.path_loss)?);
                out.grads
            } else {
                zero_grads(&named_params(&g, &generator_key))
            };
            g = self.g_optim.step_module(g, &grads, &generator_key)?;
        }

        self.g_ema = accumulate(self.g_ema.clone(), &g, train_py_decay(), &generator_key)?;
        self.g = g;
        self.d = d;
        self.iteration += 1;
        Ok(Losses {
            iteration: i,
            d_loss: scalar(dout.d_loss)?,
            g_loss: scalar(gout.g_loss)?,
            r1_loss,
            path_loss,
            mean_path_length: self.mean_path_length,
            ada_aug_p: self.augment_p(),
            r_t: settings.augment.adaptive().then_some(self.ada.r_t),
        })
    }

    /// The augmentation probability in use (0 without `--augment`), `train.py`'s `ada_aug_p`.
    pub fn augment_p(&self) -> f64 {
        if self.settings.augment.augment {
            self.ada.p
        } else {
            0.0
        }
    }

    /// Where a checkpoint of this run at its current iteration goes in `dir` (`train.py`'s name).
    pub fn checkpoint_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{:06}.pt", self.iteration))
    }
}

fn empty_optimizer() -> super::checkpoint::SavedOptimizer {
    super::checkpoint::SavedOptimizer {
        hyper: AdamHyper::lazy_regularisation(0.002, 1),
        states: Default::default(),
        params: 0,
    }
}

fn zero_grads(params: &Named) -> Named {
    params.iter().map(|(k, p)| (k.clone(), p.zeros_like())).collect()
}

fn host(t: Tensor<2>) -> Result<Vec<f32>, TrainError> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .map_err(|_| TrainError::Input("D's predictions could not be read back from the device".into()))
}

fn scalar(t: Tensor<1>) -> Result<f64, TrainError> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .ok()
        .and_then(|v| v.first().copied())
        .map(f64::from)
        .ok_or_else(|| TrainError::Input("a loss could not be read back from the device".into()))
}
