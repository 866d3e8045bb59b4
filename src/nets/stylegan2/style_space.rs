//! The S space (StyleSpace): the modulation output of every modulated conv, in forward order.
//! StyleCLIP's global directions edit these vectors; the synthesis accepts them back.

use burn::tensor::Tensor;

use super::StyleGanError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StyleKind {
    /// A StyledConv's modulation (StyleCLIP edits these).
    Conv,
    /// A ToRGB's modulation (left alone by StyleCLIP's global directions).
    ToRgb,
}

/// One S-space layer: the module it belongs to, the W+ row feeding it, its width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StyleLayer {
    /// rosinality module name: `conv1`, `to_rgb1`, `convs.K`, `to_rgbs.K`.
    pub name: String,
    pub wplus_index: usize,
    pub kind: StyleKind,
    pub channels: usize,
}

/// Per-layer style vectors `[B, channels]`, aligned with [`StyleSpace::layers`].
#[derive(Debug, Clone)]
pub struct StyleSpace {
    pub layers: Vec<StyleLayer>,
    pub styles: Vec<Tensor<2>>,
}

impl StyleSpace {
    /// Width of the conv-only channel space (StyleCLIP's `fs3` rows: 6048 for FFHQ 1024).
    pub fn conv_channels(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| l.kind == StyleKind::Conv)
            .map(|l| l.channels)
            .sum()
    }

    /// The conv layers' styles concatenated in forward order, to_rgb layers skipped: `[B, conv_channels]`.
    pub fn conv_concat(&self) -> Tensor<2> {
        let parts: Vec<Tensor<2>> = self
            .layers
            .iter()
            .zip(&self.styles)
            .filter(|(l, _)| l.kind == StyleKind::Conv)
            .map(|(_, s)| s.clone())
            .collect();
        Tensor::cat(parts, 1)
    }

    /// Adds `delta` (`[1 or B, conv_channels]`, indexed like [`conv_concat`](Self::conv_concat)) to
    /// the conv layers' styles; the to_rgb styles stay unchanged, as in StyleCLIP.
    pub fn add_conv_delta(mut self, delta: Tensor<2>) -> Result<StyleSpace, StyleGanError> {
        let want = self.conv_channels();
        let [_, width] = delta.dims();
        if width != want {
            return Err(StyleGanError::Input(format!(
                "S delta has {width} channels, the conv layers have {want}"
            )));
        }
        let mut offset = 0;
        for (layer, style) in self.layers.iter().zip(self.styles.iter_mut()) {
            if layer.kind == StyleKind::Conv {
                let part = delta.clone().narrow(1, offset, layer.channels);
                *style = style.clone() + part;
                offset += layer.channels;
            }
        }
        Ok(self)
    }

    /// Batch size (rows of the first layer).
    pub fn batch(&self) -> usize {
        self.styles.first().map(|s| s.dims()[0]).unwrap_or(0)
    }
}
