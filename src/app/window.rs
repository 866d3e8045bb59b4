//! Opening the native window, preferably on the same wgpu device as the networks.
//!
//! Sharing burn's device lets results reach the screen without a round trip through the CPU. If the
//! window cannot be created on it (the adapter cannot present to this surface, say), the window opens
//! on a device of its own instead and the status bar says why.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use eframe::egui_wgpu::{self, WgpuSetupExisting};

use crate::compute::Compute;

use super::{APP_NAME, FacecastApp, StartOptions, WindowOptions, icon};

pub fn run(options: WindowOptions) -> anyhow::Result<ExitCode> {
    let compute = Compute::select(options.backend).context("choosing the compute backend")?;
    tracing::info!("compute backend: {}", compute.label());
    if let Some(reason) = &compute.fallback_reason {
        tracing::warn!("{reason}");
    }
    // `--samples` was handled by the CLI: the sample photos are already in `options.open`.
    let start = StartOptions {
        open: options.open,
        display: String::new(),
        warnings: Vec::new(),
        data_dir: options.data_dir,
        install_missing: true,
        restore_session: true,
    };

    let Some(setup) = compute.wgpu.clone() else {
        let display = super::DISPLAY_OWN_DEVICE_CPU.to_string();
        open(
            native_options(None),
            compute,
            StartOptions { display, ..start },
            &AtomicBool::new(false),
        )?;
        return Ok(ExitCode::SUCCESS);
    };

    let existing = WgpuSetupExisting {
        instance: setup.instance.clone(),
        adapter: setup.adapter.clone(),
        device: setup.device.clone(),
        queue: setup.queue.clone(),
    };
    let created = AtomicBool::new(false);
    let shared_start = StartOptions {
        display: "shared with the networks".to_string(),
        ..start.clone()
    };
    match open(
        native_options(Some(existing)),
        compute.clone(),
        shared_start,
        &created,
    ) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // Once the app existed the failure is not about the device; don't open a second window.
        Err(err) if created.load(Ordering::SeqCst) => Err(err),
        Err(err) => {
            tracing::warn!(
                "could not draw the window on the compute device ({err:#}); using a separate device"
            );
            let display = format!("own wgpu device (sharing the compute device failed: {err:#})");
            open(
                native_options(None),
                compute,
                StartOptions { display, ..start },
                &AtomicBool::new(false),
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn native_options(existing: Option<WgpuSetupExisting>) -> eframe::NativeOptions {
    let mut viewport = egui::ViewportBuilder::default()
        .with_title(APP_NAME)
        .with_app_id("facecast")
        .with_inner_size([1280.0, 800.0])
        .with_min_inner_size([800.0, 500.0])
        .with_drag_and_drop(true);
    if let Some(icon) = icon::window_icon() {
        viewport = viewport.with_icon(Arc::new(icon));
    }
    let mut options = eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Wgpu,
        ..Default::default()
    };
    if let Some(existing) = existing {
        options.wgpu_options.wgpu_setup = egui_wgpu::WgpuSetup::Existing(existing);
    }
    options
}

/// Runs the event loop until the window closes. `created` tells the caller whether the app was built,
/// i.e. whether a failure came from the device rather than from the app itself.
fn open(
    options: eframe::NativeOptions,
    compute: Compute,
    start: StartOptions,
    created: &AtomicBool,
) -> anyhow::Result<()> {
    eframe::run_native(
        APP_NAME,
        options,
        Box::new(|cc| {
            created.store(true, Ordering::SeqCst);
            let mut start = start;
            if let (Some(render), Some(setup)) = (&cc.wgpu_render_state, &compute.wgpu)
                && render.device != setup.device
            {
                start.display = "own wgpu device".to_string();
            }
            Ok(Box::new(FacecastApp::new(&cc.egui_ctx, compute, start)))
        }),
    )
    .map_err(|err| anyhow::anyhow!("opening the window: {err}"))
}
