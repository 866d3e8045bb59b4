//! The isolated optimiser chain: the REFERENCE gradients fed to our Adam and EMA, from
//! weights.pth's parameters and optimiser state, through both optimiser steps of each network and
//! the EMA (`tolerance.modes.isolated_optimizer`).

use burn::tensor::{Device, Tensor, TensorData};

use super::{Report, TrainingCheckpoint};
use crate::parity::{CaseResult, ParityError};
use crate::pipeline::generator_training::adam::{Adam, AdamHyper};
use crate::pipeline::generator_training::ema::{accumulate_named, train_py_decay};
use crate::pipeline::generator_training::named::Named;
use crate::weights::TensorMap;

/// The tensors of `state` named in `order`, flattened on `device`.
fn named(state: &TensorMap, order: &[String], what: &str, device: &Device) -> Result<Named, ParityError> {
    order
        .iter()
        .map(|key| {
            let raw = state
                .get(key)
                .ok_or_else(|| ParityError::Network(format!("{what} has no {key}")))?;
            let t = Tensor::<1>::from_data(TensorData::new(raw.to_f32(), [raw.numel()]), device);
            Ok((key.clone(), t))
        })
        .collect()
}

/// The fixture's gradients `<phase>.grad.<key>` for every key of `order`.
fn reference_grads(
    report: &Report,
    phase: &str,
    order: &[String],
    device: &Device,
) -> Result<Named, ParityError> {
    named(
        &report.fx.io.sub(&format!("{phase}.grad")),
        order,
        &format!("{phase}.grad"),
        device,
    )
}

fn check_named(report: &mut Report, prefix: &str, params: &Named) {
    for (key, p) in params {
        report.check(&format!("{prefix}.{key}"), p.clone());
    }
}

/// `final.<name>.exp_avg_sq.*` and `final.<name>.step`.
fn check_optimizer(report: &mut Report, name: &str, adam: &Adam) {
    for key in &adam.order {
        match adam.state.get(key) {
            Some(s) => report.check(&format!("final.{name}.exp_avg_sq.{key}"), s.exp_avg_sq.clone()),
            None => {
                let full = format!("final.{name}.exp_avg_sq.{key}");
                let case = CaseResult::fail(&full, "no optimiser state after two steps");
                report.push(&full, case);
            }
        }
    }
    let steps: Vec<u64> = adam
        .order
        .iter()
        .filter_map(|k| adam.state.get(k).map(|s| s.step))
        .collect();
    let all_same = steps.len() == adam.order.len() && steps.windows(2).all(|w| w[0] == w[1]);
    let key = format!("final.{name}.step");
    if all_same && let Some(&step) = steps.first() {
        report.check_values(&key, &[step as f32]);
    } else {
        report.push(
            &key,
            CaseResult::fail(&key, format!("parameters disagree on the step count: {steps:?}")),
        );
    }
}

/// The hyper-parameters saved in weights.pth against `train.py`'s lazy-regularisation formula and
/// meta.json's `config.<name>`.
fn check_hyper(
    report: &mut Report,
    name: &str,
    saved: AdamHyper,
    reg_every_key: &str,
) -> Result<(), ParityError> {
    let fx = report.fx;
    let formula = AdamHyper::lazy_regularisation(fx.config_f64("lr")?, fx.config_usize(reg_every_key)?);
    let meta = &fx.config()[name];
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1e-12);
    let betas = meta["betas"].as_array();
    let meta_beta = |i: usize| {
        betas
            .and_then(|b| b.get(i))
            .and_then(|v| v.as_f64())
            .unwrap_or(f64::NAN)
    };
    let ok = close(saved.lr, formula.lr)
        && close(saved.beta2, formula.beta2)
        && saved.beta1 == formula.beta1
        && close(saved.eps, formula.eps)
        && close(meta["lr"].as_f64().unwrap_or(f64::NAN), formula.lr)
        && meta_beta(0) == formula.beta1
        && close(meta_beta(1), formula.beta2);
    report.assert(
        &format!("{name}.hyper_parameters"),
        ok,
        format!("saved {saved:?}, lazy-regularisation formula {formula:?}, meta.json {meta}"),
    );
    Ok(())
}

pub(super) fn run(
    report: &mut Report,
    ckpt: &TrainingCheckpoint,
    d_order: &[String],
    g_order: &[String],
    device: &Device,
) -> Result<(), ParityError> {
    let fx = report.fx;
    check_hyper(report, "d_optim", ckpt.d_optim.hyper, "d_reg_every")?;
    check_hyper(report, "g_optim", ckpt.g_optim.hyper, "g_reg_every")?;

    // Discriminator: D step, then R1 step, each one d_optim.step().
    let mut d_optim = ckpt.d_optim.to_adam(d_order, device, &ckpt.file)?;
    let d0 = named(&ckpt.d, d_order, "weights.pth d", device)?;
    let d1 = d_optim.step_named(&d0, &reference_grads(report, "d_step", d_order, device)?)?;
    check_named(report, "d_step.params_after", &d1);
    let d2 = d_optim.step_named(&d1, &reference_grads(report, "r1_step", d_order, device)?)?;
    check_named(report, "final.d", &d2);
    check_optimizer(report, "d_optim", &d_optim);

    // Generator: G step, then path-length step, each one g_optim.step().
    let mut g_optim = ckpt.g_optim.to_adam(g_order, device, &ckpt.file)?;
    let g0 = named(&ckpt.g, g_order, "weights.pth g", device)?;
    let g1 = g_optim.step_named(&g0, &reference_grads(report, "g_step", g_order, device)?)?;
    check_named(report, "g_step.params_after", &g1);
    let g2 = g_optim.step_named(&g1, &reference_grads(report, "path_step", g_order, device)?)?;
    check_named(report, "final.g", &g2);
    check_optimizer(report, "g_optim", &g_optim);

    // EMA of the parameters only, with train.py's decay (meta.json states the same number).
    let decay = train_py_decay();
    let meta_decay = fx.config_f64("ema_accum")?;
    report.assert(
        "ema_accum",
        (decay - meta_decay).abs() < 1e-15,
        format!("train.py's decay {decay}, meta.json {meta_decay}"),
    );
    let ema0 = named(&ckpt.g_ema, g_order, "weights.pth g_ema", device)?;
    let ema = accumulate_named(&ema0, &g2, decay)?;
    check_named(report, "final.g_ema", &ema);
    Ok(())
}
