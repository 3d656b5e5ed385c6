#!/usr/bin/env python3
"""PyTorch's side of `cargo run --release --example lm_bench`: the same Llama (transformers'
LlamaForCausalLM), the same batch and the same steps on the CPU, as one JSON object on stdout.

Usage: bench_torch_llama.py '<BenchConfig as JSON>'   (needs `pip install torch transformers`)
"""
import json
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def tokens(n, vocab, salt):
    return [(i * 7919 + salt * 104729) % vocab for i in range(n)]


def median(values):
    """The median (the upper middle one for an even count), as the Rust side computes it."""
    return sorted(values)[len(values) // 2]


def main():
    c = json.loads(sys.argv[1])
    m = c["model"]
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=m["vocab_size"],
        hidden_size=m["hidden_size"],
        intermediate_size=m["intermediate_size"],
        num_hidden_layers=m["num_hidden_layers"],
        num_attention_heads=m["num_attention_heads"],
        num_key_value_heads=m.get("num_key_value_heads") or m["num_attention_heads"],
        rms_norm_eps=m["rms_norm_eps"],
        rope_theta=m["rope_theta"],
        max_position_embeddings=m["max_position_embeddings"],
        tie_word_embeddings=m["tie_word_embeddings"],
        attn_implementation="sdpa",
    )
    model = LlamaForCausalLM(config)
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    seqs = torch.tensor([tokens(c["seq_len"] + 1, m["vocab_size"], b) for b in range(c["batch"])])
    inputs, targets = seqs[:, :-1], seqs[:, 1:]

    def step():
        logits = model(input_ids=inputs).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()

    def train_round():
        t = time.perf_counter()
        for _ in range(c["train_steps"]):
            step()
        return c["train_steps"] * c["batch"] * c["seq_len"] / (time.perf_counter() - t)

    rounds = max(1, c.get("rounds", 1))
    model.train()
    step()
    train = median([train_round() for _ in range(rounds)])

    model.eval()

    @torch.no_grad()
    def gen(batch):
        ids = torch.tensor([tokens(c["prompt_len"], m["vocab_size"], b) for b in range(batch)])
        t = time.perf_counter()
        out = model(input_ids=ids, use_cache=True)
        past = out.past_key_values
        for _ in range(c["new_tokens"]):
            nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)
            nxt.tolist()
            out = model(input_ids=nxt, past_key_values=past, use_cache=True)
            past = out.past_key_values
        return batch * c["new_tokens"] / (time.perf_counter() - t)

    gen(1)
    print(json.dumps({
        "backend": f"pytorch {torch.__version__} ({torch.get_num_threads()} threads)",
        "train_tokens_per_s": train,
        "gen_tokens_per_s_b1": median([gen(1) for _ in range(rounds)]),
        "gen_tokens_per_s_batched": median([gen(c["gen_batch"]) for _ in range(rounds)]),
    }))


if __name__ == "__main__":
    main()
