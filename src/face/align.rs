//! Similarity transforms and five-point face alignment templates.
//!
//! Points are image (x, y) with pixel centres at integer coordinates, the convention of
//! `cv2.warpAffine`. The landmark order everywhere is: left eye, right eye, nose tip,
//! left mouth corner, right mouth corner (as the person is seen in the image).

use thiserror::Error;

/// A 2-D point (x, y) in pixels.
pub type Point = [f32; 2];

/// A rotation + uniform scale + translation without reflection:
/// `x' = a·x − b·y + tx`, `y' = b·x + a·y + ty` (scale `√(a²+b²)`, angle `atan2(b, a)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f64,
    pub b: f64,
    pub tx: f64,
    pub ty: f64,
}

#[derive(Debug, Error, PartialEq)]
pub enum AlignError {
    #[error("similarity estimate needs the same number of source and target points (got {src} and {dst})")]
    CountMismatch { src: usize, dst: usize },
    #[error("similarity estimate needs at least 2 point pairs (got {0})")]
    TooFewPoints(usize),
    #[error("similarity estimate is undefined: the source points all coincide")]
    Degenerate,
}

impl Similarity {
    pub const IDENTITY: Similarity = Similarity {
        a: 1.0,
        b: 0.0,
        tx: 0.0,
        ty: 0.0,
    };

    /// Scale by `s` about the origin, rotate by `angle` radians (counter-clockwise in x-right,
    /// y-up terms; clockwise on screen where y points down), then translate.
    pub fn from_scale_rotation_translation(s: f64, angle: f64, tx: f64, ty: f64) -> Similarity {
        Similarity {
            a: s * angle.cos(),
            b: s * angle.sin(),
            tx,
            ty,
        }
    }

    pub fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }

    pub fn angle(&self) -> f64 {
        self.b.atan2(self.a)
    }

    pub fn apply(&self, p: Point) -> Point {
        let (x, y) = self.apply_f64(p[0] as f64, p[1] as f64);
        [x as f32, y as f32]
    }

    pub fn apply_f64(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.a * x - self.b * y + self.tx,
            self.b * x + self.a * y + self.ty,
        )
    }

    /// The exact inverse. A zero scale has no inverse; callers get one only from
    /// [`estimate_similarity`], which refuses degenerate input, so this returns non-finite
    /// values rather than an error in that case.
    pub fn inverse(&self) -> Similarity {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        // The inverse rotation-scale applied to −t.
        let tx = -(a * self.tx - b * self.ty);
        let ty = -(b * self.tx + a * self.ty);
        Similarity { a, b, tx, ty }
    }

    /// `self ∘ first`: apply `first`, then `self`.
    pub fn compose(&self, first: &Similarity) -> Similarity {
        let (tx, ty) = self.apply_f64(first.tx, first.ty);
        Similarity {
            a: self.a * first.a - self.b * first.b,
            b: self.b * first.a + self.a * first.b,
            tx,
            ty,
        }
    }

    /// The 2×3 matrix `[[a, −b, tx], [b, a, ty]]`, as `cv2.warpAffine` takes it.
    pub fn to_matrix(&self) -> [[f32; 3]; 2] {
        [
            [self.a as f32, -self.b as f32, self.tx as f32],
            [self.b as f32, self.a as f32, self.ty as f32],
        ]
    }

    pub fn to_matrix_f64(&self) -> [[f64; 3]; 2] {
        [[self.a, -self.b, self.tx], [self.b, self.a, self.ty]]
    }
}

/// The least-squares similarity (no reflection) taking `src[i]` to `dst[i]`.
///
/// For 2-D points this closed form is the same minimiser as Umeyama's estimator with scale
/// (GPEN `align_faces._umeyama`, skimage `SimilarityTransform.estimate`) and as the
/// non-reflective branch of cp2tform 'similarity' (FaceShifter's `matlab_cp2tform`): all three
/// minimise Σ|T(src) − dst|² over (a, b, tx, ty), which is linear in those four unknowns.
pub fn estimate_similarity(src: &[Point], dst: &[Point]) -> Result<Similarity, AlignError> {
    if src.len() != dst.len() {
        return Err(AlignError::CountMismatch {
            src: src.len(),
            dst: dst.len(),
        });
    }
    if src.len() < 2 {
        return Err(AlignError::TooFewPoints(src.len()));
    }
    let n = src.len() as f64;
    let mean = |pts: &[Point]| {
        let (sx, sy) = pts
            .iter()
            .fold((0.0, 0.0), |(x, y), p| (x + p[0] as f64, y + p[1] as f64));
        (sx / n, sy / n)
    };
    let (msx, msy) = mean(src);
    let (mdx, mdy) = mean(dst);
    let (mut dot, mut cross, mut var) = (0.0f64, 0.0f64, 0.0f64);
    for (s, d) in src.iter().zip(dst) {
        let (xs, ys) = (s[0] as f64 - msx, s[1] as f64 - msy);
        let (xd, yd) = (d[0] as f64 - mdx, d[1] as f64 - mdy);
        dot += xs * xd + ys * yd;
        cross += xs * yd - ys * xd;
        var += xs * xs + ys * ys;
    }
    if var <= f64::EPSILON * n {
        return Err(AlignError::Degenerate);
    }
    let (a, b) = (dot / var, cross / var);
    Ok(Similarity {
        a,
        b,
        tx: mdx - (a * msx - b * msy),
        ty: mdy - (b * msx + a * msy),
    })
}

/// The 96×112 five-point set from SphereFace/ArcFace's `get_reference_facial_points`
/// (insightface `src/common/face_align` before x + 8); GPEN builds its FFHQ-like template from it.
pub const TEMPLATE_96X112: [Point; 5] = [
    [30.2946, 51.6963],
    [65.5318, 51.5014],
    [48.0252, 71.7366],
    [33.5493, 92.3655],
    [62.7299, 92.2041],
];

/// The square 112×112 ArcFace template (insightface `arcface_dst`): the 96×112 set with x + 8.
pub const ARCFACE_112: [Point; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// GPEN's template for an S×S crop: `get_reference_facial_points((S,S), 0.25, (0,0), True)`,
/// i.e. `(p + (36, 28))·S/168` for the 96×112 points p (GPEN `align_faces.py`).
pub fn gpen_template(size: u32) -> [Point; 5] {
    let k = size as f64 / 168.0;
    TEMPLATE_96X112.map(|p| {
        [
            ((p[0] as f64 + 36.0) * k) as f32,
            ((p[1] as f64 + 28.0) * k) as f32,
        ]
    })
}

/// FaceShifter's 256×256 template: the 112 ArcFace points shrunk about (56, 56) by 0.85 and
/// scaled by 256/112 (`face_modules/mtcnn.py` in taotaonice/FaceShifter). Its centre
/// 218-px crop [19:237] resized to 112 gives back ArcFace's alignment.
pub fn faceshifter_template_256() -> [Point; 5] {
    ARCFACE_112.map(|p| {
        let f = |v: f32| (((v as f64 - 56.0) * 0.85 + 56.0) * 256.0 / 112.0) as f32;
        [f(p[0]), f(p[1])]
    })
}

/// ArcFace's template for an S×S crop (S = 112 is the reference; other sizes scale it).
pub fn arcface_template(size: u32) -> [Point; 5] {
    let k = size as f64 / 112.0;
    ARCFACE_112.map(|p| [(p[0] as f64 * k) as f32, (p[1] as f64 * k) as f32])
}

/// The transform taking the photo's landmarks onto `template` (photo → crop).
pub fn align_to_template(landmarks: &[Point; 5], template: &[Point; 5]) -> Result<Similarity, AlignError> {
    estimate_similarity(landmarks, template)
}
