//! The Weights window in egui_kittest, clicked by label: sections by feature with what each unlocks,
//! names readable at the default size, *Install all for this feature* held back until each of its
//! licences that forbid commercial use is ticked, one progress bar with Cancel, and a later install
//! that finishes what a cancelled one started. Then the main window: a section whose feature lacks
//! a network links to the Weights window at that feature, and a section's *Install* of such a
//! network asks there instead of downloading. The sources are the manifest's real URLs, sent to a
//! local imitation of Google Drive (tests/common/drive.rs).

#[path = "common/drive.rs"]
mod drive;

use std::time::{Duration, Instant};

use drive::{Server, Site, Style, swap_manifest};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use facecast::app::weights_links::link_label;
use facecast::app::weights_window::{
    CANCEL_LABEL, INSTALL_ALL, LOCATE_LABEL, WINDOW_TITLE, WeightsWindow, accept_label,
};
use facecast::app::{FacecastApp, StartOptions};
use facecast::compute::Compute;
use facecast::weights::features::GROUPS;
use facecast::weights::store::{ModelStatus, WeightsStore};

const SWAP: [&str; 3] = ["mtcnn", "arcface-ir-se50", "faceshifter-aei"];

fn step_until(harness: &mut Harness<'_, WeightsWindow>, what: &str, done: impl Fn(&WeightsWindow) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "{what} did not happen within 60 s");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(2);
}

#[test]
fn sections_guide_install_all_waits_for_the_licence_and_cancel_keeps_what_came() {
    let (manifest, files) = swap_manifest(true);
    let mut site = Site::new(Style::Form);
    site.files = files;
    // The first file pauses half way, long enough to press Cancel.
    site.pause_after = Some((1_000, Duration::from_secs(2)));
    let server = Server::start(site);
    let hosts = server.drive_hosts().with("github.com", &server.base);
    let data = tempfile::tempdir().expect("tempdir");
    let store = WeightsStore::with_manifest(data.path().to_path_buf(), manifest.clone()).with_hosts(hosts);
    let mut window = WeightsWindow::new(store);
    window.open = true;
    // The main window's default size: the Weights window must be readable inside it.
    let mut harness = Harness::builder().with_size([1280.0, 800.0]).build_ui_state(
        |ui, w: &mut WeightsWindow| {
            w.ui(ui.ctx());
        },
        window,
    );
    step_until(&mut harness, "the status check", |w| {
        manifest.models.iter().all(|m| w.status(&m.id).is_some())
    });

    for group in GROUPS {
        assert!(
            harness
                .query_by_label_contains(&format!("{} — ", group.title))
                .is_some(),
            "no section {}",
            group.title
        );
        assert!(
            harness.query_by_label(group.unlocks).is_some(),
            "{} does not say what it unlocks",
            group.title
        );
    }
    assert_eq!(harness.query_all_by_label(INSTALL_ALL).count(), GROUPS.len());
    assert!(harness.query_by_label_contains("Swap — 0 of 3 ready").is_some());
    // Names are read, not deciphered: none is broken into more than two lines.
    for id in SWAP {
        let name = &manifest.models.iter().find(|m| m.id == id).expect("model").name;
        let rect = harness.get_all_by_label(name).next().expect("name shown").rect();
        assert!(
            rect.height() < 40.0 && rect.width() > 150.0,
            "{name} is squeezed: {rect:?}"
        );
    }
    assert!(harness.query_all_by_label(LOCATE_LABEL).count() >= manifest.models.len());

    // Swap's networks are non-commercial: without the acceptance nothing is downloaded.
    let swap_index = GROUPS.iter().position(|g| g.key == "swap").expect("swap");
    harness
        .get_all_by_label(INSTALL_ALL)
        .nth(swap_index)
        .expect("button")
        .click();
    harness.run_steps(4);
    assert!(
        server.seen().is_empty(),
        "nothing before the licences are accepted"
    );
    assert!(!harness.state().is_busy("arcface-ir-se50"));

    // One checkbox per licence: ArcFace's alone is not enough, FaceShifter's is another licence.
    let licence = |id: &str| manifest.get(id).expect("in the manifest").licence.clone();
    let (arcface, generator) = (licence("arcface-ir-se50"), licence("faceshifter-aei"));
    assert_ne!(arcface, generator);
    harness
        .get_all_by_label(&accept_label(&arcface))
        .next()
        .expect("ArcFace's licence checkbox")
        .click();
    harness.run_steps(2);
    harness
        .get_all_by_label(INSTALL_ALL)
        .nth(swap_index)
        .expect("button")
        .click();
    harness.run_steps(4);
    assert!(
        server.seen().is_empty(),
        "nothing before every licence is accepted"
    );
    assert!(!harness.state().may_install("faceshifter-aei"));
    assert!(harness.state().may_install("arcface-ir-se50"));
    harness
        .get_all_by_label(&accept_label(&generator))
        .next()
        .expect("FaceShifter's licence checkbox")
        .click();
    harness.run_steps(2);
    harness
        .get_all_by_label(INSTALL_ALL)
        .nth(swap_index)
        .expect("button")
        .click();
    step_until(&mut harness, "the install's start", |w| w.is_busy("mtcnn"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while harness.query_by_label_contains("pnet.pt").is_none() {
        assert!(Instant::now() < deadline, "the progress bar never named the file");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.get_by_label(CANCEL_LABEL).click();
    step_until(&mut harness, "the cancel", |w| {
        SWAP.iter().all(|id| !w.is_busy(id))
    });
    assert!(matches!(
        harness.state().status("mtcnn"),
        Some(ModelStatus::Missing { .. })
    ));
    assert!(
        !server
            .seen()
            .iter()
            .any(|s| s.path.contains("1iANX7oJoXCEECNzBEW1xOpac2tDOKeu9")),
        "the queue was dropped: the generator was never asked for"
    );
    assert!(
        data.path().join("weights/mtcnn/.incoming/pnet.pt.part").exists(),
        "what came before the cancel is kept"
    );

    // Installing again finishes everything.
    harness
        .get_all_by_label(INSTALL_ALL)
        .nth(swap_index)
        .expect("button")
        .click();
    step_until(&mut harness, "the install", |w| {
        SWAP.iter()
            .all(|id| matches!(w.status(id), Some(ModelStatus::Installed)))
    });
    assert!(harness.query_by_label_contains("Swap — 3 of 3 ready").is_some());
    for id in SWAP {
        assert!(data.path().join("weights").join(id).is_dir(), "{id}");
    }
}

fn app(data: &std::path::Path) -> Harness<'static, FacecastApp> {
    let start = StartOptions {
        data_dir: Some(data.to_path_buf()),
        ..Default::default()
    };
    // Tall enough that every pipeline section is on screen without scrolling.
    Harness::builder()
        .with_size([1280.0, 1800.0])
        .build_eframe(move |cc| FacecastApp::new(&cc.egui_ctx, Compute::cpu(), start))
}

fn app_until(harness: &mut Harness<'_, FacecastApp>, what: &str, done: impl Fn(&FacecastApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "{what} did not happen within 60 s");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(2);
}

#[test]
fn sections_missing_a_network_link_to_the_weights_window_at_their_feature() {
    // No network installed: every section lacks its own.
    let data = tempfile::tempdir().expect("tempdir");
    let mut harness = app(data.path());
    app_until(&mut harness, "the weights check", |app| {
        let missing = &app.state().missing_networks;
        missing.missing("swap").is_some() && missing.missing("edit").is_some()
    });
    assert!(harness.query_by_label(WINDOW_TITLE).is_none(), "closed at start");
    let names = harness
        .state()
        .state()
        .missing_networks
        .missing("swap")
        .expect("swap")
        .to_vec();
    assert!(names.iter().any(|n| n.contains("ArcFace")), "{names:?}");

    // The Swap section's link opens the Weights window with the Swap section in view.
    harness.get_by_label(&link_label("swap")).click();
    harness.run_steps(3);
    let weights = harness.get_by_role_and_label(egui::accesskit::Role::Window, WINDOW_TITLE);
    let window = weights.rect();
    let header = weights.get_by_label_contains("Swap — 0 of 3 ready").rect();
    assert!(
        window.contains_rect(header),
        "the Swap section is in view: {header:?} in {window:?}"
    );
    assert_eq!(
        harness
            .state()
            .weights_window()
            .and_then(WeightsWindow::focused_section),
        Some("swap")
    );

    // The Text edits section's link moves it to Text edits.
    harness.get_by_label(&link_label("edit")).click();
    harness.run_steps(3);
    assert_eq!(
        harness
            .state()
            .weights_window()
            .and_then(WeightsWindow::focused_section),
        Some("edit")
    );
    let weights = harness.get_by_role_and_label(egui::accesskit::Role::Window, WINDOW_TITLE);
    let header = weights.get_by_label_contains("Text edits — 0 of 4 ready").rect();
    assert!(
        weights.rect().contains_rect(header),
        "Text edits in view: {header:?}"
    );
}

#[test]
fn a_sections_install_of_a_noncommercial_network_asks_in_the_weights_window_first() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut harness = app(data.path());
    harness.step();
    harness.get_by_label("GPEN").click();
    app_until(&mut harness, "the GPEN check", |app| {
        app.state()
            .restore
            .weights(facecast::pipeline::restore::GpenModel::Bfr512)
            .is_some()
    });
    harness.get_by_label(&link_label("restore"));
    harness.get_by_label("Install GPEN-512").click();
    harness.run_steps(3);
    let weights = harness.state().weights_window().expect("a weights store");
    assert!(weights.open, "the Weights window opened");
    assert!(
        !weights.is_busy("gpen-bfr-512"),
        "nothing is downloaded before the licence is accepted"
    );
    assert_eq!(weights.focused_section(), Some("restore"));
    let asked = harness
        .get_by_role_and_label(egui::accesskit::Role::Window, WINDOW_TITLE)
        .query_by_label_contains("forbids commercial use or leaves it unclear: accept its licence")
        .is_some();
    assert!(asked, "the window says what it waits for");
}
