//! Phase-local replay: each first-order phase from the REFERENCE state (`tolerance.modes`), with
//! the fixture's random draws, on burn's autodiff.

use burn::tensor::{Device, Tensor};

use super::{Report, TrainingCheckpoint};
use crate::parity::ParityError;
use crate::pipeline::generator_training::named::Named;
use crate::pipeline::generator_training::step::{
    PhaseDraws, d_step_grads, g_step_grads, generate, requires_grad,
};
use crate::weights::TensorMap;

/// `in.<phase>.z`, `.inject_index` and `.noise.NN` as the generator's inputs.
fn draws(report: &Report, phase: &str, device: &Device) -> Result<PhaseDraws, ParityError> {
    let fx = report.fx;
    let z = fx.tensor::<3>(&format!("in.{phase}.z"), device)?;
    let [n, b, dim] = z.dims();
    let z = (0..n)
        .map(|i| z.clone().narrow(0, i, 1).reshape([b, dim]))
        .collect();
    let inject = fx.raw(&format!("in.{phase}.inject_index"))?.to_f32();
    let inject_index = inject.first().map_or(0, |&v| v.round() as usize);
    let mut names = fx.names_with_prefix(&format!("in.{phase}.noise."));
    names.sort();
    let noise = names
        .iter()
        .map(|n| fx.tensor::<4>(n, device))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PhaseDraws {
        z,
        inject_index,
        noise,
    })
}

/// A state dict stored in io.safetensors under `prefix.` (e.g. `final.d`).
fn io_state(report: &Report, prefix: &str) -> TensorMap {
    report.fx.io.sub(prefix)
}

/// `sqrt(Σ grad²)` accumulated in f64, as the fixture's `grad_norm`.
fn grad_norm(grads: &Named) -> Result<f32, ParityError> {
    let mut sum = 0.0f64;
    for g in grads.values() {
        let values = g
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| ParityError::Network(format!("cannot read a gradient: {e:?}")))?;
        sum += values.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
    }
    Ok(sum.sqrt() as f32)
}

fn check_grads(report: &mut Report, phase: &str, grads: &Named) -> Result<(), ParityError> {
    for (key, g) in grads {
        report.check(&format!("{phase}.grad.{key}"), g.clone());
    }
    report.check_values(&format!("{phase}.grad_norm"), &[grad_norm(grads)?]);
    Ok(())
}

pub(super) fn run(
    report: &mut Report,
    ckpt: &TrainingCheckpoint,
    device: &Device,
) -> Result<(), ParityError> {
    let fx = report.fx;
    let ad = device.clone().autodiff();
    let group = fx.config_usize("stddev_group")?;
    let feat = fx.config_usize("stddev_feat")?;
    let real = fx.tensor::<4>("in.real_img", &ad)?;

    // D step from weights.pth (d and g).
    let g = ckpt.generator(&ckpt.g, &ad)?;
    let d = ckpt.discriminator(group, feat, &ad)?;
    let d_draws = draws(report, "d_step", &ad)?;
    let (_, _, out) = d_step_grads(g.clone(), d, real.clone(), &d_draws)?;
    report.check("d_step.fake_img", out.fake_img);
    report.check("d_step.fake_pred", out.fake_pred);
    report.check("d_step.real_pred", out.real_pred);
    report.check("d_step.d_loss", out.d_loss);
    check_grads(report, "d_step", &out.grads)?;

    // The R1 step's first-order part: D(real) with d := d_step.params_after.*.
    let d_after = ckpt.discriminator(group, feat, &ad)?.load(
        &io_state(report, "d_step.params_after"),
        &fx.path("io.safetensors"),
        "d_step.params_after.",
    )?;
    let real_pred = requires_grad(d_after, false).forward(real)?;
    report.check("r1_step.real_pred", real_pred.inner());

    // G step from weights.pth's g, with d := final.d.*.
    let d_final = ckpt.discriminator(group, feat, &ad)?.load(
        &io_state(report, "final.d"),
        &fx.path("io.safetensors"),
        "final.d.",
    )?;
    let g_draws = draws(report, "g_step", &ad)?;
    let (_, _, out) = g_step_grads(g, d_final, &g_draws)?;
    report.check("g_step.fake_img", out.fake_img);
    report.check("g_step.fake_pred", out.fake_pred);
    report.check("g_step.g_loss", out.g_loss);
    check_grads(report, "g_step", &out.grads)?;

    // The path step's forward: G with g := g_step.params_after.*, returning its W+.
    let mut g_after_state = io_state(report, "g_step.params_after");
    // The generator is built from its own shapes, so the blur kernel comes from weights.pth.
    for (key, t) in &ckpt.g.tensors {
        if key.ends_with(".kernel") {
            g_after_state.tensors.insert(key.clone(), t.clone());
        }
    }
    let g_after = requires_grad(ckpt.generator(&g_after_state, &ad)?, false);
    let path_draws = draws(report, "path_step", &ad)?;
    let (fake, latents): (Tensor<4>, Tensor<3>) = generate(&g_after, &path_draws)?;
    report.check("path_step.fake_img", fake.inner());
    report.check("path_step.latents", latents.inner());
    Ok(())
}
