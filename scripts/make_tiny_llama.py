"""Makes tests/data/tiny-llama: a tiny random Llama (grouped-query attention, untied head) saved by
Hugging Face transformers (config.json + model.safetensors), and reference logits for a token
sequence (expected_logits.json). The Rust test tests/model.rs checks this project's forward pass
against them. Needs `pip install torch transformers`."""
import json
import os

import torch
from transformers import LlamaConfig, LlamaForCausalLM

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "tiny-llama")
torch.manual_seed(0)
config = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=10000.0,
                     max_position_embeddings=128, tie_word_embeddings=False)
model = LlamaForCausalLM(config).eval()
with torch.no_grad():  # random, not tiny-std, weights so that differences show
    for p in model.parameters():
        p.normal_(0.0, 0.2)
model.save_pretrained(out, safe_serialization=True)
tokens = [1, 17, 42, 5, 88, 3, 60, 23, 9, 71, 2, 33]
with torch.no_grad():
    logits = model(torch.tensor([tokens])).logits[0]
json.dump({"tokens": tokens, "logits": logits.tolist()}, open(os.path.join(out, "expected_logits.json"), "w"))
print("wrote", out)
