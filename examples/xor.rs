//! XOR from four in-memory points: the library's builder, trained, then used.
//!
//! cargo run --release --example xor

use backprop::{Activation, Loss, MlpBuilder, OptimizerKind};
use ndarray::array;

fn main() -> anyhow::Result<()> {
    let x = array![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
    let y = [0u32, 1, 1, 0];
    let model = MlpBuilder::new()
        .hidden([8])
        .activation(Activation::Tanh)
        .loss(Loss::SoftmaxCrossEntropy)
        .optimizer(OptimizerKind::Momentum)
        .lr(0.2)
        .epochs(300)
        .batch_size(4)
        .seed(1)
        .threads(1)
        .fit_arrays(x.view(), &y[..])?;
    let p = model.predict(x.view())?;
    let classes = model.predict_classes(x.view())?;
    for (i, row) in x.rows().into_iter().enumerate() {
        println!(
            "{} xor {} -> {} (p = {:.3})",
            row[0],
            row[1],
            classes[i],
            p[[i, classes[i]]]
        );
    }
    let last = model.history().last().expect("trained at least one epoch");
    println!("final loss {:.4}", last.train_loss);
    anyhow::ensure!(classes == [0, 1, 1, 0], "XOR not learned: {classes:?}");
    Ok(())
}
