//! CLIP text tower and StyleCLIP fixtures, run through `check-fixture`'s runner on the CPU backend.

use std::path::PathBuf;

use burn::tensor::Device;

fn fixture(name: &str) -> Option<PathBuf> {
    let root = std::env::var("FACECAST_FIXTURES").unwrap_or_else(|_| "../shared/fixtures".into());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(root).join(name);
    if dir.join("meta.json").exists() {
        return Some(dir);
    }
    assert!(std::env::var_os("CI").is_none(), "fixture folder {} is missing under CI", dir.display());
    eprintln!("skipping: no fixture at {} (set FACECAST_FIXTURES)", dir.display());
    None
}

fn run(name: &str) -> Vec<facecast::parity::CaseResult> {
    let Some(dir) = fixture(name) else { return Vec::new() };
    let results = facecast::parity::run_fixture(&dir, &Device::flex())
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let failed: Vec<String> = results
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: max abs err {:.3e} {}", c.name, c.max_abs_err, c.note.clone().unwrap_or_default()))
        .collect();
    assert!(failed.is_empty(), "{name}: {} of {} cases failed:\n{}", failed.len(), results.len(), failed.join("\n"));
    results
}

#[test]
fn clip_text_matches_reference_for_both_weight_files() {
    let results = run("clip_text");
    if !results.is_empty() {
        for file in ["weights.pth", "weights_torchscript.pt"] {
            let name = format!("{file}: output.text_features");
            assert!(results.iter().any(|c| c.name == name), "no case {name}");
        }
    }
}

#[test]
fn styleclip_global_matches_reference() {
    let results = run("styleclip_global");
    if !results.is_empty() {
        assert!(results.iter().any(|c| c.name == "output.edited_s.0"));
        assert!(results.iter().any(|c| c.name == "output.auto_beta"));
    }
}

#[test]
fn styleclip_mapper_matches_reference() {
    let results = run("styleclip_mapper");
    if !results.is_empty() {
        assert!(results.iter().any(|c| c.name == "output.w_hat"));
        assert!(results.iter().any(|c| c.name == "inter.course_mapping.mapping.4"));
    }
}
