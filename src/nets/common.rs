//! Small layers shared by several networks, named like their PyTorch counterparts.

use burn::module::{Module, Param};
use burn::tensor::Device;
use burn::tensor::Tensor;

/// PyTorch's `nn.PReLU(num_parameters)`: one learned negative slope per channel (checkpoint key
/// `weight`). burn's own PRelu names it `alpha`; keeping PyTorch's name keeps the mapping trivial.
#[derive(Module, Debug)]
pub struct PRelu {
    pub weight: Param<Tensor<1>>,
}

impl PRelu {
    pub fn new(channels: usize, device: &Device) -> PRelu {
        PRelu {
            weight: Param::from_tensor(Tensor::full([channels], 0.25, device)),
        }
    }

    /// Works on (N, C, ...) maps and on (N, C) features alike: the slope follows dimension 1.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        burn::tensor::activation::prelu(x, self.weight.val())
    }
}

/// `nn.InstanceNorm2d`'s default epsilon.
pub const INSTANCE_NORM_EPS: f64 = 1e-5;

/// `InstanceNorm2d` without its affine part: per sample and channel, biased variance over H·W, no
/// running statistics (AEI-Net and BeautyGAN both use them so, in eval as in training).
///
/// The statistics reduce W, then H, never all H·W values at once: burn 0.22's wgpu reduction drops
/// values when one reduction spans 65,536 or more elements (measured on Mesa's lavapipe: the sum of
/// a 512×512 map came back as 0 and a 256×256 one 0.1% short; `tests/wgpu_checks.rs` keeps it
/// honest), and both networks normalise 256×256 maps.
pub fn instance_norm(x: Tensor<4>) -> Tensor<4> {
    let mean = x.clone().mean_dim(3).mean_dim(2);
    let centered = x - mean;
    let var = centered.clone().square().mean_dim(3).mean_dim(2);
    centered / (var + INSTANCE_NORM_EPS).sqrt()
}

/// One numbered child of a PyTorch `nn.Sequential` and the named field that holds it here.
///
/// burn modules cannot have fields called `0`, `1`, …, so a Sequential such as ArcFace's
/// `res_layer` (BN, conv, PReLU, conv, BN, SE) is a struct with named fields, and its checkpoint
/// keys are renamed on the way in. `parent` is the path segment just before the index; a
/// trailing `*` matches every segment with that prefix (`conv*` covers `conv1` … `conv7`).
#[derive(Debug, Clone, Copy)]
pub struct SeqChild {
    pub parent: &'static str,
    pub index: &'static str,
    pub field: &'static str,
}

impl SeqChild {
    fn parent_matches(&self, segment: &str) -> bool {
        match self.parent.strip_suffix('*') {
            Some(prefix) => segment.starts_with(prefix),
            None => segment == self.parent,
        }
    }
}

fn rename_segments(key: &str, table: &[SeqChild], to_field: bool) -> String {
    let mut segments: Vec<&str> = key.split('.').collect();
    for i in 1..segments.len() {
        let hit = table.iter().find(|c| {
            let from = if to_field { c.index } else { c.field };
            c.parent_matches(segments[i - 1]) && segments[i] == from
        });
        if let Some(child) = hit {
            segments[i] = if to_field { child.field } else { child.index };
        }
    }
    segments.join(".")
}

/// A checkpoint key as the module path that holds it (`res_layer.1.weight` → `res_layer.conv1.weight`).
pub fn seq_key_to_field(key: &str, table: &[SeqChild]) -> String {
    rename_segments(key, table, true)
}

/// The inverse of [`seq_key_to_field`], so that load errors name the keys of the file.
pub fn field_to_seq_key(path: &str, table: &[SeqChild]) -> String {
    rename_segments(path, table, false)
}

/// Renames every key of a checkpoint with [`seq_key_to_field`] (moves the tensors, no copy).
pub fn rename_seq_keys(tensors: crate::weights::TensorMap, table: &[SeqChild]) -> crate::weights::TensorMap {
    crate::weights::TensorMap {
        tensors: tensors
            .tensors
            .into_iter()
            .map(|(k, v)| (seq_key_to_field(&k, table), v))
            .collect(),
    }
}

/// A load error rewritten in the checkpoint's own key names, optionally under `prefix`.
pub fn load_error_in_file_keys(
    err: crate::weights::load::LoadError,
    table: &[SeqChild],
    prefix: &str,
) -> crate::weights::load::LoadError {
    let key = |path: &str| format!("{prefix}{}", field_to_seq_key(path, table));
    // Shape mismatches read "path (file …, network …)"; other apply errors are left as they are.
    let mismatch = |entry: String| match entry.split_once(" (file ") {
        Some((path, rest)) => format!("{} (file {rest}", key(path)),
        None => entry,
    };
    crate::weights::load::LoadError {
        file: err.file,
        missing: err.missing.iter().map(|p| key(p)).collect(),
        unexpected: err.unexpected.iter().map(|p| key(p)).collect(),
        mismatched: err.mismatched.into_iter().map(mismatch).collect(),
    }
}

/// Tensor shapes of a checkpoint by key: enough to infer a network's widths before any weight is
/// copied, and cheap to build from a key list (`models/keys/*.txt`) in tests.
pub type Shapes = std::collections::BTreeMap<String, Vec<usize>>;

/// The shapes of every tensor of a checkpoint.
pub fn shapes_of(tensors: &crate::weights::TensorMap) -> Shapes {
    tensors
        .tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.shape.clone()))
        .collect()
}

/// The shape of `key` when it has `rank` dimensions; the error names the key and what was found.
pub fn shape_of<'a>(shapes: &'a Shapes, key: &str, rank: usize) -> Result<&'a [usize], String> {
    match shapes.get(key) {
        Some(s) if s.len() == rank => Ok(s),
        Some(s) => Err(format!("{key} is {s:?}, expected {rank} dimensions")),
        None => Err(format!("the checkpoint has no {key}")),
    }
}

/// Every float parameter of a module as (dotted path, shape), read without initialising lazy
/// parameters: the official AEI-Net's 0.74 GB layout can be checked before any weight exists.
pub fn param_shapes<M: Module>(module: &M) -> Vec<(String, Vec<usize>)> {
    struct Shapes {
        path: Vec<String>,
        out: Vec<(String, Vec<usize>)>,
    }
    impl burn::module::ModuleVisitor for Shapes {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            // The parameter's own name is the last entered module (`weight`, `running_mean`, …).
            self.out
                .push((self.path.join("."), param.lazy_shape().dims::<D>().to_vec()));
        }
    }
    let mut visitor = Shapes {
        path: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut visitor);
    visitor.out
}

/// Test support: asserts that a module built from an official config holds exactly the float
/// tensors listed in a fixture's `official_keys.txt` (`key<TAB>[shape]<TAB>dtype`, the released
/// file's layout), once renamed by `table`. burn's `Linear` keeps its weight as [in, out] and
/// its BatchNorm names weight and bias `gamma` and `beta` (the loader's adapter maps both).
#[cfg(test)]
pub(crate) fn assert_official_layout<M: Module>(module: &M, table: &[SeqChild], fixture: &str) {
    use std::collections::BTreeMap;
    // nets reads no files: the fixture's text comes from parity, which owns the fixtures.
    let text = crate::parity::official_keys(fixture).unwrap_or_else(|e| panic!("{e}"));
    let parse = |shape: &str| -> Vec<usize> {
        shape
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .filter_map(|d| d.trim().parse().ok())
            .collect()
    };
    let want: BTreeMap<String, Vec<usize>> = text
        .lines()
        .filter_map(|line| {
            let mut cols = line.split('\t');
            Some((cols.next()?.to_string(), parse(cols.next()?)))
        })
        .filter(|(key, _)| !key.ends_with("num_batches_tracked"))
        .collect();
    let got: BTreeMap<String, Vec<usize>> = param_shapes(module)
        .into_iter()
        .map(|(path, mut shape)| {
            if shape.len() == 2 {
                shape.reverse();
            }
            let path = match path.rsplit_once('.') {
                Some((head, "gamma")) => format!("{head}.weight"),
                Some((head, "beta")) => format!("{head}.bias"),
                _ => path,
            };
            (field_to_seq_key(&path, table), shape)
        })
        .collect();
    let missing: Vec<_> = want
        .iter()
        .filter(|(k, s)| got.get(*k) != Some(*s))
        .take(5)
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|(k, s)| want.get(*k) != Some(*s))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "file has {missing:?}; network has {extra:?}"
    );
    assert!(want.len() > 100, "{fixture} lists only {} tensors", want.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[SeqChild] = &[
        SeqChild {
            parent: "res_layer",
            index: "1",
            field: "conv1",
        },
        SeqChild {
            parent: "conv*",
            index: "0",
            field: "conv",
        },
    ];

    #[test]
    fn sequential_keys_round_trip() {
        for (file, field) in [
            ("body.3.res_layer.1.weight", "body.3.res_layer.conv1.weight"),
            ("encoder.conv7.0.weight", "encoder.conv7.conv.weight"),
            // Only an index right after a listed parent is renamed.
            ("body.1.weight", "body.1.weight"),
            ("generator.AADBlk1.conv1.weight", "generator.AADBlk1.conv1.weight"),
        ] {
            assert_eq!(seq_key_to_field(file, TABLE), field);
            assert_eq!(field_to_seq_key(field, TABLE), file);
        }
    }

    #[test]
    fn load_errors_name_the_file_keys() {
        let err = crate::weights::load::LoadError {
            file: "x.pth".into(),
            missing: vec!["conv7.conv.weight".into()],
            unexpected: vec![],
            mismatched: vec!["conv1.conv.weight (file [1], network [2])".into()],
        };
        let err = load_error_in_file_keys(err, TABLE, "encoder.");
        assert_eq!(err.missing, vec!["encoder.conv7.0.weight"]);
        assert_eq!(
            err.mismatched,
            vec!["encoder.conv1.0.weight (file [1], network [2])"]
        );
    }
}
