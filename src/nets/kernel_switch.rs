//! The on/off switch of a host kernel. Each kernel module holds one, so that a benchmark can run
//! the kernel and burn's own op (or the older path) in one process, call by call, and compare
//! them under the same load; nothing else turns a switch off, so every kernel is on by default.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether a host kernel is taken, for the whole process.
pub struct KernelSwitch(AtomicBool);

impl KernelSwitch {
    /// A switch that starts on.
    pub const fn on() -> Self {
        Self(AtomicBool::new(true))
    }

    pub fn enabled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }
}
