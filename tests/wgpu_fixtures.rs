//! Every parity fixture on wgpu (Mesa's software Vulkan where there is no GPU, as in CI), in one
//! process on one device: kernels that several networks share are compiled and tuned once, and
//! the runtime tunes quickly (`common::wgpu_device`). The CPU backend runs the same fixtures in
//! each network's own parity test; this is the proof that the GPU road gives the same answers.

mod common;

use std::time::Instant;

/// Every inference fixture folder. The small networks come first so that the kernels they share
/// with the large ones (convolutions, norms, elementwise chains) are ready when those run.
/// `stylegan2_train` (one training iteration through autodiff, second-order regularisers included)
/// is left to `tests/parity_stylegan2_train.rs`'s ignored wgpu tests: on software Vulkan it alone
/// takes longer than CI can give the whole sweep (see `benches/RESULTS.md`).
const FIXTURES: [&str; 10] = [
    "styleclip_global",
    "styleclip_mapper",
    "clip_text",
    "mtcnn",
    "mobilenetv2",
    "arcface_ir_se50",
    "beautygan",
    "gpen",
    "faceshifter_aei",
    "stylegan2",
];

/// A fixture added to the shared folder must join the sweep (or be named here with the reason).
#[test]
fn the_sweep_lists_every_inference_fixture() {
    let root = common::fixtures_root();
    let mut missing: Vec<String> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("meta.json").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !FIXTURES.contains(&name.as_str()))
        .collect();
    missing.sort();
    assert_eq!(missing, ["stylegan2_train"], "fixtures the wgpu sweep leaves out");
}

#[test]
fn every_fixture_passes_on_one_wgpu_device() {
    let device = common::wgpu_device();
    let mut failures = Vec::new();
    for name in FIXTURES {
        let dir = common::fixture_dir(name);
        let started = Instant::now();
        let outcome = facecast::parity::run_fixture(&dir, &device);
        let seconds = started.elapsed().as_secs_f64();
        match outcome {
            Ok(cases) => {
                let failed: Vec<String> = cases
                    .iter()
                    .filter(|c| !c.passed)
                    .map(|c| {
                        let note = c.note.as_deref().unwrap_or("");
                        format!("    {}: max abs err {:.3e} {note}", c.name, c.max_abs_err)
                    })
                    .collect();
                // Seen with --nocapture: where a sweep's time goes.
                eprintln!(
                    "{name}: {} of {} cases passed, {seconds:.1} s",
                    cases.len() - failed.len(),
                    cases.len()
                );
                if !failed.is_empty() {
                    failures.push(format!(
                        "{name}: {} of {} cases failed\n{}",
                        failed.len(),
                        cases.len(),
                        failed.join("\n")
                    ));
                }
            }
            Err(err) => {
                eprintln!("{name}: {err}, {seconds:.1} s");
                failures.push(format!("{name}: {err}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "fixtures that fail on wgpu:\n{}",
        failures.join("\n")
    );
}
