//! ArcFace's convolutions prepared once for the CPU (`cpu_conv_prepared`): every batch norm
//! that follows a convolution folded into it, and the Winograd weights of the 3×3 stride-1
//! layers computed ahead, instead of both on every face.
//!
//! The prepared weights are derived from the module's parameters, so they are kept together
//! with clones of the exact tensors they were read from, and used only while the module still
//! holds those same tensors (the same buffer and layout). A load, a device move or an optimizer
//! step gives the module new tensors, and the next call prepares again; nothing can change the
//! held buffers in place either, since flex mutates a buffer in place only when nothing else
//! holds it. A clone of the network starts with an empty cache.

use std::sync::{Arc, Mutex};

use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

use super::arcface::ArcFace;
use super::cpu_conv_prepared::PreparedConv;
use super::kernel_switch::KernelSwitch;

static SWITCH: KernelSwitch = KernelSwitch::on();

/// Turns the prepared path on or off for the whole process (for A/B benchmarks; on by default).
pub fn set_enabled(on: bool) {
    SWITCH.set(on);
}

/// Whether the prepared path is on (see [`set_enabled`]).
pub fn enabled() -> bool {
    SWITCH.enabled()
}

/// The prepared convolutions of one unit.
#[derive(Debug)]
pub(crate) struct PreparedUnit {
    pub conv1: PreparedConv,
    /// conv2 with bn2 folded in.
    pub conv2: PreparedConv,
    /// The shortcut's 1×1 convolution with its norm folded in.
    pub shortcut: Option<PreparedConv>,
}

/// Every prepared convolution of a network, and the tensors they came from.
#[derive(Debug)]
pub(crate) struct Prepared {
    sources: Sources,
    /// The stem's convolution with its norm folded in.
    pub stem: PreparedConv,
    pub units: Vec<PreparedUnit>,
    /// The input side the Winograd weights were chosen for.
    pub input_size: usize,
}

/// The parameter tensors the prepared weights are read from, in a fixed order.
#[derive(Debug, Default)]
struct Sources {
    maps: Vec<Tensor<4>>,
    vectors: Vec<Tensor<1>>,
}

impl Sources {
    fn of(net: &ArcFace) -> Sources {
        fn conv(s: &mut Sources, conv: &Conv2d, bn: Option<&BatchNorm>) {
            s.maps.push(conv.weight.val());
            s.vectors.extend(conv.bias.as_ref().map(|b| b.val()));
            if let Some(bn) = bn {
                s.vectors.extend([
                    bn.gamma.val(),
                    bn.beta.val(),
                    bn.running_mean.value(),
                    bn.running_var.value(),
                ]);
            }
        }
        let mut s = Sources::default();
        conv(&mut s, &net.input_layer.conv, Some(&net.input_layer.bn));
        for unit in &net.body {
            let r = &unit.res_layer;
            conv(&mut s, &r.conv1, None);
            conv(&mut s, &r.conv2, Some(&r.bn2));
            if let Some(sc) = &unit.shortcut_layer {
                conv(&mut s, &sc.conv, Some(&sc.bn));
            }
        }
        s
    }

    /// Whether every tensor of `other` is the same tensor (buffer and layout) as here.
    fn same_as(&self, other: &Sources) -> bool {
        self.maps.len() == other.maps.len()
            && self.vectors.len() == other.vectors.len()
            && self.maps.iter().zip(&other.maps).all(|(a, b)| same_tensor(a, b))
            && self
                .vectors
                .iter()
                .zip(&other.vectors)
                .all(|(a, b)| same_tensor(a, b))
    }
}

/// Whether `a` and `b` are views of the same flex buffer with the same layout and dtype.
fn same_tensor<const D: usize>(a: &Tensor<D>, b: &Tensor<D>) -> bool {
    match (
        a.clone().try_into_primitive::<burn_flex::Flex>(),
        b.clone().try_into_primitive::<burn_flex::Flex>(),
    ) {
        (Ok(a), Ok(b)) => {
            Arc::ptr_eq(&a.data_arc(), &b.data_arc()) && a.layout() == b.layout() && a.dtype() == b.dtype()
        }
        _ => false,
    }
}

impl Prepared {
    /// Prepares `net` for `input_size`² crops, one at a time; None where a convolution cannot
    /// be prepared (then the network runs as it did before).
    fn new(net: &ArcFace, input_size: usize) -> Option<Prepared> {
        let sources = Sources::of(net);
        let stem = PreparedConv::new(
            &net.input_layer.conv,
            Some(&net.input_layer.bn),
            1,
            [input_size; 2],
        )?;
        let mut side = input_size;
        let mut units = Vec::with_capacity(net.body.len());
        for unit in &net.body {
            let r = &unit.res_layer;
            let out = side.div_ceil(unit.stride.max(1));
            units.push(PreparedUnit {
                conv1: PreparedConv::new(&r.conv1, None, 1, [side; 2])?,
                conv2: PreparedConv::new(&r.conv2, Some(&r.bn2), 1, [side; 2])?,
                shortcut: match &unit.shortcut_layer {
                    Some(sc) => Some(PreparedConv::new(&sc.conv, Some(&sc.bn), 1, [side; 2])?),
                    None => None,
                },
            });
            side = out;
        }
        Some(Prepared {
            sources,
            stem,
            units,
            input_size,
        })
    }
}

/// The prepared form of the network that holds it, made on the first CPU call (see the module's
/// notes). `Module` skips it: it is no parameter and never saved.
#[derive(Default)]
pub struct PreparedCache(Mutex<Option<Arc<Prepared>>>);

impl Clone for PreparedCache {
    /// Empty: a clone may be given other weights, and prepares its own.
    fn clone(&self) -> Self {
        PreparedCache::default()
    }
}

impl std::fmt::Debug for PreparedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreparedCache")
    }
}

impl PreparedCache {
    /// The prepared convolutions of `net` for `input_size`² crops, made now if there are none
    /// yet, or if they were made from other tensors or for another size; None where the path
    /// is off or `net` cannot be prepared.
    pub(crate) fn get(&self, net: &ArcFace, input_size: usize) -> Option<Arc<Prepared>> {
        if !enabled() {
            return None;
        }
        let current = Sources::of(net);
        if let Ok(slot) = self.0.lock()
            && let Some(p) = slot.as_ref()
            && p.input_size == input_size
            && p.sources.same_as(&current)
        {
            return Some(Arc::clone(p));
        }
        // Prepared without holding the lock: the Winograd transforms run on rayon, whose
        // threads may be running another call of this network.
        let prepared = Arc::new(Prepared::new(net, input_size)?);
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(Arc::clone(&prepared));
        }
        Some(prepared)
    }
}
