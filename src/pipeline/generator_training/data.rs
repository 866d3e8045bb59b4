//! The user's photos as a StyleGAN2 training set: the largest face of each photo (MTCNN's five
//! landmarks) cut out with the FFHQ alignment at the generator's resolution, in [−1, 1].
//!
//! Mirroring: `train.py`'s dataset flips each image horizontally at random (p = 0.5) every time
//! it is loaded. Here the set holds every face twice, as photographed and mirrored, and batches
//! draw uniformly from both halves: the same distribution, but the draws come from the run's own
//! seeded stream, so a resumed run draws exactly what the uninterrupted one would have.
//!
//! A photo without a face is listed in [`TrainingSet::skipped`] and left out; too few faces left
//! is an error. Each photo's sha256 goes into the trained generator's lineage.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;

use super::TrainError;
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::virtual_face::{VirtualFaceError, find_faces, portrait};

/// Fewer faces than this cannot fine-tune anything sensible (the issue asks for 30–100).
pub const MIN_PHOTOS: usize = 4;

const EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "webp", "tif", "tiff", "bmp"];

/// One photo's aligned face.
#[derive(Debug, Clone)]
pub struct TrainingPhoto {
    pub path: PathBuf,
    pub sha256: String,
    /// `size`×`size`, FFHQ-aligned.
    pub face: RgbImage,
}

/// The aligned faces of a folder of photos.
#[derive(Debug, Clone)]
pub struct TrainingSet {
    pub size: u32,
    pub photos: Vec<TrainingPhoto>,
    /// Photos left out, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// The image files of `dir` (not hidden, not recursive), sorted by name so runs are repeatable.
pub fn list_photos(dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| TrainError::Input(format!("{}: cannot list the photos: {e}", dir.display())))?;
    let mut photos = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| TrainError::Input(format!("{}: {e}", dir.display())))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        let image_ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .is_some_and(|e| EXTENSIONS.contains(&e.as_str()));
        if path.is_file() && image_ext && !name.starts_with('.') {
            photos.push(path);
        }
    }
    photos.sort();
    Ok(photos)
}

impl TrainingSet {
    /// Aligns the largest face of every photo in `dir` at `size` px. `progress` hears each photo.
    pub fn from_folder(
        dir: &Path,
        size: u32,
        nets: &MtcnnNets,
        device: &Device,
        progress: &mut dyn FnMut(&Path),
    ) -> Result<TrainingSet, TrainError> {
        let mut set = TrainingSet {
            size,
            photos: Vec::new(),
            skipped: Vec::new(),
        };
        for path in list_photos(dir)? {
            progress(&path);
            match find_faces(&path, nets, device) {
                Ok(found) => {
                    // `find_faces` sorts the faces largest first.
                    let Some(face) = found.faces.first() else {
                        set.skipped.push((path, "no face found".into()));
                        continue;
                    };
                    set.photos.push(TrainingPhoto {
                        face: portrait(&found.image, &face.landmarks, size),
                        sha256: found.sha256,
                        path,
                    });
                }
                Err(e @ (VirtualFaceError::NoFace { .. } | VirtualFaceError::Photo(_))) => {
                    set.skipped.push((path, e.to_string()));
                }
                Err(e) => return Err(TrainError::Input(e.to_string())),
            }
        }
        if set.photos.len() < MIN_PHOTOS {
            return Err(TrainError::Input(format!(
                "{}: {} photo(s) with a face, {MIN_PHOTOS} at least are needed ({} skipped: {})",
                dir.display(),
                set.photos.len(),
                set.skipped.len(),
                set.skipped
                    .iter()
                    .map(|(p, why)| format!("{}: {why}", p.display()))
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        Ok(set)
    }

    /// How many images a batch draws from: every face and its mirror image.
    pub fn len(&self) -> usize {
        2 * self.photos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.photos.is_empty()
    }

    /// Images `indices` (below [`len`](Self::len); the upper half are the mirrored faces) as a
    /// `[B, 3, size, size]` batch in [−1, 1] (`ToTensor` then `Normalize(0.5, 0.5)`).
    pub fn batch(&self, indices: &[usize], device: &Device) -> Result<Tensor<4>, TrainError> {
        let s = self.size as usize;
        let mut data = Vec::with_capacity(indices.len() * 3 * s * s);
        for &i in indices {
            let n = self.photos.len();
            let photo = self
                .photos
                .get(i % n.max(1))
                .filter(|_| i < 2 * n)
                .ok_or_else(|| TrainError::Input(format!("training image {i} of {}", 2 * n)))?;
            let mirrored = i >= n;
            for c in 0..3 {
                for y in 0..s {
                    for x in 0..s {
                        let sx = if mirrored { s - 1 - x } else { x };
                        let v = photo.face.get_pixel(sx as u32, y as u32)[c];
                        data.push(v as f32 / 127.5 - 1.0);
                    }
                }
            }
        }
        Ok(Tensor::from_data(
            TensorData::new(data, [indices.len(), 3, s, s]),
            device,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_each_face_and_its_mirror_in_minus_one_to_one() {
        let mut face = RgbImage::new(2, 2);
        face.put_pixel(0, 0, image::Rgb([255, 0, 0]));
        let set = TrainingSet {
            size: 2,
            photos: vec![TrainingPhoto {
                path: "a.png".into(),
                sha256: String::new(),
                face,
            }],
            skipped: Vec::new(),
        };
        let b = set.batch(&[0, 1], &Device::flex()).expect("in range");
        let v = b.into_data().try_into_vec_as::<f32>().expect("f32");
        // Red plane of image 0: (0,0) white-ish red, then black; image 1 mirrored: (1,0) red.
        assert_eq!(&v[0..4], &[1.0, -1.0, -1.0, -1.0]);
        assert_eq!(&v[12..16], &[-1.0, 1.0, -1.0, -1.0]);
        assert!(set.batch(&[2], &Device::flex()).is_err());
    }
}
