//! The fixture's tolerance groups: each key is compared with the FIRST group whose `match` globs
//! (fnmatch: `*` and `?`, across dots) cover it, element-wise
//! `|port − ref| ≤ abs + abs_of_tensor_max·max|ref| + rel·|ref|`.

use super::super::{CaseResult, Fixture, ParityError};

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    pub patterns: Vec<String>,
    pub abs: f64,
    pub rel: f64,
    pub abs_of_tensor_max: f64,
}

/// `meta.json` `tolerance.groups`, in order.
pub fn groups(fx: &Fixture) -> Result<Vec<Group>, ParityError> {
    let bad = |field: &str| ParityError::Meta {
        dir: fx.dir.clone(),
        field: format!("tolerance.groups{field}"),
    };
    let list = fx.meta["tolerance"]["groups"].as_array().ok_or_else(|| bad(""))?;
    list.iter()
        .enumerate()
        .map(|(i, g)| {
            let number = |key: &str| g[key].as_f64().ok_or_else(|| bad(&format!("[{i}].{key}")));
            let patterns = g["match"]
                .as_array()
                .and_then(|m| {
                    m.iter()
                        .map(|p| p.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| bad(&format!("[{i}].match")))?;
            Ok(Group {
                name: g["name"].as_str().unwrap_or("?").to_string(),
                patterns,
                abs: number("abs")?,
                rel: number("rel")?,
                abs_of_tensor_max: g["abs_of_tensor_max"].as_f64().unwrap_or(0.0),
            })
        })
        .collect()
}

/// The first group covering `key`.
pub fn group_for<'g>(groups: &'g [Group], key: &str) -> Option<&'g Group> {
    groups.iter().find(|g| g.patterns.iter().any(|p| fnmatch(p, key)))
}

/// Python's `fnmatch` for `*` and `?` (the fixture uses no character classes).
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic two-pointer wildcard match with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0usize, 0usize, None, 0usize);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// Compares `got` (any shape with the reference's number of elements; flattened parameters and
/// gradients are compared in the reference's layout) with the reference `key` under its group.
/// The note names the group and the worst element's share of its allowance.
pub fn compare(fx: &Fixture, groups: &[Group], key: &str, got: &[f32]) -> CaseResult {
    let Some(group) = group_for(groups, key) else {
        return CaseResult::fail(key, "no tolerance group matches this key");
    };
    let reference = match fx.raw(key) {
        Ok(r) => r,
        Err(e) => return CaseResult::fail(key, e.to_string()),
    };
    if reference.numel() != got.len() {
        return CaseResult::fail(
            key,
            format!("{} elements, reference {:?}", got.len(), reference.shape),
        );
    }
    let want = reference.to_f32();
    let max_ref = want.iter().fold(0.0f64, |m, &w| m.max((w as f64).abs()));
    let (mut bad, mut worst_share, mut max_err) = (0usize, 0.0f64, 0.0f64);
    for (&g, &w) in got.iter().zip(&want) {
        let (g, w) = (g as f64, w as f64);
        let err = (g - w).abs();
        let allowed = group.abs + group.abs_of_tensor_max * max_ref + group.rel * w.abs();
        // A NaN on either side fails outright (it compares false with every bound).
        if err.is_nan() || err > allowed {
            bad += 1;
        }
        if err.is_nan() {
            max_err = f64::NAN;
            worst_share = f64::NAN;
        } else if !max_err.is_nan() {
            max_err = max_err.max(err);
            let share = if allowed > 0.0 {
                err / allowed
            } else if err > 0.0 {
                f64::INFINITY
            } else {
                0.0
            };
            worst_share = worst_share.max(share);
        }
    }
    let mut note = format!("group {}, worst {:.2e} of tolerance", group.name, worst_share);
    if bad > 0 {
        note = format!("{bad} of {} elements outside tolerance; {note}", got.len());
    }
    CaseResult {
        name: key.to_string(),
        passed: bad == 0,
        max_abs_err: max_err,
        note: Some(note),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_fnmatch() {
        assert!(fnmatch(
            "*.grad.*noise.weight",
            "g_step.grad.convs.0.noise.weight"
        ));
        assert!(!fnmatch(
            "*.grad.*noise.weight",
            "g_step.grad.convs.0.noise.weight2"
        ));
        assert!(fnmatch("final.d.*", "final.d.convs.0.0.weight"));
        assert!(!fnmatch("final.d.*", "final.d_optim.step"));
        assert!(fnmatch("*", "anything"));
        assert!(fnmatch("r1_step.grad_real", "r1_step.grad_real"));
        assert!(fnmatch("a?c", "abc") && !fnmatch("a?c", "ac"));
    }
}
