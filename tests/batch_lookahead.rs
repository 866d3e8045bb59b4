//! The batch engine's one-photo look-ahead (decode and detect of the next photo on a second thread
//! while the current one is in the steps): the same reports, outputs and step calls, in input order,
//! as a run without it; a failing or panicking photo fails alone; cancelling from inside a step
//! stops the run at that photo and ends the look-ahead thread.

mod common;

use std::cell::{Cell, RefCell};
use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::thread::ThreadId;

use facecast::compute::Compute;
use facecast::pipeline::batch::{
    BatchEngine, BatchInput, BatchObserver, BatchSummary, FileStatus, PhotoStep, StepError, StepOutput,
    StopReason,
};
use facecast::pipeline::detect::Face;
use facecast::pipeline::recipe::Recipe;
use image::{Rgb, RgbImage, imageops};

/// What the step saw: the thread it ran on and the width of each photo, in call order.
#[derive(Default)]
struct Seen {
    calls: Vec<(ThreadId, u32)>,
}

/// A real edit (it mirrors the photo) that records its calls, panics on a photo of width
/// `panic_width`, and asks for cancellation while editing a photo of width `cancel_width`.
struct MirrorStep {
    seen: Rc<RefCell<Seen>>,
    panic_width: Option<u32>,
    cancel_width: Option<u32>,
    cancel: Rc<Cell<bool>>,
}

impl PhotoStep for MirrorStep {
    fn name(&self) -> &str {
        "mirror"
    }

    fn description(&self) -> String {
        "photo mirrored".into()
    }

    fn networks(&self) -> Vec<String> {
        Vec::new()
    }

    fn apply(
        &mut self,
        image: RgbImage,
        _faces: &[Face],
        cancelled: &dyn Fn() -> bool,
    ) -> Result<StepOutput, StepError> {
        let width = image.width();
        self.seen
            .borrow_mut()
            .calls
            .push((std::thread::current().id(), width));
        if self.panic_width == Some(width) {
            panic!("a step that breaks on {width} px");
        }
        if self.cancel_width == Some(width) {
            self.cancel.set(true);
        }
        if cancelled() {
            return Err(StepError::Cancelled);
        }
        Ok(StepOutput {
            image: imageops::flip_horizontal(&image),
            notes: Vec::new(),
            measured: None,
        })
    }
}

struct Cancel(Rc<Cell<bool>>);

impl BatchObserver for Cancel {
    fn is_cancelled(&self) -> bool {
        self.0.get()
    }
}

fn astronaut(side: u32) -> RgbImage {
    let img = image::open(common::fixture_dir("mtcnn").join("astronaut.png"))
        .expect("astronaut")
        .to_rgb8();
    imageops::resize(&img, side, side, imageops::FilterType::Triangle)
}

fn save(img: &RgbImage, path: &Path) -> BatchInput {
    img.save(path).expect("write a photo");
    BatchInput::new(path)
}

/// Good photos of distinct widths around a broken file, a photo without a face, an input that
/// could not be had and a file that is not a photo.
fn mixed_inputs(dir: &Path) -> Vec<BatchInput> {
    let broken = dir.join("broken.png");
    fs::write(&broken, b"not a png at all").expect("write");
    let mut unavailable = BatchInput::new(dir.join("feed-item.jpg"));
    unavailable.unavailable = Some("feed-item.jpg: the download failed".into());
    vec![
        save(&astronaut(320), &dir.join("a.png")),
        BatchInput::new(broken),
        save(
            &RgbImage::from_pixel(200, 160, Rgb([128, 128, 128])),
            &dir.join("grey.png"),
        ),
        save(&astronaut(288), &dir.join("b.png")),
        unavailable,
        BatchInput::not_a_photo(dir.join("notes.txt"), "notes.txt: not a photo".into()),
        save(&astronaut(352), &dir.join("c.png")),
        save(&astronaut(256), &dir.join("d.png")),
    ]
}

fn run(
    inputs: &[BatchInput],
    out: PathBuf,
    lookahead: bool,
    step: MirrorStep,
    cancel: Rc<Cell<bool>>,
) -> BatchSummary {
    let compute = Compute::cpu();
    let nets = facecast::weights::models::load_mtcnn(&common::fixture_dir("mtcnn"), &compute.device)
        .expect("MTCNN from the fixtures");
    let mut recipe = Recipe::default();
    recipe.swap.enabled = false;
    recipe.export.folder = Some(out);
    let steps: Vec<Box<dyn PhotoStep>> = vec![Box::new(step)];
    let mut engine = BatchEngine::new(recipe, &nets, &compute.device, steps)
        .expect("engine")
        .with_lookahead(lookahead);
    engine.run(inputs, &mut Cancel(cancel)).expect("run")
}

fn step(
    seen: &Rc<RefCell<Seen>>,
    cancel: &Rc<Cell<bool>>,
    panic_width: Option<u32>,
    cancel_width: Option<u32>,
) -> MirrorStep {
    MirrorStep {
        seen: Rc::clone(seen),
        panic_width,
        cancel_width,
        cancel: Rc::clone(cancel),
    }
}

#[test]
fn the_lookahead_gives_the_same_reports_outputs_and_step_calls_in_input_order() {
    let work = tempfile::tempdir().expect("tempdir");
    let photos = work.path().join("photos");
    fs::create_dir(&photos).expect("mkdir");
    let inputs = mixed_inputs(&photos);
    let mut results = Vec::new();
    for lookahead in [false, true] {
        let out = work.path().join(format!("out-{lookahead}"));
        let seen = Rc::new(RefCell::new(Seen::default()));
        let cancel = Rc::new(Cell::new(false));
        // The step breaks on b.png (288 px): that photo fails, the others go on.
        let summary = run(
            &inputs,
            out.clone(),
            lookahead,
            step(&seen, &cancel, Some(288), None),
            cancel,
        );
        let seen = seen.borrow().calls.clone();
        results.push((summary, seen, out));
    }
    let (plain, plain_seen, plain_out) = &results[0];
    let (ahead, ahead_seen, ahead_out) = &results[1];

    let statuses: Vec<FileStatus> = ahead.reports.iter().map(|r| r.status).collect();
    use FileStatus::{Done, Failed, Skipped};
    assert_eq!(
        statuses,
        vec![Done, Failed, Skipped, Failed, Failed, Skipped, Done, Done],
        "{:#?}",
        ahead.reports
    );
    assert!(ahead.stopped.is_none());
    for (i, (a, p)) in ahead.reports.iter().zip(&plain.reports).enumerate() {
        assert_eq!(a.input, inputs[i].path, "reports in input order");
        assert_eq!((a.status, a.skip, a.faces), (p.status, p.skip, p.faces), "{i}");
        assert_eq!(a.reason, p.reason, "{i}");
        assert_eq!(
            a.output.as_ref().map(|o| o.file_name().map(|n| n.to_owned())),
            p.output.as_ref().map(|o| o.file_name().map(|n| n.to_owned())),
            "{i}"
        );
    }
    assert!(
        ahead.reports[3]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("internal error") && r.contains("288")),
        "{:?}",
        ahead.reports[3]
    );

    // The step ran on the caller's thread, on the photos that reached it, in input order.
    let me = std::thread::current().id();
    let widths = |seen: &[(ThreadId, u32)]| seen.iter().map(|s| s.1).collect::<Vec<_>>();
    assert_eq!(widths(ahead_seen), vec![320, 288, 352, 256]);
    assert_eq!(widths(ahead_seen), widths(plain_seen));
    assert!(
        ahead_seen.iter().all(|s| s.0 == me),
        "steps stay on the worker thread"
    );

    // The same exports, pixel for pixel (the metadata names the recipe, whose folder differs).
    let files = |dir: &Path| {
        let mut names: Vec<PathBuf> = fs::read_dir(dir)
            .expect("out")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .collect();
        names.sort();
        names
    };
    let (a, p) = (files(ahead_out), files(plain_out));
    assert_eq!(a.len(), 3, "{a:?}");
    for (a, p) in a.iter().zip(&p) {
        assert_eq!(a.file_name(), p.file_name());
        let pixels = |path: &Path| image::open(path).expect("an export").to_rgb8();
        assert!(pixels(a) == pixels(p), "{}", a.display());
    }
}

#[test]
fn cancelling_inside_a_step_stops_at_that_photo_with_the_lookahead_on() {
    let work = tempfile::tempdir().expect("tempdir");
    let photos = work.path().join("photos");
    fs::create_dir(&photos).expect("mkdir");
    let inputs: Vec<BatchInput> = [320, 288, 352, 256]
        .iter()
        .map(|&side| save(&astronaut(side), &photos.join(format!("shot-{side}.png"))))
        .collect();
    let out = work.path().join("out");
    let seen = Rc::new(RefCell::new(Seen::default()));
    let cancel = Rc::new(Cell::new(false));
    // Cancelled while the second photo is in the step: by then the third is being prepared.
    let summary = run(
        &inputs,
        out.clone(),
        true,
        step(&seen, &cancel, None, Some(288)),
        cancel,
    );
    assert_eq!(summary.stopped, Some(StopReason::Cancelled));
    let statuses: Vec<FileStatus> = summary.reports.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![
            FileStatus::Done,
            FileStatus::Skipped,
            FileStatus::Skipped,
            FileStatus::Skipped
        ]
    );
    for report in &summary.reports[1..] {
        assert!(
            report.reason.as_deref().is_some_and(|r| r.contains("cancelled")),
            "{report:?}"
        );
    }
    let widths: Vec<u32> = seen.borrow().calls.iter().map(|s| s.1).collect();
    assert_eq!(
        widths,
        vec![320, 288],
        "no photo after the cancelled one reached the step"
    );
    let written: Vec<PathBuf> = fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
}
