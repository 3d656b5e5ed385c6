//! `generation_config.json`: the token ids generation stops at. Llama-3 stops on `<|eot_id|>`
//! (the end of a turn) as well as `<|end_of_text|>`; Llama-3.1 also on `<|eom_id|>`.

use std::path::Path;

use serde_json::Value;

use super::WeightsError;

/// The ids listed under `eos_token_id` (one id or a list) in `generation_config.json`, or, when
/// that file is absent, in `config.json`. Empty when neither names any.
pub fn eos_ids(dir: &Path) -> Result<Vec<u32>, WeightsError> {
    for file in ["generation_config.json", "config.json"] {
        let path = dir.join(file);
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let err = |m: String| WeightsError::Io { path: path.display().to_string(), message: m };
        let v: Value = serde_json::from_str(&text).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let ids = match v.get("eos_token_id") {
            None | Some(Value::Null) => continue,
            Some(Value::Number(n)) => vec![n.as_u64().ok_or_else(|| err(format!("eos_token_id = {n}: expected a token id")))?],
            Some(Value::Array(a)) => a.iter().map(|x| x.as_u64().ok_or_else(|| err(format!("eos_token_id contains {x}: expected token ids")))).collect::<Result<_, _>>()?,
            Some(other) => return Err(err(format!("eos_token_id = {other}: expected a token id or a list of them"))),
        };
        return Ok(ids.into_iter().map(|i| i as u32).collect());
    }
    Ok(Vec::new())
}
