//! One iteration of rosinality's train.py (fixture `stylegan2_train`) on the CPU backend: the
//! discriminator, the first-order phases, the second-order regularisers (R1, path length), Adam
//! and the EMA against the official run, through `check-fixture` as a user runs it too.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use facecast::parity::{CaseResult, run_fixture};
use facecast::pipeline::generator_training::checkpoint::TrainingCheckpoint;
use facecast::pipeline::generator_training::ema::{accumulate, accumulate_named, train_py_decay};
use facecast::pipeline::generator_training::named::{Named, named_params};
use facecast::pipeline::generator_training::step::{PhaseDraws, d_key_of, d_step, g_step_grads};
use facecast::weights::{TensorMap, Value, read_checkpoint};

fn fixture() -> std::path::PathBuf {
    common::fixture_dir("stylegan2_train")
}

/// Prints every failed case, then fails if there was one.
fn assert_every_case_passed(cases: &[CaseResult]) {
    let failed: Vec<&CaseResult> = cases.iter().filter(|c| !c.passed).collect();
    for c in &failed {
        eprintln!("FAIL {}: {:.3e} {:?}", c.name, c.max_abs_err, c.note);
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed",
        failed.len(),
        cases.len()
    );
}

fn io(dir: &std::path::Path) -> TensorMap {
    read_checkpoint(&dir.join("io.safetensors"))
        .expect("io.safetensors")
        .flatten_tensors()
}

#[test]
fn every_reference_of_the_official_iteration_passes() {
    let dir = fixture();
    let cases = run_fixture(&dir, &Device::flex()).unwrap_or_else(|e| panic!("{e}"));
    assert_every_case_passed(&cases);
    // Every reference tensor was compared: the isolated chain and all four phases.
    let io = io(&dir);
    // Inputs: the iteration's draws (`in.*`) and the forward cases' images.
    let input = |k: &str| k.starts_with("in.") || (k.starts_with("dforward.") && k.ends_with(".img"));
    for key in io.tensors.keys().filter(|k| !input(k)) {
        assert!(cases.iter().any(|c| &c.name == key), "{key} was not compared");
    }
    for key in [
        "dforward.0.inter.stddev_cat",
        "d_step.grad.convs.1.conv2.1.weight",
        "g_step.grad.convs.0.noise.weight",
        "final.d_optim.exp_avg_sq.final_linear.1.bias",
        "final.g_optim.step",
        "final.g_ema.style.8.bias",
        "r1_step.real_pred",
        "path_step.latents",
        "r1_step.grad_real",
        "r1_step.grad.final_conv.1.bias",
        "path_step.path_loss",
        "path_step.grad.style.1.weight",
    ] {
        let case = cases.iter().find(|c| c.name == key).expect(key);
        assert!(case.passed, "{case:?}");
    }
}

#[test]
fn check_fixture_passes_the_training_fixture() {
    let dir = fixture();
    let data = tempfile::tempdir().expect("tempdir");
    let dir = dir.to_string_lossy().to_string();
    let out = common::facecast(data.path(), &["check-fixture", "--backend", "cpu", &dir]);
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(" 0 failed"), "{text}");
    assert!(text.contains("r1_step.grad.convs.0.0.weight"), "{text}");
}

fn max_rel_excess(got: &Named, io: &TensorMap, prefix: &str, abs: f64, rel: f64) -> f64 {
    let mut worst = 0.0f64;
    for (key, t) in got {
        let want = io.get(&format!("{prefix}.{key}")).expect("reference").to_f32();
        let have = t.clone().into_data().try_to_vec::<f32>().expect("readable");
        assert_eq!(want.len(), have.len(), "{key}");
        for (h, w) in have.iter().zip(&want) {
            let err = (*h as f64 - *w as f64).abs();
            worst = worst.max(err / (abs + rel * (*w as f64).abs()));
        }
    }
    worst
}

/// The module-level optimiser and EMA (what training runs) agree with the fixture too, and
/// leave the modules trainable.
#[test]
fn module_level_adam_and_ema_match_the_reference() {
    let dir = fixture();
    let io = io(&dir);
    let device = Device::flex();
    let ad = device.clone().autodiff();
    let ckpt = TrainingCheckpoint::read(&dir.join("weights.pth")).expect("training checkpoint");
    let state = ckpt.state(4, 1, &device).expect("training state");
    let (g, d, mut d_optim) = (state.g, state.d, state.d_optim);
    let t = |key: &str| {
        let raw = io.get(key).expect(key);
        Tensor::<4>::from_data(TensorData::new(raw.to_f32(), raw.shape.clone()), &ad)
    };
    let z = {
        let raw = io.get("in.d_step.z").expect("z");
        let (b, dim) = (raw.shape[1], raw.shape[2]);
        let all = Tensor::<3>::from_data(TensorData::new(raw.to_f32(), raw.shape.clone()), &ad);
        (0..raw.shape[0])
            .map(|i| all.clone().narrow(0, i, 1).reshape([b, dim]))
            .collect()
    };
    let draws = PhaseDraws {
        z,
        inject_index: 3,
        noise: (0..7).map(|i| t(&format!("in.d_step.noise.{i:02}"))).collect(),
    };
    let (g, d, _) = d_step(g, d, &mut d_optim, t("in.real_img"), &draws).expect("d step");
    let after = named_params(&d, &d_key_of(&d));
    // weights.pth holds step 17 for every D parameter; one step later all are at 18.
    assert_eq!(d_optim.state.len(), 23);
    assert!(d_optim.state.values().all(|s| s.step == 18));
    // Our own gradients drive this update, so the looser free-running bound applies.
    let excess = max_rel_excess(&after, &io, "d_step.params_after", 1e-4, 2e-6);
    assert!(
        excess <= 1.0,
        "params after the D step: {excess} of the tolerance"
    );
    // Still trainable: the next phase gets gradients through the updated modules.
    let (_, _, out) = g_step_grads(g, d, &draws).expect("g step after the update");
    assert_eq!(out.grads.len(), 68);

    // The EMA on modules equals the EMA on named tensors, bit for bit.
    let g_ema = ckpt.generator(&ckpt.g_ema, &device).expect("g_ema");
    let g_src = ckpt.generator(&ckpt.g, &device).expect("g");
    let key_of = facecast::nets::stylegan2::generator_key;
    let named = accumulate_named(
        &named_params(&g_ema, &key_of),
        &named_params(&g_src, &key_of),
        train_py_decay(),
    )
    .expect("named EMA");
    let module = named_params(
        &accumulate(g_ema, &g_src, train_py_decay(), &key_of).expect("module EMA"),
        &key_of,
    );
    for (key, v) in &named {
        let a = v.clone().into_data().try_to_vec::<f32>().expect("readable");
        let b = module[key]
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .expect("readable");
        assert_eq!(a, b, "{key}");
    }
}

#[test]
fn checkpoint_problems_name_the_file_and_the_key() {
    let dir = fixture();
    let file = dir.join("weights.pth");
    let root = read_checkpoint(&file).expect("weights.pth");
    // A released generator file has no optimiser state: say so, naming the file.
    let Value::Dict(entries) = &root else {
        panic!("weights.pth is a dict")
    };
    let without: Vec<(Value, Value)> = entries
        .iter()
        .filter(|(k, _)| k.as_str() != Some("g_optim"))
        .cloned()
        .collect();
    let err = TrainingCheckpoint::from_value(&Value::Dict(without), &file).expect_err("no g_optim");
    let text = err.to_string();
    assert!(text.contains("weights.pth") && text.contains("g_optim"), "{text}");

    // A discriminator with a weight missing and one misshapen names both by their file keys.
    let mut ckpt = TrainingCheckpoint::from_value(&root, &file).expect("training checkpoint");
    ckpt.d.tensors.remove("convs.2.conv1.1.bias");
    let bias = ckpt.d.tensors.get_mut("final_linear.0.bias").expect("bias");
    bias.shape = vec![bias.numel() / 2, 2];
    let err = ckpt.discriminator(4, 1, &Device::flex()).expect_err("broken d");
    let text = err.to_string();
    assert!(text.contains("weights.pth"), "{text}");
    assert!(text.contains("missing: d.convs.2.conv1.1.bias"), "{text}");
    assert!(text.contains("d.final_linear.0.bias"), "{text}");
}

#[test]
#[ignore = "needs a wgpu adapter; run with --ignored"]
fn wgpu_matches_every_reference() {
    let dir = fixture();
    let cases = run_fixture(&dir, &common::wgpu_device()).unwrap_or_else(|e| panic!("{e}"));
    assert_every_case_passed(&cases);
}

/// The full config-f training checkpoint: the discriminator built from its `d` shapes holds
/// exactly its parameters (29,012,513), and both parameter orders index its optimiser states
/// (state `i` has the shape of parameter `i`).
#[test]
fn the_official_training_checkpoint_layout_fits() {
    use burn::module::Module;
    use facecast::nets::stylegan2::{
        Discriminator, DiscriminatorConfig, Generator, StyleGan2Config, generator_param_order,
    };
    use facecast::weights::RawTensor;
    let rows = common::official_keys(&fixture().join("official_keys.txt"));
    let shapes: std::collections::BTreeMap<String, Vec<usize>> = rows.into_iter().collect();
    let mut d_state = TensorMap::default();
    for (key, shape) in &shapes {
        if let Some(k) = key.strip_prefix("d.") {
            d_state
                .tensors
                .insert(k.to_string(), RawTensor::f32(shape.clone(), Vec::new()));
        }
    }
    let config = DiscriminatorConfig::from_state(&d_state, 4, 1).expect("config from shapes");
    assert_eq!(config.size, 1024);
    let d = Discriminator::new(&config, &Device::flex()).expect("official discriminator");
    assert_eq!(d.num_params(), 29_012_513);
    let d_order: Vec<String> = d.key_table().into_iter().map(|(_, k)| k).collect();
    let mut file_params: Vec<&String> = d_state
        .tensors
        .keys()
        .filter(|k| !k.ends_with(".kernel"))
        .collect();
    file_params.sort();
    let mut ours: Vec<&String> = d_order.iter().collect();
    ours.sort();
    assert_eq!(ours, file_params);
    let g = Generator::new(&StyleGan2Config::ffhq_1024(), &Device::flex()).expect("config-f");
    let g_order = generator_param_order(&g);
    for (net, order, count) in [("d", &d_order, 48), ("g", &g_order, 138)] {
        assert_eq!(order.len(), count, "{net}");
        for (i, key) in order.iter().enumerate() {
            let state = &shapes[&format!("{net}_optim.state.{i}.exp_avg")];
            assert_eq!(
                state,
                &shapes[&format!("{net}.{key}")],
                "{net}_optim state {i} is not {key}"
            );
        }
    }
}

/// The discriminator's forward cases alone on wgpu (a few kernels, so minutes rather than the
/// whole fixture's autodiff): the strided minibatch-stddev grouping of `dforward.0` included.
#[test]
#[ignore = "needs a wgpu adapter; run with --ignored"]
fn wgpu_discriminator_forward_cases() {
    use facecast::nets::stylegan2::{Discriminator, DiscriminatorConfig};
    let dir = fixture();
    let io = io(&dir);
    let device = common::wgpu_device();
    let ckpt = TrainingCheckpoint::read(&dir.join("weights.pth")).expect("training checkpoint");
    for (prefix, group) in [("dforward.0", 4), ("dforward.1", 2)] {
        let config = DiscriminatorConfig::from_state(&ckpt.d, group, 1).expect("config");
        let d = Discriminator::new(&config, &device)
            .expect("d")
            .load(&ckpt.d, &ckpt.file, "d.")
            .expect("weights");
        let raw = io.get(&format!("{prefix}.img")).expect("img");
        let img = Tensor::<4>::from_data(TensorData::new(raw.to_f32(), raw.shape.clone()), &device);
        let mut trace = Vec::new();
        let out = d.forward_traced(img, Some(&mut trace)).expect("forward");
        let mut results = vec![("out".to_string(), out.reshape([-1]))];
        results.extend(
            trace
                .into_iter()
                .map(|(n, t)| (format!("inter.{n}"), t.reshape([-1]))),
        );
        for (name, got) in results {
            let Some(want) = io.get(&format!("{prefix}.{name}")) else {
                continue;
            };
            let got = got.into_data().try_to_vec::<f32>().expect("readable");
            let want = want.to_f32();
            assert_eq!(got.len(), want.len(), "{prefix}.{name}");
            for (g, w) in got.iter().zip(&want) {
                // meta.json's forward group: abs 2e-4, rel 1e-4.
                assert!(
                    (g - w).abs() as f64 <= 2e-4 + 1e-4 * w.abs() as f64,
                    "{prefix}.{name}: {g} vs {w}"
                );
            }
        }
    }
}
