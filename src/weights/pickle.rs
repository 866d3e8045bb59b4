//! A pickle reader that builds values and never executes anything.
//!
//! PyTorch and numpy files are Python pickles. A pickle may name any Python callable
//! (`os.system`, `builtins.eval`...) and ask for it to be called; the standard unpickler obeys.
//! This reader knows a short list of globals by name — containers, tensor rebuilders, storage
//! types, numpy array reconstruction, and (for TorchScript archives only) module classes — and
//! refuses the file as soon as any other global appears, naming it. Even the known globals are
//! never "called": each has a fixed, data-only meaning implemented here.

use std::collections::HashMap;

use half::{bf16, f16};

/// Which globals a file may name besides containers and tensor rebuilders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `torch.save` files: state dicts and nested dicts of tensors.
    Torch,
    /// TorchScript archives: additionally `__torch__.*` module classes (objects with a state dict).
    TorchScript,
    /// numpy pickles (`np.save(allow_pickle=True)`, `pickle.dump` of arrays).
    Numpy,
}

/// The element type of a storage or array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    fn from_torch_storage(name: &str) -> Option<DType> {
        Some(match name {
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }

    /// numpy's `descr` without the byte-order character (`f4`, `i8`, `b1`...).
    pub fn from_numpy(code: &str) -> Option<DType> {
        Some(match code {
            "f8" => DType::F64,
            "f4" => DType::F32,
            "f2" => DType::F16,
            "i8" => DType::I64,
            "i4" => DType::I32,
            "i2" => DType::I16,
            "i1" => DType::I8,
            "u1" => DType::U8,
            "b1" => DType::Bool,
            _ => return None,
        })
    }
}

/// Decodes little-endian bytes into f32, i64 or bool values.
pub fn decode_elements(dtype: DType, bytes: &[u8]) -> crate::weights::TensorValues {
    use crate::weights::TensorValues;
    let n = dtype.size();
    let chunks = bytes.chunks_exact(n);
    match dtype {
        DType::F32 => TensorValues::F32(
            chunks
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        DType::F64 => TensorValues::F32(
            chunks
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
        ),
        DType::F16 => TensorValues::F32(
            chunks
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        ),
        DType::BF16 => TensorValues::F32(
            chunks
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        ),
        DType::I64 => TensorValues::I64(
            chunks
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        ),
        DType::I32 => TensorValues::I64(
            chunks
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
        ),
        DType::I16 => TensorValues::I64(chunks.map(|c| i16::from_le_bytes([c[0], c[1]]) as i64).collect()),
        DType::I8 => TensorValues::I64(chunks.map(|c| c[0] as i8 as i64).collect()),
        DType::U8 => TensorValues::I64(chunks.map(|c| c[0] as i64).collect()),
        DType::Bool => TensorValues::Bool(chunks.map(|c| c[0] != 0).collect()),
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PickleError {
    #[error(
        "refuses the Python global `{0}`: a weights file has no reason to name it (the file may be hostile)"
    )]
    ForbiddenGlobal(String),
    #[error("refuses opcode {name} (0x{code:02x}) at byte {at}: it builds arbitrary objects")]
    ForbiddenOpcode { name: &'static str, code: u8, at: usize },
    #[error("unknown opcode 0x{code:02x} at byte {at}")]
    UnknownOpcode { code: u8, at: usize },
    #[error("truncated pickle (ended inside an instruction at byte {0})")]
    Truncated(usize),
    #[error("malformed pickle at byte {at}: {reason}")]
    Malformed { at: usize, reason: String },
    #[error("unsupported construct: {0}")]
    Unsupported(String),
}

/// Index of a node in the arena; the memo and containers share nodes like Python shares objects.
pub type NodeId = usize;

/// A parsed pickle object. Containers refer to other nodes by id so that mutation after
/// memoisation (`EMPTY_DICT`, `BINPUT`, `SETITEMS`) is seen by every reference, as in Python.
#[derive(Debug, Clone)]
pub enum Node {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<NodeId>),
    Tuple(Vec<NodeId>),
    Dict(Vec<(NodeId, NodeId)>),
    Set(Vec<NodeId>),
    /// A global that is on the allow-list, e.g. `collections.OrderedDict`.
    Global {
        module: String,
        name: String,
    },
    /// An object of a TorchScript module class; its attributes arrive through BUILD.
    Object {
        class: String,
        state: Option<NodeId>,
    },
    /// A storage named by a persistent id: its bytes live outside the pickle.
    Storage {
        key: String,
        dtype: DType,
        numel: usize,
    },
    /// A tensor view over a storage.
    Tensor {
        storage: NodeId,
        offset: usize,
        shape: Vec<usize>,
        stride: Vec<usize>,
    },
    /// A numpy dtype (the byte order arrives through BUILD).
    NumpyDtype {
        code: String,
        big_endian: bool,
    },
    /// A numpy array; `data` and `shape` arrive through BUILD.
    NumpyArray {
        shape: Vec<usize>,
        dtype: Option<NodeId>,
        data: Vec<u8>,
        fortran: bool,
    },
}

/// The result of parsing one pickle: the node arena and the root.
#[derive(Debug)]
pub struct Parsed {
    pub nodes: Vec<Node>,
    pub root: NodeId,
}

const MAX_NODES: usize = 50_000_000;

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    dialect: Dialect,
    nodes: Vec<Node>,
    stack: Vec<NodeId>,
    marks: Vec<usize>,
    memo: HashMap<u64, NodeId>,
}

/// Parses one pickle from the start of `data`; returns the parse and the number of bytes consumed
/// (legacy torch files are several pickles back to back).
pub fn parse(data: &[u8], dialect: Dialect) -> Result<(Parsed, usize), PickleError> {
    let mut m = Machine {
        data,
        pos: 0,
        dialect,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    let root = m.run()?;
    Ok((Parsed { nodes: m.nodes, root }, m.pos))
}

impl<'a> Machine<'a> {
    fn err(&self, reason: impl Into<String>) -> PickleError {
        PickleError::Malformed {
            at: self.pos,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).ok_or(PickleError::Truncated(self.pos))?;
        if end > self.data.len() {
            return Err(PickleError::Truncated(self.pos));
        }
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, PickleError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.data[self.pos..];
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(PickleError::Truncated(self.pos))?;
        let s = std::str::from_utf8(&rest[..nl]).map_err(|_| self.err("text argument is not UTF-8"))?;
        self.pos += nl + 1;
        Ok(s)
    }

    fn push(&mut self, node: Node) -> Result<(), PickleError> {
        if self.nodes.len() >= MAX_NODES {
            return Err(self.err("too many objects"));
        }
        self.nodes.push(node);
        self.stack.push(self.nodes.len() - 1);
        Ok(())
    }

    fn pop(&mut self) -> Result<NodeId, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("stack underflow"));
        }
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    fn top(&self) -> Result<NodeId, PickleError> {
        self.stack.last().copied().ok_or_else(|| self.err("empty stack"))
    }

    fn pop_mark(&mut self) -> Result<Vec<NodeId>, PickleError> {
        let mark = self.marks.pop().ok_or_else(|| self.err("no MARK"))?;
        if mark > self.stack.len() {
            return Err(self.err("MARK beyond the stack"));
        }
        Ok(self.stack.split_off(mark))
    }

    fn string_of(&self, id: NodeId) -> Result<String, PickleError> {
        match &self.nodes[id] {
            Node::Str(s) => Ok(s.clone()),
            other => Err(self.err(format!("expected a string, found {}", kind(other)))),
        }
    }

    fn int_of(&self, id: NodeId) -> Result<i128, PickleError> {
        match &self.nodes[id] {
            Node::Int(i) => Ok(*i),
            Node::Bool(b) => Ok(*b as i128),
            other => Err(self.err(format!("expected an integer, found {}", kind(other)))),
        }
    }

    fn usize_of(&self, id: NodeId) -> Result<usize, PickleError> {
        let v = self.int_of(id)?;
        usize::try_from(v).map_err(|_| self.err(format!("expected a size, found {v}")))
    }

    fn usizes_of(&self, id: NodeId) -> Result<Vec<usize>, PickleError> {
        match &self.nodes[id] {
            Node::Tuple(items) | Node::List(items) => items.iter().map(|&i| self.usize_of(i)).collect(),
            other => Err(self.err(format!("expected a tuple of sizes, found {}", kind(other)))),
        }
    }

    fn items_of(&self, id: NodeId) -> Result<Vec<NodeId>, PickleError> {
        match &self.nodes[id] {
            Node::Tuple(items) | Node::List(items) => Ok(items.clone()),
            other => Err(self.err(format!("expected a tuple, found {}", kind(other)))),
        }
    }

    /// The allow-list. Anything else is refused by name before it can be used.
    fn global(&mut self, module: &str, name: &str) -> Result<(), PickleError> {
        let allowed = match (module, name) {
            ("collections", "OrderedDict") => true,
            ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor" | "_rebuild_parameter") => true,
            ("torch", n) if DType::from_torch_storage(n).is_some() => true,
            ("_codecs", "encode") => true,
            // train.py saves its command-line arguments as a Namespace: a plain attribute bag
            // (no code runs to build one), read here as the dict of its attributes.
            ("argparse", "Namespace") => true,
            ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct" | "scalar") => {
                self.dialect == Dialect::Numpy
            }
            ("numpy", "ndarray" | "dtype") => self.dialect == Dialect::Numpy,
            (m, _) if m.starts_with("__torch__.") || m == "__torch__" => self.dialect == Dialect::TorchScript,
            _ => false,
        };
        if !allowed {
            return Err(PickleError::ForbiddenGlobal(format!("{module}.{name}")));
        }
        self.push(Node::Global {
            module: module.to_string(),
            name: name.to_string(),
        })
    }

    fn run(&mut self) -> Result<NodeId, PickleError> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    // PROTO
                    self.u8()?;
                }
                0x95 => {
                    // FRAME: a length hint only
                    self.u64()?;
                }
                b'.' => {
                    // STOP
                    return self.pop();
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let t = self.top()?;
                    self.stack.push(t);
                }
                b'N' => self.push(Node::None)?,
                0x88 => self.push(Node::Bool(true))?,
                0x89 => self.push(Node::Bool(false))?,
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Node::Int(v as i128))?
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Node::Int(v as i128))?
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Node::Int(v as i128))?
                }
                b'I' => {
                    let text = self.line()?;
                    let node = match text {
                        "01" => Node::Bool(true),
                        "00" => Node::Bool(false),
                        t => Node::Int(t.parse().map_err(|_| self.err("bad INT"))?),
                    };
                    self.push(node)?
                }
                b'L' => {
                    let text = self.line()?.trim_end_matches('L');
                    let v = text.parse().map_err(|_| self.err("bad LONG"))?;
                    self.push(Node::Int(v))?
                }
                0x8a | 0x8b => {
                    // LONG1, LONG4: little-endian two's complement
                    let n = if op == 0x8a {
                        self.u8()? as usize
                    } else {
                        self.u32()? as usize
                    };
                    if n > 16 {
                        return Err(self.err("integer wider than 128 bits"));
                    }
                    let bytes = self.take(n)?;
                    let mut buf = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
                        [0xffu8; 16]
                    } else {
                        [0u8; 16]
                    };
                    buf[..n].copy_from_slice(bytes);
                    self.push(Node::Int(i128::from_le_bytes(buf)))?
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push(Node::Float(f64::from_be_bytes(a)))?
                }
                b'F' => {
                    let v = self.line()?.parse().map_err(|_| self.err("bad FLOAT"))?;
                    self.push(Node::Float(v))?
                }
                b'X' | 0x8c | 0x8d => {
                    let n = match op {
                        b'X' => self.u32()? as usize,
                        0x8c => self.u8()? as usize,
                        _ => usize::try_from(self.u64()?).map_err(|_| self.err("length"))?,
                    };
                    let b = self.take(n)?;
                    let s = String::from_utf8(b.to_vec()).map_err(|_| self.err("string is not UTF-8"))?;
                    self.push(Node::Str(s))?
                }
                b'V' => {
                    let s = self.line()?.to_string();
                    self.push(Node::Str(s))?
                }
                b'T' | b'U' => {
                    // BINSTRING, SHORT_BINSTRING (Python 2 str): kept as text when it decodes
                    let n = if op == b'T' {
                        self.u32()? as usize
                    } else {
                        self.u8()? as usize
                    };
                    let b = self.take(n)?;
                    let node = match std::str::from_utf8(b) {
                        Ok(s) => Node::Str(s.to_string()),
                        Err(_) => Node::Bytes(b.to_vec()),
                    };
                    self.push(node)?
                }
                b'B' | b'C' | 0x8e | 0x96 => {
                    let n = match op {
                        b'B' => self.u32()? as usize,
                        b'C' => self.u8()? as usize,
                        _ => usize::try_from(self.u64()?).map_err(|_| self.err("length"))?,
                    };
                    let b = self.take(n)?.to_vec();
                    self.push(Node::Bytes(b))?
                }
                b']' => self.push(Node::List(Vec::new()))?,
                b')' => self.push(Node::Tuple(Vec::new()))?,
                b'}' => self.push(Node::Dict(Vec::new()))?,
                0x8f => self.push(Node::Set(Vec::new()))?,
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items))?
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items))?
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Node::Set(items))?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Node::Tuple(items))?
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(&items).ok_or_else(|| self.err("odd number of dict items"))?;
                    self.push(Node::Dict(pairs))?
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top()?;
                    self.append(list, vec![item])?
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let list = self.top()?;
                    self.append(list, items)?
                }
                0x90 => {
                    let items = self.pop_mark()?;
                    let set = self.top()?;
                    self.append(set, items)?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let dict = self.top()?;
                    self.set_items(dict, vec![(k, v)])?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let kv = pairs(&items).ok_or_else(|| self.err("odd number of dict items"))?;
                    let dict = self.top()?;
                    self.set_items(dict, kv)?
                }
                b'g' => {
                    let key: u64 = self.line()?.parse().map_err(|_| self.err("bad GET"))?;
                    self.get(key)?
                }
                b'h' => {
                    let key = self.u8()? as u64;
                    self.get(key)?
                }
                b'j' => {
                    let key = self.u32()? as u64;
                    self.get(key)?
                }
                b'p' => {
                    let key: u64 = self.line()?.parse().map_err(|_| self.err("bad PUT"))?;
                    self.put(key)?
                }
                b'q' => {
                    let key = self.u8()? as u64;
                    self.put(key)?
                }
                b'r' => {
                    let key = self.u32()? as u64;
                    self.put(key)?
                }
                0x94 => {
                    let key = self.memo.len() as u64;
                    self.put(key)?
                }
                b'c' => {
                    let module = self.line()?.to_string();
                    let name = self.line()?.to_string();
                    self.global(&module, &name)?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (module, name) = (self.string_of(module)?, self.string_of(name)?);
                    self.global(&module, &name)?
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let node = self.reduce(func, args)?;
                    self.push(node)?
                }
                0x81 => {
                    // NEWOBJ: cls.__new__(cls, *args)
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let node = self.new_object(cls, args)?;
                    self.push(node)?
                }
                0x92 => {
                    // NEWOBJ_EX
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let node = self.new_object(cls, args)?;
                    self.push(node)?
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.top()?;
                    self.build(obj, state)?
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let node = self.persistent(pid)?;
                    self.push(node)?
                }
                b'P' => {
                    let text = self.line()?.to_string();
                    return Err(self.err(format!("text persistent id {text:?} is not a torch storage")));
                }
                b'i' => {
                    return Err(PickleError::ForbiddenOpcode {
                        name: "INST",
                        code: op,
                        at,
                    });
                }
                b'o' => {
                    return Err(PickleError::ForbiddenOpcode {
                        name: "OBJ",
                        code: op,
                        at,
                    });
                }
                0x82..=0x84 => {
                    return Err(PickleError::ForbiddenOpcode {
                        name: "EXT",
                        code: op,
                        at,
                    });
                }
                0x97 | 0x98 => {
                    return Err(PickleError::ForbiddenOpcode {
                        name: "BUFFER",
                        code: op,
                        at,
                    });
                }
                _ => return Err(PickleError::UnknownOpcode { code: op, at }),
            }
        }
    }

    fn get(&mut self, key: u64) -> Result<(), PickleError> {
        let id = *self
            .memo
            .get(&key)
            .ok_or_else(|| self.err(format!("memo key {key} was never stored")))?;
        self.stack.push(id);
        Ok(())
    }

    fn put(&mut self, key: u64) -> Result<(), PickleError> {
        let id = self.top()?;
        self.memo.insert(key, id);
        Ok(())
    }

    fn append(&mut self, target: NodeId, items: Vec<NodeId>) -> Result<(), PickleError> {
        match &mut self.nodes[target] {
            Node::List(v) | Node::Set(v) => {
                v.extend(items);
                Ok(())
            }
            other => {
                let k = kind(other);
                Err(self.err(format!("APPEND on {k}")))
            }
        }
    }

    fn set_items(&mut self, target: NodeId, kv: Vec<(NodeId, NodeId)>) -> Result<(), PickleError> {
        match &mut self.nodes[target] {
            Node::Dict(v) => {
                v.extend(kv);
                Ok(())
            }
            // `__torch__` objects and OrderedDict subclasses receive their items the same way.
            Node::Object { .. } => Ok(()),
            other => {
                let k = kind(other);
                Err(self.err(format!("SETITEM on {k}")))
            }
        }
    }

    fn global_name(&self, id: NodeId) -> Result<(String, String), PickleError> {
        match &self.nodes[id] {
            Node::Global { module, name } => Ok((module.clone(), name.clone())),
            other => Err(self.err(format!("call of a {}, not of a known global", kind(other)))),
        }
    }

    /// The fixed meaning of each allowed callable. Nothing is looked up or run.
    fn reduce(&mut self, func: NodeId, args: NodeId) -> Result<Node, PickleError> {
        let (module, name) = self.global_name(func)?;
        let a = self.items_of(args)?;
        match (module.as_str(), name.as_str()) {
            ("collections", "OrderedDict") => Ok(Node::Dict(Vec::new())),
            ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => {
                if a.len() < 4 {
                    return Err(self.err("_rebuild_tensor with too few arguments"));
                }
                if !matches!(self.nodes[a[0]], Node::Storage { .. }) {
                    return Err(self.err("_rebuild_tensor without a storage"));
                }
                Ok(Node::Tensor {
                    storage: a[0],
                    offset: self.usize_of(a[1])?,
                    shape: self.usizes_of(a[2])?,
                    stride: self.usizes_of(a[3])?,
                })
            }
            ("torch._utils", "_rebuild_parameter") => {
                let t = *a
                    .first()
                    .ok_or_else(|| self.err("_rebuild_parameter without a tensor"))?;
                Ok(self.nodes[t].clone())
            }
            ("_codecs", "encode") => {
                // Protocol-2 pickles carry bytes as `_codecs.encode(text, "latin1")`.
                let text = self.string_of(*a.first().ok_or_else(|| self.err("encode without text"))?)?;
                Ok(Node::Bytes(text.chars().map(|c| c as u32 as u8).collect()))
            }
            (_, "_reconstruct") => Ok(Node::NumpyArray {
                shape: Vec::new(),
                dtype: None,
                data: Vec::new(),
                fortran: false,
            }),
            ("numpy", "dtype") => {
                let code = self.string_of(*a.first().ok_or_else(|| self.err("dtype without a code"))?)?;
                Ok(Node::NumpyDtype {
                    code,
                    big_endian: false,
                })
            }
            (_, "scalar") => {
                let dtype = *a.first().ok_or_else(|| self.err("scalar without a dtype"))?;
                let bytes = match a.get(1).map(|&i| &self.nodes[i]) {
                    Some(Node::Bytes(b)) => b.clone(),
                    _ => return Err(self.err("scalar without bytes")),
                };
                let dt = self.numpy_dtype(dtype)?;
                let values = decode_elements(dt, &bytes);
                Ok(match values {
                    crate::weights::TensorValues::F32(v) => {
                        Node::Float(v.first().copied().unwrap_or(0.0) as f64)
                    }
                    crate::weights::TensorValues::I64(v) => {
                        Node::Int(v.first().copied().unwrap_or(0) as i128)
                    }
                    crate::weights::TensorValues::Bool(v) => Node::Bool(v.first().copied().unwrap_or(false)),
                })
            }
            (m, n) if m.starts_with("__torch__") || (m, n) == ("argparse", "Namespace") => Ok(Node::Object {
                class: format!("{m}.{n}"),
                state: None,
            }),
            (m, n) => Err(PickleError::Unsupported(format!("a call of {m}.{n}"))),
        }
    }

    fn new_object(&mut self, cls: NodeId, _args: NodeId) -> Result<Node, PickleError> {
        let (module, name) = self.global_name(cls)?;
        if module.starts_with("__torch__") || (module.as_str(), name.as_str()) == ("argparse", "Namespace") {
            Ok(Node::Object {
                class: format!("{module}.{name}"),
                state: None,
            })
        } else if (module.as_str(), name.as_str()) == ("collections", "OrderedDict") {
            Ok(Node::Dict(Vec::new()))
        } else {
            Err(PickleError::Unsupported(format!("instantiating {module}.{name}")))
        }
    }

    fn numpy_dtype(&self, id: NodeId) -> Result<DType, PickleError> {
        match &self.nodes[id] {
            Node::NumpyDtype { code, big_endian } => {
                let dt = DType::from_numpy(code.trim_start_matches(['<', '>', '=', '|']))
                    .ok_or_else(|| PickleError::Unsupported(format!("numpy dtype {code}")))?;
                if *big_endian && dt.size() > 1 {
                    return Err(PickleError::Unsupported(format!("big-endian numpy dtype {code}")));
                }
                Ok(dt)
            }
            other => Err(self.err(format!("expected a numpy dtype, found {}", kind(other)))),
        }
    }

    fn build(&mut self, obj: NodeId, state: NodeId) -> Result<(), PickleError> {
        match self.nodes[obj].clone() {
            Node::Object { class, .. } => {
                self.nodes[obj] = Node::Object {
                    class,
                    state: Some(state),
                };
                Ok(())
            }
            Node::NumpyDtype { code, .. } => {
                // state = (version, byteorder, ...)
                let items = self.items_of(state)?;
                let order = items.get(1).and_then(|&i| match &self.nodes[i] {
                    Node::Str(s) => Some(s.clone()),
                    _ => None,
                });
                self.nodes[obj] = Node::NumpyDtype {
                    code,
                    big_endian: order.as_deref() == Some(">"),
                };
                Ok(())
            }
            Node::NumpyArray { .. } => {
                // state = (version, shape, dtype, is_fortran, raw bytes)
                let items = self.items_of(state)?;
                if items.len() < 5 {
                    return Err(self.err("numpy array state too short"));
                }
                let shape = self.usizes_of(items[1])?;
                let fortran = matches!(self.nodes[items[3]], Node::Bool(true) | Node::Int(1));
                let data = match &self.nodes[items[4]] {
                    Node::Bytes(b) => b.clone(),
                    Node::List(_) => return Err(PickleError::Unsupported("numpy object arrays".into())),
                    other => return Err(self.err(format!("numpy array data is a {}", kind(other)))),
                };
                self.nodes[obj] = Node::NumpyArray {
                    shape,
                    dtype: Some(items[2]),
                    data,
                    fortran,
                };
                Ok(())
            }
            // Tensors get (requires_grad, hooks...) and dicts get their __dict__: nothing to keep.
            Node::Tensor { .. } | Node::Dict(_) => Ok(()),
            other => Err(self.err(format!("BUILD on {}", kind(&other)))),
        }
    }

    /// `('storage', torch.FloatStorage, key, location, numel[, view_metadata])`.
    fn persistent(&mut self, pid: NodeId) -> Result<Node, PickleError> {
        let items = self.items_of(pid)?;
        let tag = items.first().map(|&i| self.string_of(i)).transpose()?;
        if tag.as_deref() != Some("storage") || items.len() < 5 {
            return Err(self.err("persistent id is not a torch storage reference"));
        }
        let (module, name) = self.global_name(items[1])?;
        let dtype = match module.as_str() {
            "torch" => DType::from_torch_storage(&name),
            _ => None,
        }
        .ok_or_else(|| PickleError::Unsupported(format!("storage type {module}.{name}")))?;
        let key = match &self.nodes[items[2]] {
            Node::Str(s) => s.clone(),
            Node::Int(i) => i.to_string(),
            other => return Err(self.err(format!("storage key is a {}", kind(other)))),
        };
        let numel = self.usize_of(items[4])?;
        Ok(Node::Storage { key, dtype, numel })
    }
}

fn pairs(items: &[NodeId]) -> Option<Vec<(NodeId, NodeId)>> {
    if !items.len().is_multiple_of(2) {
        return None;
    }
    Some(items.chunks_exact(2).map(|c| (c[0], c[1])).collect())
}

fn kind(node: &Node) -> &'static str {
    match node {
        Node::None => "None",
        Node::Bool(_) => "bool",
        Node::Int(_) => "int",
        Node::Float(_) => "float",
        Node::Str(_) => "str",
        Node::Bytes(_) => "bytes",
        Node::List(_) => "list",
        Node::Tuple(_) => "tuple",
        Node::Dict(_) => "dict",
        Node::Set(_) => "set",
        Node::Global { .. } => "global",
        Node::Object { .. } => "module object",
        Node::Storage { .. } => "storage",
        Node::Tensor { .. } => "tensor",
        Node::NumpyDtype { .. } => "numpy dtype",
        Node::NumpyArray { .. } => "numpy array",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_os_system_by_name() {
        // cos\nsystem\n(S'echo hi'\ntR.
        let data = b"cos\nsystem\n(S'echo hi'\ntR.";
        let err = parse(data, Dialect::Torch).unwrap_err();
        assert_eq!(err, PickleError::ForbiddenGlobal("os.system".into()));
    }

    #[test]
    fn refuses_stack_global_builtins_eval() {
        let mut data = vec![0x80, 4];
        for s in ["builtins", "eval"] {
            data.push(0x8c);
            data.push(s.len() as u8);
            data.extend_from_slice(s.as_bytes());
        }
        data.extend_from_slice(&[0x93, b'.']);
        let err = parse(&data, Dialect::Torch).unwrap_err();
        assert_eq!(err, PickleError::ForbiddenGlobal("builtins.eval".into()));
    }

    #[test]
    fn torchscript_classes_are_refused_in_plain_torch_files() {
        let data = b"c__torch__.model\nNet\n.";
        assert!(matches!(
            parse(data, Dialect::Torch),
            Err(PickleError::ForbiddenGlobal(_))
        ));
        assert!(parse(data, Dialect::TorchScript).is_ok());
    }

    #[test]
    fn memoised_dict_sees_later_items() {
        // EMPTY_DICT, BINPUT 0, MARK, 'a', 1, SETITEMS, POP, BINGET 0, STOP
        let data = [
            b'}', b'q', 0, b'(', 0x8c, 1, b'a', b'K', 1, b'u', b'0', b'h', 0, b'.',
        ];
        let (parsed, used) = parse(&data, Dialect::Torch).unwrap();
        assert_eq!(used, data.len());
        match &parsed.nodes[parsed.root] {
            Node::Dict(items) => assert_eq!(items.len(), 1),
            other => panic!("expected dict, got {other:?}"),
        }
    }

    #[test]
    fn truncated_input_is_reported() {
        let data = [0x80, 2, b'X', 10, 0, 0, 0, b'a'];
        assert!(matches!(
            parse(&data, Dialect::Torch),
            Err(PickleError::Truncated(_))
        ));
    }

    /// `pickle.dumps({"args": argparse.Namespace(lr=0.002, batch=4), "x": 1}, protocol=2)`, the
    /// shape of `args` in a real train.py checkpoint: read as the dict of its attributes.
    #[test]
    fn an_argparse_namespace_reads_as_its_attributes() {
        let data = b"\x80\x02\x7d\x71\x00\x28\x58\x04\x00\x00\x00args\x71\x01\x63argparse\x0aNamespace\x0a\x71\x02\x29\x81\x71\x03\x7d\x71\x04\x28\x58\x02\x00\x00\x00lr\x71\x05\x47\x3f\x60\x62\x4d\xd2\xf1\xa9\xfc\x58\x05\x00\x00\x00batch\x71\x06\x4b\x04\x75\x62\x58\x01\x00\x00\x00x\x71\x07\x4b\x01\x75\x2e";
        let value =
            crate::weights::checkpoint::read_checkpoint_bytes(data).expect("a Namespace is plain data");
        let args = value.get("args").expect("args");
        assert_eq!(args.get("lr").and_then(|v| v.as_f64()), Some(0.002));
        assert_eq!(args.get("batch").and_then(|v| v.as_f64()), Some(4.0));
        assert_eq!(value.get("x").and_then(|v| v.as_f64()), Some(1.0));
        // Other argparse names stay refused.
        let data = b"cargparse\nArgumentParser\n)R.";
        assert_eq!(
            parse(data, Dialect::Torch).unwrap_err(),
            PickleError::ForbiddenGlobal("argparse.ArgumentParser".into())
        );
    }
}
