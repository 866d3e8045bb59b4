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

/// An argument for [`facecast`] given as text.
pub fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

/// A data folder with MTCNN installed through `weights import`, as a user would.
pub fn data_with_mtcnn() -> tempfile::TempDir {
    let data = tempfile::tempdir().expect("tempdir");
    let fixtures = fixture_dir("mtcnn");
    let out = facecast(
        data.path(),
        &[os("weights"), os("import"), os("mtcnn"), fixtures.as_os_str()],
    );
    assert!(out.status.success(), "import failed: {}", text(&out));
    data
}

/// The weights store of the data folder `data`, with MTCNN installed from the shared fixture in
/// process (quicker than [`data_with_mtcnn`]'s run of the CLI).
pub fn store_with_mtcnn(data: &std::path::Path) -> facecast::weights::store::WeightsStore {
    let store =
        facecast::weights::store::WeightsStore::open(Some(data.to_path_buf())).expect("open the store");
    store
        .import("mtcnn", &[fixture_dir("mtcnn")])
        .expect("import MTCNN from the fixtures");
    store
}

/// A recipe file in `dir`: screening, conversion and export without edit steps (only MTCNN is
/// needed), then whatever `edit` changes.
pub fn recipe_file(
    dir: &std::path::Path,
    edit: impl FnOnce(&mut facecast::pipeline::recipe::Recipe),
) -> PathBuf {
    let mut recipe = facecast::pipeline::recipe::Recipe::default();
    recipe.swap.enabled = false;
    edit(&mut recipe);
    let path = dir.join("recipe.json");
    recipe.save(&path).expect("save the recipe");
    path
}

/// `facecast batch --recipe RECIPE --out OUT PHOTOS` started in the background, its output
/// discarded: for the tests that kill or cancel a run.
pub fn spawn_batch(
    data: &std::path::Path,
    recipe: &std::path::Path,
    out: &std::path::Path,
    photos: &std::path::Path,
) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_facecast"))
        .env("FACECAST_DATA_DIR", data)
        .args(["--backend", "cpu", "batch", "--recipe"])
        .arg(recipe)
        .arg("--out")
        .arg(out)
        .arg(photos)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start facecast")
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

/// The app in a window of `size` points on the CPU backend, with `data` as its data folder and
/// `open` loaded at start.
pub fn window(
    data: &std::path::Path,
    open: Vec<PathBuf>,
    size: [f32; 2],
) -> egui_kittest::Harness<'static, facecast::app::FacecastApp> {
    let start = facecast::app::StartOptions {
        data_dir: Some(data.to_path_buf()),
        open,
        ..Default::default()
    };
    egui_kittest::Harness::builder()
        .with_size(size)
        .build_eframe(move |cc| {
            facecast::app::FacecastApp::new(&cc.egui_ctx, facecast::compute::Compute::cpu(), start)
        })
}

/// A file dropped on the window, as the platform hands it over.
#[derive(Debug)]
pub struct DroppedPath(pub PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|err| err.to_string())
    }
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
    key_rows(&std::fs::read_to_string(file).expect("official_keys.txt is readable"))
}

/// `(key, shape)` rows of a key list's text (`official_keys.txt`, `models/keys/*.txt`); lines
/// starting with `#` are comments.
pub fn key_rows(text: &str) -> Vec<(String, Vec<usize>)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
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

/// A state dict of shapes only (no values): enough to check a key layout or infer a config.
pub fn shapes_only(rows: impl IntoIterator<Item = (String, Vec<usize>)>) -> facecast::weights::TensorMap {
    let mut state = facecast::weights::TensorMap::default();
    for (key, shape) in rows {
        state
            .tensors
            .insert(key, facecast::weights::RawTensor::f32(shape, Vec::new()));
    }
    state
}

/// The `(key, shape)` of every parameter in a checkpoint mapped to a network's layout (by
/// `gpen_tensors`, `generator_tensors`), sorted. Blur kernels are left out: the network makes
/// them, they are not parameters.
pub fn parameter_keys(layout: facecast::weights::TensorMap) -> Vec<(String, Vec<usize>)> {
    let mut keys: Vec<(String, Vec<usize>)> = layout
        .tensors
        .into_iter()
        .filter(|(k, _)| !k.ends_with(".kernel"))
        .map(|(k, t)| (k, t.shape))
        .collect();
    keys.sort();
    keys
}

/// Parameter paths and shapes of a module, as the loader sees them, sorted.
pub fn module_keys<M: burn::module::Module>(module: &M) -> Vec<(String, Vec<usize>)> {
    use burn::store::ModuleSnapshot;
    let mut keys: Vec<(String, Vec<usize>)> = module
        .collect(None, None, false)
        .into_iter()
        .map(|t| (t.name.clone(), t.shape.to_vec()))
        .collect();
    keys.sort();
    keys
}

/// A fixture folder's `meta.json` and its `weights.pth` read as flat tensors, with that file's path.
pub fn fixture_weights(
    dir: &std::path::Path,
) -> (facecast::parity::Fixture, facecast::weights::TensorMap, PathBuf) {
    let fx = facecast::parity::Fixture::open(dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("weights.pth");
    let tensors = facecast::weights::read_checkpoint(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten_tensors();
    (fx, tensors, path)
}

/// Exports the selected photo as PNG into `out` through the export bar, the recipe first changed
/// by `edit`, and asserts that the file written has exactly `interactive`'s pixels: what a window
/// section shows is what an export writes. The bar must show `recipe_label` ("Recipe: swap");
/// `what` names the section's result in the failure message.
pub fn assert_export_is(
    harness: &mut egui_kittest::Harness<'_, facecast::app::FacecastApp>,
    out: &std::path::Path,
    edit: impl FnOnce(&mut facecast::pipeline::recipe::Recipe),
    recipe_label: &str,
    interactive: &image::RgbImage,
    what: &str,
) {
    use egui_kittest::kittest::Queryable;
    use facecast::app::export_bar::EXPORT_SELECTED;
    use facecast::pipeline::batch::FileStatus;
    use facecast::pipeline::recipe::OutputFormat;
    {
        let recipe = &mut harness.state_mut().state_mut().recipe;
        edit(recipe);
        recipe.export.format = OutputFormat::Png;
        recipe.export.folder = Some(out.to_path_buf());
    }
    harness.run_steps(2);
    harness.get_by_label(recipe_label);
    harness.get_by_label(EXPORT_SELECTED).click();
    step_until(harness, "the export", |app| {
        let export = &app.state().export;
        export.ended && !export.is_running() && app.worker().is_idle()
    });
    let export = &harness.state().state().export;
    assert_eq!(export.reports.len(), 1);
    let report = &export.reports[0];
    assert_eq!(report.status, FileStatus::Done, "{report:?}");
    let written = report.output.as_ref().expect("the file written");
    let exported = image::open(written).expect("the export decodes").into_rgb8();
    assert_eq!(exported.dimensions(), interactive.dimensions());
    let differing = exported
        .pixels()
        .zip(interactive.pixels())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(differing, 0, "{what} and the export differ in {differing} pixels");
}
