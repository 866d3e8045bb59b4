//! Choosing the burn device that runs the networks.
//!
//! wgpu comes first (a real GPU, or Mesa's software Vulkan); when no adapter can be had the
//! pure-Rust `flex` CPU backend takes over, and the user is told which one is in use.

use std::fmt;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// Environment variable that overrides the automatic backend choice (`wgpu` or `cpu`).
pub const BACKEND_ENV: &str = "FACECAST_BACKEND";

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// wgpu when an adapter exists, else the CPU.
    #[default]
    Auto,
    /// wgpu only (a GPU or software Vulkan); fails when no adapter exists.
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
    /// Why this backend was chosen when it is not what was asked for (e.g. no adapter).
    pub fallback_reason: Option<String>,
    /// The wgpu handles, when burn runs on wgpu, so the window can render on the same device.
    pub wgpu: Option<burn::tensor::wgpu::WgpuSetup>,
}

impl fmt::Debug for Compute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compute")
            .field("kind", &self.kind)
            .field("fallback_reason", &self.fallback_reason)
            .finish()
    }
}

impl Compute {
    /// The flex CPU backend.
    pub fn cpu() -> Compute {
        Compute {
            device: Device::flex(),
            kind: ComputeKind::Cpu,
            fallback_reason: None,
            wgpu: None,
        }
    }

    /// burn's wgpu runtime on the default adapter.
    pub fn wgpu() -> Result<Compute, ComputeError> {
        // wgpu can panic deep inside driver enumeration on broken installs; treat that as "no adapter".
        let init = std::panic::catch_unwind(|| Device::wgpu_options().init_with_setup());
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
            fallback_reason: None,
            wgpu: Some(setup),
        })
    }

    /// The device for a choice; `Auto` falls back to the CPU and records why.
    pub fn select(choice: BackendChoice) -> Result<Compute, ComputeError> {
        match choice {
            BackendChoice::Cpu => Ok(Compute::cpu()),
            BackendChoice::Wgpu => Compute::wgpu(),
            BackendChoice::Auto => match Compute::wgpu() {
                Ok(compute) => Ok(compute),
                Err(err) => {
                    let mut compute = Compute::cpu();
                    compute.fallback_reason = Some(format!("{err}; using the CPU backend instead"));
                    Ok(compute)
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
