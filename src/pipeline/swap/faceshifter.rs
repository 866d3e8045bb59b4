//! The FaceShifter engine's tensor side: aligned crops in and out of the networks, the identity
//! embedding, and one AEI-Net pass.

use burn::tensor::{Device, Tensor, TensorData};
use image::{Rgb, RgbImage};

use super::{CROP_SIZE, SwapError};
use crate::nets::arcface::ArcFace;
use crate::nets::faceshifter::{AeiNet, CHANNEL_ORDER, ChannelOrder, arcface_input};

/// The photo's R, G, B channels in the order the networks read them.
fn network_channels() -> [usize; 3] {
    match CHANNEL_ORDER {
        ChannelOrder::Bgr => [2, 1, 0],
        ChannelOrder::Rgb => [0, 1, 2],
    }
}

/// Aligned 256 crops as an (N, 3, 256, 256) batch in the networks' channel order, `x/127.5 − 1`
/// (the reference's `(x/255 − 0.5)/0.5`).
pub fn crops_to_tensor(crops: &[RgbImage], device: &Device) -> Tensor<4> {
    let side = CROP_SIZE as usize;
    let mut data = Vec::with_capacity(crops.len() * 3 * side * side);
    for crop in crops {
        for c in network_channels() {
            data.extend(crop.pixels().map(|p| p.0[c] as f32 / 127.5 - 1.0));
        }
    }
    Tensor::from_data(TensorData::new(data, [crops.len(), 3, side, side]), device)
}

fn read<const D: usize>(t: Tensor<D>, net: &'static str) -> Result<Vec<f32>, SwapError> {
    t.into_data().try_to_vec::<f32>().map_err(|e| SwapError::Device {
        net,
        reason: format!("{e:?}"),
    })
}

/// AEI-Net's output (N, 3, 256, 256) in (−1, 1) back to RGB crops: `y·0.5 + 0.5`, clamped.
pub fn tensor_to_crops(y: Tensor<4>) -> Result<Vec<RgbImage>, SwapError> {
    let [n, c, h, w] = y.dims();
    let values = read(y, "AEI-Net")?;
    let plane = h * w;
    let order = network_channels();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let base = i * c * plane;
        let crop = RgbImage::from_fn(w as u32, h as u32, |x, yy| {
            let p = yy as usize * w + x as usize;
            // Network channel k holds photo channel order[k].
            let mut rgb = [0u8; 3];
            for (k, &photo_channel) in order.iter().enumerate() {
                let v = values[base + k * plane + p] * 0.5 + 0.5;
                rgb[photo_channel] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
            Rgb(rgb)
        });
        out.push(crop);
    }
    Ok(out)
}

/// The virtual model's identity: ArcFace on each aligned crop (its centre window resized to 112),
/// averaged and scaled back to unit length.
///
/// The reference's multi-photo preview averages without renormalising; AAD injects the identity
/// through linear layers, so a shorter average would weaken it in proportion to how much the photos
/// disagree. The generator was trained on unit vectors, which the renormalised mean is.
pub fn identity_embedding(
    arcface: &ArcFace,
    crops: &[RgbImage],
    device: &Device,
) -> Result<Vec<f32>, SwapError> {
    if crops.is_empty() {
        return Err(SwapError::EmptyIdentity("(no name)".into()));
    }
    if arcface.input_size() != crate::nets::faceshifter::ARCFACE_INPUT {
        return Err(SwapError::Network(format!(
            "this ArcFace reads {0}×{0} faces; the swap feeds it {1}×{1}",
            arcface.input_size(),
            crate::nets::faceshifter::ARCFACE_INPUT
        )));
    }
    let input =
        arcface_input(crops_to_tensor(crops, device)).map_err(|e| SwapError::Network(e.to_string()))?;
    let embeddings = arcface.forward(input);
    let [n, d] = embeddings.dims();
    let values = read(embeddings, "ArcFace")?;
    let mut mean = vec![0.0f32; d];
    for row in values.chunks(d).take(n) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v / n as f32;
        }
    }
    let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return Err(SwapError::Network(
            "ArcFace gave no usable identity (the embeddings cancel out or are not finite)".into(),
        ));
    }
    Ok(mean.into_iter().map(|v| v / norm).collect())
}

/// One swap: the target's aligned crop with the identity `z` (unit length, AEI-Net's `c_id`).
pub fn generate(aei: &AeiNet, target: &RgbImage, z: &[f32], device: &Device) -> Result<RgbImage, SwapError> {
    let xt = crops_to_tensor(std::slice::from_ref(target), device);
    let z = Tensor::<2>::from_data(TensorData::new(z.to_vec(), [1, z.len()]), device);
    let out = aei
        .forward(xt, z)
        .map_err(|e| SwapError::Network(e.to_string()))?;
    tensor_to_crops(out.y)?
        .pop()
        .ok_or_else(|| SwapError::Network("AEI-Net returned no image".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_go_in_as_bgr_in_minus_one_to_one_and_come_back() {
        let device = Device::flex();
        let crop = RgbImage::from_fn(CROP_SIZE, CROP_SIZE, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, 255])
        });
        let t = crops_to_tensor(std::slice::from_ref(&crop), &device);
        let v = t.clone().into_data().try_to_vec::<f32>().unwrap();
        let plane = (CROP_SIZE * CROP_SIZE) as usize;
        // Pixel (10, 0): R = 10, G = 0, B = 255 → network channel 0 is blue.
        assert_eq!(v[10], 1.0);
        assert_eq!(v[plane + 10], -1.0);
        assert!((v[2 * plane + 10] - (10.0 / 127.5 - 1.0)).abs() < 1e-6);
        let back = tensor_to_crops(t).unwrap().pop().unwrap();
        assert_eq!(back, crop);
    }
}
