//! MTCNN parity: the three networks on random crops, and the whole cascade on real photos.

use std::path::Path;

use burn::tensor::Device;

use super::{CaseResult, Fixture, ParityError, Tolerance};
use crate::face::resample::Planes;
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::detect::{self, MtcnnParams};

/// Reads `pnet.pt`, `rnet.pt` and `onet.pt` from the fixture folder, as the app reads them.
pub fn load_nets(dir: &Path, device: &Device) -> Result<MtcnnNets, ParityError> {
    Ok(crate::weights::models::load_mtcnn(dir, device)?)
}

fn params(fx: &Fixture) -> MtcnnParams {
    let c = fx.config();
    let mut p = MtcnnParams::default();
    if let Some(v) = c["min_face_size"].as_f64() {
        p.min_face_size = v;
    }
    if let Some(v) = c["factor"].as_f64() {
        p.factor = v;
    }
    if let Some(t) = c["thresholds"].as_array() {
        for (slot, v) in p.thresholds.iter_mut().zip(t) {
            *slot = v.as_f64().unwrap_or(*slot as f64) as f32;
        }
    }
    p
}

pub fn run(fx: &Fixture, device: &Device) -> Result<Vec<CaseResult>, ParityError> {
    let nets = load_nets(&fx.dir, device)?;
    let mut results = Vec::new();

    let out = nets.pnet.forward(fx.tensor::<4>("pnet.input", device)?);
    results.push(fx.compare("pnet.reg", out.reg));
    results.push(fx.compare("pnet.prob", out.prob));
    results.push(fx.compare("pnet.inter.prelu3", out.features));

    let out = nets.rnet.forward(fx.tensor::<4>("rnet.input", device)?);
    results.push(fx.compare("rnet.reg", out.reg));
    results.push(fx.compare("rnet.prob", out.prob));
    results.push(fx.compare("rnet.inter.flatten", out.flat));

    let out = nets.onet.forward(fx.tensor::<4>("onet.input", device)?);
    results.push(fx.compare("onet.reg", out.reg));
    results.push(fx.compare("onet.landmarks", out.landmarks));
    results.push(fx.compare("onet.prob", out.prob));
    results.push(fx.compare("onet.inter.flatten", out.flat));

    let params = params(fx);
    let photos: Vec<(String, String)> = match fx.meta["photos"].as_object() {
        Some(map) => map
            .iter()
            .map(|(name, info)| (name.clone(), photo_input(name, info)))
            .collect(),
        None => Vec::new(),
    };
    for (name, file) in photos {
        results.extend(detect_case(fx, &nets, &params, &name, &file, device)?);
    }
    Ok(results)
}

/// The file the cascade reads for a photo of `meta.json`: the reference decoder's pixels when the
/// fixture saved them (`decoded_png`), else the photo itself. JPEG decoders differ by a level or
/// two, which alone moves stage-1 candidates and final boxes.
fn photo_input(name: &str, info: &serde_json::Value) -> String {
    info["decoded_png"]
        .as_str()
        .or_else(|| info["file"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("{name}.png"))
}

fn detect_case(
    fx: &Fixture,
    nets: &MtcnnNets,
    params: &MtcnnParams,
    name: &str,
    file: &str,
    device: &Device,
) -> Result<Vec<CaseResult>, ParityError> {
    let path = fx.path(file);
    // facenet-pytorch is handed the PIL image as stored: grey replicated to RGB, no EXIF rotation.
    let img = image::open(&path).map_err(|e| ParityError::Read {
        path: path.clone(),
        cause: e.to_string(),
    })?;
    let planes = Planes::from_rgb(&img.to_rgb8());
    let key = |what: &str| format!("detect.{name}.{what}");
    let mut results = Vec::new();

    let input_key = key("pnet_input_scale0");
    if fx.io.get(&input_key).is_some() {
        let scales = detect::pyramid_scales(planes.height, planes.width, params);
        if let Some(&s0) = scales.first() {
            let level = detect::pnet_input(&planes, s0);
            let shape = [1, 3, level.height, level.width];
            results.push(fx.compare_values(&input_key, &level.data, &shape, fx.tolerance));
        }
    }

    let (faces, trace) = detect::detect(nets, &planes, params, device)
        .map_err(|e| ParityError::Network(format!("{}: {e}", path.display())))?;
    let exact = Tolerance { abs: 1e-6, rel: 1e-6 };
    let scales: Vec<f32> = trace.scales.iter().map(|&s| s as f32).collect();
    results.push(fx.compare_values(&key("scales"), &scales, &[scales.len()], exact));
    let hw: Vec<f32> = trace
        .pyramid_hw
        .iter()
        .flat_map(|&(h, w)| [h as f32, w as f32])
        .collect();
    results.push(fx.compare_values(
        &key("pyramid_hw"),
        &hw,
        &[trace.pyramid_hw.len(), 2],
        Tolerance { abs: 0.0, rel: 0.0 },
    ));
    results.push(compare_rows(fx, &key("stage1_boxes"), &trace.stage1, 1.0, 1e-3));
    results.push(compare_rows(fx, &key("stage2_boxes"), &trace.stage2, 1.0, 1e-3));

    let boxes: Vec<[f32; 5]> = faces
        .iter()
        .map(|f| [f.bbox[0], f.bbox[1], f.bbox[2], f.bbox[3], f.score])
        .collect();
    let probs: Vec<f32> = faces.iter().map(|f| f.score).collect();
    let landmarks: Vec<f32> = faces
        .iter()
        .flat_map(|f| f.landmarks.iter().flat_map(|p| [p[0], p[1]]))
        .collect();
    let flat_boxes: Vec<f32> = boxes.iter().flat_map(|b| [b[0], b[1], b[2], b[3]]).collect();
    let px = Tolerance { abs: 1.0, rel: 0.0 };
    results.push(fx.compare_values(&key("boxes"), &flat_boxes, &[faces.len(), 4], px));
    results.push(fx.compare_values(
        &key("probs"),
        &probs,
        &[faces.len()],
        Tolerance { abs: 1e-3, rel: 0.0 },
    ));
    results.push(fx.compare_values(&key("landmarks"), &landmarks, &[faces.len(), 5, 2], px));
    Ok(results)
}

/// Box lists must have the same length; coordinates within `px`, scores within `score_tol`.
fn compare_rows(fx: &Fixture, name: &str, got: &[[f32; 5]], px: f64, score_tol: f64) -> CaseResult {
    let reference = match fx.raw(name) {
        Ok(r) => r,
        Err(e) => return CaseResult::fail(name, e.to_string()),
    };
    let want = reference.to_f32();
    if reference.shape.first().copied() != Some(got.len()) || want.len() != got.len() * 5 {
        return CaseResult::fail(
            name,
            format!("{} boxes, reference {:?}", got.len(), reference.shape),
        );
    }
    let mut bad = 0;
    for (g, w) in got.iter().zip(want.chunks_exact(5)) {
        for k in 0..5 {
            let d = (g[k] as f64 - w[k] as f64).abs();
            // NaN compares false with any tolerance, so it is counted outright.
            if d.is_nan() || d > if k < 4 { px } else { score_tol } {
                bad += 1;
            }
        }
    }
    let flat: Vec<f32> = got.iter().flatten().copied().collect();
    CaseResult {
        name: name.to_string(),
        passed: bad == 0,
        max_abs_err: super::max_abs_diff(&flat, &want) as f64,
        note: (bad > 0).then(|| format!("{bad} values outside {px} px / {score_tol} score")),
    }
}

#[cfg(test)]
mod tests {
    use super::photo_input;

    #[test]
    fn a_decoded_png_is_the_input_in_place_of_the_photo() {
        let info = serde_json::json!({"file": "a.jpg", "decoded_png": "a.decoded.png"});
        assert_eq!(photo_input("a", &info), "a.decoded.png");
        assert_eq!(photo_input("a", &serde_json::json!({"file": "a.jpg"})), "a.jpg");
        assert_eq!(photo_input("a", &serde_json::json!({})), "a.png");
    }
}
