//! The Weights window's background work: status checks, one install or import at a time from a
//! queue, cancel, and the single transfer the progress bar shows (bytes, speed, time left).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread;
use std::time::{Duration, Instant};

use crate::weights::store::{ModelStatus, Progress, StoreError, WeightsStore};

/// What a background thread reports.
pub(super) enum Msg {
    Status {
        id: String,
        result: Result<ModelStatus, String>,
    },
    Progress {
        id: String,
        progress: Progress,
    },
    /// An install or import ended.
    Finished {
        id: String,
        result: Result<ModelStatus, Ended>,
    },
}

/// Why a job ended without a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ended {
    Cancelled,
    Failed(String),
}

/// What runs for a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Work {
    Install,
    Import(Vec<PathBuf>),
}

/// The job running now.
pub(super) struct Running {
    pub id: String,
    pub work: Work,
    pub file: String,
    /// Bytes of the current file.
    pub done: u64,
    pub total: Option<u64>,
    cancel: Arc<AtomicBool>,
}

/// The batch the progress bar covers: everything queued since the queue was last empty.
#[derive(Default)]
pub(super) struct Transfer {
    /// Expected bytes of the whole batch (approximate where the manifest has only sizes in MiB).
    pub planned: u64,
    /// Bytes of the files and models already finished in this batch.
    pub finished: u64,
    /// (when, bytes received in total) over the last seconds, for the speed.
    samples: VecDeque<(Instant, u64)>,
    received: u64,
}

impl Transfer {
    /// Bytes per second over the last few seconds; None until there is enough to tell.
    pub fn speed(&self) -> Option<f64> {
        let (first, last) = (self.samples.front()?, self.samples.back()?);
        let seconds = last.0.duration_since(first.0).as_secs_f64();
        (seconds >= 0.5).then(|| (last.1 - first.1) as f64 / seconds)
    }

    fn record(&mut self, delta: u64) {
        self.received += delta;
        let now = Instant::now();
        self.samples.push_back((now, self.received));
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > Duration::from_secs(5))
        {
            self.samples.pop_front();
        }
    }
}

pub(super) struct Jobs {
    store: WeightsStore,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    pub queue: VecDeque<(String, Work)>,
    pub running: Option<Running>,
    pub transfer: Transfer,
}

impl Jobs {
    pub fn new(store: WeightsStore) -> Jobs {
        let (tx, rx) = channel();
        Jobs {
            store,
            tx,
            rx,
            queue: VecDeque::new(),
            running: None,
            transfer: Transfer::default(),
        }
    }

    pub fn store(&self) -> &WeightsStore {
        &self.store
    }

    pub fn is_busy(&self, id: &str) -> bool {
        self.running.as_ref().is_some_and(|r| r.id == id) || self.queue.iter().any(|(q, _)| q == id)
    }

    pub fn is_idle(&self) -> bool {
        self.running.is_none() && self.queue.is_empty()
    }

    /// Queues work for a model (once); the bar's plan grows by its size.
    pub fn push(&mut self, ctx: &egui::Context, id: &str, work: Work) {
        if self.is_busy(id) {
            return;
        }
        if self.is_idle() {
            self.transfer = Transfer::default();
        }
        if work == Work::Install {
            self.transfer.planned += self
                .store
                .model(id)
                .ok()
                .and_then(|m| m.display_size_bytes())
                .unwrap_or(0);
        }
        self.queue.push_back((id.to_string(), work));
        self.next(ctx);
    }

    /// Stops the running job (its partial download is kept) and drops the queue.
    pub fn cancel(&mut self) {
        self.queue.clear();
        if let Some(running) = &self.running {
            running.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Checks every model of `ids` again on a background thread.
    pub fn check(&self, ctx: &egui::Context, ids: Vec<String>) {
        let (store, tx, ctx) = (self.store.clone(), self.tx.clone(), ctx.clone());
        let spawned = thread::Builder::new()
            .name("weights-status".into())
            .spawn(move || {
                for id in ids {
                    let result = store.status(&id).map(|s| s.status).map_err(|e| e.to_string());
                    if tx.send(Msg::Status { id, result }).is_err() {
                        return;
                    }
                    ctx.request_repaint();
                }
            });
        if let Err(e) = spawned {
            tracing::error!("could not start the weights check: {e}");
        }
    }

    /// Messages since the last call; progress is folded into the running job first.
    pub fn drain(&mut self, ctx: &egui::Context) -> Vec<Msg> {
        let mut out = Vec::new();
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Progress { id, progress } => self.progress(&id, progress),
                Msg::Finished { ref id, .. } => {
                    if self.running.as_ref().is_some_and(|r| &r.id == id) {
                        let running = self.running.take();
                        if let Some(r) = running {
                            self.transfer.finished += r.done;
                        }
                    }
                    out.push(msg);
                }
                other => out.push(other),
            }
        }
        self.next(ctx);
        out
    }

    fn progress(&mut self, id: &str, progress: Progress) {
        let Some(running) = self.running.as_mut().filter(|r| r.id == id) else {
            return;
        };
        match progress {
            Progress::Source { file, .. } => {
                running.file = file;
                running.done = 0;
                running.total = None;
            }
            Progress::Bytes { file, done, total } => {
                if file != running.file {
                    running.file = file;
                    running.done = 0;
                }
                let delta = done.saturating_sub(running.done);
                running.done = done;
                running.total = total;
                self.transfer.record(delta);
            }
            Progress::Done { .. } => {
                self.transfer.finished += running.done;
                running.done = 0;
                running.total = None;
            }
            Progress::Checking { file } => running.file = file,
            Progress::SourceFailed { .. } => {
                running.done = 0;
            }
        }
    }

    /// Starts the next queued job when none runs.
    fn next(&mut self, ctx: &egui::Context) {
        if self.running.is_some() {
            return;
        }
        let Some((id, work)) = self.queue.pop_front() else {
            return;
        };
        let cancel = Arc::new(AtomicBool::new(false));
        self.running = Some(Running {
            id: id.clone(),
            work: work.clone(),
            file: String::new(),
            done: 0,
            total: None,
            cancel: Arc::clone(&cancel),
        });
        let (store, tx, ctx2) = (self.store.clone(), self.tx.clone(), ctx.clone());
        let thread_id = id.clone();
        let spawned = thread::Builder::new()
            .name(format!("weights-{id}"))
            .spawn(move || {
                let id = thread_id;
                let result = match work {
                    Work::Install => {
                        let mut report = |progress| {
                            let _ = tx.send(Msg::Progress {
                                id: id.clone(),
                                progress,
                            });
                            ctx2.request_repaint();
                        };
                        match store.install_cancellable(&id, &mut report, Some(cancel)) {
                            Ok(state) => Ok(state.status),
                            Err(StoreError::Cancelled { .. }) => Err(Ended::Cancelled),
                            Err(e) => Err(Ended::Failed(e.to_string())),
                        }
                    }
                    Work::Import(paths) => store
                        .import(&id, &paths)
                        .map(|s| s.status)
                        .map_err(|e| Ended::Failed(e.to_string())),
                };
                let _ = tx.send(Msg::Finished { id, result });
                ctx2.request_repaint();
            });
        if let Err(e) = spawned {
            self.running = None;
            let _ = self.tx.send(Msg::Finished {
                id,
                result: Err(Ended::Failed(format!("could not start: {e}"))),
            });
            ctx.request_repaint();
        }
    }
}

/// "2 min 5 s", "40 s": a duration for people.
pub(super) fn human_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human_duration(4.4), "4 s");
        assert_eq!(human_duration(125.0), "2 min 5 s");
        assert_eq!(human_duration(7300.0), "2 h 1 min");
        assert_eq!(human_duration(-3.0), "0 s");
    }

    #[test]
    fn the_speed_needs_half_a_second_of_samples() {
        let mut t = Transfer::default();
        assert_eq!(t.speed(), None);
        let start = Instant::now();
        t.samples.push_back((start, 0));
        t.samples.push_back((start + Duration::from_secs(2), 4_000_000));
        assert_eq!(t.speed(), Some(2_000_000.0));
    }
}
