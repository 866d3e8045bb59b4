//! Writes a [`Value`] tree as a PyTorch checkpoint (`torch.save`'s zip format), so that files
//! Facecast makes (a fine-tuned generator, its optimizer state) load back in PyTorch with
//! `torch.load(path, weights_only=True)` and in Facecast through [`super::checkpoint`].
//!
//! The format: a zip archive whose entries sit under one folder (`archive/`): `data.pkl`, a
//! pickle (protocol 2) of the object in which each tensor is a call of
//! `torch._utils._rebuild_tensor_v2` on a *persistent id* naming its storage; `data/<key>`, the
//! raw little-endian bytes of each storage; `byteorder`; and `version` (also as `.data/version`,
//! where newer readers look first). Entries are stored, not deflated, as `torch.save` does.
//!
//! Only the globals `torch.load(weights_only=True)` accepts are written: `torch._utils.
//! _rebuild_tensor_v2`, `collections.OrderedDict` (the empty backward-hooks argument) and the
//! storage classes. Every dict is a plain `dict`: `load_state_dict` takes any mapping.

use std::io::{Cursor, Write};

use thiserror::Error;
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

use super::tensors::{RawTensor, TensorValues, Value};

/// The folder every entry of the archive sits in; torch reads whatever the first entry names.
const ARCHIVE_DIR: &str = "archive";
/// The zip format's serialization version torch 1.6 to 2.x writes.
const FORMAT_VERSION: &str = "3\n";

#[derive(Debug, Error)]
pub enum TorchSaveError {
    #[error("a checkpoint cannot hold {what} (pickle protocol 2 has no opcode for it)")]
    Unsupported { what: &'static str },
    #[error("tensor of shape {shape:?} holds {len} values")]
    ShapeMismatch { shape: Vec<usize>, len: usize },
    #[error("writing the zip archive: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("writing the zip archive: {0}")]
    Io(#[from] std::io::Error),
}

/// `value` as the bytes of a `torch.save` file.
pub fn torch_save_bytes(value: &Value) -> Result<Vec<u8>, TorchSaveError> {
    let mut pickler = Pickler::default();
    pickler.out.extend_from_slice(&[op::PROTO, 2]);
    pickler.value(value)?;
    pickler.out.push(op::STOP);

    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .large_file(pickler.storages.iter().map(Vec::len).sum::<usize>() > u32::MAX as usize / 2);
    let mut entry = |name: &str, bytes: &[u8]| -> Result<(), TorchSaveError> {
        zip.start_file(format!("{ARCHIVE_DIR}/{name}"), stored)?;
        zip.write_all(bytes)?;
        Ok(())
    };
    entry("data.pkl", &pickler.out)?;
    entry("byteorder", b"little")?;
    for (key, bytes) in pickler.storages.iter().enumerate() {
        entry(&format!("data/{key}"), bytes)?;
    }
    entry("version", FORMAT_VERSION.as_bytes())?;
    entry(".data/version", FORMAT_VERSION.as_bytes())?;
    Ok(zip.finish()?.into_inner())
}

/// The pickle opcodes this writer uses (Python's `pickletools` names them the same).
mod op {
    pub const PROTO: u8 = 0x80;
    pub const STOP: u8 = b'.';
    pub const MARK: u8 = b'(';
    pub const NONE: u8 = b'N';
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const BININT: u8 = b'J';
    pub const LONG1: u8 = 0x8a;
    pub const BINFLOAT: u8 = b'G';
    pub const BINUNICODE: u8 = b'X';
    pub const EMPTY_LIST: u8 = b']';
    pub const APPENDS: u8 = b'e';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const TUPLE: u8 = b't';
    pub const EMPTY_DICT: u8 = b'}';
    pub const SETITEMS: u8 = b'u';
    pub const GLOBAL: u8 = b'c';
    pub const REDUCE: u8 = b'R';
    pub const BINPERSID: u8 = b'Q';
}

#[derive(Default)]
struct Pickler {
    out: Vec<u8>,
    /// The storages in key order: `data/0`, `data/1`, …
    storages: Vec<Vec<u8>>,
}

impl Pickler {
    fn value(&mut self, value: &Value) -> Result<(), TorchSaveError> {
        match value {
            Value::None => self.out.push(op::NONE),
            Value::Bool(b) => self.out.push(if *b { op::NEWTRUE } else { op::NEWFALSE }),
            Value::Int(i) => self.int(*i),
            Value::Float(f) => {
                self.out.push(op::BINFLOAT);
                self.out.extend_from_slice(&f.to_be_bytes());
            }
            Value::Str(s) => self.str(s),
            Value::Bytes(_) => return Err(TorchSaveError::Unsupported { what: "raw bytes" }),
            Value::List(items) => {
                self.out.push(op::EMPTY_LIST);
                if !items.is_empty() {
                    self.out.push(op::MARK);
                    for item in items {
                        self.value(item)?;
                    }
                    self.out.push(op::APPENDS);
                }
            }
            Value::Tuple(items) => {
                self.out.push(op::MARK);
                for item in items {
                    self.value(item)?;
                }
                self.out.push(op::TUPLE);
            }
            Value::Dict(entries) => {
                self.out.push(op::EMPTY_DICT);
                if !entries.is_empty() {
                    self.out.push(op::MARK);
                    for (key, item) in entries {
                        self.value(key)?;
                        self.value(item)?;
                    }
                    self.out.push(op::SETITEMS);
                }
            }
            Value::Tensor(tensor) => self.tensor(tensor)?,
        }
        Ok(())
    }

    fn int(&mut self, i: i64) {
        if let Ok(small) = i32::try_from(i) {
            self.out.push(op::BININT);
            self.out.extend_from_slice(&small.to_le_bytes());
        } else {
            // Two's complement, little-endian, 8 bytes: LONG1's encoding of any i64.
            self.out.extend_from_slice(&[op::LONG1, 8]);
            self.out.extend_from_slice(&i.to_le_bytes());
        }
    }

    fn str(&mut self, s: &str) {
        self.out.push(op::BINUNICODE);
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
    }

    fn global(&mut self, module: &str, name: &str) {
        self.out.push(op::GLOBAL);
        self.out.extend_from_slice(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'\n');
    }

    fn tuple_of_ints(&mut self, values: &[usize]) {
        self.out.push(op::MARK);
        for &v in values {
            self.int(v as i64);
        }
        self.out.push(op::TUPLE);
    }

    /// `_rebuild_tensor_v2(storage, 0, size, contiguous stride, False, OrderedDict())`.
    fn tensor(&mut self, tensor: &RawTensor) -> Result<(), TorchSaveError> {
        let (storage_class, bytes, len) = match &tensor.values {
            TensorValues::F32(v) => (
                "FloatStorage",
                v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>(),
                v.len(),
            ),
            TensorValues::I64(v) => (
                "LongStorage",
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                v.len(),
            ),
            TensorValues::Bool(v) => ("BoolStorage", v.iter().map(|&b| u8::from(b)).collect(), v.len()),
        };
        if len != tensor.numel() {
            return Err(TorchSaveError::ShapeMismatch {
                shape: tensor.shape.clone(),
                len,
            });
        }
        let key = self.storages.len();
        self.storages.push(bytes);

        self.global("torch._utils", "_rebuild_tensor_v2");
        self.out.push(op::MARK);
        // The persistent id: ('storage', <storage class>, key, location, number of elements).
        self.out.push(op::MARK);
        self.str("storage");
        self.global("torch", storage_class);
        self.str(&key.to_string());
        self.str("cpu");
        self.int(len as i64);
        self.out.push(op::TUPLE);
        self.out.push(op::BINPERSID);
        self.int(0);
        self.tuple_of_ints(&tensor.shape);
        self.tuple_of_ints(&contiguous_strides(&tensor.shape));
        self.out.push(op::NEWFALSE);
        self.global("collections", "OrderedDict");
        self.out.push(op::EMPTY_TUPLE);
        self.out.push(op::REDUCE);
        self.out.push(op::TUPLE);
        self.out.push(op::REDUCE);
        Ok(())
    }
}

/// Row-major strides, in elements.
fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::checkpoint::read_checkpoint_bytes;

    fn f32_tensor(shape: &[usize]) -> Value {
        let n: usize = shape.iter().product();
        Value::Tensor(RawTensor::f32(
            shape.to_vec(),
            (0..n).map(|i| i as f32 * 0.5 - 3.0).collect(),
        ))
    }

    #[test]
    fn a_training_checkpoint_reads_back_as_written() {
        let state = Value::Dict(vec![
            (Value::Str("conv.weight".into()), f32_tensor(&[4, 3, 3, 3])),
            (Value::Str("conv.bias".into()), f32_tensor(&[4])),
            (
                Value::Str("step".into()),
                Value::Tensor(RawTensor::f32(vec![], vec![17.0])),
            ),
            (
                Value::Str("num_batches_tracked".into()),
                Value::Tensor(RawTensor {
                    shape: vec![],
                    values: TensorValues::I64(vec![1 << 40]),
                }),
            ),
            (
                Value::Str("mask".into()),
                Value::Tensor(RawTensor {
                    shape: vec![2, 2],
                    values: TensorValues::Bool(vec![true, false, false, true]),
                }),
            ),
        ]);
        let checkpoint = Value::Dict(vec![
            (Value::Str("g".into()), state.clone()),
            (
                Value::Str("args".into()),
                Value::Dict(vec![
                    (Value::Str("size".into()), Value::Int(256)),
                    (Value::Str("lr".into()), Value::Float(0.002)),
                    (Value::Str("big".into()), Value::Int(-(1 << 40))),
                    (Value::Str("augment".into()), Value::Bool(false)),
                    (Value::Str("ckpt".into()), Value::None),
                    (
                        Value::Str("betas".into()),
                        Value::Tuple(vec![Value::Float(0.0), Value::Float(0.99)]),
                    ),
                    (
                        Value::Str("params".into()),
                        Value::List(vec![Value::Int(0), Value::Int(1)]),
                    ),
                    (Value::Str("empty".into()), Value::List(vec![])),
                ]),
            ),
        ]);
        let bytes = torch_save_bytes(&checkpoint).expect("write");
        let read = read_checkpoint_bytes(&bytes).expect("read back");
        assert_eq!(read, checkpoint);
    }

    #[test]
    fn a_tensor_whose_values_do_not_fill_its_shape_is_refused() {
        let bad = Value::Tensor(RawTensor::f32(vec![2, 3], vec![0.0; 5]));
        assert!(matches!(
            torch_save_bytes(&bad),
            Err(TorchSaveError::ShapeMismatch { len: 5, .. })
        ));
    }

    #[test]
    fn strides_are_row_major() {
        assert_eq!(contiguous_strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(contiguous_strides(&[]), Vec::<usize>::new());
        assert_eq!(contiguous_strides(&[5]), vec![1]);
    }
}
