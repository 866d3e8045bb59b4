//! `facecast batch`'s progress: a bar with the count, the rate and the time left on a terminal, a
//! line per photo otherwise, or (`--progress json`) one JSON object per finished photo on stderr
//! for machines.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::pipeline::batch::{BatchInput, BatchObserver, FileReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A progress bar on a terminal; a line per photo otherwise (none with --json).
    Auto,
    /// One JSON object per finished photo on stderr.
    Json,
    /// Nothing but the closing summary.
    None,
}

/// The rate (photos per minute) and the time left, from the photos worked on so far. Photos that
/// took no work (exported by an earlier run, or not photos) would make the rate a lie, so they are
/// left out of it.
pub fn rate_and_eta(worked: usize, remaining: usize, elapsed: Duration) -> (Option<f64>, Option<Duration>) {
    let secs = elapsed.as_secs_f64();
    if worked == 0 || secs <= 0.0 {
        return (None, None);
    }
    let per_sec = worked as f64 / secs;
    let eta = Duration::from_secs_f64(remaining as f64 / per_sec);
    (Some(per_sec * 60.0), Some(eta))
}

/// "2h05m", "3m07s", "12s".
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s / 60) % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m{sec:02}s"),
        (h, min, _) => format!("{h}h{min:02}m"),
    }
}

/// The progress line's text after the count: "12.5/min, 3m07s left".
pub fn rate_text(worked: usize, remaining: usize, elapsed: Duration) -> String {
    match rate_and_eta(worked, remaining, elapsed) {
        (Some(rate), Some(eta)) => format!("{rate:.1}/min, {} left", short_duration(eta)),
        _ => "starting".to_string(),
    }
}

#[derive(Serialize)]
struct JsonLine<'a> {
    event: &'static str,
    finished: usize,
    total: usize,
    index: usize,
    id: &'a str,
    input: String,
    status: &'static str,
    output: Option<String>,
    reason: Option<&'a str>,
    resumed: bool,
    elapsed_s: f64,
    per_minute: Option<f64>,
    eta_s: Option<f64>,
}

pub struct Progress<'a> {
    inputs: &'a [BatchInput],
    bar: Option<ProgressBar>,
    /// A text line per photo on stdout (no terminal, no JSON report).
    lines: bool,
    json: bool,
    started: Instant,
    finished: usize,
    worked: usize,
    current: String,
}

impl<'a> Progress<'a> {
    pub fn new(inputs: &'a [BatchInput], mode: ProgressMode, json_report: bool) -> Progress<'a> {
        let terminal = std::io::stderr().is_terminal();
        let bar = (mode == ProgressMode::Auto && terminal).then(|| {
            let bar = ProgressBar::with_draw_target(Some(inputs.len() as u64), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} photos, {msg}") {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            inputs,
            bar,
            lines: mode == ProgressMode::Auto && !json_report,
            json: mode == ProgressMode::Json,
            started: Instant::now(),
            finished: 0,
            worked: 0,
            current: String::new(),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn say(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }

    fn update_bar(&self) {
        if let Some(bar) = &self.bar {
            let remaining = self.inputs.len().saturating_sub(self.finished);
            let rate = rate_text(self.worked, remaining, self.started.elapsed());
            bar.set_message(format!("{rate}  {}", self.current));
        }
    }
}

impl BatchObserver for Progress<'_> {
    fn file_started(&mut self, _index: usize, _total: usize, input: &Path) {
        self.current = crate::io::display_name(input);
        self.update_bar();
    }

    fn file_finished(&mut self, index: usize, total: usize, report: &FileReport) {
        self.finished += 1;
        let listed_only = self.inputs.get(index).is_some_and(|i| i.not_a_photo.is_some());
        if !report.resumed && !listed_only {
            self.worked += 1;
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        self.update_bar();
        if self.json {
            let elapsed = self.started.elapsed();
            let (per_minute, eta) = rate_and_eta(self.worked, total.saturating_sub(self.finished), elapsed);
            let input = self.inputs.get(index);
            let line = JsonLine {
                event: "photo",
                finished: self.finished,
                total,
                index: input.and_then(|i| i.position).unwrap_or(index),
                id: input.map(|i| i.id.as_str()).unwrap_or(""),
                input: report.input.to_string_lossy().into_owned(),
                status: report.status.as_str(),
                output: report.output.as_ref().map(|p| p.to_string_lossy().into_owned()),
                reason: report.reason.as_deref(),
                resumed: report.resumed,
                elapsed_s: elapsed.as_secs_f64(),
                per_minute,
                eta_s: eta.map(|d| d.as_secs_f64()),
            };
            if let Ok(text) = serde_json::to_string(&line) {
                // Written whole, one line at a time, so a reader never sees half an object.
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{text}");
            }
        }
        if !self.lines {
            return;
        }
        let line = match (&report.output, &report.reason) {
            (Some(out), _) if report.resumed => {
                format!("done earlier: {} -> {}", report.input.display(), out.display())
            }
            (Some(out), _) => format!("done: {} -> {}", report.input.display(), out.display()),
            (None, Some(reason)) => format!("{}: {reason}", report.status.as_str()),
            (None, None) => format!("{}: {}", report.status.as_str(), report.input.display()),
        };
        self.say(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_counts_only_photos_worked_on() {
        assert_eq!(rate_and_eta(0, 10, Duration::from_secs(5)), (None, None));
        let (rate, eta) = rate_and_eta(4, 8, Duration::from_secs(2));
        assert_eq!(rate, Some(120.0));
        assert_eq!(eta, Some(Duration::from_secs(4)));
        assert_eq!(rate_text(4, 8, Duration::from_secs(2)), "120.0/min, 4s left");
        assert_eq!(rate_text(0, 8, Duration::from_secs(2)), "starting");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(short_duration(Duration::from_secs(12)), "12s");
        assert_eq!(short_duration(Duration::from_secs(187)), "3m07s");
        assert_eq!(short_duration(Duration::from_secs(7500)), "2h05m");
    }
}
