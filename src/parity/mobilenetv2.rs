//! MobileNetV2 parity: the network on a real photo and on noise, its intermediate stages, and
//! the ImageNet pre-processing on a raw crop.

use burn::tensor::Device;
use burn::tensor::activation::softmax;
use image::RgbImage;

use super::{CaseResult, Fixture, ParityError, Tolerance};
use crate::nets::mobilenetv2::preprocess::Preset;
use crate::nets::mobilenetv2::{MobileNetV2, MobileNetV2Config};
use crate::weights::read_checkpoint;

pub fn run(fx: &Fixture, device: &Device) -> Result<Vec<CaseResult>, ParityError> {
    let config = MobileNetV2Config::from_json(fx.config()).map_err(|e| ParityError::Meta {
        dir: fx.dir.clone(),
        field: format!("config ({e})"),
    })?;
    let path = fx.path("weights.pth");
    let tensors = read_checkpoint(&path)?.flatten_tensors();
    let net = MobileNetV2::from_state_dict(&config, &tensors, &path, device)?;

    let taps: Vec<(usize, String)> = fx
        .names_with_prefix("inter.features.")
        .into_iter()
        .filter_map(|name| name["inter.features.".len()..].parse().ok().map(|k| (k, name)))
        .collect();
    let mut tapped = Vec::new();
    let features = net.features_tapped(fx.tensor::<4>("input", device)?, |i, t| {
        if let Some((_, name)) = taps.iter().find(|(k, _)| *k == i) {
            tapped.push((name.clone(), t.clone()));
        }
    });
    let (pooled, logits) = net.head(features.clone());

    let mut results = Vec::new();
    for (name, t) in tapped {
        results.push(fx.compare(&name, t));
    }
    for (_, name) in &taps {
        if !results.iter().any(|r| &r.name == name) {
            results.push(CaseResult::fail(
                name,
                format!("features has {} elements", net.features.len()),
            ));
        }
    }
    results.push(fx.compare("features", features));
    results.push(fx.compare("pooled", pooled));
    results.push(fx.compare("logits", logits.clone()));
    results.push(fx.compare("probs", softmax(logits, 1)));
    if fx.io.get("pre.raw_hwc").is_some() {
        results.push(preprocess_case(fx)?);
    }
    Ok(results)
}

/// `pre.raw_hwc` (H, W, 3 pixel values) through the IMAGENET1K_V2 preset against PIL's result.
fn preprocess_case(fx: &Fixture) -> Result<CaseResult, ParityError> {
    let raw = fx.raw("pre.raw_hwc")?;
    let (h, w) = match raw.shape[..] {
        [h, w, 3] => (h, w),
        _ => {
            return Ok(CaseResult::fail(
                "pre.output",
                format!("pre.raw_hwc has shape {:?}", raw.shape),
            ));
        }
    };
    let bytes: Vec<u8> = raw
        .to_f32()
        .iter()
        .map(|&v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    let Some(img) = RgbImage::from_raw(w as u32, h as u32, bytes) else {
        return Ok(CaseResult::fail(
            "pre.output",
            "pre.raw_hwc does not hold H*W*3 values",
        ));
    };
    let planes = Preset::IMAGENET1K_V2.apply(&img);
    let abs = fx.meta["tolerance"]["preprocess"]["abs"].as_f64().unwrap_or(0.05);
    let shape = [1, 3, planes.height, planes.width];
    Ok(fx.compare_values("pre.output", &planes.data, &shape, Tolerance { abs, rel: 0.0 }))
}
