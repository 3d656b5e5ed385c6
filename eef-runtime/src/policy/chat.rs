//! A policy behind any OpenAI-compatible chat-completions endpoint (an expert such as GPT-4, or
//! a model served by vLLM), speaking the ReAct format: every answer is
//! `Thought: ...\nAction: ...`.
//!
//! The base URL and model come from the caller; the API key from an environment variable (never
//! from a file in the repository). Transport errors, 429 and 5xx answers are retried with
//! exponential backoff; an unreachable server is a clear error naming the URL.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Act, ActRequest, Policy, PolicyError};
use crate::sharegpt::{parse_action, render_action};

/// Settings of a [`ChatPolicy`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatConfig {
    /// The API base, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// The model name.
    pub model: String,
    /// The environment variable holding the API key (none sent if unset or empty).
    pub api_key_env: String,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; doubled on every retry.
    pub backoff_ms: u64,
    /// Timeout of one request.
    pub timeout_secs: f64,
    /// Most tokens per answer.
    pub max_tokens: u32,
    /// Stop strings sent with each request (none when empty).
    pub stop: Vec<String>,
    /// Send each decision's seed (`"seed"`), so that a deterministic server reproduces a run.
    pub send_seed: bool,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            base_url: "http://127.0.0.1:8000/v1".into(),
            model: "gpt-4".into(),
            api_key_env: "OPENAI_API_KEY".into(),
            max_retries: 4,
            backoff_ms: 500,
            timeout_secs: 60.0,
            max_tokens: 256,
            stop: Vec::new(),
            send_seed: true,
        }
    }
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'a str,
    content: String,
}

#[derive(Deserialize)]
struct Reply {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: ReplyMessage,
}

#[derive(Deserialize)]
struct ReplyMessage {
    content: Option<String>,
}

/// Why a request to the endpoint failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A client error (4xx but 429): retrying would not help; the message names URL and answer.
    Refused(String),
    /// Every attempt failed (transport, 429 or 5xx); the last error.
    Unreachable(String),
}

/// A ReAct policy over a chat-completions endpoint.
#[derive(Clone)]
pub struct ChatPolicy {
    config: ChatConfig,
    system: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for ChatPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatPolicy").field("base_url", &self.config.base_url).field("model", &self.config.model).finish()
    }
}

impl ChatPolicy {
    /// A policy with `system` as its system prompt (the environment's task description and the
    /// ReAct answer format).
    pub fn new(config: ChatConfig, system: impl Into<String>) -> Self {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs_f64(config.timeout_secs.max(0.1))))
                .http_status_as_error(false)
                .build(),
        );
        ChatPolicy { config, system: system.into(), agent }
    }

    /// The same policy, with requests naming `model` (the agent and its connections shared).
    pub fn with_model(&self, model: &str) -> ChatPolicy {
        ChatPolicy { config: ChatConfig { model: model.to_owned(), ..self.config.clone() }, system: self.system.clone(), agent: self.agent.clone() }
    }

    /// The chat messages for a request: system prompt, the instruction with the first
    /// observation, then the episode so far in ReAct form.
    fn messages(&self, r: &ActRequest) -> Vec<Message<'static>> {
        let mut m = vec![Message { role: "system", content: self.system.clone() }];
        let mut observations = r.history.iter().map(|s| s.observation.as_str()).chain(std::iter::once(r.observation.as_str()));
        let first = observations.next().unwrap_or("");
        m.push(Message { role: "user", content: format!("Instruction: {}\nObservation: {first}", r.instruction) });
        for (step, obs) in r.history.iter().zip(observations) {
            m.push(Message { role: "assistant", content: render_action(step.thought.as_deref(), &step.action) });
            m.push(Message { role: "user", content: format!("Observation: {obs}") });
        }
        m
    }

    fn complete(&self, r: &ActRequest) -> Result<String, PolicyError> {
        let url = format!("{}/chat/completions", self.config.base_url.trim_end_matches('/'));
        let mut body = serde_json::json!({
            "model": self.config.model,
            "messages": self.messages(r),
            "temperature": r.temperature,
            "max_tokens": self.config.max_tokens,
        });
        if self.config.send_seed {
            // Within int64, as the OpenAI API takes it.
            body["seed"] = serde_json::json!(r.seed & (i64::MAX as u64));
        }
        if !self.config.stop.is_empty() {
            body["stop"] = serde_json::json!(self.config.stop);
        }
        let text = self.post_retrying(&url, &body, "chat request").map_err(|e| match e {
            Failure::Refused(m) => PolicyError::Other(m),
            Failure::Unreachable(last) => PolicyError::Other(format!(
                "cannot reach the chat endpoint {url} after {} attempts ({last}); is the server running and `base_url` right?",
                self.config.max_retries + 1
            )),
        })?;
        let reply: Reply = serde_json::from_str(&text).map_err(|e| PolicyError::Other(format!("{url}: unexpected answer ({e}): {}", text.chars().take(200).collect::<String>())))?;
        reply.choices.into_iter().next().and_then(|c| c.message.content).ok_or_else(|| PolicyError::Other(format!("{url}: an answer without content")))
    }

    /// POSTs `body` (JSON) to `url` with the API key, retrying transport errors, 429 and 5xx with
    /// exponential backoff; the body of the 200 answer.
    pub(crate) fn post_retrying(&self, url: &str, body: &serde_json::Value, what: &str) -> Result<String, Failure> {
        self.post_retrying_accepting(url, body, what, &|_, _| false)
    }

    /// [`ChatPolicy::post_retrying`], also succeeding on answers `accept(status, body)` takes.
    pub(crate) fn post_retrying_accepting(&self, url: &str, body: &serde_json::Value, what: &str, accept: &dyn Fn(u16, &str) -> bool) -> Result<String, Failure> {
        let key = std::env::var(&self.config.api_key_env).unwrap_or_default();
        let mut last = String::new();
        for attempt in 0..=self.config.max_retries {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(self.config.backoff_ms.saturating_mul(1 << (attempt - 1).min(16))));
            }
            let mut req = self.agent.post(url).header("Content-Type", "application/json");
            if !key.is_empty() {
                req = req.header("Authorization", &format!("Bearer {key}"));
            }
            match req.send_json(body) {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.body_mut().read_to_string().unwrap_or_default();
                    if status == 200 || accept(status, &text) {
                        return Ok(text);
                    }
                    last = format!("HTTP {status}: {}", text.chars().take(200).collect::<String>());
                    if status != 429 && status < 500 {
                        return Err(Failure::Refused(format!("{url}: {last}")));
                    }
                }
                Err(e) => last = e.to_string(),
            }
            tracing::warn!(%url, attempt, error = %last, "{what} failed; retrying");
        }
        Err(Failure::Unreachable(last))
    }
}

impl Policy for ChatPolicy {
    fn name(&self) -> String {
        format!("chat:{}", self.config.model)
    }

    /// Sends the batch's requests concurrently, one thread each.
    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        let one = |r: &ActRequest| -> Result<Act, PolicyError> {
            let text = self.complete(r)?;
            Ok(match parse_action(&text) {
                Some((thought, action)) => Act { action, thought },
                // No "Action:" line: sent as is; the environment answers it as the original does.
                None => Act { action: text.trim().to_owned(), thought: None },
            })
        };
        std::thread::scope(|scope| {
            let handles: Vec<_> = requests.iter().map(|r| scope.spawn(move || one(r))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(PolicyError::Other("chat request thread panicked".into()))))
                .collect()
        })
    }
}
