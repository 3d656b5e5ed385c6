#!/usr/bin/env python3
"""Writes tests/data/hf: tiny random models and tokenizers in the formats real instruct models ship
in, with what `transformers` (and `peft`) compute for them. The Rust tests (tests/hf.rs) compare
this project's loading, logits, chat-template rendering and loss masks against these files.

Run by hand, not in CI (needs torch, transformers, peft, tokenizers):
    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch transformers peft
    /tmp/ref/bin/python scripts/make_hf_fixtures.py            # writes the fixtures
    /tmp/ref/bin/python scripts/make_hf_fixtures.py --check    # also checks Rust-saved folders load
    /tmp/ref/bin/python scripts/make_hf_fixtures.py --check-only  # only that

Folders (each a few hundred KB):
  tiny-llama3.2-instruct/  Llama with rope_scaling llama3, rope_theta 500000, explicit head_dim,
                           tied embeddings, bf16 weights; a Llama-3-style tokenizer (<|eot_id|>),
                           Llama-3.1's chat template in chat_template.jinja, generation_config.json
                           with eos [<|end_of_text|>, <|eom_id|>, <|eot_id|>]
  tiny-qwen2.5-instruct/   Qwen2 (q/k/v biases), tied embeddings, f32 weights in 3 shards with
                           model.safetensors.index.json; a Qwen-style tokenizer with Qwen2.5's chat
                           template inside tokenizer_config.json (the transformers-4 layout)
  tiny-llama3.1/           Llama, untied, rope_scaling llama3 (Llama-3.1's 8B layout, tiny)
  tiny-mistral/            Mistral (no sliding window)
  peft-lora/               a PEFT LoRA adapter (r=4, alpha=8, q/v/down) on tiny-llama3.2-instruct
Each model folder has expected.safetensors: `tokens` and transformers' f32 `logits` for them
(`logits_bf16` too where the weights are bf16: what computing in bf16 gives). chat-*.json hold
dialogues with transformers' rendered text, token ids and assistant masks.

--check runs `cargo run --release --example hf_export`, which loads every fixture in Rust and saves
it again (f32 shards, bf16, a PEFT adapter), then loads those folders with AutoModelForCausalLM /
PeftModel and compares their logits with the expected ones; the result goes to check.json.
"""
import json
import os
import random
import subprocess
import sys

import torch
from safetensors.torch import save_file
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "data", "hf")

# Llama-3.1-8B-Instruct's chat template (the Llama-3.2 ones differ only in the date handling).
LLAMA31_TEMPLATE = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

# The same with the assistant's answer inside {% generation %}, so transformers reports which
# tokens are the assistant's (return_assistant_tokens_mask): the reference for eef's loss masks.
LLAMA31_TAGGED = LLAMA31_TEMPLATE.replace(
    """        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}""",
    """        {%- if message['role'] == 'assistant' %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
            {%- generation %}{{- message['content'] | trim + '<|eot_id|>' }}{%- endgeneration %}
        {%- else %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
        {%- endif %}""",
)
assert LLAMA31_TAGGED != LLAMA31_TEMPLATE

# Qwen2.5-7B-Instruct's chat template.
QWEN25_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

QWEN25_TAGGED = QWEN25_TEMPLATE.replace(
    """        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}""",
    """        {%- if message.role == "assistant" %}
            {{- '<|im_start|>assistant\\n' }}
            {%- generation %}{{- message.content + '<|im_end|>' }}{%- endgeneration %}
            {{- '\\n' }}
        {%- else %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
        {%- endif %}
    {%- elif message.role == "assistant" %}""",
)
assert QWEN25_TAGGED != QWEN25_TEMPLATE

# The pre-tokenizer regular expression of Llama-3 (and, nearly, Qwen2).
SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def corpus():
    """Agent-like text to train the tiny BPEs on."""
    rng = random.Random(0)
    words = "search click buy now back to search next prev red blue green mug shirt socks shoes size small medium large pack of price lower than dollars " \
            "thought action observation instruction i need a the to find product page item options color open door key room look around go move inventory " \
            "pick up put focus on wait task water plant seed soil pot sink kitchen hallway".split()
    lines = []
    for _ in range(3000):
        n = rng.randint(3, 14)
        lines.append(" ".join(rng.choice(words) for _ in range(n)))
        lines.append(f"Thought: I should {rng.choice(words)} the {rng.choice(words)}.\nAction: click[{rng.choice(words)} {rng.randint(1, 99)}]")
        lines.append(f"[SEP] B0{rng.randint(10000000, 99999999)} [SEP] ${rng.randint(1, 99)}.{rng.randint(0, 99):02d} [SEP]")
    return lines


def bpe(specials, vocab_size, nfc):
    tok = Tokenizer(models.BPE())
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(SPLIT), behavior="isolated"), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(), trainer)
    return tok


def llama3_tokenizer():
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>", "<|finetune_right_pad_id|>"]
    t = PreTrainedTokenizerFast(tokenizer_object=bpe(specials, 400, False), bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    t.chat_template = LLAMA31_TEMPLATE
    return t


def qwen_tokenizer():
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    t = PreTrainedTokenizerFast(tokenizer_object=bpe(specials, 400, True), eos_token="<|im_end|>", pad_token="<|endoftext|>")
    t.chat_template = QWEN25_TEMPLATE
    return t


def randomize(model, seed):
    torch.manual_seed(seed)
    with torch.no_grad():  # random, not tiny-std, weights so that differences show
        for name, p in model.named_parameters():
            p.normal_(0.0, 0.02 if "norm" in name else 0.15)
            if "norm" in name:
                p.add_(1.0)
    return model.eval()


def expected(folder, length, vocab, bf16=False, adapter=None):
    """transformers' logits for a random sequence, from the folder as saved (loaded as a user
    loads it: weights upcast to f32, rotary frequencies computed afresh)."""
    rng = random.Random(len(folder))
    tokens = [rng.randrange(vocab) for _ in range(length)]
    out = {"tokens": torch.tensor(tokens, dtype=torch.int64)}
    out["logits"] = logits_of(folder if adapter is None else adapter[0], tokens, adapter=adapter and adapter[1]).contiguous()
    if bf16:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).eval()
        with torch.no_grad():
            out["logits_bf16"] = model(torch.tensor([tokens])).logits[0].float().contiguous()
    save_file(out, os.path.join(adapter[1] if adapter else folder, "expected.safetensors"))


def write_generation_config(folder, eos):
    json.dump({"bos_token_id": None, "eos_token_id": eos, "do_sample": True, "temperature": 0.6, "top_p": 0.9}, open(os.path.join(folder, "generation_config.json"), "w"), indent=2)


def dialogues():
    """At least 20 dialogues per tokenizer: system or not, one to many turns, long observations,
    ReAct answers, unicode, stray whitespace."""
    rng = random.Random(7)
    page = " [SEP] ".join(f"B0{rng.randint(10000000, 99999999)} [SEP] {' '.join(rng.choice(['red', 'cotton', 'mug', 'size 8 fl oz', 'pack of 2']) for _ in range(6))} [SEP] ${rng.randint(1, 99)}.99" for _ in range(25))
    sys_prompt = "You are web shopping. Answer in this format:\nThought: <your reasoning>\nAction: <the action>"
    out = []
    for i in range(24):
        msgs = []
        if i % 3 != 1:
            msgs.append({"role": "system", "content": sys_prompt if i % 2 == 0 else "Be brief."})
        turns = 1 + i % 5
        for t in range(turns):
            obs = page if (i + t) % 4 == 0 else rng.choice(["WebShop [SEP] Instruction: [SEP] i need red socks [SEP] Search", "You are in the kitchen. You see: a sink, a pot with soil, a seed jar.", "  leading and trailing spaces  ", "unicode: café naïve 日本語 — ok", "Invalid action!"])
            msgs.append({"role": "user", "content": (f"Instruction: find item {i}\n" if t == 0 else "") + f"Observation: {obs}"})
            if t < turns - 1 or i % 2 == 0:
                answer = f"Thought: step {t} of task {i}, I think {rng.choice(['search first', 'the second item fits', 'buy it'])}.\nAction: {rng.choice(['search[red socks]', 'click[b0123456789]', 'click[buy now]', 'click[< prev]', 'look around'])}"
                msgs.append({"role": "assistant", "content": answer if i % 5 else answer + "  "})
        out.append({"messages": msgs, "add_generation_prompt": msgs[-1]["role"] == "user"})
    return out


def chat_reference(tokenizer, tagged, path):
    cases = []
    for d in dialogues():
        text = tokenizer.apply_chat_template(d["messages"], tokenize=False, add_generation_prompt=d["add_generation_prompt"])
        enc = tokenizer.apply_chat_template(d["messages"], tokenize=True, add_generation_prompt=d["add_generation_prompt"], return_dict=True)
        ids = list(enc["input_ids"])
        masked = tokenizer.apply_chat_template(d["messages"], tokenize=True, add_generation_prompt=d["add_generation_prompt"], return_dict=True, return_assistant_tokens_mask=True, chat_template=tagged)
        assert list(masked["input_ids"]) == ids, "the tagged template renders the same tokens"
        cases.append({**d, "text": text, "ids": ids, "assistant_mask": list(masked["assistant_masks"])})
    with open(path, "w") as f:  # one case per line
        f.write("[\n" + ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]\n")


def main():
    if "--check-only" in sys.argv:
        check()
        return
    os.makedirs(OUT, exist_ok=True)

    # Llama-3.2-style instruct folder: rope scaling, explicit head_dim, tied, bf16, template file.
    tok = llama3_tokenizer()
    d = os.path.join(OUT, "tiny-llama3.2-instruct")
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                      rms_norm_eps=1e-5, rope_theta=500000.0, max_position_embeddings=1024, tie_word_embeddings=True,
                      rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32},
                      bos_token_id=tok.bos_token_id, eos_token_id=[tok.convert_tokens_to_ids(t) for t in ["<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"]])
    m = randomize(LlamaForCausalLM(cfg), 1)
    m.to(torch.bfloat16).save_pretrained(d)
    tok.save_pretrained(d)
    write_generation_config(d, cfg.eos_token_id)
    expected(d, 96, cfg.vocab_size, bf16=True)
    chat_reference(tok, LLAMA31_TAGGED, os.path.join(OUT, "chat-llama3.json"))

    # Qwen2.5-style instruct folder: biases, tied, 3 shards, template inside tokenizer_config.json.
    qtok = qwen_tokenizer()
    d = os.path.join(OUT, "tiny-qwen2.5-instruct")
    cfg = Qwen2Config(vocab_size=len(qtok), hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      rms_norm_eps=1e-6, rope_theta=1000000.0, max_position_embeddings=1024, tie_word_embeddings=True, use_sliding_window=False,
                      eos_token_id=qtok.convert_tokens_to_ids("<|im_end|>"))
    m = randomize(Qwen2ForCausalLM(cfg), 2)
    m.save_pretrained(d, max_shard_size="60KB")
    qtok.save_pretrained(d)
    # The transformers-4 layout: the template inside tokenizer_config.json, no chat_template.jinja.
    tc_path = os.path.join(d, "tokenizer_config.json")
    tc = json.load(open(tc_path))
    tc["chat_template"] = QWEN25_TEMPLATE
    json.dump(tc, open(tc_path, "w"), indent=2, ensure_ascii=False)
    if os.path.exists(os.path.join(d, "chat_template.jinja")):
        os.remove(os.path.join(d, "chat_template.jinja"))
    write_generation_config(d, [qtok.convert_tokens_to_ids("<|im_end|>"), qtok.convert_tokens_to_ids("<|endoftext|>")])
    expected(d, 64, cfg.vocab_size)
    chat_reference(qtok, QWEN25_TAGGED, os.path.join(OUT, "chat-qwen2.5.json"))

    # Llama-3.1-style model (untied, rope scaling), f32.
    d = os.path.join(OUT, "tiny-llama3.1")
    cfg = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      rms_norm_eps=1e-5, rope_theta=500000.0, max_position_embeddings=1024, tie_word_embeddings=False,
                      rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32})
    m = randomize(LlamaForCausalLM(cfg), 3)
    m.save_pretrained(d)
    expected(d, 160, cfg.vocab_size)

    # Mistral.
    d = os.path.join(OUT, "tiny-mistral")
    cfg = MistralConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                        rms_norm_eps=1e-5, rope_theta=1000000.0, max_position_embeddings=1024, sliding_window=None)
    m = randomize(MistralForCausalLM(cfg), 4)
    m.save_pretrained(d)
    expected(d, 64, cfg.vocab_size)

    # A PEFT LoRA adapter on the Llama-3.2-style model, with non-zero B so that it matters.
    from peft import LoraConfig, PeftModel, get_peft_model
    base_dir = os.path.join(OUT, "tiny-llama3.2-instruct")
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], lora_dropout=0.0, task_type="CAUSAL_LM"))
    torch.manual_seed(5)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_" in n:
                p.normal_(0.0, 0.2)
    d = os.path.join(OUT, "peft-lora")
    peft_model.save_pretrained(d)
    if os.path.exists(os.path.join(d, "README.md")):
        os.remove(os.path.join(d, "README.md"))
    cfg_path = os.path.join(d, "adapter_config.json")
    ac = json.load(open(cfg_path))
    ac["base_model_name_or_path"] = "tiny-llama3.2-instruct"
    json.dump(ac, open(cfg_path, "w"), indent=2)
    expected(base_dir, 48, base.config.vocab_size, adapter=(base_dir, d))
    print("wrote", OUT)

    if "--check" in sys.argv:
        check()


def logits_of(folder, tokens, adapter=None):
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    if adapter:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, adapter).eval()
    with torch.no_grad():
        return model(torch.tensor([tokens])).logits[0]


def check():
    """Loads the folders Rust saved (cargo run --example hf_export) with transformers and peft."""
    from safetensors.torch import load_file
    out = os.path.join("/tmp", "eef-hf-export")
    subprocess.run(["cargo", "run", "--release", "-q", "--example", "hf_export", "--", OUT, out], cwd=ROOT, check=True)
    report = {}
    for name in ["tiny-llama3.2-instruct", "tiny-qwen2.5-instruct", "tiny-llama3.1", "tiny-mistral"]:
        exp = load_file(os.path.join(OUT, name, "expected.safetensors"))
        tokens = exp["tokens"].tolist()
        for variant in ["f32-sharded", "bf16"]:
            got = logits_of(os.path.join(out, name, variant), tokens)
            want = exp["logits"]
            if variant == "bf16":  # the reference: the same model with weights rounded to bf16
                ref = AutoModelForCausalLM.from_pretrained(os.path.join(OUT, name), dtype=torch.bfloat16).float().eval()
                with torch.no_grad():
                    want = ref(torch.tensor([tokens])).logits[0]
            report[f"{name}/{variant}"] = float((got - want).abs().max())
    exp = load_file(os.path.join(OUT, "peft-lora", "expected.safetensors"))
    got = logits_of(os.path.join(OUT, "tiny-llama3.2-instruct"), exp["tokens"].tolist(), adapter=os.path.join(out, "peft-lora"))
    report["peft-lora/adapter"] = float((got - exp["logits"]).abs().max())
    got = logits_of(os.path.join(out, "peft-lora", "merged"), exp["tokens"].tolist())
    report["peft-lora/merged"] = float((got - exp["logits"]).abs().max())
    json.dump(report, open(os.path.join(OUT, "check.json"), "w"), indent=2)
    print(json.dumps(report, indent=2))
    worst = max(report.values())
    assert worst < 1e-4, f"a Rust-saved folder loads with a max logit difference of {worst}"


if __name__ == "__main__":
    main()
