//! AEI-Net parity: attribute maps, every generator block, two attention masks, the swap; and the
//! chain case, where the identity comes from the ArcFace fixture applied to a crop of the target.

use burn::tensor::Device;
use burn::tensor::Tensor;

use super::{CaseResult, Fixture, ParityError, compare};
use crate::nets::faceshifter::{AeiConfig, AeiError, AeiNet, arcface_input};
use crate::weights::{RawTensor, read_checkpoint};

fn network_error(fx: &Fixture, e: AeiError) -> ParityError {
    match e {
        AeiError::Load(e) => ParityError::Load(e),
        other => ParityError::Network(format!("{}: {other}", fx.dir.display())),
    }
}

/// The fixture's network, built from its `config` and loaded from its `weights.pth`.
pub fn load_net(fx: &Fixture, device: &Device) -> Result<AeiNet, ParityError> {
    let config = AeiConfig::from_json(fx.config()).map_err(|e| ParityError::Meta {
        dir: fx.dir.clone(),
        field: format!("config ({e})"),
    })?;
    let path = fx.path("weights.pth");
    let tensors = read_checkpoint(&path)?.flatten_tensors();
    AeiNet::from_state_dict(tensors, &path, &config, device).map_err(|e| network_error(fx, e))
}

pub fn run(fx: &Fixture, device: &Device) -> Result<Vec<CaseResult>, ParityError> {
    let net = load_net(fx, device)?;
    let target = fx.tensor::<4>("input.target", device)?;
    let z_id = fx.tensor::<2>("input.z_id", device)?;
    let (out, trace) = net
        .forward_traced(target.clone(), z_id)
        .map_err(|e| network_error(fx, e))?;

    let mut results = Vec::new();
    for (k, map) in out.z_attr.into_iter().enumerate() {
        results.push(fx.compare(&format!("z_attr.{k}"), map));
    }
    match trace.up1 {
        Some(up1) => results.push(fx.compare("inter.generator.up1", up1)),
        None => results.push(CaseResult::fail(
            "inter.generator.up1",
            "the generator did not record up1",
        )),
    }
    let last_block = trace.blocks.len().saturating_sub(1);
    for (k, map) in trace.blocks.into_iter().enumerate() {
        let name = format!("inter.generator.AADBlk{}", k + 1);
        // The reference records the blocks that feed an upsample; the last one feeds the tanh.
        if k < last_block || fx.io.get(&name).is_some() {
            results.push(fx.compare(&name, map));
        }
    }
    for name in fx
        .names_with_prefix("inter.generator.AADBlk")
        .into_iter()
        .filter(|n| n.ends_with(".mask"))
    {
        results.push(
            match mask_index(&name).and_then(|(k, j)| trace.masks.get(k)?.get(j).cloned()) {
                Some(mask) => fx.compare(&name, mask),
                None => CaseResult::fail(&name, "no such AAD layer in the network"),
            },
        );
    }
    results.push(fx.compare("output", out.y));
    results.extend(chain_case(fx, &net, target, device)?);
    Ok(results)
}

/// "inter.generator.AADBlk6.AAD1.mask" → (5, 0).
fn mask_index(name: &str) -> Option<(usize, usize)> {
    let rest = name
        .strip_prefix("inter.generator.AADBlk")?
        .strip_suffix(".mask")?;
    let (block, layer) = rest.split_once(".AAD")?;
    Some((
        block.parse::<usize>().ok()?.checked_sub(1)?,
        layer.parse::<usize>().ok()?.checked_sub(1)?,
    ))
}

/// Target row 0 is the source face; its ArcFace identity drives the swap of the last row.
fn chain_case(
    fx: &Fixture,
    net: &AeiNet,
    target: Tensor<4>,
    device: &Device,
) -> Result<Vec<CaseResult>, ParityError> {
    let rel = fx.meta["arcface_fixture_for_chain"]
        .as_str()
        .unwrap_or("../arcface_ir_se50");
    let arc_fx = Fixture::open(&fx.dir.join(rel))?;
    let arcface = super::arcface::load_net(&arc_fx, device)?;
    let [n, c, h, w] = target.dims();
    let row = n - 1;

    let source =
        arcface_input(target.clone().slice([0..1, 0..c, 0..h, 0..w])).map_err(|e| network_error(fx, e))?;
    let mut results = vec![fx.compare("chain.source_112", source.clone())];
    let z = arcface.forward(source);
    results.push(compare_row(fx, "input.z_id", row, "chain.z_id", z.clone()));
    let swap = net
        .forward(target.slice([row..n, 0..c, 0..h, 0..w]), z)
        .map_err(|e| network_error(fx, e))?;
    results.push(compare_row(fx, "output", row, "chain.output", swap.y));
    Ok(results)
}

/// Compares `got` (a batch of one) with row `row` of the reference tensor `name`.
fn compare_row<const D: usize>(
    fx: &Fixture,
    name: &str,
    row: usize,
    case: &str,
    got: Tensor<D>,
) -> CaseResult {
    let case = format!("{case} (vs {name}[{row}])");
    let reference = match fx.raw(name) {
        Ok(r) => r,
        Err(e) => return CaseResult::fail(case, e.to_string()),
    };
    let per_row: usize = reference.shape.iter().skip(1).product();
    let values = reference.to_f32();
    let Some(slice) = values.get(row * per_row..(row + 1) * per_row) else {
        return CaseResult::fail(
            case,
            format!("the reference {:?} has no row {row}", reference.shape),
        );
    };
    let mut shape = reference.shape.clone();
    shape[0] = 1;
    let want = RawTensor::f32(shape, slice.to_vec());
    let dims = got.dims().to_vec();
    match got.into_data().try_to_vec::<f32>() {
        Ok(values) => compare(&case, &values, &dims, &want, fx.tolerance),
        Err(e) => CaseResult::fail(case, format!("cannot read the result: {e:?}")),
    }
}
