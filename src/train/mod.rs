//! Training: one step ([`step`]: gather -> forward -> backward -> update), the loop around it
//! ([`trainer`]), when to stop ([`stop`]), what each epoch records ([`record`]), the health
//! probes ([`probe`]), the evaluation passes ([`evaluate`]) and the learning-rate range
//! test ([`lr_find`]).

pub mod distributed;
pub mod evaluate;
pub mod lr_find;
pub mod probe;
pub mod record;
pub mod step;
pub mod stop;
pub mod trainer;

pub use evaluate::{Evaluator, Subset};
pub use probe::{DataFacts, Diagnostics, LayerDiagnostics, Probe};
pub use record::{EpochRecord, Monitor, Observer, Observers, Silent, TrainState};
pub use step::{Batch, StepBuffers};
pub use stop::{stop_reason, StopReason, StopRules};
pub use trainer::{Sets, Trainer, TrainerOptions};
