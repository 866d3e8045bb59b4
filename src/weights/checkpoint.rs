//! Reads checkpoint files into plain [`Value`]s, whatever their container:
//! PyTorch zip (`torch.save` since 1.6), legacy PyTorch (pre-1.6, several pickles back to back
//! followed by raw storages), TorchScript archives, safetensors, `.npy`, and numpy pickles.
//! Pickles go through [`super::pickle`], which refuses any global that is not plain data.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::pickle::{self, DType, Dialect, Node, NodeId, Parsed, PickleError};
use super::tensors::{RawTensor, Value};

/// Why a file could not be read. Every message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {cause}", path.display())]
pub struct CheckpointError {
    pub path: PathBuf,
    pub cause: CheckpointCause,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointCause {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the file is empty")]
    Empty,
    #[error(
        "not a checkpoint this reader knows (PyTorch zip or legacy, TorchScript, safetensors, .npy, numpy pickle)"
    )]
    UnknownFormat,
    #[error("unreadable zip archive: {0}")]
    Zip(String),
    #[error("{0}")]
    Pickle(#[from] PickleError),
    #[error("in {member}: {error}")]
    PickleIn { member: String, error: PickleError },
    #[error("the archive has no data.pkl")]
    NoDataPickle,
    #[error("storage {0} is referenced but missing from the file")]
    MissingStorage(String),
    #[error("storage {key} holds {have} bytes, but a tensor needs bytes up to {need}")]
    StorageTooSmall { key: String, have: usize, need: usize },
    #[error("big-endian data is not supported ({0})")]
    BigEndian(String),
    #[error("legacy torch file: {0}")]
    Legacy(String),
    #[error("bad .npy file: {0}")]
    Npy(String),
    #[error("bad safetensors file: {0}")]
    Safetensors(String),
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
}

/// The container format, as detected from the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    TorchZip,
    TorchScript,
    TorchLegacy,
    Safetensors,
    Npy,
    Pickle,
}

/// Parses a checkpoint without executing anything in it.
pub fn read_checkpoint(path: &Path) -> Result<Value, CheckpointError> {
    let wrap = |cause: CheckpointCause| CheckpointError {
        path: path.to_path_buf(),
        cause,
    };
    let bytes = std::fs::read(path).map_err(|e| wrap(e.into()))?;
    read_checkpoint_bytes(&bytes).map_err(wrap)
}

/// Detects the container format of a file's first bytes.
pub fn detect_format(bytes: &[u8]) -> Result<Format, CheckpointCause> {
    if bytes.is_empty() {
        return Err(CheckpointCause::Empty);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return Ok(Format::TorchZip); // refined to TorchScript once the members are listed
    }
    if bytes.starts_with(b"\x93NUMPY") {
        return Ok(Format::Npy);
    }
    if bytes.len() > 262 && &bytes[257..262] == b"ustar" {
        return Err(CheckpointCause::Legacy(
            "the tar-based format of PyTorch before 0.4 is not supported; re-save the file with a newer PyTorch"
                .into(),
        ));
    }
    if looks_like_safetensors(bytes) {
        return Ok(Format::Safetensors);
    }
    if bytes[0] == 0x80 {
        // Legacy torch files start with a pickle of the magic number 0x1950a86a20f9469cfc6c.
        const LEGACY: [u8; 12] = [
            0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
        ];
        if bytes.len() > 14 && bytes[2..14] == LEGACY {
            return Ok(Format::TorchLegacy);
        }
        return Ok(Format::Pickle);
    }
    Err(CheckpointCause::UnknownFormat)
}

/// A safetensors file starts with its JSON header's length (little-endian u64), then the header.
/// Tested before the pickle opcode: a header of 128 + 256·k bytes makes the first byte 0x80 too.
fn looks_like_safetensors(bytes: &[u8]) -> bool {
    if bytes.len() < 9 {
        return false;
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
    n > 0 && n < bytes.len() as u64 && bytes[8] == b'{'
}

pub fn read_checkpoint_bytes(bytes: &[u8]) -> Result<Value, CheckpointCause> {
    match detect_format(bytes)? {
        Format::TorchZip | Format::TorchScript => read_zip(bytes),
        Format::TorchLegacy => read_legacy(bytes),
        Format::Safetensors => read_safetensors(bytes),
        Format::Npy => read_npy(bytes),
        Format::Pickle => {
            let (parsed, _) = pickle::parse(bytes, Dialect::Numpy)?;
            let mut no_storage =
                |key: &str, _: DType, _: usize| Err(CheckpointCause::MissingStorage(key.to_string()));
            Converter::new(&parsed, &mut no_storage).value(parsed.root, 0)
        }
    }
}

fn read_zip(bytes: &[u8]) -> Result<Value, CheckpointCause> {
    let zip_err = |e: zip::result::ZipError| CheckpointCause::Zip(e.to_string());
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zip_err)?;
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    let data_pkl = names
        .iter()
        .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .or_else(|| names.iter().find(|n| *n == "data.pkl"))
        .ok_or(CheckpointCause::NoDataPickle)?
        .clone();
    let prefix = data_pkl.trim_end_matches("data.pkl").to_string();
    let torchscript = names
        .iter()
        .any(|n| n == &format!("{prefix}constants.pkl") || n.starts_with(&format!("{prefix}code/")));
    if let Some(order) = names.iter().find(|n| *n == &format!("{prefix}byteorder")) {
        let mut text = String::new();
        archive
            .by_name(order)
            .map_err(zip_err)?
            .read_to_string(&mut text)?;
        if text.trim() != "little" {
            return Err(CheckpointCause::BigEndian(format!("byteorder says {text:?}")));
        }
    }
    let mut pkl = Vec::new();
    archive
        .by_name(&data_pkl)
        .map_err(zip_err)?
        .read_to_end(&mut pkl)?;
    let dialect = if torchscript {
        Dialect::TorchScript
    } else {
        Dialect::Torch
    };
    let (parsed, _) = pickle::parse(&pkl, dialect).map_err(|error| CheckpointCause::PickleIn {
        member: data_pkl.clone(),
        error,
    })?;
    let mut load = |key: &str, _: DType, _: usize| -> Result<Vec<u8>, CheckpointCause> {
        let member = format!("{prefix}data/{key}");
        let mut entry = archive
            .by_name(&member)
            .map_err(|_| CheckpointCause::MissingStorage(member.clone()))?;
        let mut out = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut out)?;
        Ok(out)
    };
    Converter::new(&parsed, &mut load).value(parsed.root, 0)
}

fn read_legacy(bytes: &[u8]) -> Result<Value, CheckpointCause> {
    let legacy = |m: &str| CheckpointCause::Legacy(m.to_string());
    let mut pos = 0usize;
    let mut next = |dialect: Dialect| -> Result<Parsed, CheckpointCause> {
        let (parsed, used) = pickle::parse(&bytes[pos..], dialect)?;
        pos += used;
        Ok(parsed)
    };
    let magic = next(Dialect::Torch)?;
    if !matches!(magic.nodes[magic.root], Node::Int(0x1950a86a20f9469cfc6c)) {
        return Err(legacy("wrong magic number"));
    }
    let protocol = next(Dialect::Torch)?;
    if !matches!(protocol.nodes[protocol.root], Node::Int(1001)) {
        return Err(legacy("unknown protocol version"));
    }
    let sys_info = next(Dialect::Torch)?;
    let mut no_storage =
        |key: &str, _: DType, _: usize| Err(CheckpointCause::MissingStorage(key.to_string()));
    let info = Converter::new(&sys_info, &mut no_storage).value(sys_info.root, 0)?;
    if info.get("little_endian") == Some(&Value::Bool(false)) {
        return Err(CheckpointCause::BigEndian("sys_info says big-endian".into()));
    }
    let object = next(Dialect::Torch)?;
    let keys = next(Dialect::Torch)?;
    let key_list: Vec<String> = match &keys.nodes[keys.root] {
        Node::List(items) => items
            .iter()
            .map(|&i| match &keys.nodes[i] {
                Node::Str(s) => Ok(s.clone()),
                _ => Err(legacy("storage key is not a string")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(legacy("storage key list missing")),
    };
    // Each storage's dtype comes from the persistent ids of the object pickle.
    let dtypes: HashMap<&str, DType> = object
        .nodes
        .iter()
        .filter_map(|n| match n {
            Node::Storage { key, dtype, .. } => Some((key.as_str(), *dtype)),
            _ => None,
        })
        .collect();
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    for key in &key_list {
        let dtype = *dtypes
            .get(key.as_str())
            .ok_or_else(|| legacy("a storage has no tensor"))?;
        let header = bytes
            .get(pos..pos + 8)
            .ok_or_else(|| legacy("truncated before a storage"))?;
        let numel = u64::from_le_bytes(header.try_into().unwrap_or([0; 8]));
        pos += 8;
        let len = usize::try_from(numel)
            .ok()
            .and_then(|n| n.checked_mul(dtype.size()))
            .ok_or_else(|| legacy("storage size overflows"))?;
        let data = bytes
            .get(pos..pos + len)
            .ok_or_else(|| legacy(&format!("truncated inside storage {key} ({len} bytes expected)")))?;
        storages.insert(key.clone(), data.to_vec());
        pos += len;
    }
    let mut load = |key: &str, _: DType, _: usize| {
        storages
            .get(key)
            .cloned()
            .ok_or_else(|| CheckpointCause::MissingStorage(key.to_string()))
    };
    Converter::new(&object, &mut load).value(object.root, 0)
}

fn read_safetensors(bytes: &[u8]) -> Result<Value, CheckpointCause> {
    use safetensors::tensor::Dtype as St;
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| CheckpointCause::Safetensors(e.to_string()))?;
    let mut names = st.names();
    names.sort();
    let mut entries = Vec::new();
    for name in names {
        let view = st
            .tensor(name)
            .map_err(|e| CheckpointCause::Safetensors(e.to_string()))?;
        let dtype = match view.dtype() {
            St::F64 => DType::F64,
            St::F32 => DType::F32,
            St::F16 => DType::F16,
            St::BF16 => DType::BF16,
            St::I64 => DType::I64,
            St::I32 => DType::I32,
            St::I16 => DType::I16,
            St::I8 => DType::I8,
            St::U8 => DType::U8,
            St::BOOL => DType::Bool,
            other => {
                return Err(CheckpointCause::Safetensors(format!(
                    "{name}: unsupported dtype {other:?}"
                )));
            }
        };
        let tensor = RawTensor {
            shape: view.shape().to_vec(),
            values: pickle::decode_elements(dtype, view.data()),
        };
        entries.push((Value::Str(name.to_string()), Value::Tensor(tensor)));
    }
    Ok(Value::Dict(entries))
}

fn read_npy(bytes: &[u8]) -> Result<Value, CheckpointCause> {
    let npy = |m: String| CheckpointCause::Npy(m);
    let major = *bytes.get(6).ok_or_else(|| npy("truncated header".into()))?;
    let (len, start) = match major {
        1 => (
            u16::from_le_bytes([
                bytes.get(8).copied().unwrap_or(0),
                bytes.get(9).copied().unwrap_or(0),
            ]) as usize,
            10,
        ),
        2 | 3 => {
            let b = bytes.get(8..12).ok_or_else(|| npy("truncated header".into()))?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
        v => return Err(npy(format!("unknown version {v}"))),
    };
    let header = bytes
        .get(start..start + len)
        .ok_or_else(|| npy("truncated header".into()))?;
    let header = std::str::from_utf8(header).map_err(|_| npy("header is not text".into()))?;
    let field = |name: &str| -> Option<&str> {
        let at = header.find(&format!("'{name}'"))?;
        Some(
            header[at + name.len() + 2..]
                .trim_start()
                .trim_start_matches(':')
                .trim_start(),
        )
    };
    let descr = field("descr")
        .and_then(|s| s.strip_prefix('\''))
        .and_then(|s| s.split('\'').next());
    let descr = descr.ok_or_else(|| npy("no descr".into()))?;
    if descr.starts_with('>') && !descr.ends_with('1') {
        return Err(CheckpointCause::BigEndian(format!("descr {descr}")));
    }
    let dtype = DType::from_numpy(descr.trim_start_matches(['<', '>', '=', '|'])).ok_or_else(|| {
        npy(format!(
            "unsupported dtype {descr} (object arrays would need pickle)"
        ))
    })?;
    let fortran = field("fortran_order").is_some_and(|s| s.starts_with("True"));
    let shape_text = field("shape")
        .and_then(|s| s.strip_prefix('('))
        .and_then(|s| s.split(')').next());
    let shape: Vec<usize> = shape_text
        .ok_or_else(|| npy("no shape".into()))?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| npy(format!("bad shape entry {s}"))))
        .collect::<Result<_, _>>()?;
    let numel: usize = shape.iter().product();
    let data = bytes
        .get(start + len..start + len + numel * dtype.size())
        .ok_or_else(|| {
            npy(format!(
                "data truncated ({} bytes expected)",
                numel * dtype.size()
            ))
        })?;
    Ok(Value::Tensor(array_tensor(shape, dtype, data, fortran)))
}

/// A numpy array's bytes as a row-major tensor.
fn array_tensor(shape: Vec<usize>, dtype: DType, data: &[u8], fortran: bool) -> RawTensor {
    if !fortran || shape.len() < 2 {
        return RawTensor {
            shape,
            values: pickle::decode_elements(dtype, data),
        };
    }
    // Column-major: element (i0..in) sits at sum(i_k * prod(shape[..k])).
    let es = dtype.size();
    let numel: usize = shape.iter().product();
    let mut out = Vec::with_capacity(numel * es);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..numel {
        let mut off = 0;
        let mut mul = 1;
        for (k, &i) in idx.iter().enumerate() {
            off += i * mul;
            mul *= shape[k];
        }
        out.extend_from_slice(&data[off * es..(off + 1) * es]);
        for k in (0..shape.len()).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    RawTensor {
        shape,
        values: pickle::decode_elements(dtype, &out),
    }
}

const MAX_DEPTH: usize = 256;

type StorageLoader<'a> = dyn FnMut(&str, DType, usize) -> Result<Vec<u8>, CheckpointCause> + 'a;

/// Turns a pickle's node graph into values, reading each storage once.
struct Converter<'p, 'l> {
    parsed: &'p Parsed,
    load: &'l mut StorageLoader<'l>,
    storages: HashMap<String, Rc<Vec<u8>>>,
}

impl<'p, 'l> Converter<'p, 'l> {
    fn new(parsed: &'p Parsed, load: &'l mut StorageLoader<'l>) -> Self {
        Converter {
            parsed,
            load,
            storages: HashMap::new(),
        }
    }

    fn value(&mut self, id: NodeId, depth: usize) -> Result<Value, CheckpointCause> {
        if depth > MAX_DEPTH {
            return Err(CheckpointCause::TooDeep(MAX_DEPTH));
        }
        let nodes = &self.parsed.nodes;
        Ok(match &nodes[id] {
            Node::None | Node::Global { .. } | Node::Storage { .. } | Node::NumpyDtype { .. } => Value::None,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::Int(i64::try_from(*i).unwrap_or(if *i < 0 { i64::MIN } else { i64::MAX })),
            Node::Float(f) => Value::Float(*f),
            Node::Str(s) => Value::Str(s.clone()),
            Node::Bytes(b) => Value::Bytes(b.clone()),
            Node::List(items) | Node::Set(items) => Value::List(
                items
                    .clone()
                    .into_iter()
                    .map(|i| self.value(i, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Tuple(items) => Value::Tuple(
                items
                    .clone()
                    .into_iter()
                    .map(|i| self.value(i, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Dict(pairs) => {
                let mut out = Vec::with_capacity(pairs.len());
                for (k, v) in pairs.clone() {
                    out.push((self.value(k, depth + 1)?, self.value(v, depth + 1)?));
                }
                Value::Dict(out)
            }
            // A TorchScript module is the dict of its attributes (parameters, buffers, submodules).
            Node::Object { state, .. } => match state {
                Some(s) => self.value(*s, depth + 1)?,
                None => Value::Dict(Vec::new()),
            },
            Node::Tensor {
                storage,
                offset,
                shape,
                stride,
            } => {
                let (offset, shape, stride, storage) = (*offset, shape.clone(), stride.clone(), *storage);
                Value::Tensor(self.tensor(storage, offset, shape, stride)?)
            }
            Node::NumpyArray {
                shape,
                dtype,
                data,
                fortran,
            } => {
                let dt = match dtype.map(|d| &nodes[d]) {
                    Some(Node::NumpyDtype { code, big_endian }) => {
                        let dt = DType::from_numpy(code.trim_start_matches(['<', '>', '=', '|']))
                            .ok_or_else(|| PickleError::Unsupported(format!("numpy dtype {code}")))?;
                        if *big_endian && dt.size() > 1 {
                            return Err(CheckpointCause::BigEndian(format!("numpy dtype {code}")));
                        }
                        dt
                    }
                    _ => return Err(PickleError::Unsupported("numpy array without dtype".into()).into()),
                };
                let numel: usize = shape.iter().product();
                if data.len() < numel * dt.size() {
                    return Err(CheckpointCause::StorageTooSmall {
                        key: "numpy array".into(),
                        have: data.len(),
                        need: numel * dt.size(),
                    });
                }
                Value::Tensor(array_tensor(
                    shape.clone(),
                    dt,
                    &data[..numel * dt.size()],
                    *fortran,
                ))
            }
        })
    }

    fn tensor(
        &mut self,
        storage: NodeId,
        offset: usize,
        shape: Vec<usize>,
        stride: Vec<usize>,
    ) -> Result<RawTensor, CheckpointCause> {
        let Node::Storage { key, dtype, numel } = &self.parsed.nodes[storage] else {
            return Err(PickleError::Unsupported("tensor without storage".into()).into());
        };
        let (key, dtype, numel) = (key.clone(), *dtype, *numel);
        let bytes = match self.storages.get(&key) {
            Some(b) => b.clone(),
            None => {
                let b = Rc::new((self.load)(&key, dtype, numel)?);
                self.storages.insert(key.clone(), b.clone());
                b
            }
        };
        let es = dtype.size();
        if shape.len() != stride.len() {
            return Err(PickleError::Unsupported("tensor shape and stride differ in rank".into()).into());
        }
        let count: usize = shape.iter().product();
        if count == 0 {
            return Ok(RawTensor {
                shape,
                values: pickle::decode_elements(dtype, &[]),
            });
        }
        // The last element a view touches must be inside the storage.
        let last = offset
            + shape
                .iter()
                .zip(&stride)
                .map(|(&n, &s)| (n - 1) * s)
                .sum::<usize>();
        if (last + 1) * es > bytes.len() {
            return Err(CheckpointCause::StorageTooSmall {
                key,
                have: bytes.len(),
                need: (last + 1) * es,
            });
        }
        let contiguous = {
            let mut expect = 1;
            let mut ok = true;
            for (&n, &s) in shape.iter().zip(&stride).rev() {
                if n != 1 && s != expect {
                    ok = false;
                }
                expect *= n;
            }
            ok
        };
        if contiguous {
            return Ok(RawTensor {
                shape,
                values: pickle::decode_elements(dtype, &bytes[offset * es..(offset + count) * es]),
            });
        }
        let mut out = Vec::with_capacity(count * es);
        let mut idx = vec![0usize; shape.len()];
        for _ in 0..count {
            let at = offset + idx.iter().zip(&stride).map(|(&i, &s)| i * s).sum::<usize>();
            out.extend_from_slice(&bytes[at * es..(at + 1) * es]);
            for k in (0..shape.len()).rev() {
                idx[k] += 1;
                if idx[k] < shape[k] {
                    break;
                }
                idx[k] = 0;
            }
        }
        Ok(RawTensor {
            shape,
            values: pickle::decode_elements(dtype, &out),
        })
    }
}
