//! FFHQ alignment: NVIDIA's crop rule for the FFHQ data set (`recreate_aligned_images` in
//! NVlabs/ffhq-dataset), which StyleGAN2 FFHQ faces come out in.
//!
//! The rule uses the eye centres and the mouth corners only:
//! `e = (eye_l + eye_r)/2`, `ee = eye_r − eye_l`, `m = (mouth_l + mouth_r)/2`, `em = m − e`;
//! `x = ee − rot90(em)` normalised, times `max(2·|ee|, 1.8·|em|)`; `y = rot90(x)`;
//! centre `c = e + 0.1·em`; the crop is the square `c ± x ± y`, resampled to S×S. It is a
//! similarity, so this module computes it as one ([`ffhq_alignment`]).
//!
//! A generated image has no landmarks of its own, but its face sits where the rule puts faces.
//! [`ffhq_template`] is that place for five points: the rule applied to the mean five-point face
//! (ArcFace's reference points, the semantics MTCNN's landmarks have), mapped through the very
//! transform the rule gives for it. It is a fixed point of the rule: aligning the template again
//! gives the identity.

use super::align::{ARCFACE_112, Point, Similarity};

/// The transform taking a photo with these five landmarks (left eye, right eye, nose, left and
/// right mouth corner) to its `size`×`size` FFHQ-aligned crop, pixel centres at integers.
pub fn ffhq_alignment(landmarks: &[Point; 5], size: u32) -> Similarity {
    let p = |i: usize| (landmarks[i][0] as f64, landmarks[i][1] as f64);
    let (el, er, ml, mr) = (p(0), p(1), p(3), p(4));
    let eye = ((el.0 + er.0) / 2.0, (el.1 + er.1) / 2.0);
    let eye_to_eye = (er.0 - el.0, er.1 - el.1);
    let mouth = ((ml.0 + mr.0) / 2.0, (ml.1 + mr.1) / 2.0);
    let eye_to_mouth = (mouth.0 - eye.0, mouth.1 - eye.1);
    // x = eye_to_eye − flipud(eye_to_mouth)·[−1, 1], i.e. minus eye_to_mouth turned a quarter
    // clockwise on screen (y down): (ex, ey) ↦ (−ey, ex).
    let x = (eye_to_eye.0 + eye_to_mouth.1, eye_to_eye.1 - eye_to_mouth.0);
    let len = x.0.hypot(x.1).max(f64::MIN_POSITIVE);
    let half = (eye_to_eye.0.hypot(eye_to_eye.1) * 2.0).max(eye_to_mouth.0.hypot(eye_to_mouth.1) * 1.8);
    let centre = (eye.0 + 0.1 * eye_to_mouth.0, eye.1 + 0.1 * eye_to_mouth.1);
    // The quad is 2·half on a side; its x axis becomes the crop's x axis.
    let scale = size as f64 / (2.0 * half);
    let (cos, sin) = (x.0 / len, x.1 / len);
    // Rotation by −angle(x), then scale: a = s·cos, b = −s·sin.
    let (a, b) = (scale * cos, -scale * sin);
    // The quad's outer corners are pixel edges (PIL's QUAD transform after `quad + 0.5`), so the
    // centre lands on (S/2 − 0.5, S/2 − 0.5) in pixel-centre coordinates.
    let mid = size as f64 / 2.0 - 0.5;
    Similarity {
        a,
        b,
        tx: mid - (a * centre.0 - b * centre.1),
        ty: mid - (b * centre.0 + a * centre.1),
    }
}

/// Where the five landmarks of a face are in a `size`×`size` FFHQ-aligned image (StyleGAN2 FFHQ
/// output at `size` = its resolution).
pub fn ffhq_template(size: u32) -> [Point; 5] {
    let to_crop = ffhq_alignment(&ARCFACE_112, size);
    ARCFACE_112.map(|p| to_crop.apply(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Point, b: Point, tol: f32) -> bool {
        (a[0] - b[0]).abs() < tol && (a[1] - b[1]).abs() < tol
    }

    #[test]
    fn the_template_is_a_fixed_point_of_the_rule() {
        for size in [64, 256, 1024] {
            let t = ffhq_template(size);
            let again = ffhq_alignment(&t, size);
            for p in t {
                assert!(close(again.apply(p), p, 1e-3 * size as f32), "{size}: {p:?}");
            }
        }
    }

    #[test]
    fn the_rule_follows_the_face_through_any_similarity() {
        // Moving, turning and scaling the photo must not change the crop: A(T·p)∘T = A(p).
        let face = ARCFACE_112.map(|p| [p[0] * 3.0 + 40.0, p[1] * 3.0 + 10.0]);
        let base = ffhq_alignment(&face, 1024);
        let t = Similarity::from_scale_rotation_translation(1.7, 0.4, -30.0, 55.0);
        let moved = face.map(|p| t.apply(p));
        let combined = ffhq_alignment(&moved, 1024).compose(&t);
        for p in [[0.0, 0.0], [100.0, 50.0], [300.0, 400.0]] {
            assert!(close(combined.apply(p), base.apply(p), 1e-2), "{p:?}");
        }
    }

    #[test]
    fn a_generated_face_is_upright_centred_and_eye_level_above_the_middle() {
        let t = ffhq_template(1024);
        let (le, re, nose, lm, rm) = (t[0], t[1], t[2], t[3], t[4]);
        // Symmetric about the vertical centre line, eyes level.
        let centre_x = (le[0] + re[0]) / 2.0;
        assert!((centre_x - 511.5).abs() < 6.0, "{t:?}");
        assert!((le[1] - re[1]).abs() < 2.0);
        // Eyes a quarter of the width apart or a little less, above the middle; the mouth below.
        let eyes = re[0] - le[0];
        assert!((220.0..=260.0).contains(&eyes), "eye distance {eyes}");
        assert!(le[1] < 511.5 && lm[1] > 700.0 && rm[1] > 700.0, "{t:?}");
        assert!(le[1] < nose[1] && nose[1] < lm[1]);
        assert!(lm[0] < nose[0] && nose[0] < rm[0]);
        // Scaling the output scales the template.
        let small = ffhq_template(256);
        for (a, b) in small.iter().zip(&t) {
            assert!(close(
                [(a[0] + 0.5) * 4.0 - 0.5, (a[1] + 0.5) * 4.0 - 0.5],
                *b,
                1e-2
            ));
        }
    }
}
