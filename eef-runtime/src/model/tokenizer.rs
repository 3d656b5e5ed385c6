//! Tokenizers: a Hugging Face `tokenizer.json` through the `tokenizers` crate, or, for a model
//! trained from scratch, a byte-level BPE trained on the experiment's own text (with this
//! project's compact template tokens reserved) and saved next to the checkpoint.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::normalizers::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper, TokenizerBuilder, TokenizerImpl};

/// The compact template's special tokens (reserved when a BPE is trained; see
/// [`super::chat::compact`]).
pub const SPECIAL_TOKENS: [&str; 5] = ["<pad>", "<bos>", "<|user|>", "<|assistant|>", "<|end|>"];

/// Byte ranges of tokens in the text they were encoded from.
pub type Offsets = Vec<(usize, usize)>;

/// Texts remembered by [`Tok::encode`] before the memo starts over.
const MEMO_LIMIT: usize = 200_000;

/// A tokenizer.
///
/// [`Tok::encode`] remembers what it encoded (shared by clones): an agent's prompt repeats the
/// whole dialogue at every step, and environments such as ScienceWorld offer about a thousand
/// valid actions per state, mostly the same ones, so without the memo the tokenizer's regular
/// expressions and normalisation took about a fifth of a ScienceWorld run.
#[derive(Clone)]
pub struct Tok {
    inner: tokenizers::Tokenizer,
    memo: Arc<Mutex<HashMap<String, Vec<u32>>>>,
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
    fn wrap(inner: tokenizers::Tokenizer) -> Self {
        Tok { inner, memo: Arc::default() }
    }

    /// Loads a Hugging Face `tokenizer.json` as it is.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        Ok(Self::wrap(tokenizers::Tokenizer::from_file(path).map_err(|e| format!("{}: {e}", path.display()))?))
    }

    /// Trains a byte-level BPE of `vocab_size` tokens on `corpus`, with [`SPECIAL_TOKENS`]
    /// reserved.
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
        let mut t = Self::wrap(tokenizers::Tokenizer::from(tok));
        t.add_special_tokens(&SPECIAL_TOKENS);
        Ok(t)
    }

    /// Adds `tokens` as special tokens where missing (new ids follow the vocabulary).
    pub fn add_special_tokens(&mut self, tokens: &[&str]) {
        self.inner.add_special_tokens(&tokens.iter().map(|s| AddedToken::from(*s, true)).collect::<Vec<_>>());
        if let Ok(mut m) = self.memo.lock() {
            m.clear();
        }
    }

    /// Saves as `tokenizer.json`.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        self.inner.save(path, false).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of `token`, if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Token ids of `text` (no special tokens added, as `apply_chat_template` tokenizes).
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

    /// Token ids of `text` with each token's byte range in `text`.
    pub fn encode_with_offsets(&self, text: &str) -> Result<(Vec<u32>, Offsets), String> {
        let e = self.inner.encode(text, false).map_err(err)?;
        Ok((e.get_ids().to_vec(), e.get_offsets().to_vec()))
    }

    /// Whether `id` is one of the tokenizer's special tokens (an added token marked special, as
    /// `<|eot_id|>`, `<|im_end|>` or `</s>` are).
    pub fn is_special(&self, id: u32) -> bool {
        self.inner.get_added_tokens_decoder().get(&id).is_some_and(|t| t.special)
    }

    /// Text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, true).unwrap_or_default()
    }
}
