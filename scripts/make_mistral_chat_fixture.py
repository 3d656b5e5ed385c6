#!/usr/bin/env python3
"""Writes the Mistral-v0.3-style chat fixture: a tiny SentencePiece-style tokenizer (Metaspace
`▁`, byte fallback, `<s>`/`</s>`/`[INST]`/`[/INST]` specials) laid out like Mistral's, a chat
template that ends an answer with `' ' + content + ' ' + eos_token` (the tool-calling revision's
shape, whose `' '` before `</s>` tokenizes to the plain-space token `▁`) and puts the system
prompt in the last user message, and what transformers' `apply_chat_template` renders for the
same dialogues as the other chat fixtures (text, tokens, assistant mask).

    python scripts/make_mistral_chat_fixture.py    # transformers 5.x, tokenizers

Writes tests/data/hf/tiny-mistral-v0.3-chat/ (tokenizer.json, tokenizer_config.json,
chat_template.jinja, generation_config.json) and tests/data/hf/chat-mistral-v0.3.json.
"""
import json
import os
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

sys.path.insert(0, os.path.dirname(__file__))
from make_hf_fixtures import OUT, chat_reference, corpus, write_generation_config  # noqa: E402

TEMPLATE = """{{- bos_token }}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- for message in loop_messages %}
    {%- if message['role'] == 'user' %}
        {%- if loop.last and system_message is defined %}
            {{- '[INST] ' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}
        {%- else %}
            {{- '[INST] ' + message['content'] + '[/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + ' ' + eos_token }}
    {%- endif %}
{%- endfor %}
"""

TAGGED = TEMPLATE.replace(
    "{{- ' ' + message['content'] + ' ' + eos_token }}",
    "{%- generation %}{{- ' ' + message['content'] + ' ' + eos_token }}{%- endgeneration %}",
)


def tokenizer():
    specials = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=specials + byte_tokens, initial_alphabet=["▁"], show_progress=False)
    tok.train_from_iterator(corpus(), trainer)
    t = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    t.chat_template = TEMPLATE
    return t


def main():
    tok = tokenizer()
    assert tok.convert_ids_to_tokens(tok(" </s>", add_special_tokens=False)["input_ids"])[0] == "▁", "the space before </s> is its own token"
    d = os.path.join(OUT, "tiny-mistral-v0.3-chat")
    os.makedirs(d, exist_ok=True)
    tok.save_pretrained(d)
    write_generation_config(d, tok.convert_tokens_to_ids("</s>"))
    chat_reference(tok, TAGGED, os.path.join(OUT, "chat-mistral-v0.3.json"))
    print("wrote", d)


if __name__ == "__main__":
    main()
