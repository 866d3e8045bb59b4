//! What the jobs that turn a photo's current version into its next one share (makeup, restore,
//! swap): the pixels to start from, a step's error naming the photo, the label's face count.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use image::RgbImage;

use super::JobError;
use super::photos::photo_pixels;
use crate::pipeline::batch::StepError;

/// The photo's current edit, or its file decoded when it has none.
pub(super) fn current_pixels<'a>(
    edit: &'a Option<Arc<RgbImage>>,
    path: &Path,
) -> Result<Cow<'a, RgbImage>, JobError> {
    Ok(match edit {
        Some(edit) => Cow::Borrowed(edit.as_ref()),
        None => Cow::Owned(photo_pixels(path)?),
    })
}

/// An export step's error as the job's, the failure naming the photo's file.
pub(super) fn step_failed(path: &Path, e: StepError) -> JobError {
    match e {
        StepError::Cancelled => JobError::Cancelled,
        StepError::Failed(reason) => JobError::Failed(format!("{}: {reason}", path.display())),
    }
}
