//! MNIST from its IDX folder: one epoch, then the test set's accuracy, and the model saved.
//!
//! cargo run --release --example mnist [DATA_DIR] [OUT.safetensors]

use backprop::{MlpBuilder, Model, OptimizerKind};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let data = args.next().unwrap_or_else(|| "data/mnist".to_string());
    let out = args.next();
    let model = MlpBuilder::new()
        .hidden([128])
        .optimizer(OptimizerKind::Momentum)
        .lr(0.05)
        .epochs(1)
        .batch_size(64)
        .standardize(0.1307, 0.3081)
        .on_epoch(|r| println!("epoch {}: train loss {:.4}", r.epoch, r.train_loss))
        .fit_path(&data)?;
    let test = model.evaluate_path(&data)?;
    println!(
        "test accuracy {:.2}% over {} images (loss {:.4})",
        100.0 * test.accuracy.unwrap_or(0.0),
        test.samples,
        test.loss
    );
    if let Some(path) = out {
        model.save(&path)?;
        // A saved model reads back to the same figures.
        let again = Model::load(&path)?.evaluate_path(&data)?;
        anyhow::ensure!(again == test, "reloaded model differs: {again:?}");
        println!("saved to {path}");
    }
    Ok(())
}
