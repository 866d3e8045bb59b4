//! StyleGAN2 against rosinality's PyTorch generator (fixture `stylegan2`), plus the behaviour
//! the fixture cannot show: random noise, input validation, checkpoint errors.

mod common;

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use facecast::nets::stylegan2::{Noise, StyleGan2, StyleGan2Config, StyleGanError, load_stylegan2};
use facecast::parity::Fixture;

fn fixture() -> std::path::PathBuf {
    common::fixture_dir("stylegan2")
}

fn model(dir: &std::path::Path, device: &Device) -> StyleGan2 {
    let fx = Fixture::open(dir).expect("fixture opens");
    let config = StyleGan2Config::from_json(fx.config()).expect("fixture config");
    load_stylegan2(&dir.join("weights.pth"), &config, device).expect("fixture weights load")
}

fn max_abs_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
    let d = (a - b)
        .abs()
        .max()
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("readable");
    d[0]
}

#[test]
fn fixture_passes_every_case() {
    let dir = fixture();
    let cases = common::assert_fixture_passes(&dir, &Device::flex());
    // Every output tensor of the fixture is checked, not only some.
    let fx = Fixture::open(&dir).expect("fixture opens");
    let inputs = [
        "z",
        "truncation",
        "mix.z1",
        "mix.z2",
        "mix.inject_index",
        "mix.truncation",
    ];
    let inputs_too = ["wplus.latent", "sedit.delta_s_conv"];
    for name in fx.io.tensors.keys() {
        if name.starts_with("noise.")
            || inputs.contains(&name.as_str())
            || inputs_too.contains(&name.as_str())
        {
            continue;
        }
        assert!(
            cases.iter().any(|c| &c.name == name),
            "io tensor {name} is not compared"
        );
    }
}

#[test]
fn random_noise_varies_and_given_noise_is_deterministic() {
    let dir = fixture();
    let device = Device::flex();
    let sg = model(&dir, &device);
    let z = Tensor::<2>::random(
        [1, sg.generator.style_dim],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let wplus = sg.latent(z, 0.7);
    let g = &sg.generator;
    let fixed = sg.fixed_noise();
    assert!(
        matches!(fixed, Noise::Given(_)),
        "the fixture's checkpoint stores its noise buffers"
    );
    let a = g.synthesize_wplus(wplus.clone(), &fixed).expect("synthesis");
    let b = g.synthesize_wplus(wplus.clone(), &fixed).expect("synthesis");
    assert_eq!(max_abs_diff(a.clone(), b), 0.0);
    let r1 = g
        .synthesize_wplus(wplus.clone(), &Noise::Random)
        .expect("synthesis");
    let r2 = g.synthesize_wplus(wplus, &Noise::Random).expect("synthesis");
    assert!(max_abs_diff(r1, r2) > 1e-4, "random noise must change the image");
}

#[test]
fn wrong_inputs_are_errors_not_panics() {
    let dir = fixture();
    let device = Device::flex();
    let sg = model(&dir, &device);
    let g = &sg.generator;
    let bad_wplus = Tensor::<3>::zeros([1, g.n_latent + 1, g.style_dim], &device);
    assert!(matches!(g.styles(bad_wplus), Err(StyleGanError::Input(_))));
    let wplus = sg.latent(Tensor::zeros([1, g.style_dim], &device), 1.0);
    let short = Noise::Given(vec![Tensor::zeros([1, 1, 4, 4], &device)]);
    assert!(matches!(
        g.synthesize_wplus(wplus.clone(), &short),
        Err(StyleGanError::Input(_))
    ));
    let mut styles = g.styles(wplus).expect("styles");
    styles.styles.pop();
    assert!(matches!(
        g.synthesize(&styles, &Noise::Random, None),
        Err(StyleGanError::Input(_))
    ));
    assert!(matches!(
        g.mix(
            Tensor::zeros([1, g.style_dim], &device),
            Tensor::zeros([1, g.style_dim], &device),
            g.n_latent + 1
        ),
        Err(StyleGanError::Input(_))
    ));
}

#[test]
fn a_checkpoint_of_another_network_names_the_file() {
    let root = common::fixtures_root();
    let gpen = root.join("gpen/weights.pth");
    let config =
        StyleGan2Config::from_json(Fixture::open(&root.join("stylegan2")).expect("fixture").config())
            .expect("config");
    let err = load_stylegan2(&gpen, &config, &Device::flex())
        .expect_err("GPEN weights are not a StyleGAN2 generator");
    assert!(err.to_string().contains("gpen/weights.pth"), "{err}");
}

#[test]
fn the_released_checkpoint_keys_fit_the_ffhq_generator() {
    use facecast::nets::stylegan2::{Generator, generator_tensors};
    let root = common::fixtures_root();
    let g_ema = common::official_keys(&root.join("stylegan2/official_keys.txt"))
        .into_iter()
        .filter_map(|(key, shape)| Some((key.strip_prefix("g_ema.")?.to_string(), shape)));
    let want = common::parameter_keys(generator_tensors(&common::shapes_only(g_ema)));
    let g = Generator::new(&StyleGan2Config::ffhq_1024(), &Device::flex()).expect("official config");
    assert_eq!(common::module_keys(&g), want);
    assert_eq!(
        g.num_params(),
        30_370_060,
        "meta.json official_config.num_parameters_g_ema"
    );
}

#[test]
fn generator_and_discriminator_beside_g_ema_are_ignored() {
    use facecast::nets::stylegan2::checkpoint::from_tensors;
    use facecast::weights::{RawTensor, read_checkpoint};
    let dir = fixture();
    let file = dir.join("weights.pth");
    let mut all = read_checkpoint(&file).expect("fixture weights").flatten_tensors();
    let g_ema: Vec<(String, RawTensor)> = all.sub("g_ema").tensors.into_iter().collect();
    for (key, t) in g_ema {
        all.tensors.insert(format!("g.{key}"), t);
    }
    all.tensors.insert(
        "d.convs.0.0.weight".into(),
        RawTensor::f32(vec![2, 2], vec![0.0; 4]),
    );
    let config = StyleGan2Config::from_json(Fixture::open(&dir).expect("fixture").config()).expect("config");
    let sg = from_tensors(&all, &file, &config, &Device::flex()).expect("g and d are ignored");
    assert!(sg.latent_avg.is_some() && sg.noise_buffers.is_some());
}
