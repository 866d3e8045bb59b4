//! CLIP text tower and StyleCLIP fixtures, run through `check-fixture`'s runner on the CPU backend.

mod common;

use burn::tensor::Device;

fn run(name: &str) -> Vec<facecast::parity::CaseResult> {
    let dir = common::fixture_dir(name);
    let results = facecast::parity::run_fixture(&dir, &Device::flex())
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let failed: Vec<String> = results
        .iter()
        .filter(|c| !c.passed)
        .map(|c| {
            format!(
                "{}: max abs err {:.3e} {}",
                c.name,
                c.max_abs_err,
                c.note.clone().unwrap_or_default()
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{name}: {} of {} cases failed:\n{}",
        failed.len(),
        results.len(),
        failed.join("\n")
    );
    results
}

#[test]
fn clip_text_matches_reference_for_both_weight_files() {
    let results = run("clip_text");
    for file in ["weights.pth", "weights_torchscript.pt"] {
        let name = format!("{file}: output.text_features");
        assert!(results.iter().any(|c| c.name == name), "no case {name}");
    }
}

#[test]
fn styleclip_global_matches_reference() {
    let results = run("styleclip_global");
    assert!(results.iter().any(|c| c.name == "output.edited_s.0"));
    assert!(results.iter().any(|c| c.name == "output.auto_beta"));
}

#[test]
fn styleclip_mapper_matches_reference() {
    let results = run("styleclip_mapper");
    assert!(results.iter().any(|c| c.name == "output.w_hat"));
    assert!(results.iter().any(|c| c.name == "inter.course_mapping.mapping.4"));
    assert!(results.iter().any(|c| c.name == "output.image_w_hat"));
}

/// A checkpoint with the official entry names and shapes (`official_keys*.txt`), zero-filled;
/// entries matching `small` get a one-element tensor since the loader must ignore them anyway.
fn official_layout(file: &std::path::Path, small: &[&str]) -> Vec<(String, facecast::weights::RawTensor)> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    text.lines()
        .filter_map(|line| {
            let mut cols = line.split('\t');
            let (name, shape) = (cols.next()?, cols.next()?);
            let shape: Vec<usize> = shape
                .trim_matches(['[', ']'])
                .split(',')
                .filter_map(|d| d.trim().parse().ok())
                .collect();
            // `opts` is a dict, not a tensor.
            if line.contains("\tdict") {
                return None;
            }
            let shape = if small
                .iter()
                .any(|p| name.starts_with(p) || name.contains(&format!("/{p}")))
            {
                vec![1]
            } else {
                shape
            };
            let n = shape.iter().product();
            Some((
                name.to_string(),
                facecast::weights::RawTensor::f32(shape, vec![0.0; n]),
            ))
        })
        .collect()
}

#[test]
fn the_official_vit_b32_layout_loads_with_inferred_sizes() {
    let dir = common::fixture_dir("clip_text");
    let entries = official_layout(&dir.join("official_keys_full.txt"), &["visual."]);
    assert!(entries.len() > 300, "{} entries", entries.len());
    let map = facecast::weights::TensorMap {
        tensors: entries.into_iter().collect(),
    };
    let config = facecast::nets::clip_text::ClipTextConfig::from_state_dict(&map);
    assert_eq!(config, Some(facecast::nets::clip_text::ClipTextConfig::default()));
    let device = Device::flex();
    facecast::nets::clip_text::from_state_dict(&map, &dir.join("official_keys_full.txt"), None, &device)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn released_mappers_load_with_and_without_levels() {
    use facecast::nets::styleclip::mapper::LevelsMapper;
    use facecast::weights::Value;
    let dir = common::fixture_dir("styleclip_mapper");
    let file = dir.join("official_keys.txt");
    let entries = official_layout(&file, &["decoder."]);
    let state_dict = |skip: &str| {
        let dict = entries
            .iter()
            .filter_map(|(k, t)| {
                let key = k.strip_prefix("state_dict/")?;
                let mut t = t.clone();
                if key.starts_with("mapper.") && key.ends_with(".bias") {
                    // A bias makes every present level's output non-zero.
                    t = facecast::weights::RawTensor::f32(t.shape.clone(), vec![1.0; t.numel()]);
                }
                (!key.starts_with(skip)).then(|| (Value::Str(key.to_string()), Value::Tensor(t)))
            })
            .collect();
        let opts = Value::Dict(vec![(
            Value::Str("description".into()),
            Value::Str("purple hair".into()),
        )]);
        Value::Dict(vec![
            (Value::Str("state_dict".into()), Value::Dict(dict)),
            (Value::Str("opts".into()), opts),
        ])
    };
    let device = Device::flex();
    let (_, info) =
        LevelsMapper::from_checkpoint(&state_dict("-"), &file, &device).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((info.levels, info.latent_dim), ([true, true, true], 512));
    assert_eq!(info.description.as_deref(), Some("purple hair"));

    // Like afro.pt: no fine mapper, so rows 8.. of the delta are zero even where w is not.
    let (mapper, info) = LevelsMapper::from_checkpoint(&state_dict("mapper.fine_mapping"), &file, &device)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.levels, [true, true, false]);
    let w = burn::tensor::Tensor::<3>::ones([1, 18, 512], &device);
    let delta = mapper
        .delta(w)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    assert_eq!(delta.len(), 18 * 512);
    assert!(delta[..8 * 512].iter().all(|v| *v > 0.0));
    assert!(delta[8 * 512..].iter().all(|v| *v == 0.0));
}
