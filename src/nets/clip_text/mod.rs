//! CLIP ViT-B/32's text side (openai/CLIP): the BPE tokenizer and the text transformer, which
//! StyleCLIP uses to turn prompts into directions. The image tower is not needed and not ported.

mod clean;
pub mod encoder;
pub mod host;
mod host_kernels;
mod html;
pub mod tokenizer;

use std::path::Path;

pub use clean::clean;
pub use encoder::{ClipTextConfig, ClipTextEncoder, TextTrace, eot_positions, l2_normalize};
pub use tokenizer::{
    CONTEXT_LENGTH, ClipTokenizer, EOT, SOT, TokenizerError, Truncate, strip_special_tokens,
};

use burn::tensor::Device;

use crate::weights::TensorMap;
use crate::weights::load::{LoadError, Tolerated, load_module};

/// Loads the text tower from a CLIP state dict: the plain fp32 one, or the tensors of the
/// official TorchScript archive (`ViT-B-32.pt`, fp16 promoted by the reader). Keys of the image
/// tower are ignored. `config` defaults to the sizes of the tensors.
pub fn from_state_dict(
    tensors: &TensorMap,
    file: &Path,
    config: Option<&ClipTextConfig>,
    device: &Device,
) -> Result<ClipTextEncoder, LoadError> {
    let inferred;
    let config = match config {
        Some(c) => c,
        None => {
            inferred = ClipTextConfig::from_state_dict(tensors).ok_or_else(|| LoadError {
                file: file.to_path_buf(),
                missing: [
                    "token_embedding.weight",
                    "positional_embedding",
                    "ln_final.weight",
                    "text_projection",
                ]
                .iter()
                .filter(|k| tensors.get(k).is_none())
                .map(|k| k.to_string())
                .collect(),
                unexpected: Vec::new(),
                mismatched: Vec::new(),
            })?;
            &inferred
        }
    };
    let tolerated = Tolerated::none().with_prefixes(&encoder::NON_TEXT_PREFIXES);
    load_module(config.init(device), tensors, file, &tolerated)
}
