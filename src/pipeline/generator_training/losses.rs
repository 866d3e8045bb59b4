//! The losses of `train.py`: the logistic (non-saturating) GAN losses on the discriminator's logits.

use burn::tensor::Tensor;
use burn::tensor::activation;

/// `F.softplus` (β = 1, linear above 20, as torch).
pub fn softplus<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    activation::softplus(x, 1.0)
}

/// `d_logistic_loss`: `softplus(−real).mean() + softplus(fake).mean()`, logits `[B, 1]` → `[1]`.
pub fn d_logistic_loss(real_pred: Tensor<2>, fake_pred: Tensor<2>) -> Tensor<1> {
    softplus(real_pred.neg()).mean() + softplus(fake_pred).mean()
}

/// `g_nonsaturating_loss`: `softplus(−fake).mean()`, `[B, 1]` → `[1]`.
pub fn g_nonsaturating_loss(fake_pred: Tensor<2>) -> Tensor<1> {
    softplus(fake_pred.neg()).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_data().try_into_vec_as::<f32>().unwrap_or_default()[0]
    }

    #[test]
    fn losses_follow_their_definitions() {
        let device = Device::flex();
        let real = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, -2.0], [2, 1]), &device);
        let fake = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, 30.0], [2, 1]), &device);
        let sp = |x: f64| (1.0 + x.exp()).ln();
        let want = (sp(-1.0) + sp(2.0)) / 2.0 + (sp(0.5) + 30.0) / 2.0;
        let got = scalar(d_logistic_loss(real, fake.clone())) as f64;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        let want = (sp(-0.5) + sp(-30.0)) / 2.0;
        let got = scalar(g_nonsaturating_loss(fake)) as f64;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
}
