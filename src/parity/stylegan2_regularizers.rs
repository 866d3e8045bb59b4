//! The `stylegan2_train` fixture's second-order phases, replayed phase-locally (each from the
//! reference state, `meta.json`'s `phase_local` mode): the R1 step from
//! `d := d_step.params_after.*` and the path-length step from `g := g_step.params_after.*`.
//! Results come back on the host under the fixture's own key names, for `check-fixture` to
//! compare with the tolerance groups.

use burn::tensor::{Device, Tensor};

use super::{Fixture, ParityError};
use crate::nets::stylegan2::{Discriminator, DiscriminatorConfig, StyleGan2Config, checkpoint};
use crate::pipeline::generator_training::named::Named;
use crate::pipeline::generator_training::regularizers::{path_length_penalty, r1_penalty};
use crate::pipeline::generator_training::step::{PhaseDraws, requires_grad};
use crate::weights::{RawTensor, TensorMap};

fn scalar(fx: &Fixture, name: &str) -> Result<f64, ParityError> {
    fx.raw(name)?
        .to_f32()
        .first()
        .map(|&v| v as f64)
        .ok_or_else(|| ParityError::Network(format!("{name} is empty")))
}

/// `config` with one network's widths (`channels_override.g` / `.d`) as the channel map.
fn network_config(fx: &Fixture, network: &str) -> Result<serde_json::Value, ParityError> {
    let mut config = fx.config().clone();
    let widths = config["channels_override"][network].clone();
    if !widths.is_object() {
        return Err(ParityError::Meta {
            dir: fx.dir.clone(),
            field: format!("config.channels_override.{network}"),
        });
    }
    config["channels_override"] = widths;
    Ok(config)
}

fn host<const D: usize>(t: Tensor<D>) -> Result<RawTensor, ParityError> {
    let shape = t.dims().to_vec();
    let data = t
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| ParityError::Network(format!("cannot read a result: {e:?}")))?;
    Ok(RawTensor::f32(shape, data))
}

/// Outputs under `phase.` plus `phase.grad.<key>` and `phase.grad_norm` (f64 accumulation).
struct Sink {
    phase: &'static str,
    map: TensorMap,
}

impl Sink {
    fn put<const D: usize>(&mut self, key: &str, t: Tensor<D>) -> Result<(), ParityError> {
        let raw = host(t)?;
        self.map.tensors.insert(format!("{}.{key}", self.phase), raw);
        Ok(())
    }

    fn grads(&mut self, grads: Named) -> Result<(), ParityError> {
        let mut sum = 0.0f64;
        for (key, g) in grads {
            let raw = host(g)?;
            sum += raw.to_f32().iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
            self.map.tensors.insert(format!("{}.grad.{key}", self.phase), raw);
        }
        let norm = RawTensor::f32(vec![1], vec![sum.sqrt() as f32]);
        self.map.tensors.insert(format!("{}.grad_norm", self.phase), norm);
        Ok(())
    }
}

/// The draws of `in.path_step.*`.
fn path_draws(fx: &Fixture, device: &Device) -> Result<PhaseDraws, ParityError> {
    let z = fx.tensor::<3>("in.path_step.z", device)?;
    let [n, b, dim] = z.dims();
    let z = (0..n)
        .map(|i| z.clone().narrow(0, i, 1).reshape([b, dim]))
        .collect();
    let mut names = fx.names_with_prefix("in.path_step.noise.");
    names.sort();
    let noise = names
        .iter()
        .map(|n| fx.tensor::<4>(n, device))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PhaseDraws {
        z,
        inject_index: scalar(fx, "in.path_step.inject_index")?.round() as usize,
        noise,
    })
}

/// `path_step` from `g := g_step.params_after.*`: every key the phase writes
/// (`path_step.fake_img`, `.latents`, `.grad_latents`, `.path_lengths`, `.mean_path_length`,
/// `.path_loss`, `.weighted_path_loss`, `.dpenalty_dpath_lengths`, `.grad.*`, `.grad_norm`).
pub fn path_step(fx: &Fixture, device: &Device) -> Result<TensorMap, ParityError> {
    let ad = device.clone().autodiff();
    let config = StyleGan2Config::from_json(&network_config(fx, "g")?)?;
    let state = fx.io.sub("g_step.params_after");
    let file = fx.path("io.safetensors");
    let g = requires_grad(
        checkpoint::from_tensors(&state, &file, &config, &ad)?.generator,
        true,
    );
    let out = path_length_penalty(
        &g,
        &path_draws(fx, &ad)?,
        fx.tensor::<4>("in.path_step.path_noise", &ad)?,
        scalar(fx, "in.mean_path_length")?,
        fx.config_f64("path_regularize")?,
        fx.config_usize("g_reg_every")?,
    )?;
    let mut sink = Sink {
        phase: "path_step",
        map: TensorMap::default(),
    };
    sink.put("fake_img", out.fake_img)?;
    sink.put("latents", out.latents)?;
    sink.put("grad_latents", out.grad_latents)?;
    sink.put("path_lengths", out.path_lengths)?;
    sink.put(
        "mean_path_length",
        Tensor::<1>::from_floats([out.mean_path_length as f32], device),
    )?;
    sink.put("path_loss", out.path_loss)?;
    sink.put("weighted_path_loss", out.weighted_path_loss)?;
    sink.put("dpenalty_dpath_lengths", out.dpenalty_dpath_lengths)?;
    sink.grads(out.grads)?;
    Ok(sink.map)
}

/// `r1_step` from `d := d_step.params_after.*`: `r1_step.real_pred`, `.grad_real`, `.r1_loss`,
/// `.weighted_loss`, `.grad.*`, `.grad_norm`.
pub fn r1_step(fx: &Fixture, device: &Device) -> Result<TensorMap, ParityError> {
    let ad = device.clone().autodiff();
    let state = fx.io.sub("d_step.params_after");
    let config = DiscriminatorConfig::from_state(
        &state,
        fx.config_usize("stddev_group")?,
        fx.config_usize("stddev_feat")?,
    )?;
    let d =
        Discriminator::new(&config, &ad)?.load(&state, &fx.path("io.safetensors"), "d_step.params_after.")?;
    let d = requires_grad(d, true);
    let out = r1_penalty(
        &d,
        fx.tensor::<4>("in.real_img", &ad)?,
        fx.config_f64("r1")?,
        fx.config_usize("d_reg_every")?,
    )?;
    let mut sink = Sink {
        phase: "r1_step",
        map: TensorMap::default(),
    };
    sink.put("real_pred", out.real_pred)?;
    sink.put("grad_real", out.grad_real)?;
    sink.put("r1_loss", out.r1_loss)?;
    sink.put("weighted_loss", out.weighted_loss)?;
    sink.grads(out.grads)?;
    Ok(sink.map)
}
