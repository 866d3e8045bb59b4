//! Choosing the burn device that runs the networks.
//!
//! `Auto` takes the best hardware GPU wgpu can reach; without one the pure-Rust `flex` CPU backend
//! runs the networks (a software Vulkan adapter is slower on the same cores, see `adapters`). The
//! user is told which device is in use and why: the status bar and `facecast devices`.

use std::fmt;

pub mod adapters;
pub mod kernel_cache;

use adapters::{Adapter, AutoChoice};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// Environment variable that overrides the automatic backend choice (`wgpu` or `cpu`).
pub const BACKEND_ENV: &str = "FACECAST_BACKEND";

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The best hardware GPU through wgpu, else the CPU (never a software adapter).
    #[default]
    Auto,
    /// wgpu's default adapter (a GPU, or software Vulkan on purpose); fails when none exists.
    Wgpu,
    /// The `flex` CPU backend.
    Cpu,
}

impl BackendChoice {
    /// The explicit choice if given, else the environment variable, else automatic.
    pub fn resolve(explicit: Option<BackendChoice>) -> Result<BackendChoice, ComputeError> {
        if let Some(choice) = explicit {
            return Ok(choice);
        }
        match std::env::var(BACKEND_ENV) {
            Ok(value) => Self::parse(&value),
            Err(_) => Ok(BackendChoice::Auto),
        }
    }

    pub fn parse(value: &str) -> Result<BackendChoice, ComputeError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(BackendChoice::Auto),
            "wgpu" | "gpu" => Ok(BackendChoice::Wgpu),
            "cpu" | "flex" => Ok(BackendChoice::Cpu),
            other => Err(ComputeError::UnknownBackend(other.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("unknown backend \"{0}\" (expected wgpu, cpu or auto; set by --backend or {BACKEND_ENV})")]
    UnknownBackend(String),
    #[error("no usable wgpu adapter: {0}")]
    NoAdapter(String),
}

/// The kind of hardware behind the device, for the status bar and for benchmarks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComputeKind {
    /// A wgpu adapter: a GPU, or a software rasteriser such as llvmpipe.
    Wgpu {
        adapter: String,
        api: String,
        software: bool,
    },
    /// burn's `flex` CPU backend.
    Cpu,
}

/// The device the networks run on, with a human description of it.
#[derive(Clone)]
pub struct Compute {
    pub device: Device,
    pub kind: ComputeKind,
    /// Why this device runs the networks, in words (e.g. "no GPU found: …").
    pub reason: String,
    /// Why this backend was chosen when it is not what was asked for (e.g. no adapter).
    pub fallback_reason: Option<String>,
    /// The wgpu handles, when burn runs on wgpu, so the window can render on the same device.
    pub wgpu: Option<burn::tensor::wgpu::WgpuSetup>,
}

impl fmt::Debug for Compute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compute")
            .field("kind", &self.kind)
            .field("reason", &self.reason)
            .field("fallback_reason", &self.fallback_reason)
            .finish()
    }
}

impl Compute {
    /// The flex CPU backend.
    pub fn cpu() -> Compute {
        Compute::cpu_because("the CPU backend was asked for")
    }

    fn cpu_because(reason: impl Into<String>) -> Compute {
        Compute {
            device: Device::flex(),
            kind: ComputeKind::Cpu,
            reason: reason.into(),
            fallback_reason: None,
            wgpu: None,
        }
    }

    /// burn's wgpu runtime on wgpu's default adapter, software or not: what `--backend wgpu` asks.
    pub fn wgpu() -> Result<Compute, ComputeError> {
        Compute::start_wgpu(Device::wgpu_options(), "wgpu's default adapter was asked for")
    }

    /// burn's wgpu runtime on one listed adapter.
    pub fn on_adapter(adapter: &Adapter, reason: impl Into<String>) -> Result<Compute, ComputeError> {
        let Some((api, kind)) = adapter.address.clone() else {
            return Err(ComputeError::NoAdapter(format!(
                "{} ({}) cannot be addressed by burn",
                adapter.name, adapter.api
            )));
        };
        let options = Device::wgpu_options()
            .device_kind(kind)
            .graphics_api(adapters::burn_api(api));
        Compute::start_wgpu(options, reason)
    }

    fn start_wgpu(
        options: burn::tensor::wgpu::WgpuOptions,
        reason: impl Into<String>,
    ) -> Result<Compute, ComputeError> {
        // wgpu can panic deep inside driver enumeration on broken installs; treat that as "no adapter".
        let init = std::panic::catch_unwind(|| options.init_with_setup());
        let (device, setup) = match init {
            Ok(Ok(pair)) => pair,
            Ok(Err(err)) => return Err(ComputeError::NoAdapter(err.to_string())),
            Err(_) => {
                return Err(ComputeError::NoAdapter(
                    "the wgpu runtime panicked while starting".into(),
                ));
            }
        };
        let info = setup.adapter.get_info();
        let software = info.device_type == burn::tensor::wgpu::wgpu::DeviceType::Cpu;
        let kind = ComputeKind::Wgpu {
            adapter: info.name.clone(),
            api: format!("{:?}", info.backend),
            software,
        };
        Ok(Compute {
            device,
            kind,
            reason: reason.into(),
            fallback_reason: None,
            wgpu: Some(setup),
        })
    }

    /// The device for a choice. `Auto` looks at every adapter (see `adapters::choose`) and falls
    /// back to the CPU, saying why, when the chosen GPU cannot be started.
    pub fn select(choice: BackendChoice) -> Result<Compute, ComputeError> {
        match choice {
            BackendChoice::Cpu => Ok(Compute::cpu()),
            BackendChoice::Wgpu => Compute::wgpu(),
            BackendChoice::Auto => {
                let listed = adapters::list_adapters();
                Ok(Compute::auto(&listed))
            }
        }
    }

    /// `Auto` over an adapter list already made (`facecast devices` lists them once).
    pub fn auto(listed: &[Adapter]) -> Compute {
        match adapters::choose(listed) {
            AutoChoice::Cpu { reason } => Compute::cpu_because(reason),
            AutoChoice::Wgpu { adapter, reason } => match Compute::on_adapter(&listed[adapter], reason) {
                Ok(compute) => compute,
                Err(err) => {
                    let mut compute =
                        Compute::cpu_because(format!("{} could not be started", listed[adapter].name));
                    compute.fallback_reason = Some(format!("{err}; using the CPU backend instead"));
                    compute
                }
            },
        }
    }

    /// What the status bar says, e.g. "NVIDIA H100 (Vulkan)", "llvmpipe (software Vulkan)", "CPU".
    pub fn label(&self) -> String {
        match &self.kind {
            ComputeKind::Cpu => "CPU (flex)".to_string(),
            ComputeKind::Wgpu {
                adapter,
                api,
                software: true,
            } => format!("{adapter} (software {api})"),
            ComputeKind::Wgpu {
                adapter,
                api,
                software: false,
            } => format!("{adapter} ({api})"),
        }
    }
}

impl fmt::Display for Compute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}
