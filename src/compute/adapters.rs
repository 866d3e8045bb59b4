//! The wgpu adapters this machine has, and which one `Auto` runs the networks on.
//!
//! The choice is a pure function of the adapter list, so it is tested on made-up machines. A
//! software adapter (llvmpipe, WARP, SwiftShader: wgpu's device type `Cpu`) is never chosen
//! automatically: on the same cores burn's `flex` CPU backend is several times faster, and its first
//! call does not spend minutes compiling kernels.

use burn::tensor::DeviceKind;
use burn::tensor::wgpu::{WgpuBackend, wgpu};
use serde::Serialize;

/// The graphics APIs asked, in the order `Auto` prefers them on a tie.
const APIS: [wgpu::Backend; 4] = [
    wgpu::Backend::Vulkan,
    wgpu::Backend::Metal,
    wgpu::Backend::Dx12,
    wgpu::Backend::Gl,
];

/// What kind of device an adapter is, in words a user can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdapterType {
    Discrete,
    Integrated,
    Virtual,
    Other,
    /// A software rasteriser: runs on the CPU's cores.
    Software,
}

impl AdapterType {
    fn from_wgpu(device_type: wgpu::DeviceType) -> AdapterType {
        match device_type {
            wgpu::DeviceType::DiscreteGpu => AdapterType::Discrete,
            wgpu::DeviceType::IntegratedGpu => AdapterType::Integrated,
            wgpu::DeviceType::VirtualGpu => AdapterType::Virtual,
            wgpu::DeviceType::Cpu => AdapterType::Software,
            wgpu::DeviceType::Other => AdapterType::Other,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            AdapterType::Discrete => "discrete GPU",
            AdapterType::Integrated => "integrated GPU",
            AdapterType::Virtual => "virtual GPU",
            AdapterType::Other => "other adapter",
            AdapterType::Software => "software (CPU)",
        }
    }
}

/// One adapter as wgpu reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Adapter {
    pub name: String,
    pub device_type: AdapterType,
    /// "Vulkan", "Metal", "Dx12" or "Gl".
    pub api: String,
    /// Driver name and version, as the driver reports them (may be empty).
    pub driver: String,
    /// Where burn addresses it: the nth adapter of its type on its API.
    #[serde(skip)]
    pub(crate) address: Option<(wgpu::Backend, DeviceKind)>,
}

/// Every adapter wgpu sees, API by API. Never fails: a broken driver install that panics during
/// enumeration (it happens) counts as no adapter on that API.
pub fn list_adapters() -> Vec<Adapter> {
    let mut adapters = Vec::new();
    for api in APIS {
        let infos = std::panic::catch_unwind(|| probe(api)).unwrap_or_else(|_| {
            tracing::warn!("wgpu panicked while listing {api:?} adapters; skipping that API");
            Vec::new()
        });
        adapters.extend(describe(api, &infos));
    }
    adapters
}

fn probe(api: wgpu::Backend) -> Vec<Reported> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: api.into(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    // Native enumeration completes at once; the future only wraps the answer.
    pollster::block_on(instance.enumerate_adapters(api.into()))
        .iter()
        .map(|adapter| Reported::from(adapter.get_info()))
        .collect()
}

/// The part of wgpu's report that matters here.
#[derive(Debug, Clone)]
struct Reported {
    name: String,
    device_type: wgpu::DeviceType,
    backend: wgpu::Backend,
    driver: String,
    driver_info: String,
}

impl From<wgpu::AdapterInfo> for Reported {
    fn from(info: wgpu::AdapterInfo) -> Reported {
        Reported {
            name: info.name,
            device_type: info.device_type,
            backend: info.backend,
            driver: info.driver,
            driver_info: info.driver_info,
        }
    }
}

/// Turns wgpu's reports for one API into adapters, numbering each type from zero as burn does.
fn describe(api: wgpu::Backend, infos: &[Reported]) -> Vec<Adapter> {
    let mut seen = [0usize; 5];
    infos
        .iter()
        .map(|info| {
            let device_type = AdapterType::from_wgpu(info.device_type);
            let slot = device_type as usize;
            let index = seen[slot];
            seen[slot] += 1;
            let kind = match device_type {
                AdapterType::Discrete => Some(DeviceKind::DiscreteGpu(index)),
                AdapterType::Integrated => Some(DeviceKind::IntegratedGpu(index)),
                AdapterType::Virtual => Some(DeviceKind::VirtualGpu(index)),
                AdapterType::Software => Some(DeviceKind::Cpu),
                // burn cannot address an `Other` adapter by index; it is listed, not chosen.
                AdapterType::Other => None,
            };
            let driver = [info.driver.as_str(), info.driver_info.as_str()]
                .iter()
                .filter(|part| !part.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            Adapter {
                name: info.name.clone(),
                device_type,
                api: format!("{:?}", info.backend),
                driver,
                address: kind.map(|kind| (api, kind)),
            }
        })
        .collect()
}

/// What `Auto` decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoChoice {
    /// Run on this adapter (an index into the list).
    Wgpu { adapter: usize, reason: String },
    /// Run on the CPU backend.
    Cpu { reason: String },
}

/// The best hardware adapter, discrete before integrated before virtual, the preferred API first
/// on a tie; none when the machine has only software adapters or none at all.
pub fn choose(adapters: &[Adapter]) -> AutoChoice {
    let best = adapters
        .iter()
        .enumerate()
        .filter(|(_, a)| a.address.is_some() && a.device_type != AdapterType::Software)
        .min_by_key(|(i, a)| (a.device_type, *i));
    if let Some((index, adapter)) = best {
        return AutoChoice::Wgpu {
            adapter: index,
            reason: format!(
                "the best GPU found: {} ({})",
                adapter.device_type.label(),
                adapter.api
            ),
        };
    }
    let software: Vec<&str> = adapters
        .iter()
        .filter(|a| a.device_type == AdapterType::Software)
        .map(|a| a.name.as_str())
        .collect();
    let reason = if software.is_empty() {
        "no GPU found: the networks run on the CPU backend".to_string()
    } else {
        format!(
            "no GPU found: the CPU backend is faster than software rendering ({}); \
             --backend wgpu uses it anyway",
            software.join(", ")
        )
    };
    AutoChoice::Cpu { reason }
}

/// burn's name for a graphics API.
pub(crate) fn burn_api(api: wgpu::Backend) -> WgpuBackend {
    match api {
        wgpu::Backend::Metal => WgpuBackend::Metal,
        wgpu::Backend::Dx12 => WgpuBackend::Dx12,
        wgpu::Backend::Gl => WgpuBackend::Gl,
        _ => WgpuBackend::Vulkan,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, device_type: wgpu::DeviceType, backend: wgpu::Backend) -> Reported {
        Reported {
            name: name.into(),
            device_type,
            driver: "driver".into(),
            driver_info: "1.0".into(),
            backend,
        }
    }

    fn machine(apis: &[(wgpu::Backend, &[(&str, wgpu::DeviceType)])]) -> Vec<Adapter> {
        apis.iter()
            .flat_map(|(api, list)| {
                let infos: Vec<_> = list.iter().map(|(n, t)| info(n, *t, *api)).collect();
                describe(*api, &infos)
            })
            .collect()
    }

    #[test]
    fn a_machine_with_only_software_vulkan_runs_on_the_cpu_backend() {
        let adapters = machine(&[(
            wgpu::Backend::Vulkan,
            &[("llvmpipe (LLVM 15.0.6, 256 bits)", wgpu::DeviceType::Cpu)],
        )]);
        let AutoChoice::Cpu { reason } = choose(&adapters) else {
            panic!("software Vulkan was chosen");
        };
        assert!(reason.contains("llvmpipe"), "{reason}");
        assert!(reason.contains("faster"), "{reason}");
    }

    #[test]
    fn no_adapter_at_all_runs_on_the_cpu_backend() {
        assert!(matches!(choose(&[]), AutoChoice::Cpu { .. }));
    }

    #[test]
    fn a_discrete_gpu_beats_an_integrated_one_and_software() {
        let adapters = machine(&[
            (
                wgpu::Backend::Vulkan,
                &[
                    ("llvmpipe", wgpu::DeviceType::Cpu),
                    ("Intel UHD", wgpu::DeviceType::IntegratedGpu),
                    ("NVIDIA H100", wgpu::DeviceType::DiscreteGpu),
                ],
            ),
            (
                wgpu::Backend::Gl,
                &[("NVIDIA H100/PCIe", wgpu::DeviceType::DiscreteGpu)],
            ),
        ]);
        let AutoChoice::Wgpu { adapter, reason } = choose(&adapters) else {
            panic!("no GPU chosen");
        };
        assert_eq!(adapters[adapter].name, "NVIDIA H100");
        assert_eq!(adapters[adapter].api, "Vulkan");
        assert!(reason.contains("discrete"), "{reason}");
        assert_eq!(
            adapters[adapter].address,
            Some((wgpu::Backend::Vulkan, DeviceKind::DiscreteGpu(0)))
        );
    }

    #[test]
    fn an_integrated_gpu_is_taken_when_it_is_the_only_hardware() {
        let adapters = machine(&[(
            wgpu::Backend::Vulkan,
            &[
                ("llvmpipe", wgpu::DeviceType::Cpu),
                ("Intel Iris", wgpu::DeviceType::IntegratedGpu),
            ],
        )]);
        let AutoChoice::Wgpu { adapter, .. } = choose(&adapters) else {
            panic!("no GPU chosen");
        };
        assert_eq!(adapters[adapter].name, "Intel Iris");
    }

    #[test]
    fn adapters_are_numbered_within_their_type_as_burn_addresses_them() {
        let adapters = machine(&[(
            wgpu::Backend::Vulkan,
            &[
                ("GPU A", wgpu::DeviceType::DiscreteGpu),
                ("Intel", wgpu::DeviceType::IntegratedGpu),
                ("GPU B", wgpu::DeviceType::DiscreteGpu),
            ],
        )]);
        let kinds: Vec<_> = adapters
            .iter()
            .map(|a| a.address.as_ref().map(|(_, k)| k.clone()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                Some(DeviceKind::DiscreteGpu(0)),
                Some(DeviceKind::IntegratedGpu(0)),
                Some(DeviceKind::DiscreteGpu(1)),
            ]
        );
        assert_eq!(adapters[0].driver, "driver 1.0");
    }
}
