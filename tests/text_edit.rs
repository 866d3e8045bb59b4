//! StyleCLIP text edits end to end on the parity fixtures' reduced weights: the loaders through the
//! weights store (`weights import … --reduced`), the global-direction edit in the S space of the
//! StyleGAN2 fixture generator (including the case where no channel survives the threshold), and
//! the mapper edit against the mapper fixture's own outputs.

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use facecast::nets::styleclip::global::{GlobalDirections, SLayout, s_statistics};
use facecast::nets::stylegan2::{StyleGan2, StyleGan2Config, StyleKind, checkpoint};
use facecast::pipeline::text_edit::{
    self, GlobalEditor, PromptCache, TextEditError, TextEditRecord, max_relevance, prompt_pair,
};
use facecast::weights::models::{self, ClipText};
use facecast::weights::store::{Import, WeightsStore};
use facecast::weights::{RawTensor, read_checkpoint};

fn meta(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("meta.json")).unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
}

/// The StyleGAN2 fixture generator, built from its meta.json config.
fn fixture_generator(device: &Device) -> StyleGan2 {
    let dir = common::fixture_dir("stylegan2");
    let config = StyleGan2Config::from_json(&meta(&dir)["config"]).unwrap_or_else(|e| panic!("{e}"));
    checkpoint::load_stylegan2(&dir.join("weights.pth"), &config, device).unwrap_or_else(|e| panic!("{e}"))
}

/// The CLIP vocabulary (setup installs it); a missing one fails the test.
fn vocab() -> PathBuf {
    facecast::parity::clip_text::vocab_path()
        .or_else(|| {
            let repo =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(facecast::parity::clip_text::VOCAB_DEFAULT);
            repo.exists().then_some(repo)
        })
        .expect("no CLIP vocabulary: run `bash scripts/fetch-clip-vocab.sh` (or set FACECAST_CLIP_VOCAB)")
}

/// Reproducible N(0, 1) values (xorshift + Box-Muller), so the tests never depend on a global RNG.
fn normal(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (uniform(), uniform());
            ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
        })
        .collect()
}

fn host(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .try_to_vec::<f32>()
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// A `.npy` file of a 2-D float32 array.
fn write_npy(path: &Path, rows: usize, cols: usize, values: &[f32]) {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    for v in values {
        bytes.extend(v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{e}"));
}

/// `S_mean_std` as StyleCLIP publishes it: a protocol-3 pickle of `[means, stds]`, each a list of
/// float32 numpy arrays pickled through `numpy.core.multiarray._reconstruct`.
fn write_s_mean_std(path: &Path, means: &[Vec<f32>], stds: &[Vec<f32>]) {
    let mut p = vec![0x80u8, 3];
    fn global(p: &mut Vec<u8>, module: &str, name: &str) {
        p.push(b'c');
        p.extend(format!("{module}\n{name}\n").as_bytes());
    }
    fn text(p: &mut Vec<u8>, s: &str) {
        p.push(b'X');
        p.extend((s.len() as u32).to_le_bytes());
        p.extend(s.as_bytes());
    }
    fn int(p: &mut Vec<u8>, v: i32) {
        p.push(b'J');
        p.extend(v.to_le_bytes());
    }
    p.extend([b']', b'(']);
    for list in [means, stds] {
        p.extend([b']', b'(']);
        for array in list {
            global(&mut p, "numpy.core.multiarray", "_reconstruct");
            global(&mut p, "numpy", "ndarray");
            int(&mut p, 0);
            p.push(0x85);
            p.extend([b'C', 1, b'b', 0x87, b'R', b'(']);
            int(&mut p, 1);
            int(&mut p, array.len() as i32);
            p.push(0x85);
            global(&mut p, "numpy", "dtype");
            text(&mut p, "f4");
            int(&mut p, 0);
            int(&mut p, 1);
            p.extend([0x87, b'R', b'(']);
            int(&mut p, 3);
            text(&mut p, "<");
            p.extend([b'N', b'N', b'N']);
            int(&mut p, -1);
            int(&mut p, -1);
            int(&mut p, 0);
            p.extend([b't', b'b', 0x89, b'B']);
            p.extend(((array.len() * 4) as u32).to_le_bytes());
            for v in array {
                p.extend(v.to_le_bytes());
            }
            p.extend([b't', b'b']);
        }
        p.push(b'e');
    }
    p.extend([b'e', b'.']);
    std::fs::write(path, p).unwrap_or_else(|e| panic!("{e}"));
}

/// Global-direction files for the StyleGAN2 fixture generator and a CLIP of width `clip_dim`: fs3
/// is the styleclip_global fixture's, cut to the generator's conv channels and `clip_dim` columns
/// and renormalised; the statistics are the official GetCodeMS over S samples of the generator.
fn write_matching_global(dir: &Path, model: &StyleGan2, clip_dim: usize, device: &Device) {
    let global_dir = common::fixture_dir("styleclip_global");
    let g = &model.generator;
    let Ok(facecast::weights::Value::Tensor(fs3)) = read_checkpoint(&global_dir.join("fs3.npy")) else {
        panic!("fixture fs3.npy is not an array");
    };
    let full = fs3.to_f32();
    let width = fs3.shape[1];
    let layers = g.style_layers();
    let rows: usize = layers
        .iter()
        .filter(|l| l.kind == StyleKind::Conv)
        .map(|l| l.channels)
        .sum();
    let mut cut = Vec::with_capacity(rows * clip_dim);
    for r in 0..rows {
        let row = &full[r * width..r * width + clip_dim];
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        cut.extend(row.iter().map(|v| v / norm));
    }
    write_npy(&dir.join("fs3.npy"), rows, clip_dim, &cut);

    let n = 16;
    let z = Tensor::<2>::from_data(
        TensorData::new(normal(n * g.style_dim, 5), [n, g.style_dim]),
        device,
    );
    let samples = g.styles(model.latent(z, 0.7)).unwrap_or_else(|e| panic!("{e}"));
    let (means, stds) = s_statistics(&samples.styles);
    let to_host = |v: Vec<Tensor<1>>| -> Vec<Vec<f32>> {
        v.into_iter()
            .map(|t| t.into_data().try_to_vec::<f32>().unwrap_or_default())
            .collect()
    };
    write_s_mean_std(&dir.join("S_mean_std"), &to_host(means), &to_host(stds));
}

fn store(dir: &Path) -> WeightsStore {
    WeightsStore::open(Some(dir.to_path_buf())).unwrap_or_else(|e| panic!("{e}"))
}

fn import_reduced(store: &WeightsStore, id: &str, files: &[PathBuf]) {
    let state = store
        .import_with(id, files, Import::Reduced)
        .unwrap_or_else(|e| panic!("importing {id}: {e}"));
    assert!(state.status.is_usable(), "{id}: {}", state.status.describe());
}

/// The clip_text fixture's TorchScript archive and the vocabulary, through the store.
fn installed_clip(store: &WeightsStore, vocab: &Path, device: &Device) -> ClipText {
    let dir = common::fixture_dir("clip_text");
    import_reduced(store, models::CLIP_TEXT_ID, &[dir.join("weights_torchscript.pt")]);
    let state = store
        .import(models::CLIP_VOCAB_ID, &[vocab.to_path_buf()])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(state.status.is_usable(), "{}", state.status.describe());
    models::load_clip_installed(store, device).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn fixture_global_directions_load_from_the_store_with_the_layout_read_from_the_files() {
    let dir = common::fixture_dir("styleclip_global");
    let device = Device::flex();
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = store(data.path());
    // The released S_mean_std has a published sha256, so only --reduced takes the fixture's copy.
    assert!(
        store
            .import(
                models::STYLECLIP_GLOBAL_ID,
                &[dir.join("fs3.npy"), dir.join("S_mean_std")]
            )
            .is_err()
    );
    import_reduced(
        &store,
        models::STYLECLIP_GLOBAL_ID,
        &[dir.join("fs3.npy"), dir.join("S_mean_std")],
    );
    let directions = models::load_global_installed(&store, &device).unwrap_or_else(|e| panic!("{e}"));
    let m = meta(&dir);
    let dims: Vec<usize> = m["config"]["s_dims"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_u64()).map(|v| v as usize).collect())
        .unwrap_or_default();
    assert_eq!(directions.layout(), &SLayout::new(dims, None));
    assert_eq!(directions.layout(), &SLayout::ffhq_1024());

    // The fixture's text features through the loaded directions give its relevance and boundary.
    let io = read_checkpoint(&dir.join("io.safetensors"))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten_tensors();
    let tensor2 = |name: &str| -> Tensor<2> {
        let raw: &RawTensor = io.get(name).unwrap_or_else(|| panic!("no {name}"));
        Tensor::from_data(TensorData::new(raw.to_f32(), raw.shape.clone()), &device)
    };
    use facecast::nets::styleclip::global::{class_embedding, text_direction};
    let dt = text_direction(
        class_embedding(tensor2("input.text_features.target")),
        class_embedding(tensor2("input.text_features.neutral")),
    );
    let relevance = directions.relevance(dt).unwrap_or_else(|e| panic!("{e}"));
    let want = io.get("inter.relevance").map(|t| t.to_f32()).unwrap_or_default();
    let worst = facecast::parity::max_abs_diff(&relevance, &want);
    assert_eq!(relevance.len(), want.len());
    assert!(worst < 1e-4, "relevance differs by {worst}");
    let beta = io.get("input.beta").map(|t| t.to_f32()[0]).unwrap_or(0.15);
    let direction = directions.direction(&relevance, beta, &device);
    let num_c = io.get("output.num_c").map(|t| t.to_f32()[0] as usize);
    assert_eq!(Some(direction.num_c), num_c);
}

#[test]
fn global_edit_moves_the_conv_styles_and_leaves_the_face_alone_when_no_channel_survives() {
    let device = Device::flex();
    let model = fixture_generator(&device);
    let vocab = vocab();
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = store(data.path());
    let clip = installed_clip(&store, &vocab, &device);
    let clip_dim = clip.encoder.text_projection.dims()[1];
    let files = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_matching_global(files.path(), &model, clip_dim, &device);
    import_reduced(
        &store,
        models::STYLECLIP_GLOBAL_ID,
        &[files.path().join("fs3.npy"), files.path().join("S_mean_std")],
    );
    let directions = models::load_global_installed(&store, &device).unwrap_or_else(|e| panic!("{e}"));

    let g = &model.generator;
    let noise = model.fixed_noise();
    let z = Tensor::<2>::from_data(TensorData::new(normal(g.style_dim, 3), [1, g.style_dim]), &device);
    let wplus = model.latent(z, 0.7);
    let pair = prompt_pair("smiling", None).unwrap_or_else(|e| panic!("{e}"));
    let mut cache = PromptCache::default();

    // The relevance, then a threshold that keeps some channels but not all.
    let editor = GlobalEditor::new(g, &directions, wplus.clone(), None).unwrap_or_else(|e| panic!("{e}"));
    let target = cache
        .embedding(&clip, &pair.target, &device)
        .unwrap_or_else(|e| panic!("{e}"));
    let neutral = cache
        .embedding(&clip, &pair.neutral, &device)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cache.len(), 2);
    let relevance = editor
        .relevance(target, neutral)
        .unwrap_or_else(|e| panic!("{e}"));
    let top = max_relevance(&relevance);
    assert!(top > 0.0);
    let beta = top * 0.5;
    let alpha = 3.0;

    let base = text_edit::render(g, editor.base(), &noise).unwrap_or_else(|e| panic!("{e}"));
    let edited = text_edit::global_edit(
        g,
        &noise,
        &directions,
        &clip,
        &mut cache,
        wplus.clone(),
        None,
        &pair,
        alpha,
        beta,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cache.len(), 2, "the prompts were encoded once");
    let kept = relevance.iter().filter(|r| r.abs() >= beta).count();
    assert_eq!(edited.channels, Some(kept));
    assert!(kept > 0 && kept < relevance.len());
    assert!(edited.changed && edited.note.is_none());
    assert_ne!(edited.image.as_raw(), base.as_raw(), "the edit changed no pixel");
    assert!(matches!(
        &edited.record,
        TextEditRecord::StyleclipGlobal { channels, .. } if *channels == kept
    ));

    // Edited S = S + α · relevance/max · std on the conv channels that pass β; toRGB untouched.
    let std = directions.s_std();
    let kept_max = relevance
        .iter()
        .filter(|r| r.abs() >= beta)
        .fold(0.0f32, |m, r| m.max(r.abs()));
    let mut offset = 0;
    for (l, layer) in editor.base().layers.iter().enumerate() {
        let before = host(editor.base().styles[l].clone());
        let after = host(edited.styles.styles[l].clone());
        for c in 0..layer.channels {
            let want = if layer.kind == StyleKind::Conv {
                let r = relevance[offset + c];
                let step = if r.abs() >= beta {
                    r / kept_max * std[l][c]
                } else {
                    0.0
                };
                before[c] + alpha * step
            } else {
                before[c]
            };
            assert!(
                (after[c] - want).abs() <= 1e-5 + 1e-5 * want.abs(),
                "layer {l} channel {c}: {} vs {want}",
                after[c]
            );
        }
        if layer.kind == StyleKind::Conv {
            offset += layer.channels;
        }
    }

    // The image is the generator's rendering of exactly those styles.
    let rendered = text_edit::render(g, &edited.styles, &noise).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rendered.as_raw(), edited.image.as_raw());

    // A second edit starts from the first one's S offset and adds its own.
    let delta = edited.s_conv_delta.clone().unwrap_or_default();
    assert_eq!(delta.len(), relevance.len());
    let again =
        GlobalEditor::new(g, &directions, wplus.clone(), Some(&delta)).unwrap_or_else(|e| panic!("{e}"));
    for (a, b) in again.base().styles.iter().zip(&edited.styles.styles) {
        let (a, b) = (host(a.clone()), host(b.clone()));
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| (x - y).abs() <= 1e-5 + 1e-5 * y.abs())
        );
    }
    let twice = again
        .edit(&pair, &relevance, alpha, beta, &noise)
        .unwrap_or_else(|e| panic!("{e}"));
    let doubled = twice.s_conv_delta.unwrap_or_default();
    assert!(
        doubled
            .iter()
            .zip(&delta)
            .all(|(d2, d)| (d2 - 2.0 * d).abs() <= 1e-5 + 1e-5 * d.abs())
    );

    // Strength 0 and a threshold above every channel leave the face as it was.
    let still = editor
        .edit(&pair, &relevance, 0.0, beta, &noise)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!still.changed);
    assert_eq!(still.image.as_raw(), base.as_raw());
    let none = editor
        .edit(&pair, &relevance, alpha, top + 0.01, &noise)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(none.channels, Some(0));
    assert!(!none.changed);
    assert_eq!(none.image.as_raw(), base.as_raw());
    let note = none.note.unwrap_or_default();
    assert!(
        note.contains("No style channel") && note.contains("unchanged"),
        "{note}"
    );
    assert!(
        none.styles
            .styles
            .iter()
            .zip(&editor.base().styles)
            .all(|(a, b)| host(a.clone()) == host(b.clone()))
    );
}

#[test]
fn global_directions_of_another_generator_or_clip_are_refused_with_a_reason() {
    let device = Device::flex();
    let model = fixture_generator(&device);
    let g = &model.generator;
    let wplus = model.latent(Tensor::<2>::zeros([1, g.style_dim], &device), 1.0);

    // The FFHQ-1024 layout does not fit the 64-px generator.
    let ffhq = SLayout::ffhq_1024();
    let big = GlobalDirections::new(
        Tensor::<2>::zeros([ffhq.conv_channels(), 8], &device),
        ffhq.dims.iter().map(|&d| vec![1.0; d]).collect(),
        ffhq,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = GlobalEditor::new(g, &big, wplus.clone(), None).err();
    assert!(
        matches!(err, Some(TextEditError::Layout { want_layers: 26, .. })),
        "{err:?}"
    );
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("26 style layers") && text.contains("14"), "{text}");

    // A fitting layout but fs3 columns of another CLIP width.
    let layers = g.style_layers();
    let layout = SLayout::new(layers.iter().map(|l| l.channels).collect(), None);
    let fitting = GlobalDirections::new(
        Tensor::<2>::ones([layout.conv_channels(), 8], &device),
        layout.dims.iter().map(|&d| vec![1.0; d]).collect(),
        layout,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let editor = GlobalEditor::new(g, &fitting, wplus.clone(), None).unwrap_or_else(|e| panic!("{e}"));
    let e = |v: f32| Tensor::<1>::from_data(TensorData::new(vec![v; 5], [5]), &device);
    let err = editor.relevance(e(1.0), e(-1.0)).err();
    assert!(
        matches!(err, Some(TextEditError::ClipDim { got: 5, want: 8 })),
        "{err:?}"
    );

    // A latent of the wrong shape.
    let wrong = Tensor::<3>::zeros([1, 3, g.style_dim], &device);
    assert!(matches!(
        GlobalEditor::new(g, &fitting, wrong, None).err(),
        Some(TextEditError::Latent { .. })
    ));
}

#[test]
fn mapper_edit_reproduces_the_mapper_fixture_end_to_end() {
    let dir = common::fixture_dir("styleclip_mapper");
    let device = Device::flex();
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = store(data.path());
    let id = "styleclip-mapper-purple-hair";
    import_reduced(&store, id, &[dir.join("weights.pth")]);
    let (mapper, info) = models::load_mapper_installed(&store, id, &device).unwrap_or_else(|e| panic!("{e}"));
    let c = &meta(&dir)["config"];
    assert_eq!(info.latent_dim as u64, c["latent_dim"].as_u64().unwrap_or(0));

    // The frozen decoder stored beside the mapper renders the fixture's images.
    let checkpoint = read_checkpoint(&dir.join("weights.pth")).unwrap_or_else(|e| panic!("{e}"));
    let state = checkpoint
        .get("state_dict")
        .unwrap_or(&checkpoint)
        .flatten_tensors()
        .sub("decoder");
    let config = StyleGan2Config::from_json(&serde_json::json!({
        "size": c["stylegan_size"], "style_dim": c["decoder_style_dim"],
        "n_mlp": c["decoder_n_mlp"], "channels": c["decoder_channels"],
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let decoder = checkpoint::from_tensors(&state, &dir.join("weights.pth"), &config, &device)
        .unwrap_or_else(|e| panic!("{e}"));

    let io = read_checkpoint(&dir.join("io.safetensors"))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten_tensors();
    let w = io
        .get("input.w_plus")
        .unwrap_or_else(|| panic!("no input.w_plus"));
    let [_, rows, dim] = [w.shape[0], w.shape[1], w.shape[2]];
    let first: Vec<f32> = w.to_f32()[..rows * dim].to_vec();
    let wplus = Tensor::<3>::from_data(TensorData::new(first, [1, rows, dim]), &device);
    let edited = text_edit::mapper_edit(
        &decoder.generator,
        &decoder.fixed_noise(),
        &mapper,
        &info,
        id,
        wplus,
        None,
        1.0,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(edited.changed);

    let w_hat = io.get("output.w_hat").map(|t| t.to_f32()).unwrap_or_default();
    let got = edited.wplus.into_data().try_to_vec::<f32>().unwrap_or_default();
    // The fixture holds two rows; the edit ran on the first.
    assert!(
        !got.is_empty() && got.len() <= w_hat.len(),
        "{} vs {}",
        got.len(),
        w_hat.len()
    );
    let worst = facecast::parity::max_abs_diff(&got, &w_hat[..got.len()]);
    assert!(worst < 1e-4, "w_hat differs by {worst}");

    let image = io
        .get("output.image_w_hat")
        .unwrap_or_else(|| panic!("no output.image_w_hat"));
    let (h, wd) = (image.shape[2], image.shape[3]);
    let reference = image.to_f32();
    let mut off_by_more = 0;
    for y in 0..h {
        for x in 0..wd {
            for ch in 0..3 {
                let v = ((reference[ch * h * wd + y * wd + x] + 1.0) * 0.5).clamp(0.0, 1.0) * 255.0;
                let got = edited.image.get_pixel(x as u32, y as u32)[ch] as f32;
                if (got - v).abs() > 1.0 {
                    off_by_more += 1;
                }
            }
        }
    }
    assert_eq!(off_by_more, 0, "pixels differ from the reference image");

    // A mapper for another latent width is refused.
    let narrow = info.latent_dim / 2;
    let other = facecast::nets::styleclip::mapper::LevelsMapper::new(narrow, [true, false, false], &device);
    let other_info = facecast::nets::styleclip::mapper::MapperInfo {
        description: Some("purple hair".into()),
        levels: [true, false, false],
        latent_dim: narrow,
    };
    let w = Tensor::<3>::zeros([1, rows, dim], &device);
    let err = text_edit::mapper_edit(
        &decoder.generator,
        &decoder.fixed_noise(),
        &other,
        &other_info,
        id,
        w,
        None,
        1.0,
    )
    .err();
    assert!(matches!(err, Some(TextEditError::MapperWidth { .. })), "{err:?}");
    assert!(
        err.map(|e| e.to_string())
            .unwrap_or_default()
            .contains("\"purple hair\"")
    );
}

mod window {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use burn::tensor::{Device, Tensor, TensorData};
    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;
    use facecast::app::text_edit::{
        EditTarget, IMPORTED_TEXT, SAVE_LABEL, TextEditAction, TextEditInbox, TextEditWindow,
    };
    use facecast::compute::Compute;
    use facecast::jobs::Worker;
    use facecast::jobs::text_edit::EditSubject;
    use facecast::pipeline::text_edit::TextEditRecord;

    use super::{common, fixture_generator, import_reduced, normal, store};

    struct Ui {
        window: TextEditWindow,
        worker: Worker,
        inbox: TextEditInbox,
        actions: Vec<TextEditAction>,
    }

    fn harness(window: TextEditWindow) -> Harness<'static, Ui> {
        let ui = Ui {
            window,
            worker: Worker::start(Compute::cpu(), Arc::new(|| {})),
            inbox: TextEditInbox::default(),
            actions: Vec::new(),
        };
        Harness::builder().with_size([900.0, 900.0]).build_ui_state(
            |ui, s: &mut Ui| {
                for event in s.worker.drain() {
                    s.inbox.observe(&event);
                }
                let actions = s.window.ui(ui.ctx(), &s.worker, &mut s.inbox);
                s.actions.extend(actions);
            },
            ui,
        )
    }

    /// Steps until `done` holds (bounded), sleeping between frames so the worker can run.
    fn step_until(harness: &mut Harness<'_, Ui>, what: &str, done: impl Fn(&Ui) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !done(harness.state()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            harness.step();
            std::thread::sleep(Duration::from_millis(20));
        }
        harness.step();
    }

    #[test]
    fn a_trained_edit_previews_and_saves_and_an_imported_model_is_explained() {
        let (mapper_dir, gan_dir) = (
            common::fixture_dir("styleclip_mapper"),
            common::fixture_dir("stylegan2"),
        );
        let device = Device::flex();
        let model = fixture_generator(&device);
        let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = store(data.path());

        // Nothing installed: the window says what is missing and offers to install it.
        let g = &model.generator;
        let z = Tensor::<2>::from_data(TensorData::new(normal(g.style_dim, 7), [1, g.style_dim]), &device);
        let wplus = model
            .latent(z, 0.7)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        let subject = EditSubject {
            name: "Ava".into(),
            wplus: Arc::new(wplus),
            n_latent: g.n_latent,
            style_dim: g.style_dim,
            s_conv_delta: None,
            noise: facecast::cast::NoiseSpec::Checkpoint,
        };
        let mut window = TextEditWindow::new(store.clone());
        window.open_for(EditTarget {
            id: "a1".into(),
            name: "Ava".into(),
            face: None,
            subject: Some(subject.clone()),
        });
        let mut h = harness(window);
        h.step();
        let deadline = Instant::now() + Duration::from_secs(30);
        while h.query_all_by_label("Install").next().is_none() {
            assert!(
                Instant::now() < deadline,
                "the missing networks were never listed"
            );
            h.step();
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            h.query_by_label("This edit needs networks that are not installed:")
                .is_some()
        );
        if let Some(button) = h.get_all_by_label("Install").next() {
            button.click();
        }
        h.step();
        assert!(
            matches!(h.state().actions.first(), Some(TextEditAction::Install(id)) if id == "stylegan2-ffhq")
        );

        // With the generator and a mapper installed, the mapper is a chip; its preview follows.
        import_reduced(&store, "stylegan2-ffhq", &[gan_dir.join("weights.pth")]);
        import_reduced(
            &store,
            "styleclip-mapper-purple-hair",
            &[mapper_dir.join("weights.pth")],
        );
        let mut window = TextEditWindow::new(store.clone());
        window.open_for(EditTarget {
            id: "a1".into(),
            name: "Ava".into(),
            face: None,
            subject: Some(subject),
        });
        let mut h = harness(window);
        let deadline = Instant::now() + Duration::from_secs(30);
        while h.query_by_label("purple hair (trained)").is_none() {
            assert!(
                Instant::now() < deadline,
                "the installed mapper never became a chip"
            );
            h.step();
            std::thread::sleep(Duration::from_millis(20));
        }
        h.get_by_label("purple hair (trained)").click();
        step_until(&mut h, "the preview", |s| s.window.latest().is_some());
        let latest = h
            .state()
            .window
            .latest()
            .cloned()
            .unwrap_or_else(|| panic!("no preview"));
        assert!(latest.changed);
        assert_eq!(latest.image.dimensions(), (g.size as u32, g.size as u32));
        assert!(matches!(
            &latest.record,
            TextEditRecord::StyleclipMapper { mapper, .. } if mapper == "styleclip-mapper-purple-hair"
        ));
        assert!(
            h.state().window.error().is_none(),
            "{:?}",
            h.state().window.error()
        );

        h.get_by_label(SAVE_LABEL).click();
        h.step();
        let saved = h.state().actions.iter().find_map(|a| match a {
            TextEditAction::Save {
                parent,
                name,
                preview,
            } => Some((parent.clone(), name.clone(), preview.tag)),
            _ => None,
        });
        assert_eq!(saved, Some(("a1".into(), "Ava (purple hair)".into(), latest.tag)));

        // An imported model explains that text edits need a generated one.
        let mut window = TextEditWindow::new(store);
        window.open_for(EditTarget {
            id: "b2".into(),
            name: "Photo model".into(),
            face: None,
            subject: None,
        });
        let mut h = harness(window);
        h.step();
        assert!(h.query_by_label(IMPORTED_TEXT).is_some());
        assert!(h.query_by_label(SAVE_LABEL).is_none());
    }
}

mod cli {
    use std::path::Path;
    use std::process::Command;

    use burn::tensor::Device;
    use facecast::cast::VirtualModelLibrary;
    use facecast::weights::models;

    use super::{common, fixture_generator, import_reduced, store, vocab, write_matching_global};

    fn facecast(data: &Path, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_facecast"))
            .arg("--backend")
            .arg("cpu")
            .arg("--data-dir")
            .arg(data)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running facecast: {e}"));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn json(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    #[test]
    fn virtual_edit_saves_new_versions_with_lineage_and_refuses_what_it_cannot_do() {
        let (gan, mapper, clip, mtcnn) = (
            common::fixture_dir("stylegan2"),
            common::fixture_dir("styleclip_mapper"),
            common::fixture_dir("clip_text"),
            common::fixture_dir("mtcnn"),
        );
        let vocab = vocab();
        let device = Device::flex();
        let model = fixture_generator(&device);
        let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = store(data.path());
        import_reduced(&store, "stylegan2-ffhq", &[gan.join("weights.pth")]);
        import_reduced(
            &store,
            "styleclip-mapper-purple-hair",
            &[mapper.join("weights.pth")],
        );
        import_reduced(
            &store,
            models::CLIP_TEXT_ID,
            &[clip.join("weights_torchscript.pt")],
        );
        store
            .import(models::CLIP_VOCAB_ID, &[vocab])
            .unwrap_or_else(|e| panic!("{e}"));
        let files = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let clip_dim = models::load_clip_installed(&store, &device)
            .unwrap_or_else(|e| panic!("{e}"))
            .encoder
            .text_projection
            .dims()[1];
        write_matching_global(files.path(), &model, clip_dim, &device);
        import_reduced(
            &store,
            models::STYLECLIP_GLOBAL_ID,
            &[files.path().join("fs3.npy"), files.path().join("S_mean_std")],
        );

        let (code, out, err) = facecast(
            data.path(),
            &["virtual", "generate", "--seed", "3", "--name", "Ava"],
        );
        assert_eq!(code, 0, "{out}{err}");
        let library = VirtualModelLibrary::open(data.path());
        let ava = library.find("Ava").unwrap_or_else(|e| panic!("{e}"));

        // A prompt edit: a new version whose parent is Ava, with the edit recorded; Ava unchanged.
        let png = files.path().join("smiling.png");
        let (code, out, err) = facecast(
            data.path(),
            &[
                "virtual",
                "edit",
                "Ava",
                "--prompt",
                "smiling",
                "--auto-beta",
                "--json",
                "--out",
            ],
        );
        assert_ne!(code, 0, "--out without a file must be refused: {out}{err}");
        let (code, out, err) = facecast(
            data.path(),
            &[
                "virtual",
                "edit",
                "Ava",
                "--prompt",
                "smiling",
                "--auto-beta",
                "--json",
                "--out",
                png.to_str().unwrap_or_default(),
            ],
        );
        assert_eq!(code, 0, "{out}{err}");
        let report = json(&out);
        assert_eq!(report["changed"], true);
        assert_eq!(report["target"], "smiling face");
        assert_eq!(report["neutral"], "face");
        assert!(report["channels"].as_u64().unwrap_or(0) > 0, "{report}");
        assert_eq!(report["model"]["parent"], ava.id.as_str());
        assert_eq!(report["model"]["name"], "Ava (smiling)");
        assert!(png.is_file());
        let smiling = library.find("Ava (smiling)").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(smiling.parent.as_deref(), Some(ava.id.as_str()));
        assert_eq!(smiling.edits().len(), 1);
        assert_eq!(smiling.edits()[0].kind, "styleclip-global");
        let latent = smiling
            .latent()
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no latent"));
        assert!(
            latent.s_conv_delta.is_some(),
            "a global edit is stored as an S offset"
        );
        assert_eq!(
            latent.wplus,
            ava.latent().ok().flatten().map(|l| l.wplus).unwrap_or_default()
        );
        assert_ne!(
            image::open(smiling.face_path())
                .map(|i| i.to_rgb8().into_raw())
                .ok(),
            image::open(ava.face_path()).map(|i| i.to_rgb8().into_raw()).ok()
        );
        assert!(library.find("Ava").map(|m| m.edits().is_empty()).unwrap_or(false));

        // A threshold no channel reaches changes nothing, saves nothing, and says why (exit 2).
        let before = library.list().map(|l| l.models.len()).unwrap_or(0);
        let (code, out, err) = facecast(
            data.path(),
            &["virtual", "edit", "Ava", "--prompt", "smiling", "--beta", "0.99"],
        );
        assert_eq!(code, 2, "{out}{err}");
        assert!(
            err.contains("No style channel") && err.contains("unchanged"),
            "{err}"
        );
        assert_eq!(library.list().map(|l| l.models.len()).unwrap_or(0), before);

        // A mapper on top of the edited version keeps its S offset and extends the lineage.
        let (code, out, err) = facecast(
            data.path(),
            &[
                "virtual",
                "edit",
                "Ava (smiling)",
                "--mapper",
                "purple-hair",
                "--save-as",
                "Ava 2",
            ],
        );
        assert_eq!(code, 0, "{out}{err}");
        let second = library.find("Ava 2").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(second.parent.as_deref(), Some(smiling.id.as_str()));
        assert_eq!(second.edits().len(), 2);
        assert_eq!(second.edits()[1].kind, "styleclip-mapper");
        let second_latent = second
            .latent()
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no latent"));
        assert_eq!(second_latent.s_conv_delta, latent.s_conv_delta);
        assert_ne!(second_latent.wplus, latent.wplus);

        // Unknown mappers and imported models are refused with the reason.
        let (code, _, err) = facecast(data.path(), &["virtual", "edit", "Ava", "--mapper", "green-hair"]);
        assert_ne!(code, 0);
        assert!(
            err.contains("no StyleCLIP mapper") && err.contains("purple-hair"),
            "{err}"
        );
        let state = store
            .import(facecast::jobs::MTCNN_ID, std::slice::from_ref(&mtcnn))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(state.status.is_usable());
        let photo = mtcnn.join("astronaut.png");
        let (code, out, err) = facecast(
            data.path(),
            &["virtual", "import", "Photo", photo.to_str().unwrap_or_default()],
        );
        assert_eq!(code, 0, "{out}{err}");
        let (code, _, err) = facecast(data.path(), &["virtual", "edit", "Photo", "--prompt", "smiling"]);
        assert_ne!(code, 0);
        assert!(err.contains("text edits need a generated virtual model"), "{err}");
    }
}
