//! Background work: the UI thread only enqueues jobs and drains their messages.
//!
//! Three lanes, each one thread running its jobs in order:
//! - [`Lane::Compute`] owns the [`Compute`] device (and, later, the loaded networks), so networks never
//!   fight over the device.
//! - [`Lane::Io`] does bulk file work (scanning folders, thumbnails, exports), so loading photos never
//!   waits behind a long network run.
//! - [`Lane::Interactive`] does small file work the user is waiting for (the canvas preview), so a click
//!   is answered even while a thousand thumbnails are loading.
//!
//! A job reports a stream of [`JobEvent`]s (started, progress, outputs, finished). The worker calls the
//! wake-up hook after each one, which the window wires to `ctx.request_repaint()`, and the UI drains the
//! queue once per frame with [`Worker::drain`]. Cancellation is cooperative through a [`CancelToken`].
//! A long background job can let the jobs queued behind it run first ([`JobContext::run_queued`]):
//! the GPU warm-up ([`warmup`]) does, between networks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::compute::Compute;
use crate::pipeline::runtime::NetworkCache;

pub mod cast;
pub mod classifier;
pub mod detect;
pub mod export;
pub mod feed;
pub mod makeup;
mod photo_edit;
pub mod photos;
pub mod restore;
pub mod swap;
pub mod text_edit;
pub mod train_generator;
pub mod warmup;

pub use detect::{DetectFaces, DetectTarget, MTCNN_ID};
pub use photos::{LoadPreview, LoadThumbnails, PhotoId, PhotoImage, ScanPaths};
pub use restore::RestoreFaces;
pub use swap::SwapPhoto;

/// Identifies one enqueued job in the events it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

/// Which worker thread runs a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// The thread that owns the device; networks run here.
    Compute,
    /// The thread for bulk file work: scanning folders, thumbnails, exporting.
    Io,
    /// The thread for small file reads the user is waiting for.
    Interactive,
}

/// Set by the UI, checked by the job between steps.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a job stopped early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Failed(String),
}

/// A photo that cannot be read fails the job that needed it; the message names the file.
impl From<crate::io::ImageError> for JobError {
    fn from(e: crate::io::ImageError) -> JobError {
        JobError::Failed(e.to_string())
    }
}

/// Something a job produced; the UI folds each into its state.
#[derive(Debug, Clone)]
pub enum JobOutput {
    /// Image files found under the scanned paths, in a stable order, and paths that could not be read.
    FilesFound {
        files: Vec<PathBuf>,
        problems: Vec<(PathBuf, String)>,
    },
    /// A photo decoded: its displayed size (after EXIF orientation) and a small thumbnail.
    Thumbnail {
        photo: PhotoId,
        width: u32,
        height: u32,
        thumbnail: Arc<PhotoImage>,
        /// The decoded photo, when the job was asked to keep it for face detection.
        rgb: Option<Arc<image::RgbImage>>,
    },
    /// A larger copy of one photo for the canvas.
    Preview {
        photo: PhotoId,
        width: u32,
        height: u32,
        image: Arc<PhotoImage>,
    },
    /// A photo that could not be read; the reason names the file and the cause.
    PhotoFailed { photo: PhotoId, reason: String },
    /// The faces of one photo, or why they could not be detected (names the file and the cause).
    Faces {
        photo: PhotoId,
        result: Result<crate::pipeline::detect::photo::PhotoFaces, String>,
    },
    /// A step (swap, restore, makeup) produced a new version of a photo; it becomes the photo's
    /// current edit (undoable). `label` names the step for the undo menu, `notes` what it measured.
    Edited {
        photo: PhotoId,
        label: String,
        image: Arc<image::RgbImage>,
        notes: Vec<String>,
    },
    /// A StyleCLIP text edit of a virtual model was rendered (a preview, or a version to save).
    TextEdited(Box<text_edit::TextEditPreview>),
    /// How an export (the batch engine) is going.
    Export(export::ExportEvent),
    /// The saved edit history of a photo of the last session: (label, image, notes) oldest first,
    /// the first `applied` applied; `problem` says what could not be read back.
    RestoredEdits {
        path: PathBuf,
        versions: Vec<(String, Arc<image::RgbImage>, Vec<String>)>,
        applied: usize,
        problem: Option<String>,
    },
    /// Virtual-model casting: candidates, imports, the library listing (see [`cast::CastOutput`]).
    Cast(Box<cast::CastOutput>),
    /// The makeup reference library changed or was read.
    Makeup(makeup::MakeupOutput),
    /// The face/no-face classifier: its status, its opinions, its training.
    Classifier(classifier::ClassifierOutput),
    /// A product feed imported, or the screening lists written.
    Feed(feed::FeedOutput),
    /// GPU kernels being prepared, or a network's first use on the GPU (see [`warmup`]).
    Warmup(warmup::WarmupEvent),
    /// Fine-tuning a generator (the Train window).
    Train(Box<train_generator::TrainOutput>),
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Done,
    Cancelled,
    Failed(String),
}

#[derive(Debug, Clone)]
pub enum JobEventKind {
    Started {
        label: String,
    },
    /// `done` of `total` steps; `total` is 0 when unknown.
    Progress {
        done: usize,
        total: usize,
    },
    Output(JobOutput),
    Finished(JobOutcome),
}

#[derive(Debug, Clone)]
pub struct JobEvent {
    pub job: JobId,
    pub kind: JobEventKind,
}

/// What a running job can reach: the device, its cancel token, and the message stream to the UI.
pub struct JobContext {
    id: JobId,
    cancel: CancelToken,
    compute: Compute,
    events: Sender<JobEvent>,
    wake: Arc<dyn Fn() + Send + Sync>,
    models: Arc<Mutex<NetworkCache>>,
    lane: Arc<LaneContext>,
}

impl JobContext {
    pub fn id(&self) -> JobId {
        self.id
    }

    /// The device the networks run on. Only jobs on [`Lane::Compute`] should run networks.
    pub fn compute(&self) -> &Compute {
        &self.compute
    }

    /// The worker's loaded networks (the one network runtime). Held for a whole compute job: only the
    /// compute lane runs networks, so nobody waits on it.
    pub fn model_cache(&self) -> std::sync::MutexGuard<'_, NetworkCache> {
        lock(&self.models)
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// `Err(Cancelled)` once the UI asked to stop: call between steps with `?`.
    pub fn check_cancelled(&self) -> Result<(), JobError> {
        if self.is_cancelled() {
            Err(JobError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Runs every job queued on this job's lane now, each as usual (its own events, cancel token
    /// and outcome), before returning to the caller: a long background job (the GPU warm-up) calls
    /// it between its steps so the operator's work goes first. Returns how many jobs ran. Call it
    /// without holding [`JobContext::model_cache`]: the queued jobs take it.
    pub fn run_queued(&self) -> usize {
        let mut ran = 0;
        while let Ok(queued) = self.lane.queue.try_recv() {
            run_job(queued, &self.lane);
            ran += 1;
        }
        ran
    }

    pub fn progress(&self, done: usize, total: usize) {
        self.send(JobEventKind::Progress { done, total });
    }

    pub fn output(&self, output: JobOutput) {
        self.send(JobEventKind::Output(output));
    }

    fn send(&self, kind: JobEventKind) {
        // The receiver only disappears when the window is closing; nobody is left to tell.
        let _ = self.events.send(JobEvent { job: self.id, kind });
        (self.wake)();
    }
}

/// A unit of background work.
pub trait Job: Send + 'static {
    /// Shown in the status bar while the job runs, e.g. "Loading 12 photos".
    fn label(&self) -> String;

    fn lane(&self) -> Lane;

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError>;
}

struct Queued {
    id: JobId,
    cancel: CancelToken,
    job: Box<dyn Job>,
}

/// The background worker: one thread per [`Lane`], a queue each, one event stream back to the UI.
pub struct Worker {
    compute: Compute,
    lanes: Vec<(Lane, Sender<Queued>)>,
    events: Receiver<JobEvent>,
    local_events: Sender<JobEvent>,
    tokens: Arc<Mutex<HashMap<JobId, CancelToken>>>,
    next_id: AtomicU64,
    threads: Vec<JoinHandle<()>>,
}

impl Worker {
    /// Starts the lane threads. `wake` is called after every event (the window passes a closure that
    /// requests a repaint), so the UI needs no polling timer.
    pub fn start(compute: Compute, wake: Arc<dyn Fn() + Send + Sync>) -> Worker {
        let (event_tx, events) = crossbeam_channel::unbounded();
        let tokens: Arc<Mutex<HashMap<JobId, CancelToken>>> = Arc::default();
        let mut lanes = Vec::new();
        let mut threads = Vec::new();
        let models: Arc<Mutex<NetworkCache>> = Arc::default();
        for (lane, name) in [
            (Lane::Compute, "facecast-compute"),
            (Lane::Io, "facecast-io"),
            (Lane::Interactive, "facecast-interactive"),
        ] {
            let (tx, rx) = crossbeam_channel::unbounded::<Queued>();
            let context = Arc::new(LaneContext {
                compute: compute.clone(),
                events: event_tx.clone(),
                wake: Arc::clone(&wake),
                tokens: Arc::clone(&tokens),
                models: Arc::clone(&models),
                queue: rx,
            });
            let spawned = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || lane_loop(context));
            match spawned {
                Ok(handle) => threads.push(handle),
                // Without the thread the queue's receiver is dropped, so enqueue() reports the lane as gone.
                Err(err) => tracing::error!("could not start the {name} thread: {err}"),
            }
            lanes.push((lane, tx));
        }
        Worker {
            compute,
            lanes,
            events,
            local_events: event_tx,
            tokens,
            next_id: AtomicU64::new(1),
            threads,
        }
    }

    pub fn compute(&self) -> &Compute {
        &self.compute
    }

    /// Queues a job on its lane. The returned id appears in every event of the job.
    pub fn enqueue(&self, job: impl Job) -> JobId {
        self.enqueue_boxed(Box::new(job))
    }

    pub fn enqueue_boxed(&self, job: Box<dyn Job>) -> JobId {
        let id = JobId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let cancel = CancelToken::default();
        lock(&self.tokens).insert(id, cancel.clone());
        let lane = job.lane();
        let label = job.label();
        let sent = match self.lanes.iter().find(|(l, _)| *l == lane) {
            Some((_, tx)) => tx.send(Queued { id, cancel, job }).is_ok(),
            None => false,
        };
        if !sent {
            lock(&self.tokens).remove(&id);
            let reason = format!("{label}: the {lane:?} worker thread is not running");
            tracing::error!("{reason}");
            // Report through the normal stream so the UI shows it like any other failure.
            let _ = self.local_events.send(JobEvent {
                job: id,
                kind: JobEventKind::Finished(JobOutcome::Failed(reason)),
            });
        }
        id
    }

    /// Asks a queued or running job to stop; it reports `Finished(Cancelled)` when it has.
    pub fn cancel(&self, job: JobId) {
        if let Some(token) = lock(&self.tokens).get(&job) {
            token.cancel();
        }
    }

    pub fn cancel_all(&self) {
        for token in lock(&self.tokens).values() {
            token.cancel();
        }
    }

    /// Jobs queued or running.
    pub fn pending(&self) -> usize {
        lock(&self.tokens).len()
    }

    /// No job queued or running and every event drained. Checked in this order because a job sends its
    /// outputs before it leaves the token map: once the map is empty, only its `Finished` may be late.
    pub fn is_idle(&self) -> bool {
        lock(&self.tokens).is_empty() && self.events.is_empty()
    }

    /// Every event that arrived since the last call, in order. Never blocks.
    pub fn drain(&self) -> Vec<JobEvent> {
        self.events.try_iter().collect()
    }

    /// Stops every job and waits for the lane threads to finish their current step.
    pub fn shutdown(mut self) {
        self.cancel_all();
        self.lanes.clear();
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Don't join here: the window must close at once even if a network is mid-run; the threads end
        // at their next cancellation check or when the process exits.
        self.cancel_all();
    }
}

struct LaneContext {
    compute: Compute,
    events: Sender<JobEvent>,
    wake: Arc<dyn Fn() + Send + Sync>,
    tokens: Arc<Mutex<HashMap<JobId, CancelToken>>>,
    models: Arc<Mutex<NetworkCache>>,
    /// The lane's queue; only its sender keeps it open, so the thread ends when the worker goes.
    queue: Receiver<Queued>,
}

fn lane_loop(lane: Arc<LaneContext>) {
    for queued in lane.queue.iter() {
        run_job(queued, &lane);
    }
}

/// Runs one queued job to its end and reports its outcome.
fn run_job(Queued { id, cancel, job }: Queued, lane: &Arc<LaneContext>) {
    let ctx = JobContext {
        id,
        cancel,
        compute: lane.compute.clone(),
        events: lane.events.clone(),
        wake: Arc::clone(&lane.wake),
        models: Arc::clone(&lane.models),
        lane: Arc::clone(lane),
    };
    let outcome = if ctx.is_cancelled() {
        JobOutcome::Cancelled
    } else {
        ctx.send(JobEventKind::Started { label: job.label() });
        // A panicking job must not take the lane down with it: report it as a failure and go on.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(&ctx))) {
            Ok(Ok(())) => JobOutcome::Done,
            Ok(Err(JobError::Cancelled)) => JobOutcome::Cancelled,
            Ok(Err(JobError::Failed(reason))) => JobOutcome::Failed(reason),
            Err(panic) => JobOutcome::Failed(format!("internal error: {}", panic_message(&panic))),
        }
    };
    lock(&lane.tokens).remove(&id);
    ctx.send(JobEventKind::Finished(outcome));
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a background job panicked".to_string()
    }
}

/// The token map stays consistent even if a holder panicked, so a poisoned lock is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    use super::*;

    /// Reports `steps` progress events, optionally waiting for cancellation or panicking.
    struct Probe {
        steps: usize,
        until_cancelled: bool,
        panic: bool,
    }

    impl Job for Probe {
        fn label(&self) -> String {
            "probe".into()
        }

        fn lane(&self) -> Lane {
            Lane::Compute
        }

        fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
            assert!(matches!(ctx.compute().kind, crate::compute::ComputeKind::Cpu));
            for step in 1..=self.steps {
                ctx.progress(step, self.steps);
            }
            if self.panic {
                panic!("boom");
            }
            if !self.until_cancelled {
                return Ok(());
            }
            loop {
                ctx.check_cancelled()?;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn events_until_idle(worker: &Worker) -> Vec<JobEvent> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut events = Vec::new();
        loop {
            let idle = worker.is_idle();
            events.extend(worker.drain());
            let finished = events
                .iter()
                .filter(|e| matches!(e.kind, JobEventKind::Finished(_)))
                .count();
            if idle && finished == worker.next_id.load(Ordering::Relaxed) as usize - 1 {
                return events;
            }
            assert!(Instant::now() < deadline, "jobs did not finish: {events:?}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn outcome(events: &[JobEvent], job: JobId) -> Option<JobOutcome> {
        events.iter().find_map(|e| match &e.kind {
            JobEventKind::Finished(outcome) if e.job == job => Some(outcome.clone()),
            _ => None,
        })
    }

    #[test]
    fn a_job_reports_progress_in_order_and_wakes_the_ui() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&wakes);
        let worker = Worker::start(
            Compute::cpu(),
            Arc::new(move || _ = counter.fetch_add(1, Ordering::Relaxed)),
        );
        let job = worker.enqueue(Probe {
            steps: 3,
            until_cancelled: false,
            panic: false,
        });
        let events = events_until_idle(&worker);
        let kinds: Vec<String> = events.iter().map(|e| format!("{:?}", e.kind)).collect();
        assert_eq!(
            kinds,
            [
                "Started { label: \"probe\" }",
                "Progress { done: 1, total: 3 }",
                "Progress { done: 2, total: 3 }",
                "Progress { done: 3, total: 3 }",
                "Finished(Done)",
            ]
        );
        assert!(events.iter().all(|e| e.job == job));
        assert_eq!(wakes.load(Ordering::Relaxed), 5, "one wake-up per event");
        worker.shutdown();
    }

    #[test]
    fn cancelling_stops_a_running_job_and_skips_a_queued_one() {
        let worker = Worker::start(Compute::cpu(), Arc::new(|| {}));
        let running = worker.enqueue(Probe {
            steps: 0,
            until_cancelled: true,
            panic: false,
        });
        let queued = worker.enqueue(Probe {
            steps: 0,
            until_cancelled: false,
            panic: false,
        });
        worker.cancel(queued);
        // Wait until the first job really runs, then stop it.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut events = Vec::new();
        while !events
            .iter()
            .any(|e: &JobEvent| matches!(e.kind, JobEventKind::Started { .. }))
        {
            events.extend(worker.drain());
            assert!(Instant::now() < deadline, "the job never started");
            std::thread::sleep(Duration::from_millis(1));
        }
        worker.cancel(running);
        events.extend(events_until_idle(&worker));
        assert_eq!(outcome(&events, running), Some(JobOutcome::Cancelled));
        assert_eq!(outcome(&events, queued), Some(JobOutcome::Cancelled));
        let queued_started = events
            .iter()
            .any(|e| e.job == queued && matches!(e.kind, JobEventKind::Started { .. }));
        assert!(!queued_started, "a job cancelled while queued never starts");
        worker.shutdown();
    }

    #[test]
    fn a_panicking_job_fails_without_taking_the_lane_down() {
        let worker = Worker::start(Compute::cpu(), Arc::new(|| {}));
        let bad = worker.enqueue(Probe {
            steps: 1,
            until_cancelled: false,
            panic: true,
        });
        let good = worker.enqueue(Probe {
            steps: 1,
            until_cancelled: false,
            panic: false,
        });
        let events = events_until_idle(&worker);
        assert_eq!(
            outcome(&events, bad),
            Some(JobOutcome::Failed("internal error: boom".into()))
        );
        assert_eq!(outcome(&events, good), Some(JobOutcome::Done));
        worker.shutdown();
    }
}
