//! The committed list of every network (`models/manifest.toml`): where each file comes from, how it
//! is checked, its licence and which features need it.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// The manifest compiled into the binary, so an installed app never depends on the source tree.
const EMBEDDED: &str = include_str!("../../models/manifest.toml");

/// Key lists for the structure check of files without a published sha256, by name.
const EMBEDDED_KEYS: &[(&str, &str)] = &[
    (
        "arcface-ir-se50",
        include_str!("../../models/keys/arcface-ir-se50.txt"),
    ),
    ("beautygan", include_str!("../../models/keys/beautygan.txt")),
    ("clip-vit-b32", include_str!("../../models/keys/clip-vit-b32.txt")),
    (
        "faceshifter-aei",
        include_str!("../../models/keys/faceshifter-aei.txt"),
    ),
    ("gpen-bfr-512", include_str!("../../models/keys/gpen-bfr-512.txt")),
    (
        "mobilenetv2-imagenet",
        include_str!("../../models/keys/mobilenetv2-imagenet.txt"),
    ),
    ("mtcnn", include_str!("../../models/keys/mtcnn.txt")),
    (
        "styleclip-fs3",
        include_str!("../../models/keys/styleclip-fs3.txt"),
    ),
    (
        "styleclip-mapper",
        include_str!("../../models/keys/styleclip-mapper.txt"),
    ),
    (
        "stylegan2-ffhq",
        include_str!("../../models/keys/stylegan2-ffhq.txt"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("model manifest: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("model manifest: {0}")]
    Invalid(String),
    #[error("key list {name}, line {line}: {reason}")]
    KeyList {
        name: String,
        line: usize,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub models: Vec<ModelEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Feature {
    Detect,
    Classify,
    Generate,
    Swap,
    Restore,
    TextEdit,
    Makeup,
    /// Public-domain sample photos for a first look, not a network.
    Samples,
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Feature::Detect => "detect",
            Feature::Classify => "classify",
            Feature::Generate => "generate",
            Feature::Swap => "swap",
            Feature::Restore => "restore",
            Feature::TextEdit => "text-edit",
            Feature::Makeup => "makeup",
            Feature::Samples => "samples",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub id: String,
    pub name: String,
    pub licence: String,
    pub commercial_use: bool,
    pub features: Vec<Feature>,
    pub files: Vec<FileEntry>,
    /// Wheels that carry some of the files, fetched with `pip download` when every URL fails.
    #[serde(default)]
    pub pip: Vec<PipSource>,
    /// Pages where a person can get the files by hand (no direct download).
    #[serde(default)]
    pub pages: Vec<String>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// The name the file is installed under.
    pub name: String,
    /// Exact size in bytes, checked.
    #[serde(default)]
    pub size: Option<u64>,
    /// Only for display and progress estimates.
    #[serde(default)]
    pub approx_mib: Option<f64>,
    #[serde(default)]
    pub sha256: Option<String>,
    /// Leading hex digits of the sha256, where only those are published (torchvision file names).
    #[serde(default)]
    pub sha256_prefix: Option<String>,
    #[serde(default)]
    pub urls: Vec<String>,
    /// How a file without a published sha256 is recognised.
    #[serde(default)]
    pub structure: Option<Structure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Structure {
    /// Name of the key list (`models/keys/<keys>.txt`).
    pub keys: String,
    /// Only the lines starting with this prefix belong to the file; it is stripped from them.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Key suffixes that may be missing from the file (e.g. `num_batches_tracked`).
    #[serde(default)]
    pub optional: Vec<String>,
    /// Key prefixes that must not be in the file (a StyleCLIP mapper trained without that level).
    #[serde(default)]
    pub absent: Vec<String>,
    /// false: check key names only, every tensor of the file must be named in the list.
    #[serde(default = "yes")]
    pub shapes: bool,
    /// The exact number of tensors in the file.
    #[serde(default)]
    pub count: Option<usize>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipSource {
    /// `package==version`, pinned so the member paths are known.
    pub requirement: String,
    /// Installed file name -> path inside the wheel.
    pub members: BTreeMap<String, String>,
}

/// One line of a key list.
#[derive(Debug, Clone, PartialEq)]
pub struct KeySpec {
    pub key: String,
    pub shape: Vec<usize>,
    pub dtype: DtypeClass,
}

/// Float widths are not distinguished: the reader promotes every float tensor to f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtypeClass {
    Float,
    Int,
    Bool,
}

impl fmt::Display for DtypeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DtypeClass::Float => "float",
            DtypeClass::Int => "integer",
            DtypeClass::Bool => "bool",
        })
    }
}

impl Manifest {
    /// The manifest compiled into the binary. It is checked by a unit test, so a failure here
    /// means a broken build, not bad user input.
    pub fn embedded() -> Result<Manifest, ManifestError> {
        Manifest::parse(EMBEDDED)
    }

    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = toml::from_str(text)?;
        manifest.validate()?;
        Ok(manifest)
    }

    pub fn get(&self, id: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.id == id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.models.iter().map(|m| m.id.as_str())
    }

    /// Every model a feature needs.
    pub fn for_feature(&self, feature: Feature) -> impl Iterator<Item = &ModelEntry> {
        self.models.iter().filter(move |m| m.features.contains(&feature))
    }

    fn validate(&self) -> Result<(), ManifestError> {
        let mut ids = HashSet::new();
        for model in &self.models {
            let bad = |why: String| ManifestError::Invalid(format!("model {}: {why}", model.id));
            if model.id.is_empty()
                || !model
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(bad("an id is lower-case ASCII letters, digits and '-'".into()));
            }
            if !ids.insert(model.id.as_str()) {
                return Err(bad("the id appears twice".into()));
            }
            if model.files.is_empty() {
                return Err(bad("no files".into()));
            }
            let mut names = HashSet::new();
            for file in &model.files {
                // Installed names become paths: keep them plain.
                if file.name.is_empty()
                    || file.name.starts_with('.')
                    || file.name.contains(['/', '\\'])
                    || file.name.ends_with(".part")
                {
                    return Err(bad(format!("file name {:?} is not a plain file name", file.name)));
                }
                if !names.insert(file.name.as_str()) {
                    return Err(bad(format!("file {} appears twice", file.name)));
                }
                for hex in [&file.sha256, &file.sha256_prefix].into_iter().flatten() {
                    if hex.is_empty() || hex.len() > 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                        return Err(bad(format!("file {}: {hex:?} is not a sha256 in hex", file.name)));
                    }
                }
                if file.sha256.as_ref().is_some_and(|h| h.len() != 64) {
                    return Err(bad(format!("file {}: a sha256 has 64 hex digits", file.name)));
                }
                if let Some(structure) = &file.structure
                    && key_list_text(&structure.keys).is_none()
                {
                    return Err(bad(format!(
                        "file {}: no key list named {}",
                        file.name, structure.keys
                    )));
                }
            }
            for pip in &model.pip {
                if !pip.requirement.contains("==") {
                    return Err(bad(format!(
                        "pip source {} is not pinned (package==version)",
                        pip.requirement
                    )));
                }
                if let Some(name) = pip.members.keys().find(|n| !names.contains(n.as_str())) {
                    return Err(bad(format!(
                        "pip source {} names an unknown file {name}",
                        pip.requirement
                    )));
                }
            }
        }
        Ok(())
    }
}

impl ModelEntry {
    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }

    /// Total exact size when every file's size is known.
    pub fn known_size(&self) -> Option<u64> {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Exact size where known, else the approximate one; None when neither is known for some file.
    pub fn display_size_bytes(&self) -> Option<u64> {
        self.files
            .iter()
            .map(|f| {
                f.size
                    .or_else(|| f.approx_mib.map(|m| (m * 1024.0 * 1024.0) as u64))
            })
            .sum()
    }

    /// Whether some size is only approximate (shown as "≈").
    pub fn size_is_approx(&self) -> bool {
        self.files.iter().any(|f| f.size.is_none())
    }

    /// "1.9 MiB", "≈127.0 MiB", or "?" when unknown.
    pub fn size_text(&self) -> String {
        match self.display_size_bytes() {
            None => "?".into(),
            Some(bytes) => {
                let approx = if self.size_is_approx() { "≈" } else { "" };
                format!("{approx}{}", human_bytes(bytes))
            }
        }
    }
}

/// Bytes for people: KiB below a tenth of a MiB, GiB from 1 GiB.
pub fn human_bytes(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let b = bytes as f64;
    if b >= 1024.0 * MIB {
        format!("{:.2} GiB", b / (1024.0 * MIB))
    } else if b >= MIB / 10.0 {
        format!("{:.1} MiB", b / MIB)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

impl FileEntry {
    /// Whether the file can be recognised by a full sha256 (else by its structure).
    pub fn has_sha256(&self) -> bool {
        self.sha256.is_some()
    }
}

fn key_list_text(name: &str) -> Option<&'static str> {
    EMBEDDED_KEYS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// The key list `name` (`models/keys/<name>.txt`), parsed.
pub fn key_list(name: &str) -> Result<Vec<KeySpec>, ManifestError> {
    let text = key_list_text(name).ok_or_else(|| ManifestError::KeyList {
        name: name.to_string(),
        line: 0,
        reason: "no such key list".into(),
    })?;
    parse_key_list(name, text)
}

/// Lines are `key<TAB>[d0, d1, ...]<TAB>dtype`; `#` starts a comment line.
pub fn parse_key_list(name: &str, text: &str) -> Result<Vec<KeySpec>, ManifestError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let err = |reason: String| ManifestError::KeyList {
            name: name.to_string(),
            line: i + 1,
            reason,
        };
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut cols = line.split('\t');
        let (Some(key), Some(shape), Some(dtype)) = (cols.next(), cols.next(), cols.next()) else {
            return Err(err("expected key, shape and dtype separated by tabs".into()));
        };
        let inner = shape
            .trim()
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .ok_or_else(|| err(format!("shape {shape:?} is not [d0, d1, ...]")))?;
        let shape = inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|d| {
                d.parse::<usize>()
                    .map_err(|_| err(format!("dimension {d:?} is not a number")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let dtype = match dtype.trim() {
            "float" | "float16" | "bfloat16" | "float32" | "float64" => DtypeClass::Float,
            "int8" | "uint8" | "int16" | "int32" | "int64" => DtypeClass::Int,
            "bool" => DtypeClass::Bool,
            other => return Err(err(format!("unknown dtype {other:?}"))),
        };
        out.push(KeySpec {
            key: key.to_string(),
            shape,
            dtype,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_manifest_parses_with_unique_ids() {
        let manifest = Manifest::embedded().expect("the committed manifest parses");
        let ids: Vec<&str> = manifest.ids().collect();
        let unique: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(ids.len(), unique.len(), "duplicate ids in {ids:?}");
        for id in [
            "mtcnn",
            "mobilenetv2-imagenet-v1",
            "mobilenetv2-imagenet-v2",
            "stylegan2-ffhq",
            "arcface-ir-se50",
            "faceshifter-aei",
            "gpen-bfr-256",
            "gpen-bfr-512",
            "clip-vit-b32",
            "clip-bpe-vocab",
            "styleclip-global-ffhq",
            "styleclip-mapper-purple-hair",
            "beautygan",
        ] {
            assert!(manifest.get(id).is_some(), "{id} missing from the manifest");
        }
        assert_eq!(
            manifest
                .models
                .iter()
                .filter(|m| m.id.starts_with("styleclip-mapper-"))
                .count(),
            14
        );
    }

    #[test]
    fn every_feature_has_a_model_and_every_file_a_check() {
        let manifest = Manifest::embedded().unwrap();
        for feature in [
            Feature::Detect,
            Feature::Classify,
            Feature::Generate,
            Feature::Swap,
            Feature::Restore,
            Feature::TextEdit,
            Feature::Makeup,
        ] {
            assert!(
                manifest.for_feature(feature).next().is_some(),
                "no model for {feature}"
            );
        }
        for model in &manifest.models {
            for file in &model.files {
                assert!(
                    file.sha256.is_some() || file.structure.is_some(),
                    "{}/{} can be checked neither by sha256 nor by structure",
                    model.id,
                    file.name
                );
            }
        }
        let mtcnn = manifest.get("mtcnn").unwrap();
        assert_eq!(mtcnn.files.len(), 3);
        assert_eq!(mtcnn.known_size(), Some(28_570 + 403_147 + 1_559_269));
        assert_eq!(mtcnn.pip[0].requirement, "facenet-pytorch==2.6.0");
    }

    #[test]
    fn every_key_list_parses() {
        let manifest = Manifest::embedded().unwrap();
        for model in &manifest.models {
            for structure in model.files.iter().filter_map(|f| f.structure.as_ref()) {
                let keys = key_list(&structure.keys).unwrap();
                assert!(!keys.is_empty(), "{} is empty", structure.keys);
            }
        }
        let gpen = key_list("gpen-bfr-512").unwrap();
        assert_eq!(gpen.len(), 163);
        let mtcnn = key_list("mtcnn").unwrap();
        assert_eq!(mtcnn.iter().filter(|k| k.key.starts_with("pnet.")).count(), 13);
        let first = &key_list("stylegan2-ffhq").unwrap()[0];
        assert_eq!(first.key, "g_ema.style.1.weight");
        assert_eq!(first.shape, vec![512, 512]);
    }

    #[test]
    fn rejects_duplicates_unpinned_pip_and_bad_hashes() {
        let base = |extra: &str| {
            format!(
                "[[models]]\nid = \"a\"\nname = \"A\"\nlicence = \"MIT\"\ncommercial_use = true\nfeatures = []\n\
                 [[models.files]]\nname = \"a.pt\"\nsha256 = \"{}\"\n{extra}",
                "0".repeat(64)
            )
        };
        assert!(Manifest::parse(&base("")).is_ok());
        let twice = format!("{}\n{}", base(""), base(""));
        assert!(Manifest::parse(&twice).unwrap_err().to_string().contains("twice"));
        let unpinned = base("[[models.pip]]\nrequirement = \"pkg\"\nmembers = { \"a.pt\" = \"x/a.pt\" }\n");
        assert!(
            Manifest::parse(&unpinned)
                .unwrap_err()
                .to_string()
                .contains("pinned")
        );
        let bad_hash = base("").replace(&"0".repeat(64), "xyz");
        assert!(Manifest::parse(&bad_hash).is_err());
        let bad_name = base("").replace("a.pt", "../a.pt");
        assert!(Manifest::parse(&bad_name).is_err());
    }
}
