#!/usr/bin/env python3
"""Runs LLaMA-Factory's own ShareGPT converter on what `eef export --format sharegpt` wrote, and
records what it made of every example (a transcript the Rust tests replay in CI).

By hand, once per change of the export (needs Python with `llamafactory`, `datasets`, `peft`,
`omegaconf`; LLaMA-Factory 0.9.5 was used):

    cargo run --release --bin eef -- export --format sharegpt \
        tests/data/llamafactory/eef-dataset.jsonl -o /tmp/lf/eef.json
    DISABLE_VERSION_CHECK=1 python scripts/llamafactory_check.py /tmp/lf eef \
        tests/data/llamafactory/transcript.json

The export directory holds the JSON list and the `dataset_info.json` the export registered it
in; LLaMA-Factory reads the data set through that registration (`get_dataset_list`), exactly as
its training does, and converts each example with `SharegptDatasetConverter`. An example it
rejects ("Invalid role tag" / "Invalid message count") comes back with an empty prompt and
response; the transcript records `accepted: false` for it. For each example the transcript keeps
the roles LLaMA-Factory assigned and a SHA-256 of its converted messages, so the test can tell
that today's export is still the data LLaMA-Factory accepted.
"""
import hashlib
import importlib.machinery
import json
import sys
import types

# LLaMA-Factory's data package imports torchaudio for its audio plugin; the text converter does
# not use it. A stand-in lets the converter load without the audio stack.
if "torchaudio" not in sys.modules:
    try:
        import torchaudio  # noqa: F401
    except ImportError:
        stub = types.ModuleType("torchaudio")
        stub.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
        sys.modules["torchaudio"] = stub

import llamafactory  # noqa: E402
from llamafactory.data.converter import SharegptDatasetConverter  # noqa: E402
from llamafactory.data.parser import get_dataset_list  # noqa: E402
from llamafactory.hparams import DataArguments  # noqa: E402


def main(export_dir: str, name: str, transcript: str) -> None:
    attr = get_dataset_list([name], export_dir)[0]
    assert attr.formatting == "sharegpt", attr.formatting
    converter = SharegptDatasetConverter(dataset_attr=attr, data_args=DataArguments(dataset_dir=export_dir))
    with open(f"{export_dir}/{attr.dataset_name}") as f:
        examples = json.load(f)
    records = []
    for example in examples:
        out = converter(example)
        messages = out["_prompt"] + out["_response"]
        records.append(
            {
                "id": example.get("id"),
                "accepted": bool(out["_prompt"]) and bool(out["_response"]),
                "roles": [m["role"] for m in messages],
                # What the converter produced, message by message (role, NUL, content, SOH).
                "sha256": hashlib.sha256("".join(f"{m['role']}\0{m['content']}\1" for m in messages).encode()).hexdigest(),
            }
        )
    accepted = sum(r["accepted"] for r in records)
    result = {
        "llamafactory": llamafactory.__version__,
        "dataset": name,
        "examples": len(records),
        "accepted": accepted,
        "records": records,
    }
    with open(transcript, "w") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"LLaMA-Factory {llamafactory.__version__}: {accepted} of {len(records)} examples accepted -> {transcript}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
