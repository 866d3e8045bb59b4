//! Warming the networks after start-up, on the compute lane, when they run on wgpu.
//!
//! The first call of a network on wgpu compiles its kernels (minutes on software Vulkan), so the
//! window queues [`WarmUp`] when it starts: it runs each network of `pipeline::warmup`'s plan once
//! on a dummy input and reports which one it is preparing, so the status bar can say so instead of
//! stalling in silence. The operator comes first: between two networks the warm-up lets every job
//! queued meanwhile run ([`JobContext::run_queued`]), and it stops when cancelled (closing the
//! window cancels every job). On the CPU backend nothing is compiled, so [`start`] queues nothing.
//!
//! A job that is about to run a network the warm-up has not reached yet calls [`note_first_use`],
//! which tells the status bar that this first call compiles kernels.

use std::time::Instant;

use super::{Job, JobContext, JobError, JobId, JobOutput, Lane, Worker};
use crate::compute::{Compute, ComputeKind};
use crate::pipeline::recipe::Recipe;
use crate::pipeline::runtime::NetworkCache;
use crate::pipeline::warmup::{WarmNetwork, is_installed, warm, warmup_plan};
use crate::weights::store::WeightsStore;

/// The warm-up job's label; the status bar adds the network being prepared.
pub const WARMUP_LABEL: &str = "Preparing GPU kernels…";

/// What the warm-up (and a job meeting a cold network) tells the UI.
#[derive(Debug, Clone, PartialEq)]
pub enum WarmupEvent {
    /// The networks that will be prepared, in order.
    Planned { networks: Vec<String> },
    /// `network`, the `index`-th of `total` (from 1), is running on its dummy input.
    Preparing {
        network: String,
        index: usize,
        total: usize,
    },
    /// `network` ran: its kernels are compiled for this process.
    Prepared { network: String, seconds: f32 },
    /// `network` could not be run (the reason names the file and the cause); the warm-up goes on,
    /// and the job that needs the network reports the same problem to the operator.
    Skipped { network: String, reason: String },
    /// The job sending this is about to run these networks for the first time on this GPU, so
    /// their kernels are compiled first.
    FirstUse { networks: Vec<String> },
}

/// Runs each network of a plan once on its dummy input.
#[derive(Debug, Clone)]
pub struct WarmUp {
    pub store: WeightsStore,
    pub recipe: Recipe,
    /// The networks to prepare; `None`: `warmup_plan` of the recipe over what the store has.
    pub plan: Option<Vec<WarmNetwork>>,
}

impl Job for WarmUp {
    fn label(&self) -> String {
        WARMUP_LABEL.to_string()
    }

    fn lane(&self) -> Lane {
        Lane::Compute
    }

    fn run(self: Box<Self>, ctx: &JobContext) -> Result<(), JobError> {
        let WarmUp { store, recipe, plan } = *self;
        let plan = plan.unwrap_or_else(|| warmup_plan(&recipe, |id| is_installed(&store, id)));
        let total = plan.len();
        ctx.output(JobOutput::Warmup(WarmupEvent::Planned {
            networks: plan.iter().map(|n| n.label().to_string()).collect(),
        }));
        ctx.progress(0, total);
        for (done, network) in plan.into_iter().enumerate() {
            if done > 0 {
                // The operator's jobs go first; a network's own run cannot be interrupted.
                ctx.run_queued();
            }
            ctx.check_cancelled()?;
            let name = network.label().to_string();
            ctx.output(JobOutput::Warmup(WarmupEvent::Preparing {
                network: name.clone(),
                index: done + 1,
                total,
            }));
            tracing::info!(
                "preparing {name} on {}: {}",
                ctx.compute().label(),
                network.input()
            );
            let started = Instant::now();
            let result = {
                let mut cache = ctx.model_cache();
                let result = warm(network, &store, &mut cache, &ctx.compute().device);
                if result.is_ok() {
                    cache.first_run(network.id());
                }
                result
            };
            let event = match result {
                Ok(()) => WarmupEvent::Prepared {
                    network: name,
                    seconds: started.elapsed().as_secs_f32(),
                },
                Err(e) => {
                    tracing::warn!("the warm-up skipped {name}: {e}");
                    WarmupEvent::Skipped {
                        network: name,
                        reason: e.to_string(),
                    }
                }
            };
            ctx.output(JobOutput::Warmup(event));
            ctx.progress(done + 1, total);
        }
        Ok(())
    }
}

/// Whether networks are warmed on this device: only wgpu compiles kernels.
pub fn warms_on(compute: &Compute) -> bool {
    matches!(compute.kind, ComputeKind::Wgpu { .. })
}

/// Queues the start-up warm-up of `recipe`'s installed networks when they run on wgpu; `None` on
/// the CPU backend.
pub fn start(worker: &Worker, store: WeightsStore, recipe: Recipe) -> Option<JobId> {
    warms_on(worker.compute()).then(|| {
        worker.enqueue(WarmUp {
            store,
            recipe,
            plan: None,
        })
    })
}

/// Called by a job just before it runs `networks`: on wgpu, the ones that never ran in this process
/// compile their kernels first, which the status bar announces. Marks them as run.
pub fn note_first_use(ctx: &JobContext, cache: &mut NetworkCache, networks: &[WarmNetwork]) {
    let cold: Vec<String> = networks
        .iter()
        .filter(|n| cache.first_run(n.id()))
        .map(|n| n.label().to_string())
        .collect();
    if warms_on(ctx.compute()) && !cold.is_empty() {
        ctx.output(JobOutput::Warmup(WarmupEvent::FirstUse { networks: cold }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wgpu_is_warmed() {
        assert!(!warms_on(&Compute::cpu()));
        let mut gpu = Compute::cpu();
        gpu.kind = ComputeKind::Wgpu {
            adapter: "llvmpipe".into(),
            api: "Vulkan".into(),
            software: true,
        };
        assert!(warms_on(&gpu));
    }
}
