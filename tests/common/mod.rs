//! Shared test helpers: where the parity fixtures are.
#![allow(dead_code)]

use std::path::PathBuf;

/// `$FACECAST_FIXTURES`, else `../shared/fixtures` beside the repository. A missing folder fails
/// the test, in every environment: a parity test that skips proves nothing.
pub fn fixtures_root() -> PathBuf {
    use facecast::parity::lookup;
    let root = lookup::fixtures_root(
        std::env::var_os(lookup::FIXTURES_ENV),
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    assert!(
        root.is_dir(),
        "fixture folder {} is missing (set {})",
        root.display(),
        lookup::FIXTURES_ENV
    );
    root
}

/// One fixture folder (with its `meta.json`); a missing one fails the test.
pub fn fixture_dir(name: &str) -> PathBuf {
    facecast::parity::lookup::fixture_folder(&fixtures_root(), name).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a fixture folder on `device` and asserts that it ran cases and every one passed.
pub fn assert_fixture_passes(
    dir: &std::path::Path,
    device: &burn::tensor::Device,
) -> Vec<facecast::parity::CaseResult> {
    let cases = facecast::parity::run_fixture(dir, device).unwrap_or_else(|e| panic!("{e}"));
    let failed: Vec<_> = cases.iter().filter(|c| !c.passed).collect();
    for case in &failed {
        eprintln!(
            "FAIL {}: max abs err {:.3e} {:?}",
            case.name, case.max_abs_err, case.note
        );
    }
    assert!(!cases.is_empty(), "the fixture ran no case");
    assert!(
        failed.is_empty(),
        "{} of {} cases failed",
        failed.len(),
        cases.len()
    );
    cases
}

/// Runs the `facecast` binary as a user would, on the CPU backend, with `data` as its data folder.
pub fn facecast<S: AsRef<std::ffi::OsStr>>(data: &std::path::Path, args: &[S]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_facecast"))
        .env("FACECAST_DATA_DIR", data)
        .args(["--backend", "cpu"])
        .args(args)
        .output()
        .expect("run facecast")
}

/// A run's stdout then stderr, for assertions and their messages.
pub fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The wgpu device (a GPU, or Mesa's software Vulkan where there is none). Setup installs Mesa's
/// Vulkan on every machine, so a missing adapter fails the test rather than skipping it.
///
/// The GPU runtime's autotune results are kept beside the build (`<target>/facecast-test-gpu-kernels`),
/// so a later run on the same build directory, CI's included, skips most of the first call's tuning.
/// Tests check results, not speed, so the runtime tunes quickly (`kernel_cache::Tuning::Quick`).
pub fn wgpu_device() -> burn::tensor::Device {
    use facecast::compute::kernel_cache::{Tuning, configure};
    // The test executable is `<target>/debug/deps/NAME`.
    let exe = std::env::current_exe().expect("the test executable's path");
    if let Some(target) = exe.ancestors().nth(3) {
        configure(&target.join("facecast-test-gpu-kernels"), Tuning::Quick);
    }
    burn::tensor::Device::wgpu_options()
        .init()
        .unwrap_or_else(|e| panic!("no wgpu adapter (scripts/setup.sh installs Mesa's Vulkan): {e}"))
}

/// Steps the window until `done` holds, then two more frames so the UI shows it; fails after five
/// minutes (the networks run on the worker, so a test waits for them as a user would).
pub fn step_until(
    harness: &mut egui_kittest::Harness<'_, facecast::app::FacecastApp>,
    what: &str,
    done: impl Fn(&facecast::app::FacecastApp) -> bool,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        harness.step();
        if done(harness.state()) {
            harness.run_steps(2);
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not happen within 300 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// One PNG chunk (length, type, data, CRC-32), for building hand-made and hostile PNG files.
pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    let mut crc = !0u32;
    for &b in &body {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                0xEDB8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
        }
    }
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&(!crc).to_be_bytes());
    out
}

/// Whether the window holds exactly `photos` photos, each loaded and screened (faces found, or the
/// detection failed), with the detector ready and the worker idle.
pub fn all_screened(app: &facecast::app::FacecastApp, photos: usize) -> bool {
    use facecast::app::state::{Detection, PhotoStatus};
    let state = app.state();
    let screened = state
        .library
        .entries()
        .iter()
        .filter(|e| matches!(e.detection, Detection::Done(_) | Detection::Failed(_)))
        .count();
    app.detector_ready()
        && state.library.len() == photos
        && state.library.count(|s| matches!(s, PhotoStatus::Loading)) == 0
        && screened == photos
        && app.worker().is_idle()
}

/// Presses at `from`, moves to `to` in steps, releases: a drag as a hand makes it.
pub fn drag(
    harness: &mut egui_kittest::Harness<'_, facecast::app::FacecastApp>,
    from: egui::Pos2,
    to: egui::Pos2,
) {
    let button = |pos, pressed| egui::Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed,
        modifiers: egui::Modifiers::NONE,
    };
    harness.input_mut().events.push(egui::Event::PointerMoved(from));
    harness.step();
    harness.input_mut().events.push(button(from, true));
    harness.step();
    for i in 1..=6 {
        let at = from + (to - from) * (i as f32 / 6.0);
        harness.input_mut().events.push(egui::Event::PointerMoved(at));
        harness.step();
    }
    harness.input_mut().events.push(button(to, false));
    harness.step();
    harness.step();
}

/// `(key, shape)` rows of `official_keys.txt` (`key<TAB>[d0, d1]<TAB>dtype`).
pub fn official_keys(file: &std::path::Path) -> Vec<(String, Vec<usize>)> {
    let text = std::fs::read_to_string(file).expect("official_keys.txt is readable");
    text.lines()
        .filter_map(|line| {
            let mut cols = line.split('\t');
            let key = cols.next()?.to_string();
            let shape = cols.next()?.trim_matches(|c| c == '[' || c == ']');
            let dims: Option<Vec<usize>> = shape
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().parse().ok())
                .collect();
            Some((key, dims?))
        })
        .collect()
}
