//! Tests of `pnet_host`: the whole network against burn's PNet on odd, narrow and wide levels, and
//! the kernel's tiled, narrow and AVX2 paths against each other.

use super::*;
use burn::module::Param;
use burn::tensor::{Distribution, TensorData};

/// A PNet with burn's random weights and PReLU slopes that differ per channel (one negative).
fn random_pnet(device: &Device) -> PNet {
    let mut pnet = PNet::new(device);
    let slopes = |n: usize| {
        let v: Vec<f32> = (0..n)
            .map(|i| 0.05 + 0.37 * ((i * 7) % 11) as f32 / 11.0 - if i == 1 { 0.5 } else { 0.0 })
            .collect();
        Param::from_tensor(Tensor::from_data(TensorData::new(v, [n]), device))
    };
    pnet.prelu1.weight = slopes(10);
    pnet.prelu2.weight = slopes(16);
    pnet.prelu3.weight = slopes(32);
    pnet
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32 values")
}

#[test]
fn host_pnet_matches_burns_on_every_kind_of_level() {
    let device = Device::flex();
    let pnet = random_pnet(&device);
    let fast = PNetHost::new(&pnet).expect("packed weights");
    // Narrower than a tile at every layer, odd sides (ceil-mode pool overhang), tails that
    // overlap the previous tile, and a level wide enough for many tiles per row.
    for (h, w) in [
        (12, 12),
        (13, 17),
        (20, 31),
        (33, 16),
        (61, 83),
        (27, 150),
        (90, 45),
    ] {
        let x: Tensor<4> = Tensor::random([1, 3, h, w], Distribution::Uniform(-1.0, 1.0), &device);
        let input = host(x.clone());
        let want = pnet.forward(x);
        let got = fast.forward(&input, [3, h, w]).expect("forward");
        let (gh, gw) = pnet_grid(h, w);
        assert_eq!((got.height, got.width), (gh, gw), "{h}×{w}");
        let prob = host(want.prob);
        let reg = host(want.reg);
        let plane = gh * gw;
        let mut worst: f32 = 0.0;
        for y in 0..gh {
            for x in 0..gw {
                worst = worst.max((got.prob[y * gw + x] - prob[plane + y * gw + x]).abs());
                let offsets = got.offsets(y, x);
                for (k, v) in offsets.iter().enumerate() {
                    worst = worst.max((v - reg[k * plane + y * gw + x]).abs());
                }
            }
        }
        assert!(worst <= 2e-5, "{h}×{w}: differs from burn's PNet by {worst}");
    }
}

#[test]
fn tiled_narrow_and_avx2_rows_agree() {
    let device = Device::flex();
    let pnet = random_pnet(&device);
    let conv = Conv3x3::new(&pnet.conv2, OB23, "conv2").expect("packed");
    let (h, w) = (5, 29);
    let src: Vec<f32> = host(Tensor::<4>::random(
        [1, 10, h, w],
        Distribution::Uniform(-1.0, 1.0),
        &device,
    ));
    let w_out = w - 2;
    let strides = [h * w, w];
    let mut tiled = vec![0.0f32; 16 * w_out];
    let mut narrow = vec![0.0f32; 16 * w_out];
    let mut dispatched = vec![0.0f32; 16 * w_out];
    for y in 0..h - 2 {
        conv.row_impl::<OB23>(&src, y * w, strides, w_out, &mut tiled);
        conv.row_narrow(&src, y * w, strides, w_out, &mut narrow);
        conv.row::<OB23>(&src, y * w, strides, w_out, &mut dispatched);
        let worst = crate::parity::max_abs_diff(&tiled, &narrow);
        assert!(worst <= 1e-5, "row {y}: tiles and pixels differ by {worst}");
        // Whatever instruction set runs, the sums are formed in the same order.
        assert_eq!(
            tiled, dispatched,
            "row {y}: the run-time choice changed the result"
        );
    }
}

#[test]
fn inputs_smaller_than_the_receptive_field_are_refused() {
    let device = Device::flex();
    let fast = PNetHost::new(&random_pnet(&device)).expect("packed weights");
    assert!(matches!(
        fast.forward(&[0.0; 3 * 11 * 20], [3, 11, 20]),
        Err(PNetHostError::Input { height: 11, .. })
    ));
    assert!(
        fast.forward(&[0.0; 3 * 12 * 12], [3, 12, 13]).is_err(),
        "length must match the shape"
    );
}
