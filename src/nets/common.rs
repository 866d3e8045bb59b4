//! Small layers shared by several networks, named like their PyTorch counterparts.

use burn::module::{Module, Param};
use burn::tensor::Tensor;
use burn::tensor::Device;

/// PyTorch's `nn.PReLU(num_parameters)`: one learned negative slope per channel (checkpoint key
/// `weight`). burn's own PRelu names it `alpha`; keeping PyTorch's name keeps the mapping trivial.
#[derive(Module, Debug)]
pub struct PRelu {
    pub weight: Param<Tensor<1>>,
}

impl PRelu {
    pub fn new(channels: usize, device: &Device) -> PRelu {
        PRelu { weight: Param::from_tensor(Tensor::full([channels], 0.25, device)) }
    }

    /// Works on (N, C, ...) maps and on (N, C) features alike: the slope follows dimension 1.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        burn::tensor::activation::prelu(x, self.weight.val())
    }
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
        tensors: tensors.tensors.into_iter().map(|(k, v)| (seq_key_to_field(&k, table), v)).collect(),
    }
}

/// A load error rewritten in the checkpoint's own key names, optionally under `prefix`.
pub fn load_error_in_file_keys(
    err: crate::weights::load::LoadError,
    table: &[SeqChild],
    prefix: &str,
) -> crate::weights::load::LoadError {
    // Mismatch entries read "path (file …, network …)": only the leading path is a key.
    let fix = |entry: String| -> String {
        let (path, rest) = entry.split_once(' ').map_or((entry.as_str(), ""), |(p, r)| (p, r));
        let key = field_to_seq_key(path, table);
        let sep = if rest.is_empty() { "" } else { " " };
        format!("{prefix}{key}{sep}{rest}")
    };
    crate::weights::load::LoadError {
        file: err.file,
        missing: err.missing.into_iter().map(fix).collect(),
        unexpected: err.unexpected.into_iter().map(fix).collect(),
        mismatched: err.mismatched.into_iter().map(fix).collect(),
    }
}
