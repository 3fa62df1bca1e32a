//! Looking at a trained model from outside the training loop: the evaluation report with its
//! confusion matrix ([`report`]), predictions ([`predict`]), the gradient check against
//! finite differences ([`gradcheck`]) and the benchmark's `sgemm` floor ([`bench`](mod@bench)).

pub mod bench;
pub mod gradcheck;
pub mod predict;
pub mod report;
pub mod trace;
