//! Whole-conversation training against per-turn windows: the same tokens, the same loss marks,
//! the same per-token log-probabilities and loss, on the compact template and on real chat
//! templates (the Llama-3.2 and Qwen2.5 fixtures of tests/data/hf); pieces of long trajectories;
//! packed rows; the fallback for a template that rewrites earlier turns.

mod common;

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use eef_runtime::model::chat::{AnswerFormat, Chat, ChatSettings, SequenceForm, SequenceSettings, Tokens};
use eef_runtime::model::{hf, row, Cpu, Llama, LlamaConfig, Tok};
use eef_runtime::{Actor, Trajectory, Turn};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/hf").join(name)
}

/// A WebShop-like episode with thoughts: the first `prefix` turns are an untrained expert prefix,
/// turn 3 is masked (a harmful action), the rest trained.
fn episode(k: usize, turns: usize, prefix: usize) -> Trajectory {
    let turns = (0..turns)
        .map(|i| Turn {
            observation: format!("page {i} [SEP] results [SEP] B0{k}{i} [SEP] red socks, cotton, pack of {i} [SEP] $1{i}.99"),
            thought: Some(format!("Item {i} looks close; I check it.")),
            action: if i == 0 { "search[red cotton socks]".into() } else { format!("click[b0{k}{i}]") },
            actor: if i < prefix { Actor::Expert } else { Actor::Policy },
            reward: 0.0,
            trainable: i >= prefix && i != 3,
        })
        .collect();
    common::expert_trajectory(k, format!("i need a pack of {k} red cotton socks, price lower than 30.00 dollars"), turns, true)
}

fn settings(form: SequenceForm, max_len: usize) -> SequenceSettings {
    SequenceSettings { form, max_len, prompt_budget: max_len, overlap: max_len / 4 }
}

fn react() -> ChatSettings {
    ChatSettings { answer: AnswerFormat::React, system_prompt: Some("You are a shopper.".into()), ..Default::default() }
}

/// The three chats with the model each is tested with: the compact template (a BPE trained on the
/// episodes, a seeded small model) and the two pretrained fixtures with their own weights.
fn chats(data: &[Trajectory]) -> Vec<(&'static str, Chat, Llama<Cpu>)> {
    let corpus: Vec<String> = data.iter().flat_map(eef_runtime::model::chat::corpus).collect();
    let compact = Chat::compact(Tok::train_bpe(&corpus, 400).unwrap(), react()).unwrap();
    let config = LlamaConfig { vocab_size: compact.tok().vocab_size(), ..LlamaConfig::tiny(compact.tok().vocab_size()) };
    let mut out = vec![("compact", compact, Llama::<Cpu>::seeded(&config, 3, &Default::default()))];
    for (name, folder) in [("llama-3.2", "tiny-llama3.2-instruct"), ("qwen2.5", "tiny-qwen2.5-instruct")] {
        let dir = fixture(folder);
        let chat = Chat::from_folder(&dir, Tok::from_file(&dir.join("tokenizer.json")).unwrap(), react()).unwrap();
        let (_, model) = hf::load_safetensors::<Cpu>(&dir, &Default::default()).unwrap();
        out.push((name, chat, model));
    }
    out
}

/// Per trained token (in order), `log p(token | everything before it in its sequence)`, for
/// sequences packed into rows as `row::pack` packs them.
fn trained_log_probs(model: &Llama<Cpu>, seqs: &[Tokens], pack_to: Option<usize>) -> Vec<(u32, f32)> {
    let rows = match pack_to {
        Some(len) => row::pack(seqs, len),
        None => row::unpacked(seqs.to_vec()),
    };
    let mut out = Vec::new();
    for r in rows {
        let n = r.len();
        let ids: Vec<i64> = r.ids.iter().map(|&i| i64::from(i)).collect();
        let input = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(ids, [1, n]), &Default::default());
        let logits = model.logits_packed(input, std::slice::from_ref(&r.starts));
        let v = logits.dims()[2];
        let lp: Vec<f32> = log_softmax(logits.reshape([n, v]), 1).into_data().to_vec().unwrap();
        for i in 1..n {
            if r.target_trained(i) {
                out.push((r.ids[i], lp[(i - 1) * v + r.ids[i] as usize]));
            }
        }
    }
    out
}

/// Sorted by (token, value) so that rows packed in another order compare.
fn sorted(mut x: Vec<(u32, f32)>) -> Vec<(u32, f32)> {
    x.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    x
}

fn loss(x: &[(u32, f32)]) -> f64 {
    -x.iter().map(|&(_, l)| f64::from(l)).sum::<f64>() / x.len() as f64
}

#[test]
fn one_sequence_per_trajectory_trains_exactly_what_the_windows_train() {
    let data: Vec<Trajectory> = vec![episode(1, 6, 2), episode(2, 4, 0)];
    for (name, chat, model) in chats(&data) {
        for t in &data {
            let (conv, stats) = chat.sequences(t, &settings(SequenceForm::Conversation, 100_000)).unwrap();
            let (windows, _) = chat.sequences(t, &settings(SequenceForm::Windows, 100_000)).unwrap();
            assert_eq!((conv.len(), stats.fallbacks, stats.split), (1, 0, 0), "{name}: one sequence, prefix-stable");
            assert_eq!(windows.len(), t.trainable_turns(), "{name}: one window per trained answer");
            let c = &conv[0];
            // Each window is the conversation up to and including its answer, token for token,
            // with the same loss marks on that answer; together they mark what the conversation
            // marks, each token once.
            let mut marked = vec![0usize; c.ids.len()];
            let mut answer_start = 0;
            for w in &windows {
                let n = w.ids.len();
                assert_eq!(w.ids[..], c.ids[..n], "{name} {}: a window is a prefix of the conversation", t.id);
                let first = w.trainable.iter().position(|&x| x).unwrap();
                assert!(first >= answer_start, "{name}: windows in order");
                assert_eq!(w.trainable[first..], c.trainable[first..n], "{name} {}: the answer's marks", t.id);
                w.trainable.iter().enumerate().filter(|(_, &x)| x).for_each(|(i, _)| marked[i] += 1);
                answer_start = n;
            }
            let want: Vec<usize> = c.trainable.iter().map(|&x| usize::from(x)).collect();
            assert_eq!(marked, want, "{name} {}: every trained token once", t.id);
            assert_eq!(c.ids.len(), windows.last().unwrap().ids.len(), "{name}: the conversation ends with its last trained answer");
            // The same per-token log-probabilities and loss, in one forward pass instead of one per
            // window.
            let one = trained_log_probs(&model, &conv, None);
            let per_window = trained_log_probs(&model, &windows, None);
            assert_eq!(one.len(), per_window.len());
            for (i, (a, b)) in one.iter().zip(&per_window).enumerate() {
                assert_eq!(a.0, b.0, "{name}: token {i}");
                assert!((a.1 - b.1).abs() <= 2e-5, "{name} {}: trained token {i}: {} vs {}", t.id, a.1, b.1);
            }
            assert!((loss(&one) - loss(&per_window)).abs() <= 2e-6, "{name}: loss {} vs {}", loss(&one), loss(&per_window));
        }
        // Packed into one row, the two conversations give what they give alone.
        let convs: Vec<Tokens> = data.iter().flat_map(|t| chat.sequences(t, &settings(SequenceForm::Conversation, 100_000)).unwrap().0).collect();
        let alone = sorted(trained_log_probs(&model, &convs, None));
        let packed = sorted(trained_log_probs(&model, &convs, Some(100_000)));
        assert_eq!(row::pack(&convs, 100_000).len(), 1, "{name}: both in one row");
        for (a, b) in alone.iter().zip(&packed) {
            assert!(a.0 == b.0 && (a.1 - b.1).abs() <= 2e-5, "{name}: packed {b:?} vs alone {a:?}");
        }
    }
}

#[test]
fn long_trajectories_are_cut_into_pieces_that_train_each_answer_once() {
    let t = episode(7, 12, 1);
    let data = vec![t.clone()];
    for (name, chat, _) in chats(&data) {
        let whole = chat.sequences(&t, &settings(SequenceForm::Conversation, 100_000)).unwrap().0.remove(0);
        let max_len = whole.ids.len() / 3;
        let s = SequenceSettings { overlap: max_len / 3, ..settings(SequenceForm::Conversation, max_len) };
        let (pieces, stats) = chat.sequences(&t, &s).unwrap();
        assert!(pieces.len() >= 3 && stats.split == 1 && stats.cut == 0, "{name}: {} pieces, {stats:?}", pieces.len());
        let text = |x: &Tokens| chat.tok().decode(&x.ids);
        for p in &pieces {
            assert!(p.ids.len() <= max_len, "{name}: a piece fits: {} > {max_len}", p.ids.len());
            let s = text(p);
            assert!(s.contains("You are a shopper.") && s.contains(&t.instruction), "{name}: each piece opens with the system prompt and instruction: {s}");
        }
        // Every trained answer exactly once, in order: the trained tokens of the pieces are those
        // of the whole conversation.
        let trained: Vec<u32> = pieces.iter().flat_map(Tokens::trained_ids).collect();
        assert_eq!(trained, whole.trained_ids(), "{name}");
        // A later piece opens with earlier history, untrained: the turn before its first trained
        // answer.
        let trained = chat.tok().decode(&pieces[1].trained_ids());
        let k = (1..t.turns.len()).find(|&k| trained.contains(&format!("Item {k} looks close"))).expect("a trained answer");
        assert!(text(&pieces[1]).contains(&format!("page {} [SEP]", k - 1)), "{name}: piece 2 (from turn {k}) shows turn {}", k - 1);
    }
}

#[test]
fn a_template_that_rewrites_earlier_turns_falls_back_to_windows_and_is_counted() {
    // Like Qwen3's: a later assistant turn drops the thoughts of the earlier ones, so the
    // conversation is not the windows' prefix.
    let template = "{% for m in messages %}<|{{ m.role }}|>{% if m.role == 'assistant' and not loop.last %}{{ m.content.split('Action:')[-1] }}{% else %}{{ m.content }}{% endif %}<|end|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
    let dir = fixture("tiny-llama3.2-instruct");
    let tok = Tok::from_file(&dir.join("tokenizer.json")).unwrap();
    let eos = [tok.token_id("<|eot_id|>").unwrap()];
    let chat = Chat::jinja(tok, &template.replace("<|end|>", "<|eot_id|>"), vec![], &eos, react()).unwrap();
    let t = episode(3, 5, 0);
    let (seqs, stats) = chat.sequences(&t, &settings(SequenceForm::Conversation, 100_000)).unwrap();
    assert_eq!(stats.fallbacks, 1);
    assert_eq!(seqs, chat.windows(&t, 100_000).unwrap(), "the windows, as acting sees each turn");
}
