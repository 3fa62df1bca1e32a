//! The library's front door for the common case: describe a network with [`MlpBuilder`],
//! train it on in-memory `ndarray` data or on an IDX folder or CSV file, and use the trained
//! [`Model`]: predict, evaluate, save and load (the checkpoint format of the command line,
//! so `backprop eval` and `backprop export` read what [`Model::save`] writes).
//!
//! ```
//! use backprop::{Activation, Loss, MlpBuilder};
//! use ndarray::array;
//!
//! // XOR: four points, two classes.
//! let x = array![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
//! let y = [0u32, 1, 1, 0];
//! let model = MlpBuilder::new()
//!     .hidden([8])
//!     .activation(Activation::Tanh)
//!     .loss(Loss::SoftmaxCrossEntropy)
//!     .lr(0.5)
//!     .epochs(300)
//!     .batch_size(4)
//!     .seed(7)
//!     .threads(1)
//!     .fit_arrays(x.view(), &y[..])?;
//! assert_eq!(model.predict_classes(x.view())?, [0, 1, 1, 0]);
//! let p = model.predict(x.view())?; // class probabilities, one row per sample
//! assert!(p[[1, 1]] > 0.9);
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! [`experiment`] is where the command line and the builder both turn a config into a run.

pub mod arrays;
pub mod builder;
pub mod experiment;
pub mod model;

pub use arrays::ArrayTargets;
pub use builder::MlpBuilder;
pub use model::{Evaluation, Model};
