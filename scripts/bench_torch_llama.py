#!/usr/bin/env python3
"""PyTorch's side of `cargo run --release --example lm_bench`: the same Llama (transformers'
LlamaForCausalLM, SDPA attention), the same batch and steps on the CPU, on the same number of
threads. It answers one command per line on stdin with one line on stdout, so that lm_bench can
interleave its rounds with burn's:

    ready      -> the torch version and thread count (after warm-up steps)
    train      -> training tokens/s of one round (`train_steps` steps)
    gen B      -> generated tokens/s of one greedy generation of B sequences
    matmul     -> GFLOP/s of a 1024 x 1024 x 1024 f32 matrix product (median of five)
    quit

Usage: bench_torch_llama.py '<BenchConfig as JSON>'   (needs `pip install torch transformers`)
"""
import json
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def tokens(n, vocab, salt):
    return [(i * 7919 + salt * 104729) % vocab for i in range(n)]


def main():
    c = json.loads(sys.argv[1])
    m = c["model"]
    torch.set_num_threads(c["threads"])
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
        max_position_embeddings=max(m["max_position_embeddings"], c["seq_len"] + 1),
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
        model.train()
        t = time.perf_counter()
        for _ in range(c["train_steps"]):
            step()
        return c["train_steps"] * c["batch"] * c["seq_len"] / (time.perf_counter() - t)

    @torch.no_grad()
    def gen(batch):
        model.eval()
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

    def matmul():
        a = torch.ones(1024, 1024)
        b = torch.ones(1024, 1024)
        a @ b
        rates = []
        for _ in range(5):
            t = time.perf_counter()
            a @ b
            rates.append(2 * 1024**3 / (time.perf_counter() - t) / 1e9)
        return sorted(rates)[2]

    for _ in range(2):
        step()
    gen(1)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        if cmd[0] == "ready":
            answer = f"pytorch {torch.__version__} ({torch.get_num_threads()} threads)"
        elif cmd[0] == "train":
            answer = train_round()
        elif cmd[0] == "gen":
            answer = gen(int(cmd[1]))
        elif cmd[0] == "matmul":
            answer = matmul()
        else:
            answer = f"unknown command {cmd[0]}"
        print(answer, flush=True)


if __name__ == "__main__":
    main()
