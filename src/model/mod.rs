//! The model: its shape and parameter layout ([`architecture`]), the parameters
//! ([`network`]), the passes over a batch ([`passes`]) with their buffers ([`buffers`]), and
//! the pieces a layer is made of: [`activation`], [`dropout`], [`loss`], [`init`].

pub mod activation;
pub mod architecture;
pub mod buffers;
pub mod dropout;
pub mod init;
pub mod loss;
pub mod network;
pub mod passes;

pub use activation::Activation;
pub use architecture::{Architecture, LayerSpec, TensorInfo, TensorKind};
pub use buffers::{Activations, Deltas, SparseScratch};
pub use init::Init;
pub use loss::{Loss, Score, Shaping, Targets};
pub use network::Network;
pub use passes::{Gradients, Input, SparseRows};
