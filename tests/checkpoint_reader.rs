//! The checkpoint reader on every kind of fixture file, on hostile and broken files, and on a
//! legacy-format copy of a modern file.

mod common;

use std::io::Write;
use std::path::Path;

use facecast::weights::checkpoint::read_checkpoint_bytes;
use facecast::weights::load::{Tolerated, load_module};
use facecast::weights::{TensorMap, Value, read_checkpoint};

use common::fixture_dir;

#[test]
fn reads_every_weights_file_of_the_fixtures() {
    let root = common::fixtures_root();
    for (file, min_tensors) in [
        ("mtcnn/pnet.pt", 13),
        ("mtcnn/rnet.pt", 16),
        ("mtcnn/onet.pt", 21),
        ("stylegan2/weights.pth", 20),
        ("gpen/weights.pth", 20),
        ("arcface_ir_se50/weights.pth", 20),
        ("faceshifter_aei/weights.pth", 20),
        ("beautygan/weights.pth", 20),
        ("mobilenetv2/weights.pth", 20),
        ("styleclip_mapper/weights.pth", 10),
        ("clip_text/weights.pth", 10),
        ("clip_text/weights_torchscript.pt", 10),
        ("mtcnn/io.safetensors", 10),
    ] {
        let path = root.join(file);
        let value = read_checkpoint(&path).unwrap_or_else(|e| panic!("{e}"));
        let tensors = value.flatten_tensors();
        assert!(
            tensors.len() >= min_tensors,
            "{file}: only {} tensors",
            tensors.len()
        );
        for (key, t) in &tensors.tensors {
            assert_eq!(t.numel(), t.to_f32().len(), "{file}: {key}");
        }
    }
}

#[test]
fn legacy_mtcnn_files_hold_the_documented_keys() {
    let dir = fixture_dir("mtcnn");
    let pnet = read_checkpoint(&dir.join("pnet.pt"))
        .expect("pnet.pt")
        .flatten_tensors();
    assert_eq!(pnet.len(), 13);
    assert_eq!(
        pnet.get("conv1.weight").expect("conv1.weight").shape,
        vec![10, 3, 3, 3]
    );
    assert_eq!(pnet.get("prelu1.weight").expect("prelu1.weight").shape, vec![10]);
}

#[test]
fn nested_dicts_keep_their_top_level_keys() {
    let dir = fixture_dir("stylegan2");
    let value = read_checkpoint(&dir.join("weights.pth")).expect("stylegan2 weights");
    assert!(value.get("g_ema").is_some(), "g_ema missing");
    assert!(value.get("latent_avg").is_some(), "latent_avg missing");
    let g = value.flatten_tensors().sub("g_ema");
    assert!(g.get("style.1.weight").is_some());
}

#[test]
fn torchscript_archive_gives_the_same_tensors_as_the_state_dict() {
    let dir = fixture_dir("clip_text");
    let plain = read_checkpoint(&dir.join("weights.pth"))
        .expect("weights.pth")
        .flatten_tensors();
    let script = read_checkpoint(&dir.join("weights_torchscript.pt"))
        .expect("torchscript")
        .flatten_tensors();
    for (key, t) in &plain.tensors {
        let other = script
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from the TorchScript archive"));
        assert_eq!(other.shape, t.shape, "{key}");
        let (a, b) = (t.to_f32(), other.to_f32());
        let max = facecast::parity::max_abs_diff(&a, &b);
        // The TorchScript copy may hold fp16 tensors, as the official file does.
        assert!(
            max <= 1e-3 * (1.0 + a.iter().fold(0.0f32, |m, v| m.max(v.abs()))),
            "{key}: {max}"
        );
    }
}

#[test]
fn numpy_files_of_styleclip_are_read() {
    let dir = fixture_dir("styleclip_global");
    let fs3 = read_checkpoint(&dir.join("fs3.npy")).expect("fs3.npy");
    let Value::Tensor(t) = fs3 else {
        panic!("fs3.npy is not an array")
    };
    assert_eq!(t.shape.len(), 2);
    let stats = read_checkpoint(&dir.join("S_mean_std")).expect("S_mean_std");
    let tensors = stats.flatten_tensors();
    assert!(
        tensors.len() >= 26 * 2,
        "S_mean_std holds {} arrays",
        tensors.len()
    );
}

#[test]
fn a_pickle_that_would_run_a_command_is_refused_by_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A zip checkpoint whose data.pkl calls os.system: nothing may run, the global must be named.
    let path = tmp.path().join("evil.pth");
    let marker = tmp.path().join("pwned");
    let cmd = format!("touch {}", marker.display());
    let mut pkl = b"\x80\x02cposix\nsystem\nq\x00X".to_vec();
    pkl.extend_from_slice(&(cmd.len() as u32).to_le_bytes());
    pkl.extend_from_slice(cmd.as_bytes());
    pkl.extend_from_slice(b"\x85R.");
    write_zip(&path, &[("archive/data.pkl", &pkl), ("archive/version", b"3\n")]);
    let err = read_checkpoint(&path)
        .expect_err("hostile pickle accepted")
        .to_string();
    assert!(err.contains("posix.system"), "{err}");
    assert!(err.contains("evil.pth"), "{err}");
    assert!(!marker.exists(), "the command ran");

    // The same inside a legacy-format file, and with builtins.eval through STACK_GLOBAL.
    let mut legacy = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02M\xe9\x03.".to_vec();
    legacy.extend_from_slice(b"\x80\x02}q\x00.");
    legacy.extend_from_slice(b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.");
    let err = read_checkpoint_bytes(&legacy)
        .expect_err("hostile legacy file accepted")
        .to_string();
    assert!(err.contains("builtins.eval"), "{err}");
}

#[test]
fn broken_files_are_refused_with_the_cause() {
    let root = common::fixtures_root();
    let tmp = tempfile::tempdir().expect("tempdir");
    let original = std::fs::read(root.join("mtcnn/onet.pt")).expect("onet.pt");

    let truncated = tmp.path().join("onet-truncated.pt");
    std::fs::write(&truncated, &original[..original.len() / 2]).expect("write");
    let err = read_checkpoint(&truncated)
        .expect_err("truncated legacy file accepted")
        .to_string();
    assert!(
        err.contains("onet-truncated.pt") && err.contains("truncated"),
        "{err}"
    );

    let zip = std::fs::read(root.join("beautygan/weights.pth")).expect("beautygan");
    let cut = tmp.path().join("cut.pth");
    std::fs::write(&cut, &zip[..zip.len() / 3]).expect("write");
    let err = read_checkpoint(&cut)
        .expect_err("truncated zip accepted")
        .to_string();
    assert!(err.contains("cut.pth"), "{err}");

    let empty = tmp.path().join("empty.pth");
    std::fs::write(&empty, b"").expect("write");
    assert!(
        read_checkpoint(&empty)
            .expect_err("empty")
            .to_string()
            .contains("empty")
    );

    let text = tmp.path().join("notes.pth");
    std::fs::write(&text, b"these are not weights\n").expect("write");
    assert!(
        read_checkpoint(&text)
            .expect_err("text")
            .to_string()
            .contains("not a checkpoint")
    );
}

#[test]
fn wrong_architecture_and_wrong_shape_are_refused_by_key() {
    let device = burn::tensor::Device::flex();
    let dir = fixture_dir("mtcnn");
    let rnet = read_checkpoint(&dir.join("rnet.pt"))
        .expect("rnet")
        .flatten_tensors();
    // RNet's weights offered to PNet: different keys and shapes, each named.
    let err = load_module(
        facecast::nets::mtcnn::PNet::new(&device),
        &rnet,
        Path::new("rnet.pt"),
        &Tolerated::none(),
    )
    .expect_err("RNet weights loaded into PNet");
    assert!(err.unexpected.iter().any(|k| k.starts_with("dense4")), "{err}");
    assert!(err.missing.iter().any(|k| k.starts_with("conv4_1")), "{err}");
    assert!(err.to_string().contains("rnet.pt"));

    let mut pnet = read_checkpoint(&dir.join("pnet.pt"))
        .expect("pnet")
        .flatten_tensors();
    let w = pnet.tensors.get_mut("conv2.weight").expect("conv2.weight");
    w.shape = vec![16, 10, 9];
    let err = load_module(
        facecast::nets::mtcnn::PNet::new(&device),
        &pnet,
        Path::new("pnet.pt"),
        &Tolerated::none(),
    )
    .expect_err("misshapen weight loaded");
    assert!(err.mismatched.iter().any(|m| m.contains("conv2.weight")), "{err}");
}

#[test]
fn a_legacy_format_copy_loads_with_identical_tensors() {
    let dir = fixture_dir("arcface_ir_se50");
    let modern = read_checkpoint(&dir.join("weights.pth"))
        .expect("arcface")
        .flatten_tensors();
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("model_ir_se50.pth");
    std::fs::write(&path, legacy_bytes(&modern)).expect("write");
    let legacy = read_checkpoint(&path).expect("legacy copy").flatten_tensors();
    assert_eq!(legacy.len(), modern.len());
    for (key, t) in &modern.tensors {
        assert_eq!(legacy.get(key), Some(t), "{key}");
    }
}

fn write_zip(path: &Path, members: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).expect("create");
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in members {
        zip.start_file(*name, opts).expect("start");
        zip.write_all(data).expect("write");
    }
    zip.finish().expect("finish");
}

/// Writes a state dict the way `torch.save(..., _use_new_zipfile_serialization=False)` does:
/// magic, protocol, sys_info and object pickles, the storage keys, then each storage's
/// element count and little-endian data.
fn legacy_bytes(tensors: &TensorMap) -> Vec<u8> {
    fn unicode(out: &mut Vec<u8>, s: &str) {
        out.push(b'X');
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    fn int(out: &mut Vec<u8>, v: usize) {
        out.push(b'J');
        out.extend_from_slice(&(v as i32).to_le_bytes());
    }
    let mut out = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.".to_vec();
    out.extend_from_slice(b"\x80\x02M\xe9\x03.");
    out.extend_from_slice(
        b"\x80\x02}(X\x10\x00\x00\x00protocol_versionM\xe9\x03X\x0d\x00\x00\x00little_endian\x88u.",
    );
    out.extend_from_slice(b"\x80\x02ccollections\nOrderedDict\n)R");
    let mut storages: Vec<(String, Vec<u8>, usize, &str)> = Vec::new();
    for (i, (key, t)) in tensors.tensors.iter().enumerate() {
        let skey = format!("{}", 94_000_000 + i);
        let (storage, bytes): (&str, Vec<u8>) = match &t.values {
            facecast::weights::TensorValues::F32(v) => {
                ("FloatStorage", v.iter().flat_map(|x| x.to_le_bytes()).collect())
            }
            facecast::weights::TensorValues::I64(v) => {
                ("LongStorage", v.iter().flat_map(|x| x.to_le_bytes()).collect())
            }
            facecast::weights::TensorValues::Bool(v) => ("BoolStorage", v.iter().map(|&b| b as u8).collect()),
        };
        unicode(&mut out, key);
        out.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        out.push(b'(');
        unicode(&mut out, "storage");
        out.extend_from_slice(format!("ctorch\n{storage}\n").as_bytes());
        unicode(&mut out, &skey);
        unicode(&mut out, "cpu");
        int(&mut out, t.numel());
        out.extend_from_slice(b"NtQ");
        int(&mut out, 0);
        out.push(b'(');
        for &d in &t.shape {
            int(&mut out, d);
        }
        out.push(b't');
        out.push(b'(');
        let mut stride = vec![1usize; t.shape.len()];
        for k in (0..t.shape.len().saturating_sub(1)).rev() {
            stride[k] = stride[k + 1] * t.shape[k + 1];
        }
        for s in stride {
            int(&mut out, s);
        }
        out.push(b't');
        out.extend_from_slice(b"\x89ccollections\nOrderedDict\n)RtRs");
        storages.push((skey, bytes, t.numel(), storage));
    }
    out.push(b'.');
    out.extend_from_slice(b"\x80\x02(");
    for (k, ..) in &storages {
        unicode(&mut out, k);
    }
    out.extend_from_slice(b"l.");
    for (_, bytes, numel, _) in &storages {
        out.extend_from_slice(&(*numel as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

#[test]
fn a_safetensors_file_whose_header_length_starts_like_a_pickle_is_still_safetensors() {
    // A header of 128 + 256·k bytes makes the file's first byte 0x80, the pickle protocol opcode.
    let head = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"note":""#;
    let tail = r#""}}"#;
    let pad = (128 + 256 - (head.len() + tail.len()) % 256) % 256;
    let header = format!("{head}{}{tail}", "x".repeat(pad));
    assert_eq!(header.len() % 256, 128, "the length's low byte is 0x80");
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    for v in [1.5f32, -2.0] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    assert_eq!(bytes[0], 0x80);
    let tensors = read_checkpoint_bytes(&bytes)
        .expect("read as safetensors")
        .flatten_tensors();
    assert_eq!(tensors.get("w").expect("w").shape, vec![2]);
}
