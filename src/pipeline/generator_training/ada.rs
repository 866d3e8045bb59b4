//! The adaptive augmentation probability of `train.py --augment` (`AdaptiveAugment`).
//!
//! After every discriminator step, the signs of D's predictions on the (augmented) real batch are
//! summed. Every `update_every` (8 in `train.py`, whatever `--ada_every` says) steps, the
//! over-fitting heuristic `r_t = Σ sign(real_pred) / n` over those steps is compared with the
//! target: above it (D too sure of the reals) p grows, otherwise it shrinks, by
//! `n / ada_length` (the number of real predictions seen since the last update), clamped to
//! `[0, 1]`.

use serde::{Deserialize, Serialize};

/// `train.py`'s defaults: `--ada_target 0.6`, `--ada_length 500000`, updates every 8 steps.
pub const ADA_TARGET: f64 = 0.6;
pub const ADA_LENGTH: u64 = 500_000;
pub const ADA_UPDATE_EVERY: u64 = 8;

/// The augmentation of a run, as `train.py`'s flags say it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AugmentSettings {
    /// `--augment`.
    pub augment: bool,
    /// `--augment_p`: a fixed probability; 0 lets it adapt.
    pub augment_p: f64,
    /// `--ada_target`.
    pub ada_target: f64,
    /// `--ada_length`.
    pub ada_length: u64,
}

impl Default for AugmentSettings {
    fn default() -> Self {
        AugmentSettings {
            augment: false,
            augment_p: 0.0,
            ada_target: ADA_TARGET,
            ada_length: ADA_LENGTH,
        }
    }
}

impl AugmentSettings {
    /// Whether p adapts (`--augment` without a fixed `--augment_p`).
    pub fn adaptive(&self) -> bool {
        self.augment && self.augment_p <= 0.0
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.augment_p) {
            return Err(format!(
                "augment_p {}: a probability lies in [0, 1]",
                self.augment_p
            ));
        }
        if self.ada_length == 0 {
            return Err("ada_length must be at least 1".into());
        }
        if !self.ada_target.is_finite() {
            return Err(format!("ada_target {}: not a number", self.ada_target));
        }
        Ok(())
    }
}

/// `AdaptiveAugment`'s state: the probability and the sums since its last update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveAugment {
    pub target: f64,
    pub length: u64,
    pub update_every: u64,
    /// `Σ sign(real_pred)` since the last update.
    pub sign_sum: f64,
    /// The number of predictions since the last update.
    pub count: f64,
    /// Calls since the last update.
    pub calls: u64,
    /// The last `r_t`.
    pub r_t: f64,
    /// The augmentation probability.
    pub p: f64,
}

impl AdaptiveAugment {
    pub fn new(target: f64, length: u64, p: f64) -> AdaptiveAugment {
        AdaptiveAugment {
            target,
            length,
            update_every: ADA_UPDATE_EVERY,
            sign_sum: 0.0,
            count: 0.0,
            calls: 0,
            r_t: 0.0,
            p,
        }
    }

    /// `tune(real_pred)`: accumulate one batch of real predictions; every `update_every` calls,
    /// move p. Returns the probability to use from now on.
    pub fn tune(&mut self, real_pred: &[f32]) -> f64 {
        // torch.sign: 0 for 0 (and for NaN, which then counts as neither side).
        let sign = |v: f32| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                0.0
            }
        };
        self.sign_sum += real_pred.iter().map(|&v| sign(v)).sum::<f64>();
        self.count += real_pred.len() as f64;
        self.calls += 1;
        if self.calls.is_multiple_of(self.update_every) {
            if self.count > 0.0 {
                self.r_t = self.sign_sum / self.count;
                let step = if self.r_t > self.target { 1.0 } else { -1.0 };
                self.p = (self.p + step * self.count / self.length as f64).clamp(0.0, 1.0);
            }
            self.sign_sum = 0.0;
            self.count = 0.0;
            self.calls = 0;
        }
        self.p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The official rule worked by hand: batch 4, target 0.6, length 500000, updates every 8.
    #[test]
    fn p_follows_the_official_update_rule() {
        let mut ada = AdaptiveAugment::new(0.6, 500_000, 0.0);
        // Seven over-confident batches: no update yet.
        for _ in 0..7 {
            assert_eq!(ada.tune(&[1.5, 0.2, 3.0, 0.1]), 0.0);
        }
        // The eighth: r_t = 32/32 = 1 > 0.6, p = 0 + 32/500000.
        let p = ada.tune(&[1.5, 0.2, 3.0, 0.1]);
        assert_eq!(ada.r_t, 1.0);
        assert!((p - 6.4e-5).abs() < 1e-15, "{p}");
        assert_eq!((ada.sign_sum, ada.count, ada.calls), (0.0, 0.0, 0));

        // Signs 3 positive, 1 negative per batch: r_t = 16/32 = 0.5 ≤ 0.6, p falls back to 0.
        for _ in 0..8 {
            ada.tune(&[1.0, 2.0, 0.5, -0.3]);
        }
        assert_eq!(ada.r_t, 0.5);
        assert!(ada.p.abs() < 1e-15, "{}", ada.p);

        // Exactly at the target is not above it (batch 5: r_t = 24/40 = 0.6), and p never goes
        // below 0.
        let mut ada = AdaptiveAugment::new(0.6, 1000, 0.0);
        for _ in 0..8 {
            // signs: +1 +1 +1 +1 −1 → 3/5 = 0.6 per batch.
            ada.tune(&[1.0, 1.0, 1.0, 1.0, -1.0]);
        }
        assert!((ada.r_t - 0.6).abs() < 1e-12);
        assert_eq!(ada.p, 0.0, "r_t = target moves p down, clamped at 0");

        // Zeros: signs +1, 0, 0, +1 → r_t = 16/32 = 0.5; from p = 0.5, p = 0.5 − 32/1000.
        let mut ada = AdaptiveAugment::new(0.6, 1000, 0.5);
        for _ in 0..8 {
            ada.tune(&[2.0, 0.0, 0.0, 1.0]);
        }
        assert_eq!(ada.r_t, 0.5);
        assert!((ada.p - 0.468).abs() < 1e-12, "{}", ada.p);

        // Clamped at 1 from above: p = 0.99 + 32/1000 → 1.
        let mut ada = AdaptiveAugment::new(0.6, 1000, 0.99);
        for _ in 0..8 {
            ada.tune(&[1.0; 4]);
        }
        assert_eq!(ada.p, 1.0);
    }

    #[test]
    fn settings_say_when_p_adapts() {
        let mut s = AugmentSettings::default();
        assert!(!s.adaptive() && s.validate().is_ok());
        s.augment = true;
        assert!(s.adaptive());
        s.augment_p = 0.3;
        assert!(!s.adaptive());
        s.augment_p = 1.5;
        assert!(s.validate().is_err());
    }
}
