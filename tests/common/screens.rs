//! Committed screenshots and the renders they are checked against: the pixel comparison, where
//! each file lives, and `UPDATE_SCREENSHOTS=1` to rewrite them.
//!
//! Tolerance. The committed PNGs and CI are rendered the same way (egui's predictable wgpu
//! renderer on Mesa's software Vulkan, fixed window size, one pixel per point, egui's bundled
//! fonts), so a run normally reproduces every pixel exactly. What can still move is small: a photo
//! texture sampled by another driver or GPU differs by a level or two everywhere, and a face box
//! whose float coordinates come out a hair different on another CPU recolours a few pixels of its
//! edges. So a pixel counts as changed only when a channel differs by more than [`LEVELS`] (of
//! 255), and a screenshot is stale when more than [`MAX_CHANGED`] of its pixels changed: 0.1 % of a
//! 1280×800 window is 1024 pixels, about one short label or a button moved by a few points,
//! while a face box that moved by a pixel recolours a few hundred.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use image::RgbaImage;

/// A channel may differ by this much (of 255) without the pixel counting as changed.
pub const LEVELS: u8 = 8;
/// The largest fraction of changed pixels a render may have and still match.
pub const MAX_CHANGED: f64 = 0.001;

/// How a render differs from the committed screenshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// Pixels with a channel beyond the tolerance.
    pub changed: usize,
    pub total: usize,
    /// The largest difference of any channel, in levels.
    pub max_level: u8,
    /// The smallest rectangle holding every changed pixel: left, top, right, bottom (inclusive).
    pub bounds: Option<[u32; 4]>,
    /// The two sizes, when they differ (every pixel then counts as changed).
    pub sizes: Option<((u32, u32), (u32, u32))>,
}

impl Difference {
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        self.changed as f64 / self.total as f64
    }

    /// Whether the render matches: same size, and few enough changed pixels.
    pub fn matches(&self) -> bool {
        self.sizes.is_none() && self.fraction() <= MAX_CHANGED
    }

    pub fn describe(&self) -> String {
        if let Some(((ew, eh), (aw, ah))) = self.sizes {
            return format!("the size changed from {ew}×{eh} to {aw}×{ah}");
        }
        let mut text = format!(
            "{} of {} pixels ({:.3} %) differ by more than {LEVELS} levels (at most {:.1} % may), \
             largest difference {} levels",
            self.changed,
            self.total,
            self.fraction() * 100.0,
            MAX_CHANGED * 100.0,
            self.max_level
        );
        if let Some([l, t, r, b]) = self.bounds {
            text.push_str(&format!(", changes within x {l}..={r}, y {t}..={b}"));
        }
        text
    }
}

/// Compares `actual` with `expected` pixel by pixel (RGBA).
pub fn compare(expected: &RgbaImage, actual: &RgbaImage) -> Difference {
    if expected.dimensions() != actual.dimensions() {
        let total = (actual.width() * actual.height()) as usize;
        return Difference {
            changed: total,
            total,
            max_level: 255,
            bounds: None,
            sizes: Some((expected.dimensions(), actual.dimensions())),
        };
    }
    let mut diff = Difference {
        changed: 0,
        total: (actual.width() * actual.height()) as usize,
        max_level: 0,
        bounds: None,
        sizes: None,
    };
    for (x, y, a) in actual.enumerate_pixels() {
        let e = expected.get_pixel(x, y);
        let level =
            a.0.iter()
                .zip(e.0)
                .map(|(&a, e)| a.abs_diff(e))
                .max()
                .unwrap_or(0);
        diff.max_level = diff.max_level.max(level);
        if level > LEVELS {
            diff.changed += 1;
            diff.bounds = Some(match diff.bounds {
                None => [x, y, x, y],
                Some([l, t, r, b]) => [l.min(x), t.min(y), r.max(x), b.max(y)],
            });
        }
    }
    diff
}

/// The changed pixels in red over a faded copy of the render, for a developer to look at.
pub fn diff_image(expected: &RgbaImage, actual: &RgbaImage) -> RgbaImage {
    RgbaImage::from_fn(actual.width(), actual.height(), |x, y| {
        let a = actual.get_pixel(x, y);
        let changed = expected
            .get_pixel_checked(x, y)
            .is_none_or(|e| a.0.iter().zip(e.0).any(|(&a, e)| a.abs_diff(e) > LEVELS));
        if changed {
            image::Rgba([255, 0, 0, 255])
        } else {
            let grey = ((u32::from(a[0]) + u32::from(a[1]) + u32::from(a[2])) / 3 / 3 + 170) as u8;
            image::Rgba([grey, grey, grey, 255])
        }
    })
}

/// The folder of the committed screenshots (`screenshots/` in the repository).
pub fn committed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots")
}

/// Where a run leaves its renders (and the differences) for a developer to look at.
pub fn render_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
}

/// `UPDATE_SCREENSHOTS` is set to something other than empty or `0`.
pub fn updating() -> bool {
    std::env::var_os("UPDATE_SCREENSHOTS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// What [`check_in`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    /// The committed file was written (update mode).
    Updated,
    /// The render matches the committed file within the tolerance.
    Matches(Difference),
}

/// Checks `render` against `committed/name`, or (when `update`) writes it there. The render is
/// always written to `renders/name` as well; when it does not match, `renders/<stem>-diff.png`
/// shows where. The error names the file, says how much differs and how to update it.
pub fn check_in(
    committed: &Path,
    renders: &Path,
    name: &str,
    render: &RgbaImage,
    update: bool,
) -> Result<Checked, String> {
    std::fs::create_dir_all(renders).map_err(|e| format!("creating {}: {e}", renders.display()))?;
    let fresh = renders.join(name);
    render
        .save(&fresh)
        .map_err(|e| format!("writing {}: {e}", fresh.display()))?;
    let path = committed.join(name);
    if update {
        std::fs::create_dir_all(committed).map_err(|e| format!("creating {}: {e}", committed.display()))?;
        render
            .save(&path)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        return Ok(Checked::Updated);
    }
    if !path.exists() {
        return Err(format!(
            "the committed screenshot {} is missing; the render is at {}. Run the test with \
             UPDATE_SCREENSHOTS=1 to write it, look at it, and commit it",
            path.display(),
            fresh.display()
        ));
    }
    let expected = image::open(&path)
        .map_err(|e| format!("reading {}: {e}", path.display()))?
        .to_rgba8();
    let diff = compare(&expected, render);
    if diff.matches() {
        return Ok(Checked::Matches(diff));
    }
    let stem = name.trim_end_matches(".png");
    let marked = renders.join(format!("{stem}-diff.png"));
    let written = diff_image(&expected, render).save(&marked);
    let marked_text = match written {
        Ok(()) => format!(", the changes in red at {}", marked.display()),
        Err(e) => format!(" (writing {} failed: {e})", marked.display()),
    };
    Err(format!(
        "{} is stale: {}. The current UI renders {}{marked_text}. If the change is intended, run \
         the test with UPDATE_SCREENSHOTS=1, look at the new files and commit them",
        path.display(),
        diff.describe(),
        fresh.display()
    ))
}

/// Checks a render against the repository's committed screenshot; panics when stale or missing.
pub fn check(name: &str, render: &RgbaImage) {
    match check_in(&committed_dir(), &render_dir(), name, render, updating()) {
        Ok(Checked::Updated) => eprintln!("updated {}", committed_dir().join(name).display()),
        Ok(Checked::Matches(diff)) => eprintln!("{name} matches: {}", diff.describe()),
        Err(message) => panic!("{message}"),
    }
}
