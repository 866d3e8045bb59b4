//! Where burn's GPU runtime keeps what it learns about this machine between runs.
//!
//! The first call of a network on wgpu compiles its kernels and autotunes them (on software Vulkan:
//! minutes per network). cubecl can persist its autotune results in a directory; by default that is
//! `target/` of the nearest Cargo workspace or the user's cache. Facecast keeps them with the rest of
//! its data instead, so a user who runs the app from anywhere, or deletes a build, keeps them too.

use std::path::{Path, PathBuf};

use burn::cubecl::config::cache::CacheConfig;
use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};

/// The folder of the data directory that holds the GPU runtime's caches.
pub const KERNEL_CACHE_DIR: &str = "gpu-kernels";

/// The GPU caches' folder inside a data directory.
pub fn kernel_cache_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(KERNEL_CACHE_DIR)
}

/// Points the GPU runtime's persistent caches at `data_dir`'s kernel folder. Must run before the
/// first device starts; returns false (and changes nothing) when the runtime's configuration was
/// already read. A `cubecl.toml` and the `CUBECL_*` variables are still honoured for the rest.
pub fn keep_kernels_in(data_dir: &Path) -> bool {
    let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
    config.environment.path = CacheConfig::Directory(kernel_cache_dir(data_dir));
    let set = CubeClRuntimeConfig::try_set(config);
    if !set {
        tracing::warn!("the GPU runtime was configured before the kernel cache could be placed");
    }
    set
}
