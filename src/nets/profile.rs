//! Per-layer wall times of one network call, for aiming optimisation work (`bench_nets --profile`).
//!
//! The layers that dominate the ports (convolutions, norms, activations, the upfirdn blur, the
//! modulated convolution's style and demodulation) run inside [`scope`], which costs one atomic
//! load when profiling is off. When it is on, each scope adds its wall time to an entry keyed by
//! its kind (`conv2d`, `instance_norm`, …) and a detail string (shapes), so the report gives both
//! totals per op kind and per layer shape.
//!
//! The times are only meaningful on an eager backend (burn's flex CPU backend runs each op to
//! completion before returning); on wgpu a scope measures the time to queue its kernels.
//! Nested scopes count in both entries: the report lists "self" time (the scope's time minus its
//! nested scopes) so that totals add up to the call.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static ENABLED: AtomicBool = AtomicBool::new(false);
static RECORDS: Mutex<Option<HashMap<(&'static str, String), Entry>>> = Mutex::new(None);

thread_local! {
    // Time spent in nested scopes of each open scope on this thread (innermost last).
    static NESTED: RefCell<Vec<Duration>> = const { RefCell::new(Vec::new()) };
}

/// Accumulated times of one (kind, detail) entry.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Entry {
    pub calls: usize,
    /// Wall time including nested scopes.
    pub total: Duration,
    /// Wall time minus the nested scopes'.
    pub own: Duration,
}

/// Turns recording on or off (off by default); turning it on clears earlier records.
pub fn set_enabled(on: bool) {
    if on && let Ok(mut records) = RECORDS.lock() {
        *records = Some(HashMap::new());
    }
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Runs `f`, and when profiling is on records its wall time under `kind` and the detail that
/// `detail` formats (only called when profiling is on, so formatting costs nothing otherwise).
pub fn scope<T>(kind: &'static str, detail: impl FnOnce() -> String, f: impl FnOnce() -> T) -> T {
    if !enabled() {
        return f();
    }
    NESTED.with(|n| n.borrow_mut().push(Duration::ZERO));
    let start = Instant::now();
    let out = f();
    let total = start.elapsed();
    let nested = NESTED.with(|n| {
        let mut n = n.borrow_mut();
        let mine = n.pop().unwrap_or_default();
        if let Some(parent) = n.last_mut() {
            *parent += total;
        }
        mine
    });
    if let Ok(mut records) = RECORDS.lock() {
        let entry = records
            .get_or_insert_with(HashMap::new)
            .entry((kind, detail()))
            .or_default();
        entry.calls += 1;
        entry.total += total;
        entry.own += total.saturating_sub(nested);
    }
    out
}

/// Every entry recorded since profiling was turned on, largest own time first.
pub fn take() -> Vec<((&'static str, String), Entry)> {
    let mut all: Vec<_> = RECORDS
        .lock()
        .ok()
        .and_then(|mut r| r.as_mut().map(std::mem::take))
        .unwrap_or_default()
        .into_iter()
        .collect();
    all.sort_by(|a, b| b.1.own.cmp(&a.1.own).then_with(|| a.0.cmp(&b.0)));
    all
}

/// A `[B, C, H, W]` shape as `BxCxHxW`.
pub fn shape4(dims: [usize; 4]) -> String {
    format!("{}x{}x{}x{}", dims[0], dims[1], dims[2], dims[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test touches the global switch, so tests running in parallel cannot disturb it.
    #[test]
    fn records_own_and_total_time_per_entry_only_when_enabled() {
        assert_eq!(scope("off", String::new, || 3), 3);
        set_enabled(true);
        let v = scope(
            "outer",
            || "a".to_string(),
            || {
                std::thread::sleep(Duration::from_millis(2));
                scope(
                    "inner",
                    || "b".to_string(),
                    || std::thread::sleep(Duration::from_millis(5)),
                );
                7
            },
        );
        scope("inner", || "b".to_string(), || ());
        set_enabled(false);
        assert_eq!(v, 7);
        let records = take();
        let get = |k: &str| records.iter().find(|((kind, _), _)| *kind == k).map(|r| r.1);
        assert!(get("off").is_none());
        let outer = get("outer").expect("outer recorded");
        let inner = get("inner").expect("inner recorded");
        assert_eq!((outer.calls, inner.calls), (1, 2));
        assert!(inner.total >= Duration::from_millis(5));
        assert!(outer.total >= inner.total.saturating_sub(Duration::from_millis(1)));
        // The outer scope's own time excludes the nested one.
        assert!(outer.own + Duration::from_millis(5) <= outer.total);
        assert!(take().is_empty(), "take drains the records");
    }
}
