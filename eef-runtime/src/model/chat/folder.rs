//! What a Hugging Face folder says about chatting: the chat template (`chat_template.jinja`, as
//! transformers 5 saves it, or `chat_template` in `tokenizer_config.json`) and the special
//! tokens the template refers to (`bos_token`, `eos_token`, ...).

use std::path::Path;

use serde_json::Value;

/// Files that describe the tokenizer and chatting; copied along with every checkpoint saved from
/// a pretrained model, so the checkpoint chats the same way.
pub const TOKENIZER_FILES: [&str; 5] = ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json", "generation_config.json"];

/// The chat template and special tokens of a folder.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FolderChat {
    /// The Jinja source, when the folder has one.
    pub template: Option<String>,
    /// `bos_token`, `eos_token`, `pad_token`, ... as the template sees them.
    pub special_tokens: Vec<(String, String)>,
}

fn token_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => m.get("content").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// Reads `dir`'s chat template and special tokens.
pub fn read(dir: &Path) -> Result<FolderChat, String> {
    let mut out = FolderChat::default();
    let config_path = dir.join("tokenizer_config.json");
    if let Ok(text) = std::fs::read_to_string(&config_path) {
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: not valid JSON: {e}", config_path.display()))?;
        for key in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"] {
            if let Some(t) = v.get(key).and_then(token_text) {
                out.special_tokens.push((key.to_owned(), t));
            }
        }
        out.template = match v.get("chat_template") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            // Several named templates: the one called "default" is the chat template.
            Some(Value::Array(list)) => {
                let default = list.iter().find(|t| t.get("name").and_then(Value::as_str) == Some("default"));
                match default.and_then(|t| t.get("template")).and_then(Value::as_str) {
                    Some(t) => Some(t.to_owned()),
                    None => return Err(format!("{}: chat_template lists named templates but none called \"default\"", config_path.display())),
                }
            }
            Some(other) => return Err(format!("{}: chat_template = {other}: expected a string", config_path.display())),
        };
    }
    let jinja = dir.join("chat_template.jinja");
    if jinja.exists() {
        out.template = Some(std::fs::read_to_string(&jinja).map_err(|e| format!("{}: {e}", jinja.display()))?);
    }
    Ok(out)
}
