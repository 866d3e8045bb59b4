//! Adaptive discriminator augmentation (`train.py --augment`) and the near-copy check, on the
//! CPU: the warp against exact pixel permutations, its gradient and transpose against burn's
//! autodiff and finite differences, R1 through the augmentation, a run at p = 0 bit for bit the
//! run without augmentation, p kept across a checkpoint, and ArcFace (the fixture's reduced random
//! weights) flagging a generated face that is a training face.

mod common;

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use facecast::pipeline::generate::SeedStream;
use facecast::pipeline::generator_training::ada::AugmentSettings;
use facecast::pipeline::generator_training::augment::{
    Augmentation, ImageTransform, Mat3, rotate, sample, scale, translate,
};
use facecast::pipeline::generator_training::data::{TrainingPhoto, TrainingSet};
use facecast::pipeline::generator_training::near_copy::{check_faces, nearest};
use facecast::pipeline::generator_training::regularizers::r1_penalty_augmented;
use facecast::pipeline::generator_training::save::save_checkpoint;
use facecast::pipeline::generator_training::trainer::{Losses, TrainSettings, Trainer};
use facecast::weights::models::load_arcface;
use image::RgbImage;

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().expect("f32 data")
}

fn random_image(batch: usize, size: usize, device: &Device) -> Tensor<4> {
    Tensor::random([batch, 3, size, size], Distribution::Uniform(-1.0, 1.0), device)
}

fn warp_only(m: Mat3, batch: usize) -> Augmentation {
    let mut t = ImageTransform::identity();
    t.geometric = m;
    t.warped = true;
    Augmentation {
        transforms: vec![t; batch],
    }
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1.0);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * scale, "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn the_identity_warp_returns_the_image_and_whole_pixel_warps_are_permutations() {
    let device = Device::flex();
    let s = 9;
    let img = random_image(2, s, &device);
    let v = host(img.clone());
    let out = warp_only(translate(0.0, 0.0), 2).warp(img.clone()).expect("warp");
    assert_eq!(host(out), v, "the identity warp changed the image");

    // out(x) = in(G⁻¹ x), in centred pixels; for an odd side the centre is a pixel.
    let at = |b: usize, c: usize, y: usize, x: usize| v[((b * 3 + c) * s + y) * s + x];
    let reflect = |i: i64| -> usize {
        let last = s as i64 - 1;
        (if i < 0 {
            -i
        } else if i > last {
            2 * last - i
        } else {
            i
        }) as usize
    };
    type Source = Box<dyn Fn(usize, usize) -> (i64, i64)>;
    let cases: Vec<(&str, Mat3, Source)> = vec![
        (
            "x-flip",
            scale(-1.0, 1.0),
            Box::new(move |y, x| (y as i64, (s - 1 - x) as i64)),
        ),
        // A quarter turn: G⁻¹ (ox, oy) = (oy, −ox).
        (
            "rotation by 90°",
            rotate(std::f64::consts::FRAC_PI_2),
            Box::new(move |y, x| ((s - 1 - x) as i64, y as i64)),
        ),
        (
            "rotation by −90°",
            rotate(-std::f64::consts::FRAC_PI_2),
            Box::new(move |y, x| (x as i64, (s - 1 - y) as i64)),
        ),
        // Shifted right by 3 and up by 2: the left columns and bottom rows are reflected in.
        (
            "integer translation",
            translate(3.0, -2.0),
            Box::new(|y, x| (y as i64 + 2, x as i64 - 3)),
        ),
    ];
    for (name, m, source) in cases {
        let got = host(warp_only(m, 2).warp(img.clone()).expect("warp"));
        for b in 0..2 {
            for c in 0..3 {
                for y in 0..s {
                    for x in 0..s {
                        let (sy, sx) = source(y, x);
                        let want = at(b, c, reflect(sy), reflect(sx));
                        let g = got[((b * 3 + c) * s + y) * s + x];
                        assert_eq!(g, want, "{name}: pixel ({b}, {c}, {y}, {x})");
                    }
                }
            }
        }
    }
}

#[test]
fn the_warp_gradient_matches_finite_differences_and_its_transpose() {
    let device = Device::flex();
    let ad = device.clone().autodiff();
    let s = 8;
    // A fractional, non-isometric transform (every pixel spread over four taps).
    let m = [[0.93, -0.31, 0.7], [0.27, 1.08, -1.3], [0.0, 0.0, 1.0]];
    let mut aug = warp_only(m, 2);
    let mut rng = SeedStream::new(7);
    aug.transforms[1] = sample(&mut rng, 1.0, 1, s).transforms[0];
    assert!(aug.transforms[1].warped && aug.transforms[1].colored);
    let x = random_image(2, s, &device);
    let v = random_image(2, s, &device);

    // burn's gradient of ⟨A x, v⟩ with respect to x …
    let xl = Tensor::<4>::from_data(x.clone().into_data(), &ad).require_grad();
    let vl = Tensor::<4>::from_data(v.clone().into_data(), &ad);
    let grads = (aug.apply(xl.clone()).expect("apply") * vl).sum().backward();
    let grad = host(xl.grad(&grads).expect("x is in the graph"));
    // … is the written-out transpose Aᵀ v (what R1 differentiates through) …
    let adjoint = host(aug.adjoint(v.clone()).expect("adjoint"));
    assert_close("Aᵀ v against burn's gradient", &adjoint, &grad, 1e-5);
    // … and the central difference of ⟨A x, v⟩ along a few pixels.
    let f = |x: Tensor<4>| -> f64 { host((aug.apply(x).expect("apply") * v.clone()).sum())[0] as f64 };
    let xs = host(x.clone());
    for &i in &[0usize, 37, 100, 3 * 64 + 9, 2 * 3 * 64 - 1, 5 * 64 + 27] {
        let mut plus = xs.clone();
        let mut minus = xs.clone();
        let h = 0.5f32;
        plus[i] += h;
        minus[i] -= h;
        let t = |d: Vec<f32>| Tensor::<4>::from_data(TensorData::new(d, [2, 3, s, s]), &device);
        let fd = (f(t(plus)) - f(t(minus))) / (2.0 * h as f64);
        assert!(
            (fd - grad[i] as f64).abs() < 1e-3 * (1.0 + fd.abs()),
            "pixel {i}: finite difference {fd}, gradient {}",
            grad[i]
        );
    }
    assert!(
        grad.iter().any(|g| g.abs() > 1e-3),
        "a vanishing gradient proves nothing"
    );

    // The transpose is itself differentiable with the right derivative: ∂⟨Aᵀ v, u⟩/∂v = A u.
    let u = random_image(2, s, &device);
    let vl = Tensor::<4>::from_data(v.into_data(), &ad).require_grad();
    let ul = Tensor::<4>::from_data(u.clone().into_data(), &ad);
    let grads = (aug.adjoint(vl.clone()).expect("adjoint") * ul).sum().backward();
    let got = host(vl.grad(&grads).expect("v is in the graph"));
    // A's linear part: the colour transform's shift (brightness) is A(0).
    let zero = Tensor::<4>::zeros([2, 3, s, s], &device);
    let linear = aug.apply(u).expect("apply") - aug.apply(zero).expect("apply");
    assert_close("∂⟨Aᵀv, u⟩/∂v against A u", &got, &host(linear), 1e-5);
}

fn base() -> std::path::PathBuf {
    common::fixture_dir("stylegan2_train").join("weights.pth")
}

/// Faces for the fixture's 32 px generator: smooth random colour fields (any image trains).
fn training_set(n: usize, size: u32) -> TrainingSet {
    let mut rng = SeedStream::new(11);
    let photos = (0..n)
        .map(|i| {
            let phase: Vec<f64> = (0..6).map(|_| rng.next_f64() * 6.0).collect();
            let face = RgbImage::from_fn(size, size, |x, y| {
                let v = |c: usize| {
                    let t = (x as f64 / 5.0 + phase[c]).sin() * (y as f64 / 7.0 + phase[c + 3]).cos();
                    (127.5 + 120.0 * t) as u8
                };
                image::Rgb([v(0), v(1), v(2)])
            });
            TrainingPhoto {
                path: format!("photo_{i}.png").into(),
                sha256: String::new(),
                face,
            }
        })
        .collect();
    TrainingSet {
        size,
        photos,
        skipped: Vec::new(),
    }
}

fn settings(augment: AugmentSettings) -> TrainSettings {
    TrainSettings {
        batch: 4,
        augment,
        ..TrainSettings::default()
    }
}

#[test]
fn r1_under_augmentation_penalises_the_gradient_before_augmentation() {
    let device = Device::flex();
    let trainer =
        Trainer::from_file(&base(), settings(AugmentSettings::default()), &device).expect("fixture");
    let ad = device.autodiff();
    let size = trainer.size();
    let mut rng = SeedStream::new(3);
    let aug = sample(&mut rng, 0.8, 4, size);
    assert!(!aug.is_identity());
    let real = random_image(4, size, &ad);
    let out = r1_penalty_augmented(&trainer.d, real.clone(), Some(&aug), 10.0, 16).expect("R1");

    // train.py: real_img.requires_grad = True, then augment, then autograd.grad w.r.t. real_img.
    let leaf = real.detach().require_grad();
    let d = trainer.d.clone().set_require_grad(false);
    let pred = d.forward(aug.apply(leaf.clone()).expect("apply")).expect("D");
    let grads = pred.clone().sum().backward();
    let want = host(leaf.grad(&grads).expect("the image is in the graph"));
    assert_close("R1's grad_real", &host(out.grad_real), &want, 1e-4);
    assert_close("R1's real_pred", &host(out.real_pred), &host(pred), 1e-5);
    let r1 = host(out.r1_loss)[0];
    let sq: f32 = want.iter().map(|g| g * g).sum::<f32>() / 4.0;
    assert!((r1 - sq).abs() <= 1e-4 * sq.max(1.0), "R1 {r1} vs {sq}");
    assert!(
        out.grads
            .values()
            .any(|g| host(g.clone()).iter().any(|v| v.abs() > 0.0))
    );
}

#[test]
fn augmentation_at_p_zero_trains_bit_for_bit_like_none_and_p_survives_a_checkpoint() {
    let device = Device::flex();
    let set = training_set(4, 32);
    let plain = AugmentSettings::default();
    let adaptive = AugmentSettings {
        augment: true,
        ..AugmentSettings::default()
    };
    let mut a = Trainer::from_file(&base(), settings(plain), &device).expect("fixture");
    let mut b = Trainer::from_file(&base(), settings(adaptive), &device).expect("fixture");
    // Iteration 0 runs both regularisers; p only moves after 8 D steps.
    for _ in 0..2 {
        let la = a.iteration(&set).expect("plain");
        let lb = b.iteration(&set).expect("augmented at p = 0");
        assert_eq!(lb.r_t, Some(0.0), "no ADA window has ended yet");
        assert_eq!(la, Losses { r_t: None, ..lb }, "the losses differ");
        assert_eq!(lb.ada_aug_p, 0.0);
    }
    for (what, x, y) in [
        ("g_ema", host_params(&a.g_ema), host_params(&b.g_ema)),
        ("d", host_params(&a.d), host_params(&b.d)),
    ] {
        assert_eq!(x, y, "{what} differs");
    }

    // With a fixed p, the discriminator sees other images: the losses move, and stay finite.
    let fixed = AugmentSettings {
        augment: true,
        augment_p: 0.8,
        ..AugmentSettings::default()
    };
    let mut c = Trainer::from_file(&base(), settings(fixed), &device).expect("fixture");
    let lc = c.iteration(&set).expect("augmented at p = 0.8");
    let la0 = Trainer::from_file(&base(), settings(plain), &device)
        .expect("fixture")
        .iteration(&set)
        .expect("plain");
    assert_ne!(lc.d_loss, la0.d_loss);
    assert!(lc.d_loss.is_finite() && lc.g_loss.is_finite() && lc.r1_loss.is_some_and(f64::is_finite));
    assert_eq!(lc.ada_aug_p, 0.8);

    // The adaptive state goes into the checkpoint and comes back on resume.
    b.ada.p = 0.25;
    b.ada.sign_sum = 3.0;
    b.ada.count = 8.0;
    b.ada.calls = 2;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = b.checkpoint_path(dir.path());
    save_checkpoint(&b, &file).expect("save");
    let root = facecast::weights::read_checkpoint(&file).expect("read back");
    assert_eq!(root.get("ada_aug_p").and_then(|v| v.as_f64()), Some(0.25));
    let r = Trainer::resume(&file, settings(adaptive), &device).expect("resume");
    assert_eq!(
        (r.ada.p, r.ada.sign_sum, r.ada.count, r.ada.calls),
        (0.25, 3.0, 8.0, 2)
    );
    assert_eq!(r.iteration, 2);
}

fn host_params<M: Module>(m: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            self.0.push(host(param.val()));
        }
    }
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0
}

/// A `size`² crop of the astronaut's face (the MTCNN fixture), roughly FFHQ-framed.
fn astronaut(size: u32) -> RgbImage {
    let img = image::open(common::fixture_dir("mtcnn").join("astronaut.png"))
        .expect("astronaut")
        .to_rgb8();
    let crop = image::imageops::crop_imm(&img, 120, 20, 280, 280).to_image();
    image::imageops::resize(&crop, size, size, image::imageops::FilterType::Triangle)
}

#[test]
fn a_generated_face_that_is_a_training_face_is_flagged_and_noise_is_not() {
    let device = Device::flex();
    let (arcface, _) = load_arcface(
        &common::fixture_dir("arcface_ir_se50").join("weights.pth"),
        &device,
    )
    .expect("the fixture's ArcFace");
    let size = 64;
    let face = astronaut(size);
    let cat = image::open(common::fixture_dir("mtcnn").join("chelsea.png"))
        .expect("chelsea")
        .to_rgb8();
    let cat = image::imageops::resize(&cat, size, size, image::imageops::FilterType::Triangle);
    let training = vec![
        ("photos/astronaut.png".to_string(), face.clone()),
        ("photos/cat.png".to_string(), cat),
    ];
    let mut rng = SeedStream::new(5);
    let mut noise = || {
        RgbImage::from_fn(size, size, |_, _| {
            image::Rgb([0, 0, 0].map(|_: u8| (rng.next_f64() * 255.0) as u8))
        })
    };
    let generated = vec![(12, face), (13, noise()), (14, noise())];
    // Reduced random weights put every image near every other (noise scores about 0.73 against
    // the cat here): the threshold sits between that and a copy's 1, where the released
    // network's 0.7 would sit between two people and one.
    let threshold = 0.9;
    let report = check_faces(&arcface, &generated, &training, threshold, 0.7, &device).expect("check");
    for f in &report.faces {
        eprintln!("seed {}: {} {:.4}", f.seed, f.photo, f.similarity);
    }
    assert_eq!(report.faces.len(), 3);
    let copy = &report.faces[0];
    assert_eq!((copy.seed, copy.photo.as_str()), (12, "photos/astronaut.png"));
    assert!(copy.near_copy && copy.similarity > 0.999, "{copy:?}");
    for f in &report.faces[1..] {
        assert!(!f.near_copy && f.similarity < threshold, "noise flagged: {f:?}");
    }
    let flagged = report.near_copies();
    assert_eq!(flagged.len(), 1);
    assert_eq!(
        facecast::pipeline::generator_training::near_copy::NearCopyReport::warning(flagged[0]),
        format!(
            "seed 12 looks like a near-copy of photos/astronaut.png (similarity {:.2})",
            copy.similarity
        )
    );

    // The nearest-neighbour rule itself: a photo's best embedding counts.
    let e = |v: [f32; 2]| v.to_vec();
    let got = nearest(
        &[e([1.0, 0.0])],
        &[e([0.0, 1.0]), e([0.6, 0.8]), e([0.8, 0.6])],
        &[0, 1, 1],
    );
    assert_eq!(got[0].map(|(i, _)| i), Some(1));
    assert!((got[0].expect("a match").1 - 0.8).abs() < 1e-6);
}

fn run_ok(data: &std::path::Path, args: &[&str]) -> String {
    let out = common::facecast(data, args);
    let said = common::text(&out);
    assert!(out.status.success(), "facecast {args:?} failed:\n{said}");
    said
}

/// `virtual train --augment` end to end at the fixture's 32 px: the settings and p in run.json,
/// the checkpoint and model.json, a resumed run keeping them, the near-copy check skipped with
/// a way to install ArcFace, then `virtual check-copies` with the fixture's ArcFace.
#[test]
fn train_with_augment_records_p_resumes_and_checks_copies() {
    let data = tempfile::tempdir().expect("tempdir");
    let d = data.path();
    let mtcnn = common::fixture_dir("mtcnn");
    run_ok(d, &["weights", "import", "mtcnn", mtcnn.to_str().expect("utf-8")]);
    let photos = d.join("photos");
    std::fs::create_dir_all(&photos).expect("photos folder");
    let astronaut = image::open(mtcnn.join("astronaut.png"))
        .expect("astronaut")
        .to_rgb8();
    for i in 0..6u32 {
        let crop = image::imageops::crop_imm(&astronaut, 60 + 12 * i, 8 * i, 300, 300).to_image();
        image::imageops::resize(&crop, 150, 150, image::imageops::FilterType::Triangle)
            .save(photos.join(format!("face_{i}.png")))
            .expect("write a photo");
    }
    let base = base();
    let train = |steps: &str, resume: bool| {
        let mut args = vec![
            "virtual",
            "train",
            "--from",
            base.to_str().expect("utf-8"),
            "--steps",
            steps,
            "--batch",
            "2",
            "--checkpoint-every",
            "4",
            "--name",
            "ada",
            "--augment",
            "--ada-length",
            "64",
        ];
        if resume {
            args.extend(["--resume", "ada"]);
        } else {
            args.extend(["--photos", photos.to_str().expect("utf-8")]);
        }
        run_ok(d, &args)
    };
    let said = train("4", false);
    assert!(
        said.contains("arcface-ir-se50") && said.contains("weights install"),
        "{said}"
    );
    let said = train("16", true);
    assert!(said.contains("resuming ada"), "{said}");

    let json = |file: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(file).expect("json")).expect("parses")
    };
    let model = json(&d.join("generators/ada/model.json"));
    assert_eq!(model["augment"]["augment"], true);
    assert_eq!(model["augment"]["ada_length"], 64);
    assert_eq!(model["steps"], 16);
    let ckpt =
        facecast::weights::read_checkpoint(&d.join("generators/ada/generator.pt")).expect("checkpoint");
    let p = ckpt.get("ada_aug_p").and_then(|v| v.as_f64()).expect("ada_aug_p");
    assert_eq!(model["ada_aug_p"].as_f64(), Some(p));
    // Two ADA windows of 8 iterations × 2 reals over a length of 64: p moved by 0.25 twice
    // (clamped at 0 when it went down).
    assert!([0.0, 0.25, 0.5].contains(&p), "p = {p}");
    assert!(model.get("near_copies").is_none());

    let arcface = common::fixture_dir("arcface_ir_se50").join("weights.pth");
    run_ok(
        d,
        &[
            "weights",
            "import",
            "arcface-ir-se50",
            arcface.to_str().expect("utf-8"),
            "--reduced",
        ],
    );
    let said = run_ok(
        d,
        &["virtual", "check-copies", "--generator", "ada", "--seeds", "3"],
    );
    assert!(said.contains("near-copy check: "), "{said}");
    let model = json(&d.join("generators/ada/model.json"));
    let faces = model["near_copies"]["faces"].as_array().expect("faces recorded");
    assert_eq!(faces.len(), 3);
    assert!(
        faces
            .iter()
            .all(|f| f["photo"].as_str().is_some_and(|p| p.contains("face_")))
    );
}
