//! The GPU warm-up on the worker, on the CPU backend with its plan forced (the CPU compiles nothing,
//! so the window never warms there; wgpu is not run here, its first calls take minutes on software
//! Vulkan): the plan runs in order, a job queued meanwhile goes first, cancelling stops it, and the
//! window's status bar says what is being prepared, folded from the real worker's events.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use facecast::app::{FacecastApp, StartOptions};
use facecast::compute::Compute;
use facecast::jobs::warmup::{WarmUp, WarmupEvent};
use facecast::jobs::{
    DetectFaces, DetectTarget, Job, JobContext, JobError, JobEvent, JobEventKind, JobId, JobOutcome,
    JobOutput, Lane, PhotoId, Worker,
};
use facecast::pipeline::detect::photo::DetectSettings;
use facecast::pipeline::recipe::Recipe;
use facecast::pipeline::warmup::WarmNetwork;
use facecast::weights::store::{Import, WeightsStore};

/// A data folder with the real MTCNN and the ArcFace fixture's reduced weights installed.
fn data_with_networks() -> (tempfile::TempDir, WeightsStore) {
    let data = tempfile::tempdir().expect("tempdir");
    let store = WeightsStore::open(Some(data.path().to_path_buf())).expect("open the store");
    store
        .import("mtcnn", &[common::fixture_dir("mtcnn")])
        .expect("import MTCNN from the fixtures");
    store
        .import_with(
            "arcface-ir-se50",
            &[common::fixture_dir("arcface_ir_se50").join("weights.pth")],
            Import::Reduced,
        )
        .expect("import ArcFace's reduced weights");
    (data, store)
}

fn warm_up(store: &WeightsStore, plan: &[WarmNetwork]) -> WarmUp {
    WarmUp {
        store: store.clone(),
        recipe: Recipe::default(),
        plan: Some(plan.to_vec()),
    }
}

/// Holds the compute lane from when it starts (saying so) until released or cancelled.
struct Gate {
    started: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
}

impl Gate {
    /// The gate, a receiver told when it starts, and the sender that releases it.
    fn new() -> (Gate, mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let gate = Gate {
            started: started_tx,
            release: release_rx,
        };
        (gate, started, release)
    }
}

impl Job for Gate {
    fn label(&self) -> String {
        "gate".into()
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let _ = self.started.send(());
        loop {
            ctx.check_cancelled()?;
            match self.release.recv_timeout(Duration::from_millis(5)) {
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                _ => return Ok(()),
            }
        }
    }
}

/// Every event until no job is pending and each enqueued job has finished.
fn events_until_done(worker: &Worker, jobs: &[JobId]) -> Vec<JobEvent> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut events = Vec::new();
    loop {
        events.extend(worker.drain());
        let finished = jobs.iter().all(|job| outcome(&events, *job).is_some());
        if finished && worker.pending() == 0 {
            return events;
        }
        assert!(Instant::now() < deadline, "jobs did not finish: {events:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn outcome(events: &[JobEvent], job: JobId) -> Option<JobOutcome> {
    events.iter().find_map(|e| match &e.kind {
        JobEventKind::Finished(outcome) if e.job == job => Some(outcome.clone()),
        _ => None,
    })
}

/// The warm-up's own events of `job`, in order.
fn warmup_events(events: &[JobEvent], job: JobId) -> Vec<WarmupEvent> {
    events
        .iter()
        .filter(|e| e.job == job)
        .filter_map(|e| match &e.kind {
            JobEventKind::Output(JobOutput::Warmup(event)) => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn position(events: &[JobEvent], what: impl Fn(&JobEvent) -> bool) -> usize {
    events
        .iter()
        .position(what)
        .unwrap_or_else(|| panic!("no such event in {events:?}"))
}

fn preparing(event: &JobEvent, network: &str) -> bool {
    matches!(&event.kind, JobEventKind::Output(JobOutput::Warmup(WarmupEvent::Preparing { network: n, .. })) if n == network)
}

fn astronaut() -> PathBuf {
    common::fixture_dir("mtcnn").join("astronaut.png")
}

#[test]
fn the_plan_runs_in_order_and_a_job_queued_meanwhile_runs_before_the_rest() {
    let (_data, store) = data_with_networks();
    let worker = Worker::start(Compute::cpu(), Arc::new(|| {}));
    // The gate holds the lane while the warm-up and the user's detection are queued behind it.
    let (gate, _, release) = Gate::new();
    let gate = worker.enqueue(gate);
    let warm = worker.enqueue(warm_up(&store, &[WarmNetwork::Mtcnn, WarmNetwork::ArcFace]));
    let detect = worker.enqueue(DetectFaces {
        store: store.clone(),
        photos: vec![DetectTarget {
            photo: PhotoId(7),
            path: astronaut(),
            rgb: None,
        }],
        settings: DetectSettings::default(),
    });
    release.send(()).expect("release the gate");
    let events = events_until_done(&worker, &[gate, warm, detect]);

    assert_eq!(outcome(&events, warm), Some(JobOutcome::Done));
    assert_eq!(outcome(&events, detect), Some(JobOutcome::Done));
    let observed: Vec<WarmupEvent> = warmup_events(&events, warm)
        .into_iter()
        .map(|e| match e {
            WarmupEvent::Prepared { network, .. } => WarmupEvent::Prepared {
                network,
                seconds: 0.0,
            },
            other => other,
        })
        .collect();
    let prepared_event = |network: &str| WarmupEvent::Prepared {
        network: network.into(),
        seconds: 0.0,
    };
    assert_eq!(
        observed,
        [
            WarmupEvent::Planned {
                networks: vec!["MTCNN".into(), "ArcFace".into()]
            },
            WarmupEvent::Preparing {
                network: "MTCNN".into(),
                index: 1,
                total: 2
            },
            prepared_event("MTCNN"),
            WarmupEvent::Preparing {
                network: "ArcFace".into(),
                index: 2,
                total: 2
            },
            prepared_event("ArcFace"),
        ]
    );

    // The detection ran between the two networks: after MTCNN was prepared, before ArcFace.
    let detect_started = position(&events, |e| {
        e.job == detect && matches!(e.kind, JobEventKind::Started { .. })
    });
    let detect_finished = position(&events, |e| {
        e.job == detect && matches!(e.kind, JobEventKind::Finished(_))
    });
    let mtcnn_prepared = position(
        &events,
        |e| matches!(&e.kind, JobEventKind::Output(JobOutput::Warmup(WarmupEvent::Prepared { network, .. })) if network == "MTCNN"),
    );
    let arcface_preparing = position(&events, |e| preparing(e, "ArcFace"));
    assert!(
        mtcnn_prepared < detect_started && detect_finished < arcface_preparing,
        "the queued detection runs between the warm-up's networks: {events:?}"
    );
    // It really detected: the astronaut's face, with MTCNN already in the worker's cache.
    let faces = events.iter().find_map(|e| match &e.kind {
        JobEventKind::Output(JobOutput::Faces { result, .. }) => Some(result.clone()),
        _ => None,
    });
    let faces = faces
        .expect("the detection reported")
        .expect("the detection worked");
    assert_eq!(faces.faces.len(), 1, "{faces:?}");
    // On the CPU no job announces a first use: nothing is compiled.
    assert!(
        !events.iter().any(|e| matches!(
            &e.kind,
            JobEventKind::Output(JobOutput::Warmup(WarmupEvent::FirstUse { .. }))
        )),
        "{events:?}"
    );
    worker.shutdown();
}

/// The warm-up prepares its first network, lets a gate queued behind it run, and is stopped by
/// `stop` while the gate holds the lane; returns the warm-up's events.
fn stopped_between_networks(stop: impl FnOnce(&Worker, JobId)) -> (Vec<WarmupEvent>, Option<JobOutcome>) {
    let (_data, store) = data_with_networks();
    let worker = Worker::start(Compute::cpu(), Arc::new(|| {}));
    let (first, _, release_first) = Gate::new();
    let (second, second_started, release_second) = Gate::new();
    let first = worker.enqueue(first);
    let plan = [WarmNetwork::Mtcnn, WarmNetwork::ArcFace, WarmNetwork::Mtcnn];
    let warm = worker.enqueue(warm_up(&store, &plan));
    let second = worker.enqueue(second);
    release_first.send(()).expect("release the first gate");
    second_started
        .recv_timeout(Duration::from_secs(300))
        .expect("the warm-up let the queued gate run after its first network");
    stop(&worker, warm);
    // A gate stopped by `cancel_all` has gone already; then nobody receives this.
    let _ = release_second.send(());
    let events = events_until_done(&worker, &[first, warm, second]);
    let result = (warmup_events(&events, warm), outcome(&events, warm));
    worker.shutdown();
    result
}

#[test]
fn cancelling_the_warm_up_stops_it_before_its_next_network() {
    let (events, outcome) = stopped_between_networks(|worker, warm| worker.cancel(warm));
    assert_eq!(outcome, Some(JobOutcome::Cancelled));
    let preparing: Vec<&WarmupEvent> = events
        .iter()
        .filter(|e| matches!(e, WarmupEvent::Preparing { .. }))
        .collect();
    assert_eq!(
        preparing,
        [&WarmupEvent::Preparing {
            network: "MTCNN".into(),
            index: 1,
            total: 3
        }],
        "only the first network was prepared"
    );
}

#[test]
fn closing_the_window_stops_the_warm_up() {
    // The worker's `Drop`, when the window closes, cancels every job: what `cancel_all` does.
    let (events, outcome) = stopped_between_networks(|worker, _| worker.cancel_all());
    assert_eq!(outcome, Some(JobOutcome::Cancelled));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, WarmupEvent::Preparing { network, .. } if network == "ArcFace")),
        "{events:?}"
    );
}

#[test]
fn nothing_is_warmed_on_the_cpu_backend() {
    let (_data, store) = data_with_networks();
    let worker = Worker::start(Compute::cpu(), Arc::new(|| {}));
    assert_eq!(
        facecast::jobs::warmup::start(&worker, store, Recipe::default()),
        None
    );
    assert_eq!(worker.pending(), 0, "no job was queued");
    worker.shutdown();
}

/// Steps the window until its worker has nothing left to do.
fn settle(harness: &mut Harness<'_, FacecastApp>) {
    common::step_until(harness, "the start-up jobs", |app| app.worker().is_idle());
}

#[test]
fn the_status_bar_says_which_network_is_being_prepared() {
    let (data, store) = data_with_networks();
    let mut harness = Harness::builder().with_size([1280.0, 800.0]).build_eframe(|cc| {
        FacecastApp::new(
            &cc.egui_ctx,
            Compute::cpu(),
            StartOptions {
                data_dir: Some(data.path().to_path_buf()),
                ..StartOptions::default()
            },
        )
    });
    settle(&mut harness);
    assert!(harness.query_by_label_contains("Preparing GPU kernels").is_none());

    // The real worker warms; its events are then folded one at a time, drawing after each.
    let warm = harness
        .state()
        .enqueue(warm_up(&store, &[WarmNetwork::Mtcnn, WarmNetwork::ArcFace]));
    let deadline = Instant::now() + Duration::from_secs(300);
    while harness.state().worker().pending() > 0 {
        assert!(Instant::now() < deadline, "the warm-up did not finish");
        std::thread::sleep(Duration::from_millis(5));
    }
    let events = harness.state().worker().drain();
    assert!(events.iter().any(|e| e.job == warm), "{events:?}");
    let mut shown = Vec::new();
    for event in events {
        let network = match &event.kind {
            JobEventKind::Output(JobOutput::Warmup(WarmupEvent::Preparing { network, .. })) => {
                Some(network.clone())
            }
            _ => None,
        };
        harness.state_mut().state_mut().apply(event);
        harness.run_steps(2);
        if let Some(network) = network {
            let index = if network == "MTCNN" { 1 } else { 2 };
            let text = format!("Preparing GPU kernels… ({network}, {index} of 2)");
            harness.get_by_label(&text);
            shown.push(text);
        }
    }
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(harness.query_by_label_contains("Preparing GPU kernels").is_none());
    harness.get_by_label("Idle");
}

#[test]
fn a_job_meeting_a_cold_network_says_it_compiles_kernels() {
    let (data, _store) = data_with_networks();
    let mut harness = Harness::builder().with_size([1280.0, 800.0]).build_eframe(|cc| {
        FacecastApp::new(
            &cc.egui_ctx,
            Compute::cpu(),
            StartOptions {
                data_dir: Some(data.path().to_path_buf()),
                ..StartOptions::default()
            },
        )
    });
    settle(&mut harness);
    // What a detection on wgpu sends when MTCNN never ran in this process (the CPU sends none).
    let job = JobId(1_000_000);
    let events = [
        JobEventKind::Started {
            label: "Detecting faces in 3 photos".into(),
        },
        JobEventKind::Output(JobOutput::Warmup(WarmupEvent::FirstUse {
            networks: vec!["MTCNN".into()],
        })),
    ];
    for kind in events {
        harness.state_mut().state_mut().apply(JobEvent { job, kind });
    }
    harness.run_steps(2);
    harness.get_by_label("Detecting faces in 3 photos");
    harness.get_by_label("first use on this GPU: compiling kernels (MTCNN), this can take minutes");
    harness.state_mut().state_mut().apply(JobEvent {
        job,
        kind: JobEventKind::Finished(JobOutcome::Done),
    });
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("first use on this GPU").is_none());
}
