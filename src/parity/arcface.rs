//! ArcFace IR-SE50 parity: every unit's output, the features before the L2 norm, the embedding.

use burn::tensor::Device;

use super::{CaseResult, Fixture, ParityError};
use crate::nets::arcface::{ArcFace, ArcFaceConfig, ArcFaceError};
use crate::weights::read_checkpoint;

/// The fixture's network, built from its `config` and loaded from its `weights.pth`.
pub fn load_net(fx: &Fixture, device: &Device) -> Result<ArcFace, ParityError> {
    let config = ArcFaceConfig::from_json(fx.config()).map_err(|e| ParityError::Meta {
        dir: fx.dir.clone(),
        field: format!("config ({e})"),
    })?;
    let path = fx.path("weights.pth");
    let tensors = read_checkpoint(&path)?.flatten_tensors();
    ArcFace::from_state_dict(tensors, &path, &config, device).map_err(|e| match e {
        ArcFaceError::Load(e) => ParityError::Load(e),
        other => ParityError::Network(format!("{}: {other}", path.display())),
    })
}

pub fn run(fx: &Fixture, device: &Device) -> Result<Vec<CaseResult>, ParityError> {
    let net = load_net(fx, device)?;
    let trace = net.forward_traced(fx.tensor::<4>("input", device)?);
    let mut results = vec![fx.compare("inter.input_layer", trace.input_layer)];
    let units = trace.body.len();
    for (i, map) in trace.body.into_iter().enumerate() {
        results.push(fx.compare(&format!("inter.body.{i}"), map));
    }
    // A reference with more units than the config built is a config-reading bug, not a pass.
    let extra = fx.names_with_prefix("inter.body.").len().saturating_sub(units);
    if extra > 0 {
        results.push(CaseResult::fail(
            "inter.body",
            format!("{extra} reference units were not computed"),
        ));
    }
    results.push(fx.compare("inter.output_layer", trace.features));
    results.push(fx.compare("output", trace.embedding));
    Ok(results)
}
