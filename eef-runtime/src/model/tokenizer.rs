//! Tokenizers: a Hugging Face `tokenizer.json` through the `tokenizers` crate, or, for a model
//! trained from scratch, a byte-level BPE trained on the experiment's own text and saved next to
//! the checkpoint.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::normalizers::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper, TokenizerBuilder, TokenizerImpl};

/// The chat template's special tokens (also reserved when a BPE is trained).
pub const SPECIAL_TOKENS: [&str; 5] = ["<pad>", "<bos>", "<|user|>", "<|assistant|>", "<|end|>"];

/// Texts remembered by [`Tok::encode`] before the memo starts over.
const MEMO_LIMIT: usize = 200_000;

/// A tokenizer and the ids of the template's special tokens.
///
/// [`Tok::encode`] remembers what it encoded (shared by clones): an agent's prompt repeats the
/// whole dialogue at every step, and environments such as ScienceWorld offer about a thousand
/// valid actions per state, mostly the same ones, so without the memo the tokenizer's regular
/// expressions and normalisation took about a fifth of a ScienceWorld run.
#[derive(Clone)]
pub struct Tok {
    inner: tokenizers::Tokenizer,
    memo: Arc<Mutex<HashMap<String, Vec<u32>>>>,
    /// Padding.
    pub pad: u32,
    /// Start of a dialogue.
    pub bos: u32,
    /// Start of a user (environment) turn.
    pub user: u32,
    /// Start of an assistant (agent) turn.
    pub assistant: u32,
    /// End of a turn; the agent's action ends with it.
    pub end: u32,
}

impl std::fmt::Debug for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tok").field("vocab", &self.vocab_size()).finish()
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Tok {
    fn wrap(mut inner: tokenizers::Tokenizer) -> Result<Self, String> {
        inner.add_special_tokens(&SPECIAL_TOKENS.map(|s| AddedToken::from(s, true)));
        let id = |s: &str| inner.token_to_id(s).ok_or_else(|| format!("the tokenizer has no {s} token"));
        Ok(Tok { pad: id("<pad>")?, bos: id("<bos>")?, user: id("<|user|>")?, assistant: id("<|assistant|>")?, end: id("<|end|>")?, inner, memo: Arc::default() })
    }

    /// Loads a Hugging Face `tokenizer.json` (the template's special tokens are added if missing).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        Self::wrap(tokenizers::Tokenizer::from_file(path).map_err(|e| format!("{}: {e}", path.display()))?)
    }

    /// Trains a byte-level BPE of `vocab_size` tokens on `corpus`.
    pub fn train_bpe(corpus: &[String], vocab_size: usize) -> Result<Self, String> {
        let mut trainer = BpeTrainerBuilder::new()
            .show_progress(false)
            .vocab_size(vocab_size)
            .min_frequency(2)
            .special_tokens(SPECIAL_TOKENS.iter().map(|s| AddedToken::from(*s, true)).collect())
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let mut tok: TokenizerImpl<BPE, NormalizerWrapper, PreTokenizerWrapper, PostProcessorWrapper, DecoderWrapper> = TokenizerBuilder::new()
            .with_model(BPE::default())
            .with_normalizer(Some(NormalizerWrapper::from(NFC)))
            .with_pre_tokenizer(Some(PreTokenizerWrapper::from(ByteLevel::new(false, true, true))))
            .with_post_processor(Some(PostProcessorWrapper::from(ByteLevel::new(false, true, true))))
            .with_decoder(Some(DecoderWrapper::from(ByteLevel::new(false, true, true))))
            .build()
            .map_err(err)?;
        tok.train(&mut trainer, corpus.iter().cloned()).map_err(err)?;
        Self::wrap(tokenizers::Tokenizer::from(tok))
    }

    /// Saves as `tokenizer.json`.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        self.inner.save(path, false).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Vocabulary size, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of `text` (no special tokens added).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        if let Some(ids) = self.memo.lock().ok().and_then(|m| m.get(text).cloned()) {
            return ids;
        }
        let ids = self.inner.encode(text, false).map(|e| e.get_ids().to_vec()).unwrap_or_default();
        if let Ok(mut m) = self.memo.lock() {
            if m.len() >= MEMO_LIMIT {
                m.clear();
            }
            m.insert(text.to_owned(), ids.clone());
        }
        ids
    }

    /// Text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, true).unwrap_or_default()
    }
}
