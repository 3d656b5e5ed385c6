"""Writes environments/tests/data/token_set_ratio.tsv: string pairs and Python thefuzz's
fuzz.token_set_ratio for each, the reference the Rust port is tested against.
Needs `pip install thefuzz` (written with thefuzz 0.22.1 on rapidfuzz 3.14). Pairs come from WebShop's real attributes and instruction attributes
(../shared/data/webshop/items_ins_v2_1000.json), option-like strings and edge cases."""
import itertools
import json
import os
import random
import sys

from thefuzz import fuzz

here = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(here, "..", "..", "shared", "data", "webshop", "items_ins_v2_1000.json")
out = os.path.join(here, "..", "environments", "tests", "data", "token_set_ratio.tsv")

items = json.load(open(data))
rng = random.Random(0)
attrs = sorted({a for v in items.values() for a in v.get("attributes", [])})
goal_attrs = sorted({a for v in items.values() for a in v.get("instruction_attributes", [])})
pairs = []
for _ in range(120):
    pairs.append((rng.choice(attrs), rng.choice(goal_attrs)))
for g in rng.sample(goal_attrs, 40):  # near matches: same words, other order, extra words
    words = g.split()
    rng.shuffle(words)
    pairs.append((" ".join(words) + rng.choice(["", " free", " and more", "s"]), g))
options = ["black", "Black / White", "x-large", "XX-Large", "pack of 12", "12 Count (Pack of 1)", "8 fl oz (pack of 2)",
           "navy blue", "blue navy", "light grey | dark grey", "2.5 ounce", "2.5 Ounce (Pack of 6)", "king", "queen size",
           "rose gold", "gold rose", "one size", "small", "medium-large", "natural", "3.4 fl oz", "café latte", "jalapeño",
           "100% cotton", "cotton 100%", "", "   ", "!!!", "a", "b c d e", "e d c b a"]
for a, b in itertools.combinations(options, 2):
    pairs.append((a, b))
for _ in range(500):  # random attribute pairs, and attribute vs a perturbed copy of itself
    a = rng.choice(attrs)
    words = a.split()
    rng.shuffle(words)
    b = " ".join(words[: max(1, len(words) - rng.randrange(2))]) + rng.choice(["", "s", " set", " (2 pack)"])
    pairs.append((a, b) if rng.random() < 0.5 else (rng.choice(goal_attrs), a))
# Unicode: letters and numbers of other scripts, combining marks, case mappings with special
# rules (Turkish dotted I, final sigma, German sharp s), Latin-1 (removed by force_ascii),
# underscores, full-width and other whitespace, digits of other scripts.
unicode_words = ["हिन्दी", "नमस्ते दुनिया", "İstanbul", "istanbul", "ISTANBUL", "ΟΔΥΣΣΕΥΣ", "οδυσσευς", "ΣΊΣΥΦΟΣ", "σίσυφος",
                 "Straße", "STRASSE", "strasse", "café", "cafe", "naïve", "naive", "Ærø", "æble", "snake_case", "snake case",
                 "ｆｕｌｌ　ｗｉｄｔｈ", "full width", "١٢٣ عربي", "123 عربي", "中文 测试", "测试 中文", "日本語のテキスト", "한국어 텍스트",
                 "e\u0301te", "ete", "ǅemal", "džemal", "Ⅻ roman", "xii roman", "½ cup", "1/2 cup", "№ 5", "no 5",
                 "tab\there", "non\u00a0breaking", "em\u2003space", "zero\u200bwidth", "x²", "x2", "ﬁne", "fine",
                 "Ünïcödé", "unicode", "ÀÉÎÕÜ", "aeiou", "ＡＢＣ", "abc", "ǈ title", "lj title", "ı dotless", "i dotless"]
unicode_words = [w.encode().decode("unicode_escape") if "\\u" in w else w for w in unicode_words]
for a, b in itertools.combinations(unicode_words, 2):
    if rng.random() < 0.45:
        pairs.append((a, b))
for w in unicode_words:
    pairs.append((w, w.lower()))
    pairs.append((w + " " + rng.choice(attrs), rng.choice(goal_attrs) + " " + w))
pairs = [(a, b) for a, b in pairs if "\t" not in a + b and "\n" not in a + b]
with open(out, "w") as f:
    f.write("# a\tb\ttoken_set_ratio (thefuzz %s)\n" % __import__("thefuzz").__version__)
    for a, b in pairs:
        f.write(f"{a}\t{b}\t{fuzz.token_set_ratio(a, b)}\n")
print(f"wrote {len(pairs)} pairs to {out}", file=sys.stderr)
