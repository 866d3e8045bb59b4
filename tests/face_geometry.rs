//! Golden tests for face geometry: similarity estimates, templates, warps, masks and LAB colour.

mod common;

use facecast::face::align::{
    ARCFACE_112, Point, Similarity, align_to_template, arcface_template, estimate_similarity,
    faceshifter_template_256, gpen_template,
};
use facecast::face::color::{lab_stats, lab_to_rgb, rgb_to_lab, transfer_lab};
use facecast::face::mask::{
    MaskSettings, Plane, blend, box_mask, convex_hull, face_mask, gaussian_blur_plane, gaussian_blur_rgb,
    gaussian_kernel, hull_mask,
};
use facecast::face::warp::{Border, crop_aligned, warp_affine, warp_back, warp_plane_back};
use image::{Rgb, RgbImage};

const PTS: [Point; 5] = [
    [10.0, 20.0],
    [40.0, 18.0],
    [25.0, 35.0],
    [14.0, 50.0],
    [37.0, 52.0],
];

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

fn assert_sim(s: &Similarity, a: f64, b: f64, tx: f64, ty: f64, tol: f64) {
    assert!(
        close(s.a, a, tol) && close(s.b, b, tol) && close(s.tx, tx, tol) && close(s.ty, ty, tol),
        "got {s:?}, want a={a} b={b} tx={tx} ty={ty}"
    );
}

#[test]
fn pure_scale_and_translation_is_recovered() {
    let dst: Vec<Point> = PTS.iter().map(|p| [2.0 * p[0] + 3.0, 2.0 * p[1] - 5.0]).collect();
    let s = estimate_similarity(&PTS, &dst).unwrap();
    assert_sim(&s, 2.0, 0.0, 3.0, -5.0, 1e-9);
}

#[test]
fn quarter_turn_is_recovered() {
    // (x, y) → (−y + 100, x): a = 0, b = 1.
    let dst: Vec<Point> = PTS.iter().map(|p| [-p[1] + 100.0, p[0]]).collect();
    let s = estimate_similarity(&PTS, &dst).unwrap();
    assert_sim(&s, 0.0, 1.0, 100.0, 0.0, 1e-9);
    assert!(close(s.angle(), std::f64::consts::FRAC_PI_2, 1e-12));
    assert_eq!(s.apply([1.0, 0.0]), [100.0, 1.0]);
}

#[test]
fn least_squares_splits_the_residual_of_an_inconsistent_pair() {
    // Two points, exact; a third that disagrees pulls the fit by a known amount: for the
    // symmetric set below the best similarity is the identity scaled by the mean ratio.
    let src = [[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, -1.0]];
    let dst = [[-1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, -2.0]];
    let s = estimate_similarity(&src, &dst).unwrap();
    assert_sim(&s, 1.5, 0.0, 0.0, 0.0, 1e-12);
}

#[test]
fn inverse_undoes_forward_and_composes_to_identity() {
    let s = Similarity::from_scale_rotation_translation(1.7, 0.3, -12.5, 40.25);
    let id = s.inverse().compose(&s);
    assert_sim(&id, 1.0, 0.0, 0.0, 0.0, 1e-12);
    for p in PTS {
        let q = s.inverse().apply(s.apply(p));
        assert!(
            close(q[0] as f64, p[0] as f64, 1e-4) && close(q[1] as f64, p[1] as f64, 1e-4),
            "{p:?} → {q:?}"
        );
    }
    let m = s.to_matrix_f64();
    assert_eq!(m, [[s.a, -s.b, s.tx], [s.b, s.a, s.ty]]);
}

#[test]
fn estimator_rejects_bad_input() {
    assert!(estimate_similarity(&PTS, &PTS[..4]).is_err());
    assert!(estimate_similarity(&PTS[..1], &PTS[..1]).is_err());
    assert!(estimate_similarity(&[[3.0, 3.0]; 5], &PTS).is_err());
}

#[test]
fn templates_match_their_sources() {
    assert_eq!(arcface_template(112), ARCFACE_112);
    // FaceShifter's 256 template as printed in faceshifter.md (4 decimals).
    let want = [
        [93.6009, 119.6385],
        [162.0618, 119.2599],
        [128.0490, 158.5740],
        [99.9244, 198.6530],
        [156.6181, 198.3394],
    ];
    for (g, w) in faceshifter_template_256().iter().zip(want) {
        assert!(
            close(g[0] as f64, w[0], 1e-3) && close(g[1] as f64, w[1], 1e-3),
            "{g:?} vs {w:?}"
        );
    }
}

fn fixture_tensor(map: &facecast::weights::TensorMap, key: &str) -> Vec<f32> {
    map.get(key)
        .unwrap_or_else(|| panic!("gpen fixture lacks {key}"))
        .to_f32()
}

#[test]
fn gpen_fixture_alignment_is_reproduced() {
    let root = common::fixtures_root();
    let path = root.join("gpen/io.safetensors");
    let map = facecast::weights::read_checkpoint(&path)
        .unwrap()
        .flatten_tensors();

    for size in [256u32, 512, 1024] {
        let want = fixture_tensor(&map, &format!("pipeline.align.reference_5pts_{size}"));
        let got: Vec<f32> = gpen_template(size).iter().flatten().copied().collect();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-3, "template {size}: {got:?} vs {want:?}");
        }
    }

    let src = fixture_tensor(&map, "pipeline.align.src_5pts");
    let layout = fixture_tensor(&map, "pipeline.align.landmarks_detector_layout");
    let tfm = fixture_tensor(&map, "pipeline.align.tfm_512");
    let tfm_inv = fixture_tensor(&map, "pipeline.align.tfm_inv_512");
    let faces = src.len() / 10;
    assert_eq!(faces, 3);
    let template = gpen_template(512);
    for f in 0..faces {
        let pts: [Point; 5] = std::array::from_fn(|i| [src[f * 10 + 2 * i], src[f * 10 + 2 * i + 1]]);
        // The detector's [x1..x5, y1..y5] layout holds the same points.
        for (i, p) in pts.iter().enumerate() {
            assert_eq!(*p, [layout[f * 10 + i], layout[f * 10 + 5 + i]]);
        }
        let s = align_to_template(&pts, &template).unwrap();
        let check = |got: [[f64; 3]; 2], want: &[f32], what: &str| {
            for r in 0..2 {
                for c in 0..3 {
                    let w = want[f * 6 + r * 3 + c] as f64;
                    assert!(
                        (got[r][c] - w).abs() < 1e-3,
                        "face {f} {what}[{r}][{c}]: {} vs {w}",
                        got[r][c]
                    );
                }
            }
        };
        check(s.to_matrix_f64(), &tfm, "tfm_512");
        check(s.inverse().to_matrix_f64(), &tfm_inv, "tfm_inv_512");
    }
}

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| Rgb([(4 * x) as u8, (4 * y) as u8, 77]))
}

#[test]
fn upscale_warp_is_pixel_exact() {
    let src = gradient(32, 32);
    let s = Similarity {
        a: 2.0,
        b: 0.0,
        tx: 0.0,
        ty: 0.0,
    };
    let out = warp_affine(&src, &s, 62, 62, Border::Constant([0; 3]));
    // Output (x, y) samples the input at (x/2, y/2); with pixel centres at integers the
    // odd positions fall half-way between two inputs, whose mean is exact here.
    for y in 0..62 {
        for x in 0..62 {
            assert_eq!(
                out.get_pixel(x, y).0,
                [(2 * x) as u8, (2 * y) as u8, 77],
                "at ({x},{y})"
            );
        }
    }
}

#[test]
fn quarter_turn_warp_permutes_pixels_and_warps_back_exactly() {
    let src = RgbImage::from_fn(20, 30, |x, y| {
        Rgb([(x * 11 + y * 3) as u8, (y * 7) as u8, (x * y) as u8])
    });
    // (x, y) → (29 − y, x): a 90° turn that maps the 20×30 image onto a 30×20 one.
    let s = Similarity {
        a: 0.0,
        b: 1.0,
        tx: 29.0,
        ty: 0.0,
    };
    let rot = crop_aligned(&src, &s, 30).clone();
    for y in 0..30 {
        for x in 0..20 {
            assert_eq!(rot.get_pixel(29 - y, x), src.get_pixel(x, y));
        }
    }
    // Rows 20..30 of the square crop lie outside the source: black.
    assert_eq!(rot.get_pixel(5, 25).0, [0, 0, 0]);
    let back = warp_back(&rot, &s, 20, 30);
    assert_eq!(back, src);
}

#[test]
fn constant_border_fades_in_over_one_pixel() {
    let src = RgbImage::from_pixel(8, 8, Rgb([200, 100, 50]));
    let shift = Similarity {
        a: 1.0,
        b: 0.0,
        tx: 2.5,
        ty: 0.0,
    };
    let out = warp_affine(&src, &shift, 8, 8, Border::Constant([0; 3]));
    assert_eq!(out.get_pixel(1, 3).0, [0, 0, 0]); // samples x = −1.5
    assert_eq!(out.get_pixel(2, 3).0, [100, 50, 25]); // x = −0.5: half border, half pixel
    assert_eq!(out.get_pixel(3, 3).0, [200, 100, 50]);
    let rep = warp_affine(&src, &shift, 8, 8, Border::Replicate);
    assert_eq!(rep.get_pixel(0, 0).0, [200, 100, 50]);
}

#[test]
fn crop_and_warp_back_roundtrip_on_a_rotated_face_crop() {
    // A smooth photo, an off-axis similarity: the round trip must come back within a grey level
    // or two inside the crop (two bilinear passes of a linear ramp are exact up to rounding).
    let photo = RgbImage::from_fn(200, 160, |x, y| Rgb([(x + y / 2) as u8, (y + 40) as u8, 128]));
    let s = align_to_template(
        &[
            [80.0, 60.0],
            [120.0, 62.0],
            [100.0, 85.0],
            [84.0, 105.0],
            [118.0, 106.0],
        ],
        &gpen_template(256),
    )
    .unwrap();
    let crop = crop_aligned(&photo, &s, 256);
    let back = warp_back(&crop, &s, 200, 160);
    for (x, y) in [(100u32, 80u32), (90, 70), (110, 100), (95, 60)] {
        let (a, b) = (photo.get_pixel(x, y).0, back.get_pixel(x, y).0);
        for c in 0..3 {
            assert!(
                (a[c] as i32 - b[c] as i32).abs() <= 2,
                "at ({x},{y}): {a:?} vs {b:?}"
            );
        }
    }
}

#[test]
fn gaussian_kernel_and_blur_behave() {
    let k = gaussian_kernel(2.0);
    assert_eq!(k.len(), 13);
    assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    assert_eq!(k[0], k[12]);
    let flat = Plane::filled(9, 7, 0.5);
    for v in gaussian_blur_plane(&flat, 1.5).data {
        assert!((v - 0.5).abs() < 1e-6);
    }
    let mut impulse = Plane::filled(21, 21, 0.0);
    impulse.set(10, 10, 1.0);
    let b = gaussian_blur_plane(&impulse, 1.0);
    assert!((b.data.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert_eq!(b.get(9, 10), b.get(11, 10));
    assert_eq!(b.get(10, 9), b.get(10, 11));
    assert_eq!(b.get(14, 10), 0.0); // beyond the 3σ radius
    let img = RgbImage::from_pixel(5, 5, Rgb([10, 20, 30]));
    assert_eq!(gaussian_blur_rgb(&img, 3.0), img);
}

#[test]
fn hull_and_box_masks() {
    let hull = convex_hull(&[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [5.0, 5.0]]);
    assert_eq!(hull.len(), 4);
    let m = hull_mask(20, 20, &[[2.0, 2.0], [8.0, 2.0], [8.0, 8.0], [2.0, 8.0]], 1.0);
    assert_eq!(m.get(5, 5), 1.0);
    assert_eq!(m.get(9, 5), 1.0); // within the dilation
    assert_eq!(m.get(10, 5), 0.0);
    assert_eq!(m.get(9, 9), 0.0); // corner: √2 away
    let b = box_mask(10, 10, 2);
    assert_eq!(b.data.iter().filter(|&&v| v == 1.0).count(), 36);
    assert_eq!(b.get(1, 5), 0.0);
}

#[test]
fn pixels_outside_the_mask_are_bit_identical() {
    let photo = RgbImage::from_fn(160, 120, |x, y| {
        Rgb([(x * 7 % 256) as u8, (y * 13 % 256) as u8, ((x ^ y) % 256) as u8])
    });
    let landmarks = [
        [60.0, 50.0],
        [95.0, 49.0],
        [78.0, 68.0],
        [64.0, 85.0],
        [92.0, 86.0],
    ];
    let s = align_to_template(&landmarks, &gpen_template(256)).unwrap();
    let crop = crop_aligned(&photo, &s, 256);
    let swapped = RgbImage::from_fn(256, 256, |x, y| {
        Rgb([255 - crop.get_pixel(x, y)[0], 200, (x / 2) as u8])
    });
    let crop_marks: Vec<Point> = landmarks.iter().map(|p| s.apply(*p)).collect();
    let mask = face_mask(256, &MaskSettings::default(), &crop_marks);
    let photo_mask = warp_plane_back(&mask, &s, 160, 120);
    let patch = warp_back(&swapped, &s, 160, 120);
    let out = blend(&photo, &patch, &photo_mask).unwrap();
    let (mut zero, mut changed) = (0, 0);
    for ((o, p), &m) in out.pixels().zip(photo.pixels()).zip(&photo_mask.data) {
        if m == 0.0 {
            zero += 1;
            assert_eq!(o, p);
        } else if o != p {
            changed += 1;
        }
    }
    assert!(zero > 5000 && changed > 1000, "zero {zero}, changed {changed}");
    // At the face centre the mask is full and the patch shows through.
    assert!(photo_mask.get(78, 68) > 0.99);
    assert_eq!(out.get_pixel(78, 68), patch.get_pixel(78, 68));
    assert!(blend(&photo, &swapped, &photo_mask).is_err());
}

#[test]
fn lab_known_values_and_round_trip() {
    let white = rgb_to_lab([255, 255, 255]);
    assert!(
        (white[0] - 100.0).abs() < 1e-3 && white[1].abs() < 1e-2 && white[2].abs() < 1e-2,
        "{white:?}"
    );
    let red = rgb_to_lab([255, 0, 0]);
    assert!(
        (red[0] - 53.24).abs() < 0.01 && (red[1] - 80.09).abs() < 0.02 && (red[2] - 67.20).abs() < 0.02,
        "{red:?}"
    );
    assert_eq!(rgb_to_lab([0, 0, 0]), [0.0, 0.0, 0.0]);
    let mut worst = 0;
    for r in (0..=255u32).step_by(3) {
        for g in (0..=255u32).step_by(3) {
            for b in (0..=255u32).step_by(5) {
                let c = [r as u8, g as u8, b as u8];
                let back = lab_to_rgb(rgb_to_lab(c));
                for i in 0..3 {
                    worst = worst.max((back[i] as i32 - c[i] as i32).abs());
                }
            }
        }
    }
    assert!(worst <= 1, "LAB round trip off by {worst}/255");
}

#[test]
fn lab_transfer_moves_the_patch_statistics_to_the_reference() {
    let patch = RgbImage::from_fn(40, 40, |x, y| {
        Rgb([(150 + (x + y) % 20) as u8, 110, (90 + x % 10) as u8])
    });
    let reference = RgbImage::from_fn(40, 40, |x, y| {
        Rgb([(190 + (x * y) % 15) as u8, 140, (120 + y % 12) as u8])
    });
    let all = Plane::filled(40, 40, 1.0);
    let out = transfer_lab(&patch, &all, &reference, &all).unwrap();
    let o = lab_stats(&out, &all).unwrap().unwrap();
    let r = lab_stats(&reference, &all).unwrap().unwrap();
    for c in 0..3 {
        assert!(
            (o.mean[c] - r.mean[c]).abs() < 0.5,
            "mean {c}: {} vs {}",
            o.mean[c],
            r.mean[c]
        );
        assert!(
            (o.std[c] - r.std[c]).abs() < 0.5,
            "std {c}: {} vs {}",
            o.std[c],
            r.std[c]
        );
    }
    // An empty reference mask leaves the patch alone.
    let none = Plane::filled(40, 40, 0.0);
    assert_eq!(transfer_lab(&patch, &all, &reference, &none).unwrap(), patch);
}
