//! Data-parallel training over several devices with burn-collective (`[policy.train] devices`).
//!
//! Each device (a *peer*) holds a copy of the model and its optimizer state. Every micro-batch
//! is split into one contiguous shard per peer; each peer backpropagates its shard's part of the
//! objective, and before each optimizer step the peers' gradients are summed with
//! [`burn::collective`]'s all-reduce ([`burn::optim::GradientsParams::all_reduce`]), so every
//! copy takes the same step. The objective is split so that the parts sum to the single-device
//! one: a shard's loss is its tokens' summed negative log-likelihood divided by the trainable
//! tokens of the **whole** micro-batch (and by `accumulation`), which is what
//! [`super::masked_lm_loss`] averages over; DPO's pass-2 weights are per pair already. Training
//! on `n` devices thus equals training on one up to floating-point summation order;
//! `tests/data_parallel.rs` holds it to that (within 1e-5 per weight; 4e-7 measured).
//!
//! Peer 0 is the caller's [`Trainer`] (its model is the result, its state is what checkpoints
//! save); peers 1.. are threads, each driving its own device. A peer that fails (a panic, an
//! out-of-memory) resets the collective so the others' pending all-reduce returns an error
//! instead of waiting forever, and the training call reports it.
//!
//! Scope: the peers are devices of one machine (burn-collective's *local* level). Its global
//! level (nodes on several machines, through its orchestrator) is not wired in: every node would
//! need its own share of the data and a driver, which eef's single-driver loop does not have.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;

use burn::collective::{self, CollectiveConfig, PeerId};
use burn::module::Module;

use super::kernels::LmAutodiffBackend;
use super::llama::Llama;
use super::train::{Batch, OptimRecord, Trainer};

/// A training window: token ids and, per token, whether predicting it carries loss.
pub type Window = (Vec<u32>, Vec<bool>);

/// Training windows.
pub type Seqs = [Window];

/// burn-collective keeps one server per backend per process: two groups at once would mix their
/// peers, so groups take turns.
static GROUP: Mutex<()> = Mutex::new(());

/// What peer 0 asks of the others.
enum Work {
    /// Backpropagate `Σ weights[s] · NLL_s` over these windows (see
    /// [`Trainer::accumulate_weighted`]); answer the value.
    Accumulate(Vec<Window>, Vec<f32>),
    /// End the micro-batch ([`Trainer::end_micro`]): an all-reduced step at the boundary.
    EndMicro,
    /// An all-reduced optimizer step now ([`Trainer::apply_step`]).
    Step,
}

/// The peers of a data-parallel group other than peer 0, while [`run`] lasts.
pub struct Peers<B: LmAutodiffBackend> {
    to: Vec<Sender<Work>>,
    from: Vec<Receiver<Result<f32, String>>>,
    pad: u32,
    device: B::Device,
}

impl<B: LmAutodiffBackend> std::fmt::Debug for Peers<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers").field("peers", &(self.to.len() + 1)).finish_non_exhaustive()
    }
}

/// Splits `n` items into `peers` contiguous shards whose sizes differ by at most one, the larger
/// first: the ranges.
pub fn shards(n: usize, peers: usize) -> Vec<std::ops::Range<usize>> {
    let peers = peers.max(1);
    let (base, extra) = (n / peers, n % peers);
    let mut start = 0;
    (0..peers)
        .map(|p| {
            let len = base + usize::from(p < extra);
            let r = start..start + len;
            start += len;
            r
        })
        .collect()
}

/// Trainable target tokens of `seqs` (what [`super::masked_lm_loss`] divides by: each window's
/// trainable tokens after its first).
pub fn trainable_targets(seqs: &Seqs) -> usize {
    seqs.iter().map(|(ids, trained)| trained.iter().take(ids.len()).skip(1).filter(|&&t| t).count()).sum()
}

impl<B: LmAutodiffBackend> Peers<B> {
    /// Peers in the group, peer 0 included.
    pub fn len(&self) -> usize {
        self.to.len() + 1
    }

    /// Whether the group is peer 0 alone (never: [`run`] makes none then).
    pub fn is_empty(&self) -> bool {
        false
    }

    fn send(&self, work: impl Fn() -> Work) -> Result<(), String> {
        for (p, to) in self.to.iter().enumerate() {
            to.send(work()).map_err(|_| format!("data-parallel peer {} stopped", p + 1))?;
        }
        Ok(())
    }

    fn gather(&self) -> Result<f32, String> {
        let mut sum = 0.0;
        let mut first_err = None;
        for (p, from) in self.from.iter().enumerate() {
            match from.recv() {
                Ok(Ok(v)) => sum += v,
                Ok(Err(e)) => first_err = first_err.or(Some(format!("data-parallel peer {}: {e}", p + 1))),
                Err(_) => first_err = first_err.or(Some(format!("data-parallel peer {} stopped", p + 1))),
            }
        }
        first_err.map_or(Ok(sum), Err)
    }

    /// Backpropagates `Σ weights[s] · NLL_s` over `seqs`, split into one shard per peer (peer 0's
    /// on `trainer`), into every peer's pending gradients. Returns the sum of the peers' values.
    pub fn accumulate(&self, trainer: &mut Trainer<B>, seqs: &Seqs, weights: &[f32]) -> Result<f32, String> {
        let parts = shards(seqs.len(), self.len());
        // A peer whose shard is empty (a last batch smaller than the group) still takes part in
        // the all-reduce: it backpropagates one window with weight 0, which gives zero gradients
        // for every parameter.
        let shard = |r: &std::ops::Range<usize>| -> (Vec<Window>, Vec<f32>) {
            if r.is_empty() {
                (seqs.iter().take(1).cloned().collect(), vec![0.0; seqs.len().min(1)])
            } else {
                (seqs[r.clone()].to_vec(), weights[r.clone()].to_vec())
            }
        };
        for (p, r) in parts.iter().enumerate().skip(1) {
            let (s, w) = shard(r);
            self.to[p - 1].send(Work::Accumulate(s, w)).map_err(|_| format!("data-parallel peer {p} stopped"))?;
        }
        let (s, w) = shard(&parts[0]);
        let own = if s.is_empty() { 0.0 } else { trainer.accumulate_weighted(Batch::new(&s, self.pad, &self.device), &w) };
        Ok(own + self.gather()?)
    }

    /// One micro-batch of the masked causal-LM loss over the group: [`Peers::accumulate`] with
    /// weights `1 / (trainable tokens of the micro-batch · accumulation)`, then
    /// [`Trainer::end_micro`] on every peer. Returns the micro-batch's loss, as
    /// [`Trainer::micro_step`] does on one device.
    pub fn micro_step(&self, trainer: &mut Trainer<B>, seqs: &Seqs) -> Result<f32, String> {
        let n = trainer.settings.accumulation.max(1);
        let w = 1.0 / (trainable_targets(seqs).max(1) * n) as f32;
        let loss = self.accumulate(trainer, seqs, &vec![w; seqs.len()])?;
        self.end_micro(trainer)?;
        Ok(loss * n as f32)
    }

    /// [`Trainer::end_micro`] on every peer at once (the all-reduce waits for all of them).
    pub fn end_micro(&self, trainer: &mut Trainer<B>) -> Result<(), String> {
        self.send(|| Work::EndMicro)?;
        let own = trainer.end_micro();
        self.gather()?;
        own
    }

    /// [`Trainer::apply_step`] on every peer at once.
    pub fn step(&self, trainer: &mut Trainer<B>) -> Result<(), String> {
        self.send(|| Work::Step)?;
        let own = trainer.apply_step();
        self.gather()?;
        own
    }
}

/// One peer's loop: apply `work` to its trainer until peer 0 hangs up.
fn serve<B: LmAutodiffBackend>(mut trainer: Trainer<B>, pad: u32, device: B::Device, work: Receiver<Work>, answer: Sender<Result<f32, String>>) {
    while let Ok(w) = work.recv() {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match w {
            Work::Accumulate(s, w) => Ok(trainer.accumulate_weighted(Batch::new(&s, pad, &device), &w)),
            Work::EndMicro => trainer.end_micro().map(|()| 0.0),
            Work::Step => trainer.apply_step().map(|()| 0.0),
        }));
        let r = r.unwrap_or_else(|panic| {
            // The other peers may be waiting in an all-reduce this peer will never join.
            collective::reset_collective::<B::InnerBackend>();
            let msg = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(format!("panicked: {}", msg.unwrap_or_default()))
        });
        let failed = r.is_err();
        if answer.send(r).is_err() || failed {
            break;
        }
    }
}

/// Runs `body` with `trainer` as peer 0 of a group over `devices` (its own device first): with
/// one device `body` gets no [`Peers`] and trains as usual. Every other peer starts from a copy
/// of `trainer`'s model, optimizer state and counters (after a checkpoint was restored, the
/// restored ones), on its device. The group is registered with burn-collective for `body`'s
/// duration, and the peers stop when it returns.
pub fn run<B: LmAutodiffBackend, R>(
    trainer: &mut Trainer<B>,
    devices: &[B::Device],
    pad: u32,
    body: impl FnOnce(&mut Trainer<B>, Option<&Peers<B>>) -> R,
) -> Result<R, String> {
    if devices.len() <= 1 {
        return Ok(body(trainer, None));
    }
    let _turn = GROUP.lock().unwrap_or_else(|p| p.into_inner());
    type Inner<B> = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;
    collective::reset_collective::<Inner<B>>();
    let config = CollectiveConfig::default().with_num_devices(devices.len());
    let record: OptimRecord<B> = trainer.optimizer_record();
    let (step, micro) = (trainer.step, trainer.micro_steps());
    std::thread::scope(|scope| {
        let mut to = Vec::new();
        let mut from = Vec::new();
        for (p, device) in devices.iter().enumerate().skip(1) {
            let (work_tx, work_rx) = channel();
            let (answer_tx, answer_rx) = channel();
            to.push(work_tx);
            from.push(answer_rx);
            // A copy with its own autodiff leaves (and the same parameter ids, which the
            // optimizer state and the all-reduce's order go by).
            let model: Llama<B> = trainer.model().clone().fork(device);
            let (record, settings, device, config) = (record.clone(), trainer.settings.clone(), device.clone(), config.clone());
            std::thread::Builder::new()
                .name(format!("eef-peer-{p}"))
                .spawn_scoped(scope, move || {
                    if let Err(e) = collective::register::<Inner<B>>(PeerId::from(p as u32), device.clone(), config) {
                        let _ = answer_tx.send(Err(format!("registering with burn-collective failed: {e:?}")));
                        return;
                    }
                    let mut t = Trainer::new(model.clone(), settings);
                    t.restore_model(model, record, step, micro);
                    t.join(PeerId::from(p as u32));
                    serve(t, pad, device, work_rx, answer_tx);
                    let _ = collective::finish_collective::<Inner<B>>(PeerId::from(p as u32));
                })
                .map_err(|e| format!("could not start data-parallel peer {p}: {e}"))?;
        }
        let peers = Peers { to, from, pad, device: devices[0].clone() };
        collective::register::<Inner<B>>(PeerId::from(0), devices[0].clone(), config).map_err(|e| format!("registering with burn-collective failed: {e:?}"))?;
        trainer.join(PeerId::from(0));
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(trainer, Some(&peers))));
        if out.is_err() {
            // Peers waiting in an all-reduce for peer 0 return, so the threads can be joined.
            collective::reset_collective::<Inner<B>>();
        }
        let _ = collective::finish_collective::<Inner<B>>(PeerId::from(0));
        trainer.leave();
        drop(peers);
        Ok(out.unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_contiguous_and_balanced() {
        assert_eq!(shards(5, 2), vec![0..3, 3..5]);
        assert_eq!(shards(1, 3), vec![0..1, 1..1, 1..1]);
        assert_eq!(shards(6, 3), vec![0..2, 2..4, 4..6]);
    }

    #[test]
    fn trainable_targets_skip_each_first_token() {
        let s = vec![(vec![1, 2, 3], vec![true, true, false]), (vec![4, 5], vec![false, true])];
        assert_eq!(trainable_targets(&s), 2);
    }
}
