//! Box arithmetic of facenet-pytorch's MTCNN cascade, reproduced exactly (in f32).
//!
//! Four box conventions coexist there and each matters for sub-pixel parity: the PNet cell box
//! (`+1` inside, floored), the stage-1 regression (no `+1`), `bbreg` (`+1`), and the landmark
//! decoding (`+1` and `-1`). The two NMS flavours differ as well: torchvision's IoU without
//! `+1`, and the numpy "Min" overlap with `+1`.

/// A candidate: corners, score and regression offsets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub b: [f32; 4],
    pub score: f32,
    pub reg: [f32; 4],
}

/// torchvision's `nms`: visits boxes by descending score (stable for ties), drops any box whose
/// IoU with a kept box exceeds `threshold`; returns indices of kept boxes, best first.
pub fn nms_iou(boxes: &[Candidate], threshold: f32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| boxes[b].score.total_cmp(&boxes[a].score));
    let area = |c: &Candidate| (c.b[2] - c.b[0]) * (c.b[3] - c.b[1]);
    let mut suppressed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for (pos, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        let bi = &boxes[i];
        let ai = area(bi);
        for &j in &order[pos + 1..] {
            if suppressed[j] {
                continue;
            }
            let bj = &boxes[j];
            let w = (bi.b[2].min(bj.b[2]) - bi.b[0].max(bj.b[0])).max(0.0);
            let h = (bi.b[3].min(bj.b[3]) - bi.b[1].max(bj.b[1])).max(0.0);
            let inter = w * h;
            let iou = inter / (ai + area(bj) - inter);
            if iou > threshold {
                suppressed[j] = true;
            }
        }
    }
    keep
}

/// The numpy "Min" NMS of the final stage: overlap = intersection / smaller area, both with `+1`;
/// boxes overlapping the current best by more than `threshold` are dropped.
pub fn nms_min(boxes: &[Candidate], threshold: f32) -> Vec<usize> {
    let area = |c: &Candidate| (c.b[2] - c.b[0] + 1.0) * (c.b[3] - c.b[1] + 1.0);
    // numpy's argsort ascending, taking from the end.
    let mut remaining: Vec<usize> = (0..boxes.len()).collect();
    remaining.sort_by(|&a, &b| boxes[a].score.total_cmp(&boxes[b].score));
    let mut keep = Vec::new();
    while let Some(i) = remaining.pop() {
        keep.push(i);
        let bi = &boxes[i];
        remaining.retain(|&j| {
            let bj = &boxes[j];
            let w = (bi.b[2].min(bj.b[2]) - bi.b[0].max(bj.b[0]) + 1.0).max(0.0);
            let h = (bi.b[3].min(bj.b[3]) - bi.b[1].max(bj.b[1]) + 1.0).max(0.0);
            let overlap = (w * h) / area(bi).min(area(bj));
            overlap <= threshold
        });
    }
    keep
}

/// Stage-1 regression: offsets scaled by the box size without `+1`.
pub fn regress_stage1(c: &Candidate) -> [f32; 4] {
    let w = c.b[2] - c.b[0];
    let h = c.b[3] - c.b[1];
    [
        c.b[0] + c.reg[0] * w,
        c.b[1] + c.reg[1] * h,
        c.b[2] + c.reg[2] * w,
        c.b[3] + c.reg[3] * h,
    ]
}

/// `bbreg`: offsets scaled by the box size with `+1`.
pub fn bbreg(b: [f32; 4], reg: [f32; 4]) -> [f32; 4] {
    let w = b[2] - b[0] + 1.0;
    let h = b[3] - b[1] + 1.0;
    [
        b[0] + reg[0] * w,
        b[1] + reg[1] * h,
        b[2] + reg[2] * w,
        b[3] + reg[3] * h,
    ]
}

/// `rerec`: the square of side max(w, h) with the same centre.
pub fn rerec(b: [f32; 4]) -> [f32; 4] {
    let h = b[3] - b[1];
    let w = b[2] - b[0];
    let l = w.max(h);
    let x1 = b[0] + w * 0.5 - l * 0.5;
    let y1 = b[1] + h * 0.5 - l * 0.5;
    [x1, y1, x1 + l, y1 + l]
}

/// `pad`: the pixel window a box reads, as 0-based half-open ranges `(y0, y1, x0, x1)`.
/// Coordinates are truncated toward zero and clamped to the image (no zero padding); the box is
/// read as 1-based inclusive. `None` when nothing of the box lies inside the image.
pub fn crop_window(b: [f32; 4], width: usize, height: usize) -> Option<(usize, usize, usize, usize)> {
    let t = |v: f32| v.trunc() as i64;
    let x = t(b[0]).max(1);
    let y = t(b[1]).max(1);
    let ex = t(b[2]).min(width as i64);
    let ey = t(b[3]).min(height as i64);
    if ey > y - 1 && ex > x - 1 {
        Some(((y - 1) as usize, ey as usize, (x - 1) as usize, ex as usize))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(b: [f32; 4], score: f32) -> Candidate {
        Candidate {
            b,
            score,
            reg: [0.0; 4],
        }
    }

    #[test]
    fn iou_nms_keeps_the_best_of_overlapping_boxes() {
        let boxes = [
            cand([0., 0., 10., 10.], 0.8),
            cand([1., 1., 11., 11.], 0.9),
            cand([20., 20., 30., 30.], 0.7),
        ];
        // IoU of the first two is 81/119 = 0.68 > 0.5.
        assert_eq!(nms_iou(&boxes, 0.5), vec![1, 2]);
        assert_eq!(nms_iou(&boxes, 0.7), vec![1, 0, 2]);
    }

    #[test]
    fn iou_nms_is_stable_for_equal_scores() {
        let boxes = [cand([0., 0., 10., 10.], 0.5), cand([0., 0., 10., 10.], 0.5)];
        assert_eq!(nms_iou(&boxes, 0.5), vec![0]);
    }

    #[test]
    fn min_nms_drops_a_box_inside_another() {
        let boxes = [cand([0., 0., 100., 100.], 0.9), cand([10., 10., 20., 20.], 0.95)];
        // The small box is wholly inside: overlap 1.0 relative to the smaller area.
        assert_eq!(nms_min(&boxes, 0.7), vec![1]);
    }

    #[test]
    fn rerec_squares_around_the_centre() {
        assert_eq!(rerec([10., 20., 20., 40.]), [5., 20., 25., 40.]);
    }

    #[test]
    fn crop_window_truncates_toward_zero_and_clamps() {
        // -0.7 truncates to 0, then clamps to 1 → row/col 0; 120.9 → 120 clamped to the width 100.
        assert_eq!(
            crop_window([-0.7, 5.5, 120.9, 50.2], 100, 80),
            Some((4, 50, 0, 100))
        );
        assert_eq!(crop_window([-50., -50., -10., -10.], 100, 80), None);
    }
}
