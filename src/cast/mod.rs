//! The virtual-model library: the people Facecast swaps into product photos, kept on disk for months.
//!
//! A virtual model is either **generated** (StyleGAN2: a seed, a truncation, the W+ latent and any
//! edits applied since) or **imported** (one or several face photos of a real, consenting person).
//! Each one lives in its own folder; the library is the folder of those folders:
//!
//! ```text
//! <data_dir>/virtual-models/
//!   <id>/                    one virtual model (the id never changes, the name may)
//!     model.json             what it is (format below)
//!     face.png               the face as shown to the operator (a generated image, or an
//!                            FFHQ-aligned 512×512 portrait cut from the first imported photo)
//!     crop.png               256×256, aligned to FaceShifter's five-point template
//!     crop-1.png …           one more aligned crop per further source photo (imports)
//!     latent.safetensors     generated models only: the W+ latent (and any S-space edit)
//!   .staging-…/              a model being written (renamed into place when complete)
//!   .deleted/<id>-<time>/    deleted models, kept 30 days so a deletion can be undone by hand
//! ```
//!
//! # `model.json`, format version 1
//!
//! A JSON object. Readers ignore fields they do not know; a file whose `version` is higher than
//! [`FORMAT_VERSION`] was written by a newer Facecast and is listed as damaged (never modified).
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `format` | `"facecast-virtual-model"` | identifies the file |
//! | `version` | integer | format version, 1 |
//! | `id` | string | the folder name: 12 lowercase hex digits |
//! | `name` | string | unique in the library without regard to case (after Unicode NFC); any script |
//! | `created_unix`, `modified_unix` | integer | seconds since 1970-01-01 UTC |
//! | `parent` | string or null | id of the model this one was edited from (lineage) |
//! | `face` | object | `file` (`"face.png"`), `width`, `height`, `landmarks` (five `[x, y]` in `face.png` pixels: left eye, right eye, nose, left and right mouth corner as seen), `landmarks_from` (`"mtcnn"` or `"ffhq-template"`) |
//! | `crops` | array | one object per aligned crop: `file`, `source` (index into `origin.sources`, or null for a generated face) |
//! | `origin` | object | `kind` `"generated"` or `"imported"`, below |
//! | `identity` | object or null | `network` (weights id, e.g. `"arcface-ir-se50"`), `reduced` (made with reduced-width test weights), `embedding` (array of floats, L2-normalised) |
//!
//! A **generated** origin: `seed` (integer 0…4294967295, or null when the latent did not come from
//! a seed), `truncation` (ψ), `noise` (`{"kind": "checkpoint"}`: the checkpoint's fixed noise
//! buffers, or `{"kind": "seeded", "seed": N}`: drawn from the seed's stream), `z_rng`
//! (`"mt19937-polar"`, see below), `generator` (`weights` id, `size`, `style_dim`, `n_latent`,
//! `reduced`), `latent_file` (`"latent.safetensors"`) and `edits` (every edit applied since
//! generation, oldest first: `kind`, `summary`, `params` (free JSON for the step that made it),
//! `created_unix`).
//!
//! An **imported** origin: `sources`, one per photo: `path` (as given, absolute when known),
//! `file_name`, `sha256` of the file, `width`, `height`, `face_index` (0-based among the faces
//! found, largest first), `faces_found`, `bbox` (`[x1, y1, x2, y2]`), `score`, `landmarks`.
//!
//! # `latent.safetensors`
//!
//! Little-endian f32 tensors: `wplus` `[n_latent, style_dim]` (the W+ latent the synthesis network
//! is driven by, truncation already applied) and, after StyleCLIP global-direction edits,
//! `s_conv_delta` `[conv_channels]`: an offset added to the conv layers' S-space styles, indexed
//! like StyleCLIP's `fs3` rows (conv layers in forward order, to_rgb layers skipped). Header
//! metadata: `format` = `facecast-latent`, `version` = `1`.
//!
//! # Seeds
//!
//! Seed `N` gives `z` exactly as `numpy.random.RandomState(N).randn(style_dim)` does, the convention
//! of NVIDIA's StyleGAN2 `run_generator.py`: MT19937 seeded with `init_genrand(N)`, uniform doubles
//! from two 32-bit draws (`(a>>5, b>>6)`, 53 bits), and Marsaglia's polar method, the second value
//! of each pair used first. Seeded noise continues the same stream after `z`, layer by layer in
//! forward order, row-major. The arithmetic is IEEE-754 double precision with one `ln` and one
//! `sqrt` per pair, rounded to f32 at the end, so every machine gives the same `z`. The saved W+ is
//! what a model really is, though: a model never depends on regenerating it from its seed.
//!
//! # Writes
//!
//! A new model is written completely into a `.staging-…` folder and renamed into place, so a
//! crash never leaves half a model under a real id. `model.json` is rewritten through a temporary
//! file and a rename. Images go through [`crate::io::export_atomic`].

pub mod library;
pub mod model;
#[cfg(test)]
mod tests;

pub use library::{CastError, DamagedEntry, Listing, VirtualModelLibrary};
pub use model::{
    CropEntry, EditRecord, FaceImage, GeneratedOrigin, GeneratorInfo, Identity, ImportedOrigin,
    LandmarkSource, Latent, NewVirtualModel, NoiseSpec, Origin, SourcePhoto, VirtualModel,
};

/// The folder of the library inside the data directory.
pub const LIBRARY_DIR: &str = "virtual-models";

/// The `model.json` format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Side of the aligned crops (FaceShifter's 256×256 template).
pub const CROP_SIDE: u32 = 256;
