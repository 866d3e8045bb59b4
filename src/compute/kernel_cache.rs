//! Where burn's GPU runtime keeps what it learns about this machine between runs.
//!
//! The first call of a network on wgpu compiles its kernels and autotunes them (on software Vulkan:
//! minutes per network). cubecl can persist its autotune results in a directory; by default that is
//! `target/` of the nearest Cargo workspace or the user's cache. Facecast keeps them with the rest of
//! its data instead, so a user who runs the app from anywhere, or deletes a build, keeps them too.

use std::path::{Path, PathBuf};

use burn::cubecl::config::autotune::AutotuneLevel;
use burn::cubecl::config::cache::CacheConfig;
use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};

/// The folder of the data directory that holds the GPU runtime's caches.
pub const KERNEL_CACHE_DIR: &str = "gpu-kernels";

/// How hard the GPU runtime searches for the fastest kernel of each new shape it meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tuning {
    /// cubecl's own settings (several timed runs of every candidate kernel), or a `cubecl.toml`'s.
    Thorough,
    /// One warm-up and one timed run per candidate, no elimination rounds, and cubecl's `minimal`
    /// level (coarser shape buckets, so fewer shapes are tuned at all). On software Vulkan, where
    /// every run of a candidate is slow, this is most of a first call's time; the kernels chosen
    /// may be a little slower. For checks of correctness, such as the test suite's.
    Quick,
}

/// The GPU caches' folder inside a data directory.
pub fn kernel_cache_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(KERNEL_CACHE_DIR)
}

/// Points the GPU runtime's persistent caches at `data_dir`'s kernel folder, with cubecl's own
/// tuning. See [`configure`].
pub fn keep_kernels_in(data_dir: &Path) -> bool {
    configure(data_dir, Tuning::Thorough)
}

/// Points the GPU runtime's persistent caches at `data_dir`'s kernel folder and sets how hard it
/// tunes. Must run before the first device starts; returns false (and changes nothing) when the
/// runtime's configuration was already read. A `cubecl.toml` and the `CUBECL_*` variables are
/// still honoured for the rest, and the variables (e.g. `CUBECL_AUTOTUNE_LEVEL`) over `Quick`.
pub fn configure(data_dir: &Path, tuning: Tuning) -> bool {
    let mut config = CubeClRuntimeConfig::from_current_dir();
    if tuning == Tuning::Quick {
        config.autotune.level = AutotuneLevel::Minimal;
        let bench = &mut config.autotune.bench;
        bench.min_samples = 1;
        bench.max_samples = 1;
        bench.short_circuit_samples = 1;
    }
    let mut config = config.override_from_env();
    config.environment.path = CacheConfig::Directory(kernel_cache_dir(data_dir));
    let set = CubeClRuntimeConfig::try_set(config);
    if !set {
        tracing::warn!("the GPU runtime was configured before the kernel cache could be placed");
    }
    set
}
