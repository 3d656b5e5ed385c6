//! Hugging Face model folders against `transformers` and `peft`: the fixtures in tests/data/hf
//! were written by scripts/make_hf_fixtures.py (tiny random models and tokenizers in the formats
//! Llama-3.x, Qwen2.5 and Mistral ship in, with transformers' logits, renderings and masks).

mod common;

use std::path::{Path, PathBuf};

use burn::prelude::*;
use eef_runtime::model::chat::{Chat, ChatSettings, Message, Role};
use eef_runtime::model::hf::{self, peft, SaveDtype, SaveOptions};
use eef_runtime::model::{Cpu, CpuTrain, Llama, LlamaConfig, RopeScaling, Tok};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/hf").join(name)
}

/// `tokens` and the named logits `[len, vocab]` from a fixture's expected.safetensors.
fn expected(dir: &Path, logits: &str) -> (Vec<i64>, Vec<f32>, usize) {
    let bytes = std::fs::read(dir.join("expected.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("tokens").unwrap();
    let tokens: Vec<i64> = t.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
    let l = st.tensor(logits).unwrap();
    let vocab = l.shape()[1];
    let values: Vec<f32> = l.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    (tokens, values, vocab)
}

fn logits(model: &Llama<Cpu>, tokens: &[i64]) -> Vec<f32> {
    let t = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(tokens.to_vec(), [1, tokens.len()]), &Default::default());
    model.logits(t).into_data().to_vec().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Largest |ours - transformers| over every position of the fixture's sequence.
fn parity(name: &str) -> (LlamaConfig, f32) {
    let dir = fixture(name);
    let (config, model) = hf::load_safetensors::<Cpu>(&dir, &Default::default()).unwrap();
    let (tokens, want, vocab) = expected(&dir, "logits");
    assert_eq!(vocab, config.vocab_size);
    let worst = max_diff(&logits(&model, &tokens), &want);
    eprintln!("{name}: largest |logit difference| from transformers over {} positions: {worst:.2e}", tokens.len());
    (config, worst)
}

/// f32 logits agree with transformers to 1e-4 (the fixtures' weights are N(0, 0.15²), larger
/// than trained models', so that differences show).
const F32_TOLERANCE: f32 = 1e-4;

#[test]
fn llama_3_2_style_folder_matches_transformers() {
    // rope_scaling llama3 with a 32-token original context over 96 positions, rope_theta 500000,
    // explicit head_dim (16 with hidden 48), tied embeddings, bf16 weights, the transformers-5
    // config layout (rope_parameters).
    let (c, worst) = parity("tiny-llama3.2-instruct");
    assert!(matches!(c.rope_scaling, Some(RopeScaling::Llama3 { original_max_position_embeddings: 32, .. })));
    assert!(c.tie_word_embeddings && c.head_dim() == 16 && c.hidden_size == 48);
    assert!(worst <= F32_TOLERANCE, "largest difference from transformers: {worst}");
}

#[test]
fn dropping_the_rope_scaling_would_be_caught() {
    // The same model without its scaling is far off: the parity test above can fail.
    let dir = fixture("tiny-llama3.2-instruct");
    let mut config = hf::read_config(&dir, &[]).unwrap();
    config.rope_scaling = None;
    let model = hf::load::load_weights::<Cpu>(&dir, &config, &Default::default(), Default::default()).unwrap();
    let (tokens, want, _) = expected(&dir, "logits");
    let worst = max_diff(&logits(&model, &tokens), &want);
    assert!(worst > 0.05, "rope scaling changes the logits by {worst} only");
}

#[test]
fn bf16_weights_load_exactly_and_bf16_compute_stays_within_its_tolerance() {
    // The weights are stored in bf16 and converted exactly; computing in f32 matches transformers
    // in f32 (above). transformers computing in bf16 differs from f32 by this much on the same
    // weights: the tolerance to expect from a bf16 backend (CUDA).
    let dir = fixture("tiny-llama3.2-instruct");
    let (_, f32_logits, _) = expected(&dir, "logits");
    let (_, bf16_logits, _) = expected(&dir, "logits_bf16");
    let bf16_gap = max_diff(&f32_logits, &bf16_logits);
    eprintln!("transformers bf16 vs f32 compute on the same weights: {bf16_gap:.3e}");
    assert!(bf16_gap > 1e-3 && bf16_gap < 0.25, "bf16 compute differs from f32 by {bf16_gap}");
    let (_, model) = hf::load_safetensors::<Cpu>(&dir, &Default::default()).unwrap();
    let e: Vec<f32> = model.embed_tokens.weight.val().into_data().to_vec().unwrap();
    assert!(e.iter().all(|v| half::bf16::from_f32(*v).to_f32() == *v), "bf16 values survive the conversion exactly");
}

#[test]
fn qwen2_with_biases_from_shards_matches_transformers() {
    let dir = fixture("tiny-qwen2.5-instruct");
    assert!(dir.join("model.safetensors.index.json").exists() && !dir.join("model.safetensors").exists());
    let files = hf::files::TensorFiles::open(&dir).unwrap();
    assert_eq!(files.paths().len(), 5, "five shards");
    let (c, worst) = parity("tiny-qwen2.5-instruct");
    assert!(c.qkv_bias() && !c.o_bias() && c.tie_word_embeddings);
    assert!(worst <= F32_TOLERANCE, "largest difference from transformers: {worst}");
}

#[test]
fn llama_3_1_style_and_mistral_match_transformers() {
    for name in ["tiny-llama3.1", "tiny-mistral"] {
        let (_, worst) = parity(name);
        assert!(worst <= F32_TOLERANCE, "{name}: largest difference from transformers: {worst}");
    }
}

/// A copy of a fixture folder with `edit` applied to its config.json.
fn edited(name: &str, edit: impl Fn(&mut serde_json::Value)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap().flatten() {
        std::fs::copy(e.path(), tmp.path().join(e.file_name())).unwrap();
    }
    let path = tmp.path().join("config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, v.to_string()).unwrap();
    tmp
}

fn load_error(dir: &Path) -> String {
    hf::load_safetensors::<Cpu>(dir, &Default::default()).map(|_| ()).unwrap_err().to_string()
}

#[test]
fn what_is_not_implemented_is_refused_by_name() {
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("tiny-llama3.1", Box::new(|v| v["rope_parameters"]["rope_type"] = "yarn".into()), "rope_type \"yarn\" is not implemented"),
        ("tiny-llama3.1", Box::new(|v| v["model_type"] = "gemma2".into()), "model_type = \"gemma2\" is not implemented"),
        ("tiny-llama3.1", Box::new(|v| v["architectures"] = serde_json::json!(["LlamaForTokenClassification"])), "`LlamaForTokenClassification` is not implemented"),
        ("tiny-llama3.1", Box::new(|v| v["final_logit_softcapping"] = 30.0.into()), "`final_logit_softcapping` = 30.0"),
        ("tiny-llama3.1", Box::new(|v| v["hidden_act"] = "gelu_pytorch_tanh".into()), "hidden_act = \"gelu_pytorch_tanh\""),
        ("tiny-llama3.1", Box::new(|v| v["mlp_bias"] = true.into()), "mlp_bias = true"),
        ("tiny-llama3.1", Box::new(|v| v["attention_dropout"] = 0.1.into()), "attention_dropout = 0.1"),
        ("tiny-llama3.1", Box::new(|v| v["quantization_config"] = serde_json::json!({"quant_method": "gptq"})), "`quantization_config`"),
        ("tiny-qwen2.5-instruct", Box::new(|v| v["layer_types"] = serde_json::json!(["full_attention", "chunked_attention"])), "\"chunked_attention\""),
        // A bias the configuration does not declare.
        ("tiny-qwen2.5-instruct", Box::new(|v| v["model_type"] = "llama".into()), "Qwen2ForCausalLM"),
    ];
    for (name, edit, needle) in cases {
        let dir = edited(name, edit);
        let err = load_error(dir.path());
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
    }
    // A model whose sliding window is shorter than the context it is used with.
    let dir = edited("tiny-mistral", |v| v["sliding_window"] = 256.into());
    let c = hf::read_config(dir.path(), &[]).unwrap();
    assert!(c.check_context(512).unwrap_err().contains("sliding_window = 256"));
    assert!(c.check_context(256).is_ok());
    // Loading the weights refuses it too, unless told the sequences fit in the window.
    let err = load_error(dir.path());
    assert!(err.contains("sliding_window = 256: sliding-window attention is not implemented") && err.contains("load_safetensors_within"), "{err}");
    let err = hf::load_safetensors_within::<Cpu>(dir.path(), &Default::default(), 512).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("sequences of up to 512 tokens"), "{err}");
    assert!(hf::load_safetensors_within::<Cpu>(dir.path(), &Default::default(), 256).is_ok());
    // A declared-harmless key is accepted.
    let dir = edited("tiny-llama3.1", |v| v["my_note"] = "x".into());
    assert!(hf::read_config(dir.path(), &["my_note".to_owned()]).is_ok());
}

#[test]
fn broken_folders_are_refused_with_the_file_or_tensor() {
    // No weights at all.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("tiny-mistral/config.json"), tmp.path().join("config.json")).unwrap();
    let err = load_error(tmp.path());
    assert!(err.contains("no model.safetensors and no model.safetensors.index.json"), "{err}");
    // An index that names a missing shard.
    let dir = edited("tiny-qwen2.5-instruct", |_| {});
    std::fs::remove_file(dir.path().join("model-00003-of-00005.safetensors")).unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("model-00003-of-00005.safetensors"), "{err}");
    // A tensor the architecture does not use.
    let dir = edited("tiny-qwen2.5-instruct", |v| {
        v["model_type"] = "mistral".into();
        v["architectures"] = serde_json::json!(["MistralForCausalLM"]);
    });
    let err = load_error(dir.path());
    assert!(err.contains("model.layers.0.self_attn.q_proj.bias") && err.contains("has a bias the configuration does not"), "{err}");
}

#[test]
fn saved_folders_read_back_with_a_complete_config() {
    for name in ["tiny-qwen2.5-instruct", "tiny-llama3.2-instruct"] {
        let dir = fixture(name);
        let (config, model) = hf::load_safetensors::<Cpu>(&dir, &Default::default()).unwrap();
        let (tokens, _, _) = expected(&dir, "logits");
        let before = logits(&model, &tokens);
        // Sharded f32 (small shards) and one bf16 file.
        for (dtype, shard) in [(SaveDtype::F32, 40_000), (SaveDtype::Bf16, usize::MAX)] {
            let out = tempfile::tempdir().unwrap();
            hf::save::save_llama(out.path(), &config, &model, &SaveOptions { dtype, max_shard_bytes: shard, ..Default::default() }).unwrap();
            let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.path().join("config.json")).unwrap()).unwrap();
            assert_eq!(cfg["model_type"], config.model_type.model_type());
            assert_eq!(cfg["architectures"][0], config.model_type.class_name());
            assert_eq!(cfg["torch_dtype"], dtype.torch_name());
            assert_eq!(cfg["rope_scaling"].is_null(), config.rope_scaling.is_none());
            assert_eq!(out.path().join("model.safetensors.index.json").exists(), dtype == SaveDtype::F32, "{name}: f32 is sharded");
            let (again, reloaded) = hf::load_safetensors::<Cpu>(out.path(), &Default::default()).unwrap();
            assert_eq!(again, config);
            let diff = max_diff(&logits(&reloaded, &tokens), &before);
            let tolerance = if dtype == SaveDtype::F32 { 0.0 } else { 0.25 };
            assert!(diff <= tolerance, "{name} {dtype:?}: reloaded logits differ by {diff}");
        }
    }
}

#[test]
fn peft_adapters_load_with_transformers_logits_and_export_the_same_tensors() {
    let base = fixture("tiny-llama3.2-instruct");
    let adapter = fixture("peft-lora");
    let (_, model) = hf::load_safetensors::<Cpu>(&base, &Default::default()).unwrap();
    let (model, settings) = peft::load_adapter(&adapter, model, &Default::default()).unwrap();
    assert_eq!((settings.rank, settings.alpha), (4, 8.0));
    let (tokens, want, _) = expected(&adapter, "logits");
    let worst = max_diff(&logits(&model, &tokens), &want);
    assert!(worst <= F32_TOLERANCE, "base + adapter differ from peft by {worst}");
    // Exported again: the same tensors under the same names.
    let out = tempfile::tempdir().unwrap();
    peft::save_adapter(out.path(), &model, &settings, Some("tiny-llama3.2-instruct")).unwrap();
    let read = |p: &Path| std::fs::read(p.join(peft::WEIGHTS)).unwrap();
    let (a, b) = (read(&adapter), read(out.path()));
    let (a, b) = (safetensors::SafeTensors::deserialize(&a).unwrap(), safetensors::SafeTensors::deserialize(&b).unwrap());
    let mut names: Vec<String> = a.names().into_iter().map(str::to_owned).collect();
    names.sort();
    let mut exported: Vec<String> = b.names().into_iter().map(str::to_owned).collect();
    exported.sort();
    assert_eq!(names, exported);
    for n in &names {
        assert_eq!(a.tensor(n).unwrap().data(), b.tensor(n).unwrap().data(), "{n}");
    }
    // Merged into the weights, the function is the same.
    let merged = model.merge_lora();
    assert!(max_diff(&logits(&merged, &tokens), &want) <= F32_TOLERANCE);
}

#[test]
fn unsupported_adapters_are_refused_by_key() {
    let tmp = tempfile::tempdir().unwrap();
    for f in [peft::CONFIG, peft::WEIGHTS] {
        std::fs::copy(fixture("peft-lora").join(f), tmp.path().join(f)).unwrap();
    }
    let path = tmp.path().join(peft::CONFIG);
    let original: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (key, value, needle) in [
        ("use_dora", serde_json::json!(true), "`use_dora` = true"),
        ("bias", serde_json::json!("all"), "bias = \"all\""),
        ("modules_to_save", serde_json::json!(["lm_head"]), "`modules_to_save`"),
        ("rank_pattern", serde_json::json!({"q_proj": 8}), "`rank_pattern`"),
        ("lora_dropout", serde_json::json!(0.05), "lora_dropout = 0.05"),
        ("peft_type", serde_json::json!("IA3"), "only LORA"),
    ] {
        let mut v = original.clone();
        v[key] = value;
        std::fs::write(&path, v.to_string()).unwrap();
        let err = peft::read_adapter_config(tmp.path()).unwrap_err().to_string();
        assert!(err.contains(needle), "{key}: {err}");
    }
}

#[derive(serde::Deserialize)]
struct Case {
    messages: Vec<Message>,
    add_generation_prompt: bool,
    text: String,
    ids: Vec<u32>,
    assistant_mask: Vec<u8>,
}

fn chat(folder: &str, settings: ChatSettings) -> Chat {
    let dir = fixture(folder);
    Chat::from_folder(&dir, Tok::from_file(&dir.join("tokenizer.json")).unwrap(), settings).unwrap()
}

fn cases(file: &str) -> Vec<Case> {
    serde_json::from_str(&std::fs::read_to_string(fixture(file)).unwrap()).unwrap()
}

#[test]
fn chat_templates_render_what_apply_chat_template_renders_token_for_token() {
    for (folder, file) in [("tiny-llama3.2-instruct", "chat-llama3.json"), ("tiny-qwen2.5-instruct", "chat-qwen2.5.json"), ("tiny-mistral-v0.3-chat", "chat-mistral-v0.3.json")] {
        let chat = chat(folder, ChatSettings::default());
        let cases = cases(file);
        assert!(cases.len() >= 20);
        for (i, c) in cases.iter().enumerate() {
            let text = chat.render_text(&c.messages, c.add_generation_prompt).unwrap();
            assert_eq!(text, c.text, "{file} case {i}: text");
            assert_eq!(chat.tok().encode(&text), c.ids, "{file} case {i}: tokens");
        }
    }
}

/// The runs of consecutive 1s in a mask, as index ranges.
fn runs(mask: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &m) in mask.iter().chain(std::iter::once(&0)).enumerate() {
        match (m, start) {
            (1, None) => start = Some(i),
            (0, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    out
}

#[test]
fn loss_masks_mark_exactly_the_trainable_answers_tokens() {
    for (folder, file) in [("tiny-llama3.2-instruct", "chat-llama3.json"), ("tiny-qwen2.5-instruct", "chat-qwen2.5.json"), ("tiny-mistral-v0.3-chat", "chat-mistral-v0.3.json")] {
        let chat = chat(folder, ChatSettings::default());
        for (i, c) in cases(file).into_iter().enumerate() {
            if folder.contains("mistral") && c.messages[0].role == Role::System {
                // Mistral v0.3's template shows the system prompt only in a dialogue that ends
                // with a user message, so a whole dialogue with answers has no place for it:
                // such trajectories train as per-turn windows (each the prompt acting saw), the
                // sequences' fallback for templates that are not prefix-stable.
                continue;
            }
            // Every other assistant message is masked out (an expert prefix, a harmful action).
            let mut messages = c.messages.clone();
            let mut keep = Vec::new();
            for (k, m) in messages.iter_mut().filter(|m| m.role == Role::Assistant).enumerate() {
                m.trainable = k % 2 == 0 || i % 3 == 0;
                keep.push(m.trainable);
            }
            // transformers' assistant mask ({% generation %} around each answer and its end-of-turn
            // token), restricted to the trainable answers.
            let spans = runs(&c.assistant_mask);
            assert_eq!(spans.len(), keep.len(), "{file} case {i}: one span per answer");
            let mut want = vec![false; c.ids.len()];
            for (span, keep) in spans.into_iter().zip(keep) {
                if keep {
                    want[span].iter_mut().for_each(|w| *w = true);
                }
            }
            let got = chat.render(&messages, c.add_generation_prompt).unwrap();
            assert_eq!(got.ids, c.ids, "{file} case {i}");
            assert_eq!(got.trainable, want, "{file} case {i}: mask");
        }
    }
}

#[test]
fn stop_ids_come_from_generation_config_and_include_the_end_of_turn() {
    let llama = chat("tiny-llama3.2-instruct", ChatSettings::default());
    let tok = llama.tok();
    let ids = |names: &[&str]| names.iter().map(|n| tok.token_id(n).unwrap()).collect::<Vec<u32>>();
    assert_eq!(llama.stop_ids(), ids(&["<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"]));
    let qwen = chat("tiny-qwen2.5-instruct", ChatSettings::default());
    assert_eq!(qwen.stop_ids(), qwen.tok().token_id("<|im_end|>").into_iter().chain(qwen.tok().token_id("<|endoftext|>")).collect::<Vec<_>>());
    // An answer's tokens (what constrained decoding walks) end with the end-of-turn token.
    let answer = llama.answer("click[buy now]");
    assert_eq!(*answer.last().unwrap(), tok.token_id("<|eot_id|>").unwrap());
    assert_eq!(tok.decode(&answer[..answer.len() - 1]), "click[buy now]");
    // Mistral v0.3's shape ends an answer with `' ' + eos_token`: the plain-space token `▁`
    // (which decodes to nothing) comes first and must not stop generation, or an action stops
    // at its first space; only the special `</s>` stops it.
    let mistral = chat("tiny-mistral-v0.3-chat", ChatSettings::default());
    let mtok = mistral.tok();
    assert_eq!(mistral.stop_ids(), [mtok.token_id("</s>").unwrap()]);
    let space = mtok.token_id("▁").unwrap();
    assert!(!mistral.stop_ids().contains(&space));
    let answer = mistral.answer("click[item 0]");
    let end = answer.iter().position(|i| mistral.stop_ids().contains(i)).unwrap();
    assert_eq!(end, answer.len() - 1, "the answer runs to </s>: {answer:?}");
    assert!(mtok.decode(&answer[..end]).contains("click[item 0]"), "{:?}", mtok.decode(&answer[..end]));
}

/// A trajectory with thoughts: `(observation, thought, action, trainable)` per turn.
fn react_trajectory(k: usize, turns: &[(&str, &str, &str, bool)]) -> eef_runtime::Trajectory {
    use eef_runtime::{Actor, Turn};
    let turns = turns.iter().map(|(o, t, a, trainable)| Turn { observation: (*o).into(), thought: Some((*t).into()), action: (*a).into(), actor: Actor::Expert, reward: 0.0, trainable: *trainable }).collect();
    common::expert_trajectory(k, format!("buy red socks {k}"), turns, true)
}

#[test]
fn react_windows_train_thought_and_action_or_only_the_action() {
    use eef_runtime::model::chat::{AnswerFormat, LossOn};
    let t = react_trajectory(0, &[("WebShop [SEP] Search", "I should search.", "search[red socks]", false), ("results [SEP] B0123", "The first fits.", "click[b0123]", true)]);
    for (loss, trained_text) in [(LossOn::ThoughtAndAction, "Thought: The first fits.\nAction: click[b0123]"), (LossOn::Action, "Action: click[b0123]")] {
        let chat = chat("tiny-llama3.2-instruct", ChatSettings { answer: AnswerFormat::React, loss, ..Default::default() });
        let windows = chat.windows(&t, 10_000).unwrap();
        assert_eq!(windows.len(), 1, "one window per trainable turn");
        let w = &windows[0];
        let trained = w.trained_ids();
        let eot = chat.tok().token_id("<|eot_id|>").unwrap();
        assert_eq!(*trained.last().unwrap(), eot, "the end-of-turn token is trained");
        assert_eq!(chat.tok().decode(&trained[..trained.len() - 1]), trained_text, "{loss:?}");
        // The window's prompt is exactly what acting sees at that turn.
        let prompt = chat.prompt(&t.instruction, &[eef_runtime::policy::Step::of(&t.turns[0])], &t.turns[1].observation, 10_000).unwrap();
        assert_eq!(w.ids[..prompt.len()], prompt[..]);
        assert!(w.trainable[..prompt.len()].iter().all(|x| !x), "nothing of the prompt is trained");
        // The earlier, untrainable turn's thought is in the prompt as the model wrote it.
        assert!(chat.tok().decode(&prompt).contains("Thought: I should search.\nAction: search[red socks]"));
    }
}

#[test]
fn answers_are_parsed_the_same_way_and_unparsable_ones_go_to_the_environment_as_they_are() {
    use eef_runtime::model::chat::AnswerFormat;
    let chat = chat("tiny-qwen2.5-instruct", ChatSettings { answer: AnswerFormat::React, ..Default::default() });
    let tok = chat.tok();
    let act = chat.parse(&tok.encode("Thought: the red ones.\nAction: click[red]"));
    assert_eq!((act.thought.as_deref(), act.action.as_str()), (Some("the red ones."), "click[red]"));
    let act = chat.parse(&tok.encode("I think I will click red"));
    assert_eq!((act.thought, act.action.as_str()), (None, "I think I will click red"), "sent as is: the environment answers it as an invalid action");
}

#[test]
fn an_instruct_folder_trains_a_lora_react_policy_that_saves_as_peft_and_reloads() {
    use eef_runtime::model::chat::AnswerFormat;
    use eef_runtime::model::{Constrained, LmPolicy, LmSettings, LoraSettings};
    use eef_runtime::policy::{ActRequest, Policy, TrainConfig};
    let turns = |k: usize| {
        let page = format!("results [SEP] B0{k}");
        react_trajectory(k, &[("WebShop [SEP] Search", "Search first.", "search[red socks]", true), (Box::leak(page.into_boxed_str()), "Buy it.", "click[buy now]", true)])
    };
    let data: Vec<_> = (0..4).map(turns).collect();
    let settings = LmSettings {
        init: Some(fixture("tiny-llama3.2-instruct")),
        chat: ChatSettings { answer: AnswerFormat::React, ..Default::default() },
        constrained: Constrained::Off,
        max_context: 512,
        max_new_tokens: 24,
        batch_size: 4,
        lora: Some(LoraSettings { rank: 8, alpha: 16.0, targets: ["q_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj", "k_proj"].map(String::from).to_vec(), ..Default::default() }),
        train: eef_runtime::model::TrainSettings { learning_rate: 3e-2, warmup_steps: 2, ..Default::default() },
        ..LmSettings::default()
    };
    settings.validate().unwrap();
    let mut p = LmPolicy::<CpuTrain>::new(settings.clone(), Default::default());
    let report = p.train(&data, &TrainConfig { epochs: 80, ..TrainConfig::default() }).unwrap();
    assert_eq!(report.trainable_turns, 8);
    let req = ActRequest {
        seed: 3,
        task: "task-1".into(),
        instruction: "buy red socks 1".into(),
        history: vec![eef_runtime::policy::Step { observation: "WebShop [SEP] Search".into(), thought: Some("Search first.".into()), action: "search[red socks]".into() }],
        observation: "results [SEP] B01".into(),
        valid_actions: None,
        temperature: 0.0,
    };
    let act = p.act_batch(std::slice::from_ref(&req)).remove(0).unwrap();
    assert_eq!((act.thought.as_deref(), act.action.as_str()), (Some("Buy it."), "click[buy now]"));
    // Saved as a PEFT adapter (with the tokenizer files), reloaded over the same base.
    let out = tempfile::tempdir().unwrap();
    p.save(out.path()).unwrap();
    for f in [peft::CONFIG, peft::WEIGHTS, "tokenizer.json", "chat_template.jinja", "generation_config.json"] {
        assert!(out.path().join(f).exists(), "{f}");
    }
    assert!(!out.path().join("model.safetensors").exists(), "the base weights are not copied");
    let mut q = LmPolicy::<CpuTrain>::new(settings, Default::default());
    q.load(out.path()).unwrap();
    assert_eq!(q.act_batch(&[req]).remove(0).unwrap(), act);
}

#[test]
fn long_episodes_drop_their_oldest_turns_keep_the_instruction_and_train_on_what_acting_sees() {
    use eef_runtime::model::chat::AnswerFormat;
    let turns: Vec<(String, String, String, bool)> =
        (0..8).map(|i| (format!("page {i}: {}", "red socks cotton [SEP] ".repeat(6)), format!("step {i} looks right."), format!("click[item {i}]"), i % 2 == 1)).collect();
    let borrowed: Vec<(&str, &str, &str, bool)> = turns.iter().map(|(o, t, a, k)| (o.as_str(), t.as_str(), a.as_str(), *k)).collect();
    let t = react_trajectory(3, &borrowed);
    let settings = ChatSettings { answer: AnswerFormat::React, system_prompt: Some("You shop.".into()), ..Default::default() };
    let corpus: Vec<String> = eef_runtime::model::chat::corpus(&t);
    let chats = [chat("tiny-llama3.2-instruct", settings.clone()), Chat::compact(Tok::train_bpe(&corpus, 400).unwrap(), settings).unwrap()];
    for chat in chats {
        let budget = 220;
        let windows = chat.windows(&t, budget).unwrap();
        assert_eq!(windows.len(), 4);
        let steps: Vec<eef_runtime::policy::Step> = t.turns.iter().map(eef_runtime::policy::Step::of).collect();
        for (w, k) in windows.iter().zip([1, 3, 5, 7]) {
            let prompt = chat.prompt(&t.instruction, &steps[..k], &t.turns[k].observation, budget).unwrap();
            assert!(prompt.len() <= budget, "{} tokens", prompt.len());
            assert_eq!(w.ids[..prompt.len()], prompt[..], "turn {k}: the window's prompt is the acting prompt");
            let text = chat.tok().decode(&prompt);
            assert!(text.contains("You shop.") && text.contains("buy red socks 3"), "turn {k}: the system prompt and instruction stay: {text}");
            assert!(text.contains(&format!("page {k}:")), "turn {k}: the current observation is there");
            if k == 7 {
                assert!(!text.contains("page 0:"), "the oldest turns are dropped");
            }
        }
    }
}

#[test]
fn reference_model_configs_read_strictly_and_count_their_model_cards_parameters() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/models");
    // Parameter counts as transformers counts them (and the model cards state).
    for (name, params) in [
        ("Meta-Llama-3-8B-Instruct", 8_030_261_248u64),
        ("Llama-3.1-8B-Instruct", 8_030_261_248),
        ("Llama-3.2-1B-Instruct", 1_235_814_400),
        ("Qwen2.5-7B-Instruct", 7_615_616_512),
        ("Qwen2.5-0.5B-Instruct", 494_032_768),
        ("Mistral-7B-Instruct-v0.3", 7_248_023_552),
    ] {
        let path = dir.join(format!("{name}.json"));
        let c = hf::config::from_json(name, &std::fs::read_to_string(&path).unwrap(), &[]).unwrap();
        assert_eq!(c.parameter_count() as u64, params, "{name}");
    }
}

#[test]
fn the_8b_webshop_config_plans_to_fit_one_80_gb_gpu_and_not_a_24_gb_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = root.join("experiments/configs/webshop-llama3-8b.toml");
    let model = Some(root.join("experiments/models/Meta-Llama-3-8B-Instruct.json"));
    let plan = eef_experiments::plan::run(&config, model.clone(), 80.0).unwrap();
    assert!(plan.contains("8.030 B") && plan.contains("41.9 M") && plan.contains("fits: peak"), "{plan}");
    let plan = eef_experiments::plan::run(&config, model, 24.0).unwrap();
    assert!(plan.contains("does NOT fit"), "{plan}");
    // Without the downloaded folder and no --model-config, the plan says what to do.
    let err = eef_experiments::plan::run(&config, None, 80.0).unwrap_err().to_string();
    assert!(err.contains("no config.json there yet") && err.contains("--model-config"), "{err}");
}

#[test]
fn react_answers_refuse_constrained_decoding_when_the_run_is_set_up() {
    use eef_runtime::model::chat::AnswerFormat;
    use eef_runtime::model::LmSettings;
    let s = LmSettings { chat: ChatSettings { answer: AnswerFormat::React, ..Default::default() }, ..Default::default() };
    let err = s.validate().unwrap_err();
    assert!(err.contains("constrained = \"prefix\" cannot be used with [policy.chat] answer = \"react\""), "{err}");
}

#[test]
fn a_folder_without_a_chat_template_is_refused_unless_the_compact_template_is_asked_for() {
    use eef_runtime::model::chat::TemplateChoice;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("tiny-llama3.2-instruct/tokenizer.json"), tmp.path().join("tokenizer.json")).unwrap();
    let tok = || Tok::from_file(&tmp.path().join("tokenizer.json")).unwrap();
    let err = Chat::from_folder(tmp.path(), tok(), ChatSettings::default()).unwrap_err();
    assert!(err.contains("no chat template") && err.contains("template = \"compact\""), "{err}");
    let err = Chat::from_folder(tmp.path(), tok(), ChatSettings { template: TemplateChoice::Model, ..Default::default() }).unwrap_err();
    assert!(err.contains("no chat template"), "{err}");
    let compact = Chat::from_folder(tmp.path(), tok(), ChatSettings { template: TemplateChoice::Compact, ..Default::default() }).unwrap();
    assert!(compact.is_compact() && compact.tok().vocab_size() == tok().vocab_size() + 5, "five tokens added");
    // A template that does not compile is refused with the template engine's message.
    std::fs::write(tmp.path().join("chat_template.jinja"), "{% for m in messages %}{{ m.content }").unwrap();
    let err = Chat::from_folder(tmp.path(), tok(), ChatSettings::default()).unwrap_err();
    assert!(err.contains("the chat template does not compile"), "{err}");
}

#[test]
fn every_shipped_language_model_config_reads_and_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/configs");
    for name in ["webshop.toml", "webshop-large.toml", "webshop-llama3-8b.toml", "webshop-llama3-8b-2nodes.toml", "sciworld.toml", "vault-lm.toml"] {
        let config = eef_runtime::ExperimentConfig::from_file(dir.join(name)).unwrap();
        let settings: eef_runtime::model::LmSettings = config.policy().unwrap_or_else(|e| panic!("{name}: {e}"));
        settings.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Mistral v0.3 shows the system prompt only in a dialogue that ends with a user message (the
/// generation prompt), so a whole conversation with answers cannot hold it: such a trajectory
/// trains as per-turn windows (counted as a fallback), each the prompt acting saw — system prompt
/// included — followed by the answer as generation writes it, through `</s>`.
#[test]
fn a_template_that_shows_the_system_prompt_only_when_generating_trains_as_windows() {
    use eef_runtime::model::chat::{AnswerFormat, SequenceForm, SequenceSettings};
    let settings = ChatSettings { answer: AnswerFormat::React, system_prompt: Some("You are web shopping.".into()), ..Default::default() };
    let chat = chat("tiny-mistral-v0.3-chat", settings);
    let t = react_trajectory(0, &[("WebShop [SEP] Search", "I should search.", "search[red socks]", true), ("results [SEP] B0123", "The first fits.", "click[b0123]", true)]);
    let (seqs, stats) = chat.sequences(&t, &SequenceSettings { form: SequenceForm::Conversation, max_len: 4096, prompt_budget: 4096, overlap: 0 }).unwrap();
    assert_eq!((seqs.len(), stats.fallbacks), (2, 1), "{stats:?}");
    let eos = chat.tok().token_id("</s>").unwrap();
    for (k, w) in seqs.iter().enumerate() {
        let steps: Vec<_> = t.turns[..k].iter().map(eef_runtime::policy::Step::of).collect();
        let prompt = chat.prompt(&t.instruction, &steps, &t.turns[k].observation, 4096).unwrap();
        assert_eq!(w.ids[..prompt.len()], prompt[..], "window {k}: the prompt acting saw");
        let marked: Vec<_> = steps.iter().map(|st| (st.clone(), false)).collect();
        let text = chat.render_text(&chat.messages(&t.instruction, &marked, Some(&t.turns[k].observation)), true).unwrap();
        assert!(text.contains("[INST] You are web shopping.\n\n"), "window {k}: the system prompt is in {text:?}");
        assert_eq!(chat.tok().encode(&text), prompt, "window {k}: the prompt is the template's generation prompt");
        let answer = chat.answer(&format!("Thought: {}\nAction: {}", t.turns[k].thought.as_deref().unwrap(), t.turns[k].action));
        assert_eq!(w.ids[prompt.len()..], answer[..], "window {k}: the answer as generation writes it");
        assert_eq!(*w.ids.last().unwrap(), eos);
        assert!(w.trainable[prompt.len()..].iter().all(|&x| x) && !w.trainable[..prompt.len()].iter().any(|&x| x));
    }
}
