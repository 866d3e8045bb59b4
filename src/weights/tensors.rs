//! What a checkpoint holds once parsed: plain values and host tensors, nothing executable.

use std::collections::BTreeMap;

/// A tensor read from a file, on the host. Floats of every width are promoted to f32 (the
/// networks run in f32); integer tensors (e.g. `num_batches_tracked`) keep their values as i64.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTensor {
    pub shape: Vec<usize>,
    pub values: TensorValues,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TensorValues {
    F32(Vec<f32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

impl RawTensor {
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> RawTensor {
        RawTensor {
            shape,
            values: TensorValues::F32(data),
        }
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The values as f32 (integers and booleans converted), for comparisons and for loading.
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.values {
            TensorValues::F32(v) => v.clone(),
            TensorValues::I64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorValues::Bool(v) => v.iter().map(|&x| if x { 1.0 } else { 0.0 }).collect(),
        }
    }

    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.values {
            TensorValues::F32(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_float(&self) -> bool {
        matches!(self.values, TensorValues::F32(_))
    }
}

/// A parsed value of a checkpoint: the containers pickle can express, tensors and scalars.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// Keys in file order; non-string keys are rendered as strings.
    Dict(Vec<(Value, Value)>),
    Tensor(RawTensor),
}

impl Value {
    /// Looks up a string key in a dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            _ => None,
        }
    }

    /// Every tensor under this value, keyed by its dotted path (`g_ema.style.1.weight`).
    /// Lists and tuples contribute their index as a path element, like `nn.ModuleList`.
    pub fn flatten_tensors(&self) -> TensorMap {
        let mut out = TensorMap::default();
        flatten_into(self, String::new(), &mut out.tensors);
        out
    }
}

fn flatten_into(value: &Value, prefix: String, out: &mut BTreeMap<String, RawTensor>) {
    let join = |key: &str| {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        Value::Tensor(t) => {
            out.insert(prefix, t.clone());
        }
        Value::Dict(entries) => {
            for (k, v) in entries {
                let key = match k {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    other => format!("{other:?}"),
                };
                flatten_into(v, join(&key), out);
            }
        }
        Value::List(items) | Value::Tuple(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten_into(v, join(&i.to_string()), out);
            }
        }
        _ => {}
    }
}

/// Tensors by dotted name, sorted for stable reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TensorMap {
    pub tensors: BTreeMap<String, RawTensor>,
}

impl TensorMap {
    pub fn get(&self, key: &str) -> Option<&RawTensor> {
        self.tensors.get(key)
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The entries under `prefix.` with that prefix removed (e.g. the `g_ema` generator).
    pub fn sub(&self, prefix: &str) -> TensorMap {
        let dotted = format!("{prefix}.");
        TensorMap {
            tensors: self
                .tensors
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(&dotted).map(|rest| (rest.to_string(), v.clone())))
                .collect(),
        }
    }
}
