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
//! Across machines (`[policy.train.cluster]`, [`cluster`]): the other machines run
//! `eef train-node` ([`node`]); at the start of each training phase the driver hands each node
//! the model and optimizer state, then a contiguous share of every micro-batch (its devices'
//! shards), and burn-collective's global level sums the gradients across the machines.

pub mod cluster;
pub mod node;
pub mod wire;

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, MutexGuard};

use burn::collective::{self, PeerId};
use burn::module::Module;

use super::config::LlamaConfig;
use super::kernels::LmAutodiffBackend;
use super::llama::Llama;
use super::lora::LoraSettings;
use super::train::{Batch, OptimRecord, Trainer};
use cluster::Global;
use node::RemoteNode;
use wire::{Hello, Request};

pub use cluster::ClusterSettings;

/// A training row: token ids, per token whether predicting it carries loss, packed sequences.
pub type Window = super::row::Row;

/// Training rows.
pub type Seqs = [Window];

/// burn-collective keeps one server per backend per process: two groups at once would mix their
/// peers, so groups take turns.
static GROUP: Mutex<()> = Mutex::new(());

/// The shape of the model being trained: what a node on another machine rebuilds the module
/// from before loading the driver's values into it.
#[derive(Clone, Copy, Debug)]
pub struct ModelShape<'a> {
    /// The architecture (with the vocabulary as trained).
    pub config: &'a LlamaConfig,
    /// The adapters, when only they train.
    pub lora: Option<&'a LoraSettings>,
}

/// The peers of a data-parallel group other than peer 0, while [`run`] lasts: this machine's
/// other devices (threads) and the other machines' nodes.
pub struct Peers<B: LmAutodiffBackend> {
    to: Vec<Sender<Request>>,
    from: Vec<Receiver<Result<f32, String>>>,
    remote: Mutex<Vec<RemoteNode>>,
    pad: u32,
    device: B::Device,
}

impl<B: LmAutodiffBackend> std::fmt::Debug for Peers<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers").field("peers", &self.len()).finish_non_exhaustive()
    }
}

/// The windows and weights of the shard `r` of `seqs`: a shard with no window still takes part
/// in the all-reduce, with one window of weight 0 (zero gradients for every parameter).
fn shard(seqs: &Seqs, weights: &[f32], r: &std::ops::Range<usize>) -> (Vec<Window>, Vec<f32>) {
    if r.is_empty() {
        (seqs.iter().take(1).cloned().collect(), vec![0.0; seqs.len().min(1)])
    } else {
        (seqs[r.clone()].to_vec(), weights[r.clone()].to_vec())
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
    seqs.iter().map(super::row::Row::trained_targets).sum()
}

impl<B: LmAutodiffBackend> Peers<B> {
    /// Peers in the group, peer 0 included: this machine's devices and every node's.
    pub fn len(&self) -> usize {
        self.to.len() + 1 + self.remote().iter().map(|n| n.devices).sum::<usize>()
    }

    fn remote(&self) -> MutexGuard<'_, Vec<RemoteNode>> {
        self.remote.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the group is peer 0 alone (never: [`run`] makes none then).
    pub fn is_empty(&self) -> bool {
        false
    }

    fn send(&self, work: impl Fn() -> Request) -> Result<(), String> {
        for (p, to) in self.to.iter().enumerate() {
            to.send(work()).map_err(|_| format!("data-parallel peer {} stopped", p + 1))?;
        }
        for node in self.remote().iter_mut() {
            node.send(&work())?;
        }
        Ok(())
    }

    /// Every other peer's answer to the last request, summed; the first failure otherwise
    /// (after every answer is in).
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
        for node in self.remote().iter_mut() {
            match node.answer() {
                Ok(v) => sum += v,
                Err(e) => first_err = first_err.or(Some(e)),
            }
        }
        first_err.map_or(Ok(sum), Err)
    }

    /// Backpropagates `Σ weights[s] · NLL_s` over `seqs`, split into one shard per peer (peer 0's
    /// on `trainer`), into every peer's pending gradients. Returns the sum of the peers' values.
    pub fn accumulate(&self, trainer: &mut Trainer<B>, seqs: &Seqs, weights: &[f32]) -> Result<f32, String> {
        let parts = shards(seqs.len(), self.len());
        // A peer whose shard is empty (a last batch smaller than the group) still takes part in
        // the all-reduce (see `shard`).
        let local = self.to.len() + 1;
        for (p, r) in parts.iter().enumerate().take(local).skip(1) {
            let (s, w) = shard(seqs, weights, r);
            self.to[p - 1].send(Request::Accumulate(s, w)).map_err(|_| format!("data-parallel peer {p} stopped"))?;
        }
        // Each node gets its devices' shards as one (it splits them again).
        let mut first = local;
        for node in self.remote().iter_mut() {
            let r = parts[first].start..parts[first + node.devices - 1].end;
            first += node.devices;
            let (s, w) = shard(seqs, weights, &r);
            node.send(&Request::Accumulate(s, w))?;
        }
        let (s, w) = shard(seqs, weights, &parts[0]);
        let own = if s.is_empty() { 0.0 } else { trainer.accumulate_weighted(Batch::rows(&s, self.pad, &self.device), &w) };
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
        self.send(|| Request::EndMicro)?;
        let own = trainer.end_micro();
        self.gather()?;
        own
    }

    /// [`Trainer::apply_step`] on every peer at once.
    pub fn step(&self, trainer: &mut Trainer<B>) -> Result<(), String> {
        self.send(|| Request::Step)?;
        let own = trainer.apply_step();
        self.gather()?;
        own
    }
}

/// One peer's loop: apply `work` to its trainer until peer 0 hangs up.
fn serve<B: LmAutodiffBackend>(mut trainer: Trainer<B>, pad: u32, device: B::Device, work: Receiver<Request>, answer: Sender<Result<f32, String>>) {
    while let Ok(w) = work.recv() {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match w {
            Request::Accumulate(s, w) => Ok(trainer.accumulate_weighted(Batch::rows(&s, pad, &device), &w)),
            Request::EndMicro => trainer.end_micro().map(|()| 0.0),
            Request::Step => trainer.apply_step().map(|()| 0.0),
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

/// burn-collective keeps one server per backend per process: the group that holds this runs.
pub(crate) fn turn() -> MutexGuard<'static, ()> {
    GROUP.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `body` with `trainer` as peer 0 of a group over `devices` (its own device first) and,
/// with `[policy.train.cluster]` in its settings, over the nodes it lists (each handed
/// `trainer`'s state and `shape`); with one device and no cluster `body` gets no [`Peers`] and
/// trains as usual. Every other peer starts from a copy of `trainer`'s model, optimizer state
/// and counters (after a checkpoint was restored, the restored ones), on its device. The group
/// is registered with burn-collective for `body`'s duration, and the peers stop when it
/// returns.
pub fn run<B: LmAutodiffBackend, R>(
    trainer: &mut Trainer<B>,
    devices: &[B::Device],
    pad: u32,
    shape: ModelShape<'_>,
    body: impl FnOnce(&mut Trainer<B>, Option<&Peers<B>>) -> R,
) -> Result<R, String> {
    let Some(cluster) = trainer.settings.cluster.clone() else {
        return group(trainer, devices, pad, None, Vec::new(), body);
    };
    cluster.validate()?;
    let _turn = turn();
    cluster::ensure_orchestrator(cluster::port_of(&cluster.orchestrator)?)?;
    let global = cluster.global();
    // Every node loads the state at once (a record can be gigabytes).
    let (model, optim) = node::records(trainer)?;
    let nodes: Vec<RemoteNode> = std::thread::scope(|scope| {
        let records = (&model[..], &optim[..]);
        let handles: Vec<_> = cluster
            .nodes
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                let hello = Hello {
                    node: i as u32 + 1,
                    nodes: global.nodes,
                    orchestrator: global.orchestrator.clone(),
                    config: shape.config.clone(),
                    lora: shape.lora.cloned(),
                    settings: trainer.settings.clone(),
                    pad,
                    step: trainer.step,
                    micro: trainer.micro_steps(),
                };
                scope.spawn(move || RemoteNode::connect(addr, &hello, records))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("connecting to a training node panicked".into()))).collect::<Result<Vec<_>, String>>()
    })?;
    group(trainer, devices, pad, Some(&global), nodes, body)
}

/// [`run`] once the nodes are connected: the group over this machine's `devices` (burn-collective's
/// global level too when `global` is given), with `remote` nodes taking their shares. The
/// caller holds [`turn`] when `global` is given; otherwise this takes it.
pub(crate) fn group<B: LmAutodiffBackend, R>(
    trainer: &mut Trainer<B>,
    devices: &[B::Device],
    pad: u32,
    global: Option<&Global>,
    remote: Vec<RemoteNode>,
    body: impl FnOnce(&mut Trainer<B>, Option<&Peers<B>>) -> R,
) -> Result<R, String> {
    if devices.len() <= 1 && global.is_none() {
        return Ok(body(trainer, None));
    }
    let _turn = global.is_none().then(turn);
    type Inner<B> = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;
    collective::reset_collective::<Inner<B>>();
    let config = cluster::collective_config(devices.len(), global)?;
    if global.is_some() {
        // Registering starts this machine's tensor-data service, whose server would otherwise
        // install its own log subscriber (`info`, every tensor sent) for the process.
        crate::logging::init();
    }
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
        let peers = Peers { to, from, remote: Mutex::new(remote), pad, device: devices[0].clone() };
        collective::register::<Inner<B>>(PeerId::from(0), devices[0].clone(), config).map_err(|e| format!("registering with burn-collective failed: {e:?}"))?;
        trainer.join(PeerId::from(0));
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(trainer, Some(&peers))));
        if out.is_err() {
            // Peers waiting in an all-reduce for peer 0 return, so the threads can be joined.
            collective::reset_collective::<Inner<B>>();
        }
        // The nodes end their part first: a global finish does not wait for them.
        for node in std::mem::take(&mut *peers.remote()) {
            node.close();
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
        let s = vec![Window::single(vec![1, 2, 3], vec![true, true, false]), Window::single(vec![4, 5], vec![false, true])];
        assert_eq!(trainable_targets(&s), 2);
    }
}
