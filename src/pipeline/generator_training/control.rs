//! Pause, resume and cancel of a training run, set from any thread (the window's buttons) and
//! obeyed by the run between iterations (see [`super::run`]).

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
struct ControlState {
    paused: bool,
    cancelled: bool,
}

/// Pause, resume and cancel, set from any thread and obeyed between iterations.
#[derive(Debug, Clone, Default)]
pub struct TrainControl(Arc<(Mutex<ControlState>, Condvar)>);

impl TrainControl {
    fn state(&self) -> std::sync::MutexGuard<'_, ControlState> {
        // The state is two flags; a panic elsewhere cannot leave them inconsistent.
        self.0.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, f: impl FnOnce(&mut ControlState)) {
        f(&mut self.state());
        self.0.1.notify_all();
    }

    pub fn pause(&self) {
        self.set(|s| s.paused = true);
    }

    pub fn resume(&self) {
        self.set(|s| s.paused = false);
    }

    pub fn cancel(&self) {
        self.set(|s| s.cancelled = true);
    }

    pub fn is_paused(&self) -> bool {
        self.state().paused
    }

    pub fn is_cancelled(&self) -> bool {
        self.state().cancelled
    }

    /// Blocks while paused and not cancelled. `stop` (a cancel from outside this control, e.g.
    /// the window closing) is looked at twice a second; otherwise the thread sleeps on the
    /// condition variable.
    pub(super) fn wait_while_paused(&self, stop: &dyn Fn() -> bool) {
        let mut state = self.state();
        while state.paused && !state.cancelled {
            if stop() {
                state.cancelled = true;
                break;
            }
            state = match self.0.1.wait_timeout(state, Duration::from_millis(500)) {
                Ok((s, _)) => s,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_blocks_until_resumed_and_cancel_wakes_a_paused_run() {
        let control = TrainControl::default();
        control.pause();
        let waiting = control.clone();
        let waiter = std::thread::spawn(move || {
            waiting.wait_while_paused(&|| false);
            waiting.is_cancelled()
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "a paused run waits");
        control.resume();
        assert!(!waiter.join().expect("the waiter"), "resumed, not cancelled");

        control.pause();
        let waiting = control.clone();
        let waiter = std::thread::spawn(move || {
            waiting.wait_while_paused(&|| false);
            waiting.is_cancelled()
        });
        control.cancel();
        assert!(waiter.join().expect("the waiter"), "cancel ends the wait");

        let outside = TrainControl::default();
        outside.pause();
        outside.wait_while_paused(&|| true);
        assert!(
            outside.is_cancelled(),
            "a stop from outside cancels the paused run"
        );
    }
}
