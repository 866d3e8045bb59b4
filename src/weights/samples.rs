//! The sample photos: a store model like any network, so they are fetched and checked by sha256
//! the same way. The window's *Open samples* and `facecast --samples` both install them here.

use std::path::PathBuf;

use super::store::{StoreError, WeightsStore};

/// The store's id of the sample photos.
pub const SAMPLES_ID: &str = "samples";

/// Installs the sample photos when they are not there yet (calling `fetching` first, so the caller
/// can say that a download starts) and returns their paths.
pub fn install_samples(
    data_dir: Option<PathBuf>,
    fetching: impl FnOnce(),
) -> Result<Vec<PathBuf>, StoreError> {
    let store = WeightsStore::open(data_dir)?;
    if !store.status(SAMPLES_ID)?.status.is_usable() {
        fetching();
        store.install(SAMPLES_ID, &mut |_| {})?;
    }
    store.require(SAMPLES_ID)
}
