//! GPEN parity: encoder features, z, w, W+, decoder layer outputs and the restored image.
//! The fixture's `pipeline.align.*` tensors belong to the restore pipeline's alignment step and
//! are checked there, not here.

use burn::tensor::Device;

use super::{CaseResult, Fixture, ParityError};
use crate::nets::gpen::{self, GpenConfig};
use crate::nets::stylegan2::Trace;

pub fn run(fx: &Fixture, device: &Device) -> Result<Vec<CaseResult>, ParityError> {
    let config = GpenConfig::from_json(fx.config())?;
    let net = gpen::load_gpen(&fx.path("weights.pth"), &config, device)?;
    let mut trace = Trace::new();
    let out = net.forward_traced(fx.tensor::<4>("input", device)?, Some(&mut trace))?;
    let mut results = Vec::new();
    for (i, f) in out.features.into_iter().enumerate() {
        results.push(fx.compare(&format!("inter.ecd{i}"), f));
    }
    results.push(fx.compare("inter.final_linear", out.z));
    results.push(fx.compare("inter.w", out.w));
    results.push(fx.compare("latent", out.latent));
    for (name, t) in trace {
        results.push(fx.compare(&format!("inter.generator.{name}"), t));
    }
    results.push(fx.compare("output", out.image));
    Ok(results)
}
