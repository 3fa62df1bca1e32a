//! Data-parallel training over a [`Collective`] (Horovod's scheme): every rank walks the same
//! seeded shuffle, takes its share of each global batch, computes its part of the gradient of
//! the global-batch mean, and one allreduce of the flat gradient buffer gives every rank the
//! same gradient, hence the same update. With one rank ([`crate::compute::dist::Single`])
//! nothing here runs: the trainer takes its ordinary fused step.

use super::evaluate::{Evaluator, Subset};
use super::record::TrainState;
use super::step::{Batch, StepBuffers};
use crate::compute::dist::Collective;
use crate::data::{Dataset, InputTransform};
use crate::model::{Network, Score};
use crate::optim::Optimizer;
use anyhow::{anyhow, bail, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Nanoseconds this process spent in the steps' allreduces, and the steps: what the
/// communication costs (waiting for a slower rank included), for the run's last line.
static ALLREDUCE_NANOS: AtomicU64 = AtomicU64::new(0);
static STEPS: AtomicU64 = AtomicU64::new(0);

/// Seconds in the steps' allreduces so far, and the steps taken.
pub fn allreduce_time() -> (f64, u64) {
    let nanos = ALLREDUCE_NANOS.load(Ordering::Relaxed);
    (nanos as f64 * 1e-9, STEPS.load(Ordering::Relaxed))
}

/// Rank `rank`'s part of `items`: contiguous, the sizes of the `size` parts differing by at
/// most one (a batch smaller than the job leaves some ranks nothing).
pub fn shard<T>(items: &[T], rank: usize, size: usize) -> &[T] {
    &items[span(items.len(), rank, size)]
}

/// The range of `0..n` that [`shard`] gives rank `rank`.
pub fn span(n: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    rank * n / size..(rank + 1) * n / size
}

/// The score summed over ranks, with `stop` or-ed in: one small allreduce. The counts are
/// exact in an `f64` (below 2^53).
fn reduce_score(team: &dyn Collective, score: Score, stop: bool) -> (Score, bool) {
    let mut sums = [
        score.loss_sum,
        score.correct as f64,
        score.counted as f64,
        score.samples as f64,
        f64::from(u8::from(stop)),
    ];
    team.allreduce_sum_f64(&mut sums);
    let total = Score {
        loss_sum: sums[0],
        correct: sums[1] as usize,
        counted: sums[2] as usize,
        samples: sums[3] as usize,
    };
    (total, sums[4] > 0.0)
}

/// One data-parallel step on the global batch `batch`: this rank's share of the gradient of
/// the batch mean (weighted by its share of the samples), summed over ranks, then the same
/// update on every rank. Returns the global score, the rows this rank ran (its activations
/// hold them) and whether any rank asked to stop. A non-finite loss on any rank leaves every
/// replica's weights untouched, as in one process.
pub fn step(
    team: &dyn Collective,
    buffers: &mut StepBuffers,
    net: &mut Network,
    optimizer: &mut Optimizer,
    batch: Batch,
    lr: f32,
    stop: bool,
) -> (Score, usize, bool) {
    let rows = span(batch.indices.len(), team.rank(), team.size());
    // Dropout masks by the rows' place in the global batch: those one process would draw.
    (buffers.mask_step, buffers.mask_first_row) = (optimizer.steps, rows.start);
    let mine = &batch.indices[rows];
    let local = if mine.is_empty() {
        buffers.grads.fill(0.0);
        Score::default()
    } else {
        let weight = mine.len() as f32 / batch.indices.len() as f32;
        let share = Batch {
            indices: mine,
            ..batch
        };
        buffers.weighted_gradient(net, share, weight)
    };
    let started = Instant::now();
    team.allreduce_sum_f32(&mut buffers.grads);
    let (score, stop) = reduce_score(team, local, stop);
    let nanos = started.elapsed().as_nanos() as u64;
    ALLREDUCE_NANOS.fetch_add(nanos, Ordering::Relaxed);
    STEPS.fetch_add(1, Ordering::Relaxed);
    if score.loss_sum.is_finite() {
        optimizer.step(lr, &mut net.params, &buffers.grads);
    }
    (score, mine.len(), stop)
}

/// `evaluator`'s score of `subset`, each rank scoring its share and the shares summed.
pub fn score(
    team: &dyn Collective,
    evaluator: &mut Evaluator,
    net: &Network,
    data: &Dataset,
    transform: &InputTransform,
    subset: Subset,
) -> Score {
    if team.size() == 1 {
        return evaluator.score(net, data, transform, subset);
    }
    let (rank, size) = (team.rank(), team.size());
    let mine = match subset {
        Subset::All => {
            let r = span(data.len(), rank, size);
            Subset::Span(r.start, r.end)
        }
        Subset::Only(ix) => Subset::Only(shard(ix, rank, size)),
        Subset::Span(start, end) => {
            let r = span(end - start, rank, size);
            Subset::Span(start + r.start, start + r.end)
        }
    };
    let local = evaluator.score(net, data, transform, mine);
    reduce_score(team, local, false).0
}

/// The FNV-1a hash's start.
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a: `bytes` folded into `h` (a cheap checksum, not a cryptographic one).
pub fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// A hash of the parameters' bit patterns and the step count: equal on every rank while
/// the replicas are identical.
pub fn checksum(state: &TrainState) -> u64 {
    let params = &state.net.params;
    let h = params
        .iter()
        .fold(FNV_START, |h, p| fnv(h, &p.to_bits().to_le_bytes()));
    fnv(h, &state.optimizer.steps.to_le_bytes())
}

/// Stops the run on every rank when the replicas differ after `epoch` (a rank started from
/// other weights, another config or seed, or its arithmetic differs).
pub fn check_replicas(team: &dyn Collective, state: &TrainState, epoch: usize) -> Result<()> {
    if team.size() == 1 {
        return Ok(());
    }
    let Err(sums) = team.all_equal_u64(checksum(state)) else {
        return Ok(());
    };
    bail!(
        "after epoch {epoch} the model on rank(s) {} differs from rank 0's (checksums {sums:x?}): \
         every rank must run the same config, seed, data and checkpoint",
        unlike_rank_0(&sums)
    )
}

/// The ranks whose value differs from rank 0's, as `1, 3`.
pub fn unlike_rank_0(values: &[u64]) -> String {
    let differ: Vec<String> = (0..values.len())
        .filter(|&r| values[r] != values[0])
        .map(|r| r.to_string())
        .collect();
    differ.join(", ")
}

/// Every rank learns whether any rank's `result` failed; a rank that did not fail gets an
/// error naming the ranks that did (who report their own errors). Call on every rank.
pub fn agree<T>(team: &dyn Collective, what: &str, result: Result<T>) -> Result<T> {
    if team.size() == 1 {
        return result;
    }
    let failed: Vec<usize> = match team.all_equal_u64(u64::from(result.is_err())) {
        Ok(()) if result.is_ok() => return result,
        Ok(()) => (0..team.size()).collect(),
        Err(flags) => (0..flags.len()).filter(|&r| flags[r] != 0).collect(),
    };
    let rank = team.rank();
    result.map_err(|e| e.context(format!("rank {rank}: {what}")))?;
    let names: Vec<String> = failed.iter().map(usize::to_string).collect();
    Err(anyhow!(
        "rank {rank}: stopping because rank(s) {} failed: {what} (see their messages)",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, Architecture, Loss};
    use crate::optim::Hyper;

    /// Rank `rank` of `values.len()`, where rank r passed `values[r]` to `all_equal_u64`.
    struct Fake {
        rank: usize,
        values: Vec<u64>,
    }

    impl Collective for Fake {
        fn size(&self) -> usize {
            self.values.len()
        }
        fn rank(&self) -> usize {
            self.rank
        }
        fn allreduce_sum_f32(&self, _buf: &mut [f32]) {}
        fn allreduce_sum_f64(&self, _buf: &mut [f64]) {}
        fn broadcast_bytes(&self, _root: usize, _buf: &mut Vec<u8>) {}
        fn all_equal_u64(&self, value: u64) -> Result<(), Vec<u64>> {
            let mut all = self.values.clone();
            all[self.rank] = value;
            match all.iter().all(|&v| v == value) {
                true => Ok(()),
                false => Err(all),
            }
        }
        fn abort(&self, code: i32) -> ! {
            panic!("abort {code}")
        }
    }

    fn state() -> TrainState {
        let arch = Architecture::flat(2, &[(2, Activation::Identity)], Loss::SoftmaxCrossEntropy);
        let net = Network::zeros(arch);
        let optimizer = Optimizer::new(Hyper::default(), &net.tensors);
        TrainState {
            net,
            optimizer,
            history: Vec::new(),
        }
    }

    #[test]
    fn replicas_that_differ_stop_the_run_naming_the_ranks() {
        let mut s = state();
        let sum = checksum(&s);
        let same = Fake {
            rank: 0,
            values: vec![sum; 3],
        };
        check_replicas(&same, &s, 1).unwrap();
        s.net.params[1] = f32::from_bits(1);
        assert_ne!(checksum(&s), sum, "one bit changes the checksum");
        let other = Fake {
            rank: 2,
            values: vec![sum; 3],
        };
        let e = check_replicas(&other, &s, 4).unwrap_err().to_string();
        assert!(
            e.contains("after epoch 4 the model on rank(s) 2 differs"),
            "{e}"
        );
    }

    #[test]
    fn a_failure_on_one_rank_fails_every_rank_naming_it() {
        let ok = || Ok::<u8, anyhow::Error>(1);
        let peers_failed = Fake {
            rank: 0,
            values: vec![0, 1, 1],
        };
        let e = agree(&peers_failed, "opening", ok())
            .unwrap_err()
            .to_string();
        assert!(e.contains("rank(s) 1, 2 failed: opening"), "{e}");
        let me = Fake {
            rank: 1,
            values: vec![0, 1],
        };
        let e = agree(&me, "opening", Err::<u8, _>(anyhow!("no disk"))).unwrap_err();
        assert!(
            format!("{e:#}").starts_with("rank 1: opening: no disk"),
            "{e:#}"
        );
        let fine = Fake {
            rank: 0,
            values: vec![0, 0],
        };
        assert_eq!(agree(&fine, "opening", ok()).unwrap(), 1);
    }

    #[test]
    fn shards_cover_the_batch_once_and_differ_by_at_most_one() {
        for n in [0usize, 1, 5, 7, 600, 601] {
            for size in 1..=4 {
                let items: Vec<usize> = (0..n).collect();
                let parts: Vec<&[usize]> = (0..size).map(|r| shard(&items, r, size)).collect();
                assert_eq!(parts.concat(), items, "n {n} size {size}");
                let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
                let (lo, hi) = (lens.iter().min().unwrap(), lens.iter().max().unwrap());
                assert!(hi - lo <= 1, "n {n} size {size}: {lens:?}");
            }
        }
    }
}
