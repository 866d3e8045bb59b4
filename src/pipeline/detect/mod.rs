//! Face detection: facenet-pytorch's MTCNN cascade, step for step.
//!
//! The cascade is plain code over host images and boxes; only the three networks run on the
//! compute device. Every quirk of the reference is kept on purpose (area resampling, the `+1`
//! conventions, `>=` for PNet but `>` afterwards, truncating crops instead of padding them),
//! because the detections must match the official code to a fraction of a pixel.

pub mod boxes;
pub mod photo;

use burn::tensor::Device;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use self::boxes::{Candidate, bbreg, crop_window, nms_iou, nms_min, regress_stage1, rerec};
use crate::face::resample::{Planes, resize_area};
use crate::nets::mtcnn::{MtcnnNets, pnet_bucket, pnet_grid};
use crate::nets::pnet_host::{self, PNetHost, PNetMaps};
use crate::nets::profile;

/// The cascade's settings (facenet-pytorch's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MtcnnParams {
    /// Smallest face side in pixels that the pyramid reaches.
    pub min_face_size: f64,
    /// Score thresholds of PNet (`>=`), RNet and ONet (`>`).
    pub thresholds: [f32; 3],
    /// Ratio between pyramid levels.
    pub factor: f64,
}

impl Default for MtcnnParams {
    fn default() -> Self {
        MtcnnParams {
            min_face_size: 20.0,
            thresholds: [0.6, 0.7, 0.7],
            factor: 0.709,
        }
    }
}

/// One detected face in input pixel coordinates (floats, not clipped to the image).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    /// x1, y1, x2, y2.
    pub bbox: [f32; 4],
    /// ONet's face probability.
    pub score: f32,
    /// Left eye, right eye, nose, left and right mouth corner (as seen in the image).
    pub landmarks: [[f32; 2]; 5],
}

impl Face {
    pub fn area(&self) -> f32 {
        (self.bbox[2] - self.bbox[0]) * (self.bbox[3] - self.bbox[1])
    }
}

/// Intermediate results, for parity checks and diagnostics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    pub scales: Vec<f64>,
    pub pyramid_hw: Vec<(usize, usize)>,
    /// Boxes handed to RNet: x1, y1, x2, y2, PNet score.
    pub stage1: Vec<[f32; 5]>,
    /// Boxes handed to ONet: x1, y1, x2, y2, RNet score.
    pub stage2: Vec<[f32; 5]>,
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("the compute device failed while running {net}: {reason}")]
    Device { net: &'static str, reason: String },
}

/// Pyramid scales: 12/min_face_size, then ×factor while the short side stays ≥ 12 px.
pub fn pyramid_scales(height: usize, width: usize, params: &MtcnnParams) -> Vec<f64> {
    let m = 12.0 / params.min_face_size;
    let mut minl = height.min(width) as f64 * m;
    let mut scales = Vec::new();
    let mut k = 0;
    while minl >= 12.0 {
        scales.push(m * params.factor.powf(k as f64));
        minl *= params.factor;
        k += 1;
    }
    scales
}

/// The size of a pyramid level: `int(h·s + 1)`, `int(w·s + 1)`.
pub fn level_size(height: usize, width: usize, scale: f64) -> (usize, usize) {
    (
        (height as f64 * scale + 1.0) as usize,
        (width as f64 * scale + 1.0) as usize,
    )
}

/// `(v − 127.5) / 128` on every value.
pub fn normalise(planes: &mut Planes) {
    for v in &mut planes.data {
        *v = (*v - 127.5) * 0.0078125;
    }
}

fn to_device(batch: &[Planes], device: &Device) -> Tensor<4> {
    let (c, h, w) = (batch[0].channels, batch[0].height, batch[0].width);
    let mut data = Vec::with_capacity(batch.len() * c * h * w);
    for p in batch {
        data.extend_from_slice(&p.data);
    }
    Tensor::from_data(TensorData::new(data, [batch.len(), c, h, w]), device)
}

fn read<const D: usize>(t: Tensor<D>, net: &'static str) -> Result<Vec<f32>, DetectError> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| DetectError::Device {
            net,
            reason: format!("{e:?}"),
        })
}

/// The first pyramid level as PNet sees it (area-resized and normalised), for parity checks.
pub fn pnet_input(image: &Planes, scale: f64) -> Planes {
    let (h, w) = level_size(image.height, image.width, scale);
    let mut level = resize_area(image, h, w);
    normalise(&mut level);
    level
}

/// Runs the whole cascade on an RGB image with values 0..255. Faces come largest first.
pub fn detect(
    nets: &MtcnnNets,
    image: &Planes,
    params: &MtcnnParams,
    device: &Device,
) -> Result<(Vec<Face>, Trace), DetectError> {
    let (height, width) = (image.height, image.width);
    let mut trace = Trace {
        scales: pyramid_scales(height, width, params),
        ..Trace::default()
    };

    // Stage 1: PNet over the pyramid, NMS per level then across levels. On a GPU runtime each
    // level runs padded to a shape bucket, so a photo's pyramid (and the next photo's) shares a few
    // compiled and tuned kernels; the CPU backend compiles nothing and runs the exact shapes.
    let bucketed = *device != Device::flex();
    // On the flex CPU backend PNet runs on host memory (`nets::pnet_host`); its weights are packed
    // once per photo.
    let host_pnet = if pnet_host::applies(device) {
        Some(PNetHost::new(&nets.pnet).map_err(|e| DetectError::Device {
            net: "PNet",
            reason: e.to_string(),
        })?)
    } else {
        None
    };
    let mut survivors: Vec<Candidate> = Vec::new();
    for &scale in &trace.scales.clone() {
        let level = profile::scope(
            "mtcnn",
            || "pyramid level resize".into(),
            || pnet_input(image, scale),
        );
        trace.pyramid_hw.push((level.height, level.width));
        let detail = || format!("PNet @{}x{}", level.height, level.width);
        let maps = profile::scope("mtcnn", detail, || match &host_pnet {
            Some(host) => host
                .forward(&level.data, [level.channels, level.height, level.width])
                .map_err(|e| DetectError::Device {
                    net: "PNet",
                    reason: e.to_string(),
                }),
            None => pnet_on_device(nets, &level, bucketed, device),
        })?;
        let s = scale as f32;
        let mut level_candidates = Vec::new();
        for y in 0..maps.height {
            for x in 0..maps.width {
                let score = maps.prob[y * maps.width + x];
                if score >= params.thresholds[0] {
                    let (xf, yf) = (x as f32, y as f32);
                    level_candidates.push(Candidate {
                        b: [
                            ((2.0 * xf + 1.0) / s).floor(),
                            ((2.0 * yf + 1.0) / s).floor(),
                            ((2.0 * xf + 12.0) / s).floor(),
                            ((2.0 * yf + 12.0) / s).floor(),
                        ],
                        score,
                        reg: maps.offsets(y, x),
                    });
                }
            }
        }
        survivors.extend(
            nms_iou(&level_candidates, 0.5)
                .into_iter()
                .map(|i| level_candidates[i]),
        );
    }
    let stage1: Vec<[f32; 5]> = nms_iou(&survivors, 0.7)
        .into_iter()
        .map(|i| {
            let b = rerec(regress_stage1(&survivors[i]));
            [b[0], b[1], b[2], b[3], survivors[i].score]
        })
        .collect();
    trace.stage1 = stage1.clone();

    // Stage 2: RNet on 24×24 crops.
    let (kept, crops) = profile::scope("mtcnn", || "RNet crops".into(), || crops_of(image, &stage1, 24));
    let mut refined: Vec<Candidate> = Vec::new();
    if !crops.is_empty() {
        let [reg, prob] = run_in_chunks(
            &crops,
            device,
            |x| {
                let out = nets.rnet.forward(x);
                [out.reg, out.prob]
            },
            "RNet",
        )?;
        for (n, &i) in kept.iter().enumerate() {
            let score = prob[n * 2 + 1];
            if score > params.thresholds[1] {
                let b = stage1[i];
                refined.push(Candidate {
                    b: [b[0], b[1], b[2], b[3]],
                    score,
                    reg: std::array::from_fn(|k| reg[n * 4 + k]),
                });
            }
        }
    }
    let stage2: Vec<[f32; 5]> = nms_iou(&refined, 0.7)
        .into_iter()
        .map(|i| {
            let c = &refined[i];
            let b = rerec(bbreg(c.b, c.reg));
            [b[0], b[1], b[2], b[3], c.score]
        })
        .collect();
    trace.stage2 = stage2.clone();

    // Stage 3: ONet on 48×48 crops, landmarks decoded from the box before its regression.
    let (kept, crops) = profile::scope("mtcnn", || "ONet crops".into(), || crops_of(image, &stage2, 48));
    let mut finals: Vec<(Candidate, [[f32; 2]; 5])> = Vec::new();
    if !crops.is_empty() {
        let [reg, prob, lm] = run_in_chunks(
            &crops,
            device,
            |x| {
                let out = nets.onet.forward(x);
                [out.reg, out.prob, out.landmarks]
            },
            "ONet",
        )?;
        for (n, &i) in kept.iter().enumerate() {
            let score = prob[n * 2 + 1];
            if score > params.thresholds[2] {
                let b = stage2[i];
                let w = b[2] - b[0] + 1.0;
                let h = b[3] - b[1] + 1.0;
                let l = &lm[n * 10..n * 10 + 10];
                let points = std::array::from_fn(|k| [w * l[k] + b[0] - 1.0, h * l[5 + k] + b[1] - 1.0]);
                let regressed = bbreg([b[0], b[1], b[2], b[3]], std::array::from_fn(|k| reg[n * 4 + k]));
                finals.push((
                    Candidate {
                        b: regressed,
                        score,
                        reg: [0.0; 4],
                    },
                    points,
                ));
            }
        }
    }
    let candidates: Vec<Candidate> = finals.iter().map(|f| f.0).collect();
    let mut faces: Vec<Face> = nms_min(&candidates, 0.7)
        .into_iter()
        .map(|i| Face {
            bbox: finals[i].0.b,
            score: finals[i].0.score,
            landmarks: finals[i].1,
        })
        .collect();
    faces.sort_by(|a, b| b.area().total_cmp(&a.area()));
    Ok((faces, trace))
}

/// PNet through burn on one level (padded to its shape bucket on a GPU runtime), read back into
/// the host path's layout.
fn pnet_on_device(
    nets: &MtcnnNets,
    level: &Planes,
    bucketed: bool,
    device: &Device,
) -> Result<PNetMaps, DetectError> {
    let valid = [level.height, level.width];
    let padded;
    let input = if bucketed {
        padded = level.padded_to(pnet_bucket(level.height), pnet_bucket(level.width));
        &padded
    } else {
        level
    };
    let out = nets
        .pnet
        .forward_padded(to_device(std::slice::from_ref(input), device), valid);
    // The padded grid is (rows, stride); only its top-left (gh, gw) belongs to the level.
    let [_, _, rows, stride] = out.prob.dims();
    let (gh, gw) = pnet_grid(valid[0], valid[1]);
    let prob = read(out.prob, "PNet")?;
    let reg = read(out.reg, "PNet")?;
    let plane = rows * stride;
    let mut maps = PNetMaps {
        height: gh,
        width: gw,
        prob: Vec::with_capacity(gh * gw),
        reg: Vec::with_capacity(gh * 4 * gw),
    };
    for y in 0..gh {
        maps.prob
            .extend_from_slice(&prob[plane + y * stride..plane + y * stride + gw]);
        for k in 0..4 {
            let at = k * plane + y * stride;
            maps.reg.extend_from_slice(&reg[at..at + gw]);
        }
    }
    Ok(maps)
}

/// Area-resized, normalised crops of the boxes that touch the image, and which boxes they are.
fn crops_of(image: &Planes, boxes: &[[f32; 5]], size: usize) -> (Vec<usize>, Vec<Planes>) {
    // A large photo hands thousands of boxes to RNet: each crop is resampled on its own thread.
    let crops: Vec<Option<Planes>> = boxes
        .par_iter()
        .map(|b| {
            crop_window([b[0], b[1], b[2], b[3]], image.width, image.height).map(|(y0, y1, x0, x1)| {
                let mut crop = resize_area(&image.crop(y0, y1, x0, x1), size, size);
                normalise(&mut crop);
                crop
            })
        })
        .collect();
    crops
        .into_iter()
        .enumerate()
        .filter_map(|(i, crop)| crop.map(|c| (i, c)))
        .unzip()
}

/// Runs a crop network over batches of at most 512 crops; returns each output's rows, in order.
/// On a GPU runtime a batch is padded with blank crops to a power of two (at least 16), so the
/// varying number of candidates of each photo reuses a few compiled and tuned kernels; the
/// padding's rows are dropped.
fn run_in_chunks<const K: usize>(
    crops: &[Planes],
    device: &Device,
    mut net: impl FnMut(Tensor<4>) -> [Tensor<2>; K],
    name: &'static str,
) -> Result<[Vec<f32>; K], DetectError> {
    let bucketed = *device != Device::flex();
    let mut outputs: [Vec<f32>; K] = std::array::from_fn(|_| Vec::new());
    for chunk in crops.chunks(512) {
        let rows = chunk.len();
        let batch = if bucketed {
            let blank = Planes {
                channels: chunk[0].channels,
                height: chunk[0].height,
                width: chunk[0].width,
                data: vec![0.0; chunk[0].data.len()],
            };
            let mut padded = chunk.to_vec();
            padded.resize(rows.next_power_of_two().max(16), blank);
            to_device(&padded, device)
        } else {
            to_device(chunk, device)
        };
        let tensors = profile::scope("mtcnn", || format!("{name} batch of {rows}"), || net(batch));
        for (out, tensor) in outputs.iter_mut().zip(tensors) {
            let columns = tensor.dims()[1];
            let values = read(tensor, name)?;
            out.extend_from_slice(&values[..rows * columns]);
        }
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_512_image_has_ten_levels() {
        let scales = pyramid_scales(512, 512, &MtcnnParams::default());
        assert_eq!(scales.len(), 10);
        assert_eq!(scales[0], 0.6);
        assert_eq!(level_size(512, 512, scales[0]), (308, 308));
    }
}
