//! `config.json`: read strictly, written completely.
//!
//! **Reading.** Every key of the file is accounted for: keys that define the model are read into
//! [`LlamaConfig`]; keys whose value only matters at one setting (`hidden_act = "silu"`,
//! `mlp_bias = false`, `attention_dropout = 0`, `use_sliding_window = false`, ...) are checked
//! against it; keys known not to change the computation (`torch_dtype`, `bos_token_id`,
//! `transformers_version`, ...) are skipped. Any other key is an error naming the key and its
//! value, because a key this crate does not know may change what the model computes (as
//! `rope_scaling` did before it was implemented). A user who has checked that an unknown key is
//! harmless lists it in `[policy] accept_config_keys`.
//!
//! Both layouts of the rotary settings are read: `rope_theta` + `rope_scaling` (transformers 4)
//! and `rope_parameters` (transformers 5).
//!
//! **Writing.** [`to_json`] writes `model_type`, `architectures`, the rotary settings in the
//! transformers-4 layout (which transformers 5 also reads), biases, `torch_dtype`/`dtype` and the
//! special-token ids, so `AutoModelForCausalLM.from_pretrained` loads the folder.

use serde_json::{json, Map, Value};

use crate::model::config::{Architecture, LlamaConfig};
use crate::model::rope::RopeScaling;

/// Keys that never change what the model computes (bookkeeping, generation defaults, token ids,
/// the initialiser of fresh weights).
const INERT: &[&str] = &[
    "_name_or_path",
    "torch_dtype",
    "dtype",
    "transformers_version",
    "use_cache",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "initializer_range",
    "pretraining_tp",
    "output_attentions",
    "output_hidden_states",
    "return_dict",
    "tokenizer_class",
    "keys_to_ignore_at_inference",
    "is_encoder_decoder",
    "chunk_size_feed_forward",
    "_attn_implementation_autoset",
    "_attn_implementation",
    "id2label",
    "label2id",
    "problem_type",
    "max_window_layers",
];

/// A problem with a `config.json`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigJsonError {
    /// The file.
    pub path: String,
    /// What is wrong, naming the key and its value.
    pub message: String,
}

/// Reads a Hugging Face `config.json` (its text `text`, from `path`) into a [`LlamaConfig`].
/// `accept` lists unknown keys the user has declared harmless.
pub fn from_json(path: &str, text: &str, accept: &[String]) -> Result<LlamaConfig, ConfigJsonError> {
    let err = |message: String| ConfigJsonError { path: path.to_owned(), message };
    let root: Value = serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
    let Value::Object(map) = root else { return Err(err("not a JSON object".into())) };
    let mut r = Reader { map, path };

    let model_type = r.string("model_type")?.ok_or_else(|| err("no `model_type`: cannot tell which architecture this is".into()))?;
    let arch = Architecture::ALL.into_iter().find(|a| a.model_type() == model_type).ok_or_else(|| {
        let known: Vec<&str> = Architecture::ALL.iter().map(|a| a.model_type()).collect();
        err(format!("model_type = {model_type:?} is not implemented (known: {known:?})"))
    })?;
    if let Some(v) = r.take("architectures") {
        let names: Vec<String> = serde_json::from_value(v.clone()).map_err(|_| err(format!("architectures = {v}: expected a list of class names")))?;
        if let Some(other) = names.iter().find(|n| n.as_str() != arch.class_name()) {
            return Err(err(format!("architectures = {v}: `{other}` is not implemented (model_type {model_type:?} is {:?})", arch.class_name())));
        }
    }
    let required = |r: &mut Reader, key: &str| r.usize(key)?.ok_or_else(|| err(format!("no `{key}`")));
    let hidden_size = required(&mut r, "hidden_size")?;
    let mut c = LlamaConfig {
        model_type: arch,
        vocab_size: required(&mut r, "vocab_size")?,
        hidden_size,
        intermediate_size: required(&mut r, "intermediate_size")?,
        num_hidden_layers: required(&mut r, "num_hidden_layers")?,
        num_attention_heads: required(&mut r, "num_attention_heads")?,
        num_key_value_heads: r.usize("num_key_value_heads")?,
        head_dim: r.usize("head_dim")?,
        rms_norm_eps: r.f64("rms_norm_eps")?.unwrap_or(1e-6),
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: r.usize("max_position_embeddings")?.unwrap_or(2048),
        tie_word_embeddings: r.bool("tie_word_embeddings")?.unwrap_or(false),
        attention_bias: false,
        sliding_window: None,
    };
    // An explicit head_dim equal to the derived one is no information.
    if c.head_dim == Some(hidden_size / c.num_attention_heads.max(1)) && hidden_size.is_multiple_of(c.num_attention_heads.max(1)) {
        c.head_dim = None;
    }
    read_rope(&mut r, &mut c)?;

    // Keys that are only supported at one value.
    r.expect_str("hidden_act", &["silu"], "only SwiGLU with SiLU is implemented")?;
    r.expect_bool("mlp_bias", false, "biases on the feed-forward projections are not implemented")?;
    if let Some(p) = r.f64("attention_dropout")? {
        if p != 0.0 {
            return Err(err(format!("attention_dropout = {p}: dropout is not implemented; set it to 0.0")));
        }
    }
    match arch {
        Architecture::Llama => c.attention_bias = r.bool("attention_bias")?.unwrap_or(false),
        Architecture::Qwen2 | Architecture::Mistral => r.expect_bool("attention_bias", arch == Architecture::Qwen2, "the architecture fixes its biases")?,
    }
    read_sliding_window(&mut r, &mut c)?;

    for key in INERT {
        r.take(key);
    }
    for key in accept {
        r.take(key);
    }
    let rest: Vec<String> = r.map.iter().map(|(k, v)| format!("`{k}` = {v}")).collect();
    if !rest.is_empty() {
        return Err(err(format!(
            "unknown key{} {}: eef does not implement {}, and it may change what the model computes. \
             If you have checked that it does not, list it in [policy] accept_config_keys",
            if rest.len() > 1 { "s" } else { "" },
            rest.join(", "),
            if rest.len() > 1 { "them" } else { "it" }
        )));
    }
    c.validate().map_err(err)?;
    Ok(c)
}

/// The rotary settings, in either layout.
fn read_rope(r: &mut Reader<'_>, c: &mut LlamaConfig) -> Result<(), ConfigJsonError> {
    let theta = r.f64("rope_theta")?;
    let scaling = r.take("rope_scaling").filter(|v| !v.is_null());
    let params = r.take("rope_parameters").filter(|v| !v.is_null());
    let (theta, scaling) = match (params, scaling) {
        (Some(_), Some(_)) => return Err(r.err("both `rope_parameters` and `rope_scaling` are set; keep one".into())),
        (Some(Value::Object(mut p)), None) => {
            let t = p.remove("rope_theta").map(|v| v.as_f64().ok_or_else(|| r.err(format!("rope_parameters.rope_theta = {v}: expected a number")))).transpose()?;
            (t.or(theta), Some(Value::Object(p)))
        }
        (Some(v), None) => return Err(r.err(format!("rope_parameters = {v}: expected an object"))),
        (None, s) => (theta, s),
    };
    c.rope_theta = theta.unwrap_or(10_000.0);
    c.rope_scaling = match scaling {
        None => None,
        Some(Value::Object(mut s)) => {
            // transformers 4.x also spelled the type `type`.
            if let Some(t) = s.remove("type") {
                s.entry("rope_type").or_insert(t);
            }
            match s.get("rope_type").and_then(Value::as_str) {
                None | Some("default") if s.keys().all(|k| k == "rope_type") => None,
                Some("llama3" | "linear") => Some(serde_json::from_value::<RopeScaling>(Value::Object(s.clone())).map_err(|e| {
                    r.err(format!("rope_scaling = {}: {e}", Value::Object(s.clone())))
                })?),
                other => {
                    return Err(r.err(format!(
                        "rope_scaling = {}: rope_type {} is not implemented (implemented: \"default\", \"llama3\", \"linear\")",
                        Value::Object(s.clone()),
                        other.map_or_else(|| "(missing)".to_owned(), |t| format!("{t:?}"))
                    )))
                }
            }
        }
        Some(v) => return Err(r.err(format!("rope_scaling = {v}: expected an object"))),
    };
    Ok(())
}

/// Sliding-window attention: recorded (and refused later if a sequence can outgrow the window).
fn read_sliding_window(r: &mut Reader<'_>, c: &mut LlamaConfig) -> Result<(), ConfigJsonError> {
    let window = r.usize("sliding_window")?;
    let layer_types = r.take("layer_types");
    let sliding_layers = match &layer_types {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => {
            for t in a {
                if !matches!(t.as_str(), Some("full_attention" | "sliding_attention")) {
                    return Err(r.err(format!("layer_types contains {t}: only \"full_attention\" and \"sliding_attention\" layers exist")));
                }
            }
            Some(a.iter().any(|t| t.as_str() == Some("sliding_attention")))
        }
        Some(v) => return Err(r.err(format!("layer_types = {v}: expected a list"))),
    };
    let applies = match c.model_type {
        // Qwen2 uses the window only with `use_sliding_window` (and then on some layers).
        Architecture::Qwen2 => r.bool("use_sliding_window")?.unwrap_or(false) || sliding_layers == Some(true),
        Architecture::Mistral => true,
        Architecture::Llama => sliding_layers == Some(true),
    };
    if c.model_type != Architecture::Qwen2 {
        r.expect_bool("use_sliding_window", false, "sliding-window attention is not implemented")?;
    }
    if applies {
        c.sliding_window = window;
    }
    Ok(())
}

/// Takes keys out of the file, so that whatever is left at the end is unknown.
struct Reader<'a> {
    map: Map<String, Value>,
    path: &'a str,
}

impl Reader<'_> {
    fn err(&self, message: String) -> ConfigJsonError {
        ConfigJsonError { path: self.path.to_owned(), message }
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    fn typed<T>(&mut self, key: &str, what: &str, get: impl Fn(&Value) -> Option<T>) -> Result<Option<T>, ConfigJsonError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => get(&v).map(Some).ok_or_else(|| self.err(format!("{key} = {v}: expected {what}"))),
        }
    }

    fn usize(&mut self, key: &str) -> Result<Option<usize>, ConfigJsonError> {
        self.typed(key, "a non-negative integer", |v| v.as_u64().map(|x| x as usize))
    }

    fn f64(&mut self, key: &str) -> Result<Option<f64>, ConfigJsonError> {
        self.typed(key, "a number", Value::as_f64)
    }

    fn bool(&mut self, key: &str) -> Result<Option<bool>, ConfigJsonError> {
        self.typed(key, "true or false", Value::as_bool)
    }

    fn string(&mut self, key: &str) -> Result<Option<String>, ConfigJsonError> {
        self.typed(key, "a string", |v| v.as_str().map(str::to_owned))
    }

    fn expect_bool(&mut self, key: &str, supported: bool, why: &str) -> Result<(), ConfigJsonError> {
        match self.bool(key)? {
            Some(v) if v != supported => Err(self.err(format!("{key} = {v}: {why} (only {supported} is supported)"))),
            _ => Ok(()),
        }
    }

    fn expect_str(&mut self, key: &str, supported: &[&str], why: &str) -> Result<(), ConfigJsonError> {
        match self.string(key)? {
            Some(v) if !supported.contains(&v.as_str()) => Err(self.err(format!("{key} = {v:?}: {why} (supported: {supported:?})"))),
            _ => Ok(()),
        }
    }
}

/// Special-token ids written into `config.json` (they do not change the model).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenIds {
    /// Beginning of sequence.
    pub bos: Option<u32>,
    /// End of sequence: one id or several (Llama-3.1 lists three).
    pub eos: Vec<u32>,
    /// Padding.
    pub pad: Option<u32>,
}

/// A complete `config.json` for `c`, with weights stored as `dtype` (`"float32"` or
/// `"bfloat16"`).
pub fn to_json(c: &LlamaConfig, dtype: &str, ids: &TokenIds) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    put("architectures", json!([c.model_type.class_name()]));
    put("model_type", json!(c.model_type.model_type()));
    put("vocab_size", json!(c.vocab_size));
    put("hidden_size", json!(c.hidden_size));
    put("intermediate_size", json!(c.intermediate_size));
    put("num_hidden_layers", json!(c.num_hidden_layers));
    put("num_attention_heads", json!(c.num_attention_heads));
    put("num_key_value_heads", json!(c.kv_heads()));
    put("head_dim", json!(c.head_dim()));
    put("hidden_act", json!("silu"));
    put("rms_norm_eps", json!(c.rms_norm_eps));
    put("rope_theta", json!(c.rope_theta));
    put("rope_scaling", c.rope_scaling.as_ref().map_or(Value::Null, |s| serde_json::to_value(s).unwrap_or(Value::Null)));
    put("max_position_embeddings", json!(c.max_position_embeddings));
    put("tie_word_embeddings", json!(c.tie_word_embeddings));
    put("attention_dropout", json!(0.0));
    match c.model_type {
        Architecture::Llama => {
            put("attention_bias", json!(c.attention_bias));
            put("mlp_bias", json!(false));
        }
        Architecture::Qwen2 => {
            put("use_sliding_window", json!(false));
            put("sliding_window", json!(c.sliding_window));
            put("max_window_layers", json!(c.num_hidden_layers));
        }
        Architecture::Mistral => put("sliding_window", json!(c.sliding_window)),
    }
    put("torch_dtype", json!(dtype));
    put("dtype", json!(dtype));
    put("initializer_range", json!(super::super::INITIALIZER_RANGE));
    put("use_cache", json!(true));
    put("bos_token_id", json!(ids.bos));
    put(
        "eos_token_id",
        match ids.eos.as_slice() {
            [] => Value::Null,
            [one] => json!(one),
            many => json!(many),
        },
    );
    put("pad_token_id", json!(ids.pad));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LlamaConfig, String> {
        from_json("config.json", text, &[]).map_err(|e| e.to_string())
    }

    const LLAMA31: &str = r#"{"architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu", "hidden_size": 4096,
        "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072, "mlp_bias": false,
        "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
        "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256}"#;

    #[test]
    fn llama_3_1_reads_with_its_rope_scaling() {
        let c = parse(LLAMA31).unwrap();
        assert_eq!(c.model_type, Architecture::Llama);
        assert_eq!(c.rope_theta, 500_000.0);
        assert!(matches!(c.rope_scaling, Some(RopeScaling::Llama3 { factor, original_max_position_embeddings: 8192, .. }) if factor == 8.0));
        assert_eq!(c.parameter_count(), 8_030_261_248);
    }

    #[test]
    fn unknown_rope_types_and_keys_are_refused_by_name() {
        let yarn = LLAMA31.replace(r#""rope_type": "llama3""#, r#""rope_type": "yarn""#);
        let e = parse(&yarn).unwrap_err();
        assert!(e.contains("rope_type \"yarn\" is not implemented"), "{e}");
        let extra = LLAMA31.replace(r#""use_cache": true"#, r#""use_cache": true, "logit_softcapping": 30.0"#);
        let e = parse(&extra).unwrap_err();
        assert!(e.contains("`logit_softcapping` = 30.0") && e.contains("accept_config_keys"), "{e}");
        assert!(from_json("c", &extra, &["logit_softcapping".into()]).is_ok());
        let gemma = LLAMA31.replace(r#""model_type": "llama""#, r#""model_type": "gemma""#);
        assert!(parse(&gemma).unwrap_err().contains("model_type = \"gemma\" is not implemented"));
        let arch = LLAMA31.replace("LlamaForCausalLM", "LlamaForSequenceClassification");
        assert!(parse(&arch).unwrap_err().contains("`LlamaForSequenceClassification` is not implemented"));
        let act = LLAMA31.replace(r#""hidden_act": "silu""#, r#""hidden_act": "gelu""#);
        assert!(parse(&act).unwrap_err().contains("hidden_act = \"gelu\""));
        let mlp = LLAMA31.replace(r#""mlp_bias": false"#, r#""mlp_bias": true"#);
        assert!(parse(&mlp).unwrap_err().contains("mlp_bias = true"));
        let quant = LLAMA31.replace(r#""use_cache": true"#, r#""use_cache": true, "quantization_config": {"quant_method": "awq"}"#);
        assert!(parse(&quant).unwrap_err().contains("`quantization_config`"));
    }

    #[test]
    fn qwen2_has_qkv_biases_and_its_window_only_when_used() {
        let q = r#"{"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
            "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 3584, "initializer_range": 0.02,
            "intermediate_size": 18944, "max_position_embeddings": 32768, "max_window_layers": 28, "model_type": "qwen2",
            "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4, "rms_norm_eps": 1e-06,
            "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
            "transformers_version": "4.43.1", "use_cache": true, "use_sliding_window": false, "vocab_size": 152064}"#;
        let c = parse(q).unwrap();
        assert!(c.qkv_bias() && !c.o_bias());
        assert_eq!(c.sliding_window, None);
        assert_eq!(c.parameter_count(), 7_615_616_512);
        let used = q.replace(r#""use_sliding_window": false"#, r#""use_sliding_window": true"#).replace("131072", "4096");
        let c = parse(&used).unwrap();
        assert_eq!(c.sliding_window, Some(4096));
        assert!(c.check_context(8192).unwrap_err().contains("sliding_window = 4096"));
        assert!(c.check_context(4096).is_ok());
    }

    #[test]
    fn transformers_5_rope_parameters_read_like_rope_theta() {
        let t5 = r#"{"model_type": "llama", "vocab_size": 96, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
            "rope_parameters": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
            "original_max_position_embeddings": 64, "rope_theta": 500000.0, "rope_type": "llama3"}}"#;
        let c = parse(t5).unwrap();
        assert_eq!((c.rope_theta, c.head_dim, c.head_dim()), (500_000.0, Some(16), 16));
        assert!(matches!(c.rope_scaling, Some(RopeScaling::Llama3 { .. })));
        let plain = t5.replace(r#""factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
            "original_max_position_embeddings": 64, "#, "").replace("llama3", "default");
        assert_eq!(parse(&plain).unwrap().rope_scaling, None);
    }

    #[test]
    fn written_configs_read_back() {
        let c = parse(LLAMA31).unwrap();
        let ids = TokenIds { bos: Some(128000), eos: vec![128001, 128009], pad: None };
        let text = to_json(&c, "bfloat16", &ids).to_string();
        assert_eq!(parse(&text).unwrap(), c);
    }
}
