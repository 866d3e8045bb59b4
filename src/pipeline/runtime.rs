//! The one network runtime: every network the window, the command line and the batch run is loaded
//! here, by one loader per network, and kept in one typed cache.
//!
//! An entry is keyed by the store's model id and the stamp of its installed files (path, size,
//! modification time, and the sha256 when the store verified it). Every loader checks the stamp
//! the same way: a model imported again under the same id has another stamp, so it is loaded again
//! and the old copy is dropped. A loader returns a [`NetKey`], which names the network's type, so
//! reading the cache back needs no downcast and cannot ask for the wrong type.
//!
//! Loading takes `&mut self` and reading `&self`: a caller loads what it needs first, then borrows
//! several networks at once (the swap runs ArcFace and AEI-Net side by side).

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use burn::tensor::Device;

use crate::nets::arcface::ArcFace;
use crate::nets::beautygan::Generator;
use crate::nets::faceshifter::AeiNet;
use crate::nets::gpen::FullGenerator;
use crate::nets::mtcnn::MtcnnNets;
use crate::pipeline::classifier::FaceClassifier;
use crate::pipeline::text_edit::run::TextEditCache;
use crate::weights::models::{
    AEI_ID, ARCFACE_ID, BEAUTYGAN_ID, FACE_CLASSIFIER_ID, LoadedStyleGan2, MTCNN_ID, STYLEGAN2_ID, load_aei,
    load_arcface, load_beautygan, load_gpen, load_mtcnn, load_stylegan2_file,
};
use crate::weights::store::{FileStatus, StoreError, WeightsStore};

/// Why a network could not be had.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Not installed, damaged, or not in the manifest; the store's message says how to install it.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{id}: the manifest lists no file")]
    NoFile { id: String },
    #[error("loading {id} from {}: {cause}", path.display())]
    Load {
        id: String,
        path: PathBuf,
        cause: String,
    },
    /// A reader asked for a network that was not loaded (or was replaced since).
    #[error("{id} is not loaded (its loader was not called, or the weights were imported again since)")]
    NotLoaded { id: String },
}

/// What identifies one installed copy of a model's files: a file imported again under the same
/// path differs in size, time or sha256.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileStamp(Vec<FileMark>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileMark {
    path: PathBuf,
    len: Option<u64>,
    modified: Option<SystemTime>,
    sha256: Option<String>,
}

impl FileStamp {
    /// The stamp of files as they are on disk now (a missing file gets an empty mark, so it still
    /// differs from the file once it appears).
    pub fn of(paths: &[PathBuf]) -> FileStamp {
        FileStamp(
            paths
                .iter()
                .map(|path| {
                    let meta = std::fs::metadata(path).ok();
                    FileMark {
                        path: path.clone(),
                        len: meta.as_ref().map(|m| m.len()),
                        modified: meta.and_then(|m| m.modified().ok()),
                        sha256: None,
                    }
                })
                .collect(),
        )
    }

    /// The stamp of an installed model's files, with the manifest's sha256 for each file the store
    /// verified against it.
    fn installed(store: &WeightsStore, id: &str, paths: &[PathBuf]) -> FileStamp {
        let mut stamp = FileStamp::of(paths);
        let (Ok(entry), Ok(state)) = (store.model(id), store.status(id)) else {
            return stamp;
        };
        for mark in &mut stamp.0 {
            let verified = state
                .files
                .iter()
                .any(|f| f.path == mark.path && f.status == FileStatus::Verified);
            let name = mark.path.file_name().and_then(|n| n.to_str());
            if verified && let Some(file) = entry.files.iter().find(|f| Some(f.name.as_str()) == name) {
                mark.sha256 = file.sha256.clone();
            }
        }
        stamp
    }
}

/// Where a loader put a network of type `T`: its model id and the stamp of the files it came from.
/// Reading it back with [`NetworkCache::get`] is typed.
pub struct NetKey<T> {
    id: String,
    stamp: FileStamp,
    _network: PhantomData<fn() -> T>,
}

impl<T> Clone for NetKey<T> {
    fn clone(&self) -> Self {
        NetKey {
            id: self.id.clone(),
            stamp: self.stamp.clone(),
            _network: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for NetKey<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetKey")
            .field("id", &self.id)
            .field("stamp", &self.stamp)
            .finish()
    }
}

impl<T> NetKey<T> {
    /// The store's model id the network was loaded from.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The files it was loaded from.
    pub fn stamp(&self) -> &FileStamp {
        &self.stamp
    }
}

/// The loaded copies of one kind of network, one per model id (see [`Network`]).
#[doc(hidden)]
pub struct Slot<T> {
    entries: HashMap<String, (FileStamp, T)>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            entries: HashMap::new(),
        }
    }
}

/// A network the runtime keeps: which slot of the cache holds it.
pub trait Network: Sized + Send + 'static {
    #[doc(hidden)]
    fn slot(cache: &NetworkCache) -> &Slot<Self>;
    #[doc(hidden)]
    fn slot_mut(cache: &mut NetworkCache) -> &mut Slot<Self>;
}

macro_rules! network {
    ($type:ty, $field:ident) => {
        impl Network for $type {
            fn slot(cache: &NetworkCache) -> &Slot<Self> {
                &cache.$field
            }
            fn slot_mut(cache: &mut NetworkCache) -> &mut Slot<Self> {
                &mut cache.$field
            }
        }
    };
}

network!(MtcnnNets, mtcnn);
network!(ArcFace, arcface);
network!(AeiNet, aei);
network!(FullGenerator, gpen);
network!(Generator, beautygan);
network!(LoadedStyleGan2, stylegan2);
network!(FaceClassifier, classifier);

/// The loaded networks. The window's worker keeps one for its lifetime; the command line makes one
/// per run.
#[derive(Default)]
pub struct NetworkCache {
    mtcnn: Slot<MtcnnNets>,
    arcface: Slot<ArcFace>,
    aei: Slot<AeiNet>,
    gpen: Slot<FullGenerator>,
    beautygan: Slot<Generator>,
    stylegan2: Slot<LoadedStyleGan2>,
    classifier: Slot<FaceClassifier>,
    /// CLIP, the StyleCLIP directions and mappers, and the prompt embeddings. Shared, since a text
    /// edit holds it while it borrows StyleGAN2 from this cache.
    text_edit: Arc<Mutex<TextEditCache>>,
    /// How many times a loader really read files (not counting answers from the cache).
    loads: usize,
    /// Model ids of the networks that ran on this cache's device (see [`NetworkCache::first_run`]).
    ran: HashSet<String>,
}

impl NetworkCache {
    /// The network `key` names, while its entry is still the copy the key was made for.
    pub fn get<T: Network>(&self, key: &NetKey<T>) -> Result<&T, RuntimeError> {
        match T::slot(self).entries.get(&key.id) {
            Some((stamp, network)) if *stamp == key.stamp => Ok(network),
            _ => Err(RuntimeError::NotLoaded { id: key.id.clone() }),
        }
    }

    /// How many times networks were read from files since the cache was made.
    pub fn loads(&self) -> usize {
        self.loads
    }

    /// Records that network `id` runs on this cache's device; true the first time. On wgpu a
    /// network's first run compiles its kernels, which the window announces (`jobs::warmup`).
    pub fn first_run(&mut self, id: &str) -> bool {
        self.ran.insert(id.to_string())
    }

    /// The text-edit networks and caches (see [`TextEditCache`]).
    pub fn text_edit(&self) -> Arc<Mutex<TextEditCache>> {
        Arc::clone(&self.text_edit)
    }

    /// The one rule every loader follows: the entry for `id` is kept while its files' stamp is
    /// unchanged, and replaced by a fresh load otherwise.
    fn ensure<T: Network, E: std::fmt::Display>(
        &mut self,
        id: &str,
        stamp: FileStamp,
        load: impl FnOnce() -> Result<T, E>,
    ) -> Result<NetKey<T>, RuntimeError> {
        let fresh = T::slot(self)
            .entries
            .get(id)
            .is_some_and(|(known, _)| *known == stamp);
        if !fresh {
            // Drop the old copy first, so two copies of a large network never share the memory.
            T::slot_mut(self).entries.remove(id);
            let network = load().map_err(|e| RuntimeError::Load {
                id: id.to_string(),
                path: stamp.0.first().map(|m| m.path.clone()).unwrap_or_default(),
                cause: e.to_string(),
            })?;
            self.loads += 1;
            T::slot_mut(self)
                .entries
                .insert(id.to_string(), (stamp.clone(), network));
        }
        Ok(NetKey {
            id: id.to_string(),
            stamp,
            _network: PhantomData,
        })
    }

    /// MTCNN, the face detector (its three files in the store's folder).
    pub fn mtcnn(
        &mut self,
        store: &WeightsStore,
        device: &Device,
    ) -> Result<NetKey<MtcnnNets>, RuntimeError> {
        let files = store.require(MTCNN_ID)?;
        let stamp = FileStamp::installed(store, MTCNN_ID, &files);
        let dir = store.model_dir(MTCNN_ID);
        self.ensure(MTCNN_ID, stamp, || load_mtcnn(&dir, device))
    }

    /// ArcFace IR-SE50, the identity network.
    pub fn arcface(
        &mut self,
        store: &WeightsStore,
        device: &Device,
    ) -> Result<NetKey<ArcFace>, RuntimeError> {
        let (file, stamp) = first_file(store, ARCFACE_ID)?;
        self.ensure(ARCFACE_ID, stamp, || {
            load_arcface(&file, device).map(|(net, _)| net)
        })
    }

    /// FaceShifter's AEI-Net.
    pub fn aei(&mut self, store: &WeightsStore, device: &Device) -> Result<NetKey<AeiNet>, RuntimeError> {
        let (file, stamp) = first_file(store, AEI_ID)?;
        self.ensure(AEI_ID, stamp, || load_aei(&file, device).map(|(net, _)| net))
    }

    /// A GPEN generator (`id`: one of the store's GPEN models).
    pub fn gpen(
        &mut self,
        store: &WeightsStore,
        id: &str,
        device: &Device,
    ) -> Result<NetKey<FullGenerator>, RuntimeError> {
        let (file, stamp) = first_file(store, id)?;
        self.ensure(id, stamp, || load_gpen(&file, device))
    }

    /// BeautyGAN's generator.
    pub fn beautygan(
        &mut self,
        store: &WeightsStore,
        device: &Device,
    ) -> Result<NetKey<Generator>, RuntimeError> {
        let (file, stamp) = first_file(store, BEAUTYGAN_ID)?;
        self.ensure(BEAUTYGAN_ID, stamp, || {
            load_beautygan(&file, device).map(|(generator, _)| generator)
        })
    }

    /// The StyleGAN2 FFHQ generator.
    pub fn stylegan2(
        &mut self,
        store: &WeightsStore,
        device: &Device,
    ) -> Result<NetKey<LoadedStyleGan2>, RuntimeError> {
        let (file, stamp) = first_file(store, STYLEGAN2_ID)?;
        self.ensure(STYLEGAN2_ID, stamp, || load_stylegan2_file(&file, device))
    }

    /// A generator `facecast virtual train` (or the Train window) registered, by name. Kept
    /// under `generators/<name>`, beside the installed one, and loaded again when retrained.
    pub fn trained_stylegan2(
        &mut self,
        data: &Path,
        name: &str,
        device: &Device,
    ) -> Result<NetKey<LoadedStyleGan2>, RuntimeError> {
        let id = format!("generators/{name}");
        let file =
            crate::pipeline::generator_training::run::trained_generator_file(data, name).map_err(|e| {
                RuntimeError::Load {
                    id: id.clone(),
                    path: data.join(&id),
                    cause: e.to_string(),
                }
            })?;
        let stamp = file_stamp(&file);
        self.ensure(&id, stamp, || load_stylegan2_file(&file, device))
    }

    /// The face/no-face classifier `facecast train-classifier` installed.
    pub fn classifier(
        &mut self,
        store: &WeightsStore,
        device: &Device,
    ) -> Result<NetKey<FaceClassifier>, RuntimeError> {
        let (file, stamp) = first_file(store, FACE_CLASSIFIER_ID)?;
        self.ensure(FACE_CLASSIFIER_ID, stamp, || FaceClassifier::load(&file, device))
    }
}

/// An installed model's first file and the stamp of all its files.
fn first_file(store: &WeightsStore, id: &str) -> Result<(PathBuf, FileStamp), RuntimeError> {
    let files = store.require(id)?;
    let file = files
        .first()
        .cloned()
        .ok_or_else(|| RuntimeError::NoFile { id: id.to_string() })?;
    Ok((file, FileStamp::installed(store, id, &files)))
}

/// The stamp of one file as it is now; for caches of files that are not store models.
pub fn file_stamp(path: &Path) -> FileStamp {
    FileStamp::of(&[path.to_path_buf()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_written_again_gets_another_stamp() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("weights.pt");
        std::fs::write(&path, b"first").expect("write");
        let before = file_stamp(&path);
        assert_eq!(before, file_stamp(&path), "an unchanged file keeps its stamp");
        std::fs::write(&path, b"second, longer").expect("write");
        assert_ne!(before, file_stamp(&path));
    }
}
