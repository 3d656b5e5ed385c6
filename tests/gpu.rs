//! The GPU code path on burn's `wgpu` backend: on a machine without a GPU it runs on Mesa's
//! software Vulkan driver (lavapipe; `scripts/setup.sh` installs it), which executes the same
//! non-CPU code the `cuda` backend uses (burn's cubecl kernels and this crate's reference
//! compositions of the fused operations). Compared with the CPU backend on the same weights:
//! logits, gradients (packed rows included) and losses of a few training steps, and a batched,
//! constrained decode continued through the cache of earlier turns.
//!
//! Slow on lavapipe (shaders compile on first use), hence `#[ignore]`; `cargo test --workspace
//! -- --include-ignored` (the README's test command, and CI) runs it.

mod common;

use std::path::{Path, PathBuf};

use common::{model_weights, worst};

use burn::backend::wgpu::WgpuDevice;
use burn::backend::{Autodiff, Wgpu};
use burn::module::AutodiffModule;
use burn::prelude::*;
use eef_runtime::model::chat::{Chat, ChatSettings, Tokens};
use eef_runtime::model::decode::{decode, DecodeRow, DecodeSettings, Decoded};
use eef_runtime::model::prefix_cache::PrefixCache;
use eef_runtime::model::{hf, masked_lm_loss, row, Batch, CpuTrain, Llama, LmAutodiffBackend, Row, Tok, TrainSettings, Trainer};
use eef_runtime::policy::Step;

type Gpu = Autodiff<Wgpu<f32>>;

/// Logits and losses: f32 on both sides, summed in different orders.
const TOLERANCE: f32 = 2e-4;

fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/hf/tiny-llama3.2-instruct")
}

fn chat() -> Chat {
    let dir = folder();
    Chat::from_folder(&dir, Tok::from_file(&dir.join("tokenizer.json")).unwrap(), ChatSettings::default()).unwrap()
}

fn model<B: LmAutodiffBackend>(device: &B::Device) -> Llama<B> {
    hf::load_safetensors::<B>(&folder(), device).unwrap().1
}

/// Two training rows of one sequence each, and a row with both packed (each attending only to
/// itself: the packed attention path).
fn sequences(chat: &Chat) -> Vec<Row> {
    let t = |k: usize| {
        let steps = vec![Step::new(format!("WebShop [SEP] Search [SEP] item {k}"), "search[red socks]"), Step::new("results [SEP] B0123 [SEP] red socks", format!("click[b012{k}]"))];
        let mut ids = chat.prompt(&format!("find red socks {k}"), &steps, "socks page [SEP] Buy Now", 4096).unwrap();
        let n = ids.len();
        ids.extend(chat.answer("click[buy now]"));
        let trainable = (0..ids.len()).map(|i| i >= n).collect();
        Tokens { ids, trainable }
    };
    let seqs: Vec<Tokens> = (0..2).map(t).collect();
    let mut rows = row::unpacked(seqs.clone());
    rows.extend(row::pack(&seqs, 4096));
    assert_eq!(rows[2].starts.len(), 1, "the third row holds both");
    rows
}

fn logits<B: eef_runtime::model::LmBackend>(m: &Llama<B>, ids: &[u32], device: &B::Device) -> Vec<f32> {
    let t = Tensor::<B, 2, Int>::from_data(TensorData::new(ids.iter().map(|&i| i as i64).collect::<Vec<_>>(), [1, ids.len()]), device);
    m.logits(t).into_data().convert::<f32>().to_vec().unwrap()
}

/// The loss of `seqs` and the gradients of a few weights (layer 0's query projection and
/// biasless MLP down projection, the embedding).
fn loss_and_grads<B: LmAutodiffBackend>(m: &Llama<B>, seqs: &[Row], pad: u32, device: &B::Device) -> (f32, Vec<Vec<f32>>) {
    let batch = Batch::<B>::rows(seqs, pad, device);
    let loss = masked_lm_loss(batch.logits(m), batch.targets, batch.mask);
    let value: f32 = loss.clone().into_scalar().elem();
    let g = loss.backward();
    let get = |t: Tensor<B, 2>| t.grad(&g).expect("a gradient").into_data().convert::<f32>().to_vec::<f32>().unwrap();
    let grads = vec![get(m.layers[0].self_attn.q_proj.base.weight.val()), get(m.layers[1].mlp.down_proj.base.weight.val()), get(m.embed_tokens.weight.val())];
    (value, grads)
}

/// A batched decode, half the rows constrained to valid actions, twice through one cache of
/// earlier turns' keys and values (the second time every prompt continues from the first's).
fn decoded<B: LmAutodiffBackend>(m: &Llama<B>, chat: &Chat, device: &B::Device) -> Vec<Decoded> {
    let infer = m.valid();
    let mut cache = PrefixCache::new(4096);
    let mut out = decode_once(&infer, chat, device, &mut cache);
    out.extend(decode_once(&infer, chat, device, &mut cache));
    assert!(cache.stats().hits >= 4, "{:?}", cache.stats());
    out
}

fn decode_once<B: eef_runtime::model::LmBackend>(m: &Llama<B>, chat: &Chat, device: &B::Device, cache: &mut PrefixCache<B>) -> Vec<Decoded> {
    let choices: Vec<Vec<u32>> = ["click[buy now]", "click[< prev]", "click[back to search]", "search[red socks]"].iter().map(|a| chat.answer(a)).collect();
    let rows = (0..4)
        .map(|k| DecodeRow {
            prompt: chat.prompt(&format!("buy item {k}"), &[Step::new("WebShop [SEP] Search", "search[socks]")], &format!("page {k} [SEP] Buy Now"), 4096).unwrap(),
            choices: (k % 2 == 0).then(|| choices.clone()),
            temperature: 0.0,
            rng: eef_runtime::seed::rng(k as u64),
        })
        .collect();
    let settings = DecodeSettings { stop: chat.stop_ids().to_vec(), pad: chat.pad(), max_new_tokens: 6, top_p: 1.0, pad_to: 16 };
    decode(m, rows, settings, device, Some(cache))
}

#[test]
#[ignore = "runs on a Vulkan driver (lavapipe without a GPU; scripts/setup.sh installs it); slow: run with --include-ignored"]
fn wgpu_matches_the_cpu_backend_forward_backward_training_and_decoding() {
    let gpu: WgpuDevice = WgpuDevice::default();
    let cpu = Default::default();
    let chat = chat();
    let (g, c) = (model::<Gpu>(&gpu), model::<CpuTrain>(&cpu));

    // Decoding: a batch with constrained and free rows picks the same answers.
    let (dg, dc) = (decoded(&g, &chat, &gpu), decoded(&c, &chat, &cpu));
    eprintln!("decoded: {dg:?}");
    assert_eq!(dg, dc, "wgpu and CPU decode different answers");

    // Forward: logits of a real prompt.
    let seqs = sequences(&chat);
    let (lg, lc) = (logits(&g.valid(), &seqs[0].ids, &gpu), logits(&c.valid(), &seqs[0].ids, &cpu));
    let d = worst(&lg, &lc);
    eprintln!("forward: largest logit difference wgpu vs CPU over {} positions: {d:.2e}", seqs[0].ids.len());
    assert!(d <= TOLERANCE, "wgpu logits differ from the CPU's by {d}");

    // Backward: the loss and gradients of one batch.
    let ((loss_g, grads_g), (loss_c, grads_c)) = (loss_and_grads(&g, &seqs, chat.pad(), &gpu), loss_and_grads(&c, &seqs, chat.pad(), &cpu));
    assert!((loss_g - loss_c).abs() <= TOLERANCE, "loss {loss_g} vs {loss_c}");
    for (k, (a, b)) in grads_g.iter().zip(&grads_c).enumerate() {
        let scale = b.iter().map(|x| x.abs()).fold(0.0, f32::max).max(1e-6);
        let d = worst(a, b) / scale;
        eprintln!("backward: gradient {k} differs by {d:.2e} of its largest entry");
        assert!(d <= 1e-3, "gradient {k} differs by {d} (relative)");
    }

    // Training: a few optimizer steps on each backend follow the same losses, downwards.
    let settings = TrainSettings { learning_rate: 1e-2, warmup_steps: 1, total_steps: 4, ..TrainSettings::default() };
    let (mut tg, mut tc) = (Trainer::new(g, settings.clone()), Trainer::new(c, settings));
    let mut losses = Vec::new();
    for _ in 0..4 {
        let a = tg.micro_step(Batch::rows(&seqs, chat.pad(), &gpu));
        let b = tc.micro_step(Batch::rows(&seqs, chat.pad(), &cpu));
        losses.push((a, b));
    }
    eprintln!("training losses (wgpu, cpu): {losses:?}");
    for (a, b) in &losses {
        assert!((a - b).abs() <= 1e-2 * b.abs().max(1.0), "losses diverge: {losses:?}");
    }
    assert!(losses[3].0 < losses[0].0, "the loss falls on wgpu: {losses:?}");

    // Data-parallel training on the GPU path: one step on two wgpu peers (both on this adapter;
    // burn-collective's all-reduce runs on wgpu tensors) equals one step on the whole batch.
    let settings = TrainSettings { learning_rate: 1e-2, warmup_steps: 1, ..TrainSettings::default() };
    let (mut one, mut two) = (Trainer::new(model::<Gpu>(&gpu), settings.clone()), Trainer::new(model::<Gpu>(&gpu), settings));
    let l1 = one.micro_step(Batch::rows(&seqs, chat.pad(), &gpu));
    let config = hf::load_safetensors::<Gpu>(&folder(), &gpu).unwrap().0;
    let shape = eef_runtime::model::data_parallel::ModelShape { config: &config, lora: None };
    let l2 = eef_runtime::model::data_parallel::run(&mut two, &[gpu.clone(), gpu.clone()], chat.pad(), shape, |t, peers| peers.unwrap().micro_step(t, &seqs)).unwrap().unwrap();
    let d = worst(&model_weights(one.model()), &model_weights(two.model()));
    eprintln!("data-parallel on wgpu: loss {l1} vs {l2}, largest weight difference {d:.2e}");
    assert!((l1 - l2).abs() <= TOLERANCE && d <= 1e-4, "two wgpu peers: loss {l2} vs {l1}, weights differ by {d}");
}

#[test]
fn bf16_on_wgpu_is_refused_before_anything_runs() {
    use eef_runtime::model::{lm_policy, BackendKind, LmSettings, Precision};
    let settings = LmSettings { backend: BackendKind::Wgpu, precision: Precision::Bf16, ..LmSettings::default() };
    let err = lm_policy(settings).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("precision Bf16 is not available on backend Wgpu"), "{err}");
}
