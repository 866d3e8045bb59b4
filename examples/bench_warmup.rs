//! The window's detection on wgpu with and without the start-up warm-up, through the real worker:
//! one process, one device, as the window runs them.
//!
//!   bench_warmup --data DIR [--mtcnn-from FOLDER] [--backend wgpu|cpu] [--warm] PHOTOS...
//!
//! `DIR` is a data directory with MTCNN installed (`--mtcnn-from` imports it first, as
//! `facecast weights import mtcnn FOLDER` does); the GPU runtime's autotune results are kept in
//! its `gpu-kernels/` as the app keeps them. With `--warm` the worker first runs the warm-up the
//! window queues at start-up (its plan for the default recipe over what `DIR` has installed), and
//! the detection is queued once it has finished, as when the operator adds photos a while after
//! start-up. Prints one JSON object: the warm-up's time per network, and the detection's time per
//! photo (from the job's start) and in all.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use facecast::compute::{BackendChoice, Compute};
use facecast::jobs::warmup::{WarmUp, WarmupEvent};
use facecast::jobs::{
    DetectFaces, DetectTarget, JobEventKind, JobId, JobOutcome, JobOutput, PhotoId, Worker,
};
use facecast::pipeline::detect::photo::DetectSettings;
use facecast::pipeline::recipe::Recipe;
use facecast::weights::store::WeightsStore;
use serde_json::json;

fn main() -> Result<()> {
    let mut data = None;
    let mut backend = BackendChoice::Wgpu;
    let mut warm = false;
    let mut mtcnn_from = None;
    let mut photos = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data" => data = Some(PathBuf::from(args.next().context("--data needs a folder")?)),
            "--backend" => backend = BackendChoice::parse(&args.next().context("--backend needs a value")?)?,
            "--warm" => warm = true,
            "--mtcnn-from" => {
                mtcnn_from = Some(PathBuf::from(args.next().context("--mtcnn-from needs a folder")?))
            }
            other if other.starts_with("--") => bail!("unknown option {other}"),
            photo => photos.push(PathBuf::from(photo)),
        }
    }
    let data = data.context("--data DIR is required")?;
    if photos.is_empty() {
        bail!("no photos given");
    }
    facecast::compute::kernel_cache::keep_kernels_in(&data);
    let store = WeightsStore::open(Some(data.clone())).context("opening the data directory")?;
    if let Some(folder) = mtcnn_from {
        store.import("mtcnn", &[folder]).context("importing MTCNN")?;
    }

    let started = Instant::now();
    let compute = Compute::select(backend)?;
    let device = compute.label();
    let worker = Worker::start(compute, Arc::new(|| {}));
    let device_s = started.elapsed().as_secs_f64();

    let mut warmup = Vec::new();
    let mut warmup_s = None;
    if warm {
        let t = Instant::now();
        let job = worker.enqueue(WarmUp {
            store: store.clone(),
            recipe: Recipe::default(),
            plan: None,
        });
        for (kind, _) in wait(&worker, job)? {
            match kind {
                JobEventKind::Output(JobOutput::Warmup(WarmupEvent::Prepared { network, seconds })) => {
                    warmup.push(json!({"network": network, "seconds": seconds}));
                }
                JobEventKind::Output(JobOutput::Warmup(WarmupEvent::Skipped { network, reason })) => {
                    warmup.push(json!({"network": network, "skipped": reason}));
                }
                _ => {}
            }
        }
        warmup_s = Some(t.elapsed().as_secs_f64());
    }

    let t = Instant::now();
    let targets = photos
        .iter()
        .enumerate()
        .map(|(i, path)| DetectTarget {
            photo: PhotoId(i as u64),
            path: path.clone(),
            rgb: None,
        })
        .collect();
    let job = worker.enqueue(DetectFaces {
        store,
        photos: targets,
        settings: DetectSettings::default(),
    });
    let mut per_photo = Vec::new();
    let mut first_use = false;
    for (kind, at) in wait(&worker, job)? {
        match kind {
            JobEventKind::Output(JobOutput::Faces { photo, result }) => {
                let faces = result.map(|f| f.faces.len()).map_err(|e| anyhow::anyhow!(e))?;
                per_photo.push(json!({
                    "photo": photos[photo.0 as usize].display().to_string(),
                    "faces": faces,
                    "done_at_s": (at - t).as_secs_f64(),
                }));
            }
            JobEventKind::Output(JobOutput::Warmup(WarmupEvent::FirstUse { .. })) => first_use = true,
            _ => {}
        }
    }
    let detect_s = t.elapsed().as_secs_f64();
    worker.shutdown();
    let report = json!({
        "device": device,
        "device_start_s": device_s,
        "warm": warm,
        "warmup_s": warmup_s,
        "warmup": warmup,
        "detect_s": detect_s,
        "detect_announced_first_use": first_use,
        "photos": per_photo,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// The events of `job` with the time each arrived, until it finished; an error unless it is done.
fn wait(worker: &Worker, job: JobId) -> Result<Vec<(JobEventKind, Instant)>> {
    let mut events = Vec::new();
    loop {
        for event in worker.drain() {
            if event.job != job {
                continue;
            }
            if let JobEventKind::Finished(outcome) = &event.kind {
                if *outcome != JobOutcome::Done {
                    bail!("job {job:?} ended: {outcome:?}");
                }
                return Ok(events);
            }
            events.push((event.kind, Instant::now()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
