//! The batch's one-photo look-ahead (issue 18 item 3): while the current photo is in the edit
//! steps, a second thread decodes the next photo and detects its faces.
//!
//! Decoding (JPEG entropy decoding, EXIF orientation) runs on one core and MTCNN's small stages
//! are short, serial calls, so either leaves most of a machine idle while it runs; overlapped with
//! the swap networks they take up what the networks leave. The networks themselves stay on the
//! calling thread (the worker that owns them), so they stay warm and nothing is loaded twice.
//!
//! The channel is a rendezvous (capacity 0): the thread holds at most one finished photo while
//! the caller works on another, so at most two decoded photos are alive at once. Photos arrive in
//! input order, each tagged with its index; a mismatch (which would be a bug) or a thread that
//! could not start makes the caller prepare the photo itself, so a report is never lost.
//! Cancelling, or a stop of the run, drops the receiver: the thread finishes the photo in hand,
//! finds the channel closed, and ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::Scope;

use super::{BatchInput, Prepared, Preparer, needs_photo};

/// The look-ahead thread's stack: as much as a main thread gets, since detection runs there.
const STACK_BYTES: usize = 8 << 20;

/// Where the batch loop gets each photo from: prepared ahead on a second thread, or in turn.
pub(super) struct Photos<'p> {
    prepare: &'p Preparer<'p>,
    ahead: Option<Ahead>,
}

struct Ahead {
    rx: Receiver<(usize, Prepared)>,
    stop: Arc<AtomicBool>,
}

impl<'p> Photos<'p> {
    /// Every photo decoded and detected when the loop asks for it, on the loop's thread.
    pub(super) fn inline(prepare: &'p Preparer<'p>) -> Photos<'p> {
        Photos { prepare, ahead: None }
    }

    /// Starts the look-ahead thread in `scope` over the inputs that need a photo, in order.
    pub(super) fn ahead<'scope, 'env>(
        scope: &'scope Scope<'scope, 'env>,
        prepare: &'p Preparer<'p>,
        inputs: &'p [BatchInput],
    ) -> Photos<'p>
    where
        'p: 'scope,
    {
        let (tx, rx) = sync_channel::<(usize, Prepared)>(0);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let spawned = std::thread::Builder::new()
            .name("facecast-lookahead".into())
            .stack_size(STACK_BYTES)
            .spawn_scoped(scope, move || {
                let cancelled = || flag.load(Ordering::Relaxed);
                for (index, input) in inputs.iter().enumerate().filter(|(_, i)| needs_photo(i)) {
                    if cancelled() {
                        break;
                    }
                    let prepared = prepare.prepare(input, &cancelled);
                    if tx.send((index, prepared)).is_err() {
                        break;
                    }
                }
            });
        match spawned {
            Ok(_) => Photos {
                prepare,
                ahead: Some(Ahead { rx, stop }),
            },
            // No second thread to be had: the run goes on without the overlap.
            Err(_) => Photos::inline(prepare),
        }
    }

    /// The photo of input `index`; `cancelled` is polled between decoding and detection when the
    /// photo is prepared here.
    pub(super) fn next(
        &mut self,
        index: usize,
        input: &BatchInput,
        cancelled: &dyn Fn() -> bool,
    ) -> Prepared {
        if let Some(ahead) = &self.ahead {
            match ahead.rx.recv() {
                Ok((i, prepared)) if i == index => return prepared,
                // Out of step or gone: stop the thread and go on without it.
                _ => self.stop(),
            }
        }
        self.prepare.prepare(input, cancelled)
    }

    /// Ends the look-ahead: no photo after the one in hand is prepared.
    pub(super) fn stop(&mut self) {
        if let Some(ahead) = self.ahead.take() {
            ahead.stop.store(true, Ordering::Relaxed);
        }
    }
}
