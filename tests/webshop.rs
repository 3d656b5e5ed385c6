//! WebShop: pages, action semantics, replay, reward consistency, the expert.

mod common;

use std::sync::Arc;

use eef_environments::webshop::{understand, Catalog, Shopper, ShopperConfig, WebShopConfig, WebShopEnv};
use eef_runtime::policy::{ActRequest, Policy};
use eef_runtime::{Environment, Split, Task};

fn env() -> WebShopEnv {
    let config = WebShopConfig::default();
    let catalog = Arc::new(Catalog::load(&config).unwrap());
    WebShopEnv::new(catalog, Arc::new(config))
}

/// Plays the shopper (no imperfections) on `task`; returns observations and actions.
fn play(env: &mut WebShopEnv, task: &Task, shopper: &Shopper) -> (Vec<String>, Vec<String>, f64) {
    let mut obs = vec![env.reset(task, 0).unwrap()];
    let mut actions = Vec::new();
    let mut history = Vec::new();
    for turn in 0..10 {
        let req = ActRequest {
            seed: turn,
            task: task.id.clone(),
            instruction: task.instruction.clone(),
            history: history.clone(),
            observation: obs.last().unwrap().clone(),
            valid_actions: None,
            temperature: 0.0,
        };
        let a = shopper.act_batch(&[req]).remove(0).unwrap().action;
        let s = env.step(&a).unwrap();
        history.push(eef_runtime::policy::Step::new(obs.last().unwrap().clone(), a.clone()));
        actions.push(a);
        obs.push(s.observation);
        if s.done {
            return (obs, actions, s.reward);
        }
    }
    (obs, actions, 0.0)
}

fn perfect() -> Shopper {
    Shopper::new(ShopperConfig { wrong_item: 0.0, skip_option: 0.0, vague_search: 0.0, seed: 0 })
}

#[test]
fn pages_render_as_the_original_text_mode() {
    let mut e = env();
    let task = e.tasks().into_iter().find(|t| t.split == Split::Test).unwrap();
    let (obs, actions, _) = play(&mut e, &task, &perfect());
    assert!(obs[0].starts_with("WebShop [SEP] Instruction: [SEP] "));
    assert!(obs[0].ends_with(" [SEP] Search"));
    assert!(obs[1].starts_with("Instruction: [SEP] ") && obs[1].contains(" [SEP] Back to Search [SEP] Page 1 (Total results: "));
    // Visit the sub pages of the opened product, then snapshot every page kind.
    let mut e2 = env();
    e2.reset(&task, 0).unwrap();
    let mut pages = Vec::new();
    for a in actions.iter().take(2).cloned().chain(["click[Description]", "click[< Prev]", "click[Features]", "click[< Prev]", "click[Reviews]", "click[< Prev]", "click[< Prev]", "click[Next >]", "click[< Prev]"].map(String::from)) {
        pages.push(format!("> {a}\n{}", e2.step(&a).unwrap().observation));
    }
    insta::assert_snapshot!("webshop_pages", format!("{}\n\n{}", obs[0], pages.join("\n\n")));
}

#[test]
fn next_is_on_every_results_page_and_leads_past_the_last() {
    let mut e = env();
    let task = e.tasks()[0].clone();
    e.reset(&task, 0).unwrap();
    let first = e.step("search[shampoo]").unwrap().observation;
    let total: usize = first.split("Total results: ").nth(1).unwrap().split(')').next().unwrap().parse().unwrap();
    assert!(first.contains(" [SEP] Next > [SEP] "), "{first}");
    let pages = total.div_ceil(10);
    let mut page = first;
    for _ in 1..=pages {
        page = e.step("click[next >]").unwrap().observation;
        assert!(page.contains("< Prev [SEP] Next >"), "{page}");
    }
    // One past the last page: the header and the buttons, no products (as the original).
    assert!(page.ends_with("< Prev [SEP] Next >"), "{page}");
    let words = e.step("search[zzqx nothing matches this]").unwrap().observation;
    assert!(words.ends_with("Page 1 (Total results: 0) [SEP] Next >"), "{words}");
}

#[test]
fn invalid_actions_change_nothing_and_search_works_anywhere() {
    let mut e = env();
    let task = e.tasks()[0].clone();
    let start = e.reset(&task, 0).unwrap();
    for bad in ["click[buy now]", "click[search]", "click[]", "search[]", "jump", "click[b00nonexist]"] {
        let s = e.step(bad).unwrap();
        assert_eq!((s.observation.as_str(), s.reward, s.done), (start.as_str(), 0.0, false), "{bad}");
    }
    let results = e.step("search[SHAMPOO]").unwrap().observation;
    let asin = results.split(" [SEP] ").nth(5).unwrap().to_lowercase();
    let item = e.step(&format!("click[{asin}]")).unwrap().observation;
    assert!(item.ends_with("Buy Now"), "{item}");
    let again = e.step("search[shampoo]").unwrap().observation;
    assert_eq!(again, results, "search[] works from an item page, lower-cased");
    let s = e.step("click[back to search]").unwrap();
    assert_eq!(s.observation, start);
}

#[test]
fn replay_gives_the_same_observation_as_play() {
    let mut e = env();
    for task in e.tasks().into_iter().take(20) {
        let (obs, actions, _) = play(&mut e, &task, &perfect());
        for k in 1..actions.len() {
            let r = e.replay(&task, 0, &actions[..k]).unwrap();
            assert_eq!(r.observation, obs[k], "{} after {k} actions", task.id);
        }
    }
}

#[test]
fn buying_the_target_with_the_goal_options_scores_one() {
    let e = env();
    let c = e.catalog();
    let mut checked = 0;
    for g in c.goals.iter().take(400) {
        let (i, p) = c.product(&g.asin).unwrap();
        let r = eef_environments::webshop::reward::reward(p, g, c.prices[i], &g.goal_options, eef_environments::webshop::reward::nouns);
        assert!((r - 1.0).abs() < 1e-12, "{}: {r}", g.instruction_text);
        checked += 1;
    }
    assert_eq!(checked, 400);
}

#[test]
fn the_expert_wins_some_loses_some_and_starts_right() {
    let mut e = env();
    let shopper = Shopper::new(ShopperConfig::default());
    let tasks: Vec<Task> = e.tasks().into_iter().filter(|t| t.split == Split::Test).take(100).collect();
    let (mut wins, mut fails_starting_right, mut total_reward) = (0, 0, 0.0);
    for t in &tasks {
        let (_, actions, r) = play(&mut e, t, &shopper);
        total_reward += r;
        if r >= 1.0 - 1e-9 {
            wins += 1;
        } else if actions[0].starts_with("search[") && understand(&t.instruction).product.starts_with(&actions[0][7..actions[0].len() - 1]) {
            fails_starting_right += 1;
        }
    }
    assert!(wins > 10 && wins < 90, "wins {wins}/100");
    assert!(fails_starting_right > 20, "failed episodes whose search was right: {fails_starting_right}");
    assert!(total_reward / 100.0 > 0.4, "average reward {}", total_reward / 100.0);
}

#[test]
fn the_original_data_files_load_through_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let products = serde_json::json!([
        {"asin": "B0TESTSOCK", "name": "Warm Wool Socks for Men", "category": "fashion", "query": "Wool Socks ",
         "product_category": "Clothing › Men › Socks", "full_description": "Soft merino wool socks.",
         "small_description": ["Machine wash", "Merino wool"], "pricing": "$12.99",
         "customization_options": {"Size": [{"value": "Large"}], "Color": [{"value": "Navy/Grey"}, {"value": "Black"}]},
         "images": ["x.jpg"]},
        {"asin": "B0TESTHATS", "name": "Cotton Sun Hat", "category": "fashion", "query": "sun hat",
         "product_category": "Clothing › Men › Hats", "full_description": "", "small_description": "Cotton",
         "pricing": "$5.00$15.00", "customization_options": null, "images": ["y.jpg"]},
        {"asin": "nan", "name": "skipped"}
    ]);
    let attrs = serde_json::json!({
        "B0TESTSOCK": {"attributes": ["machine wash", "merino wool"], "instruction": "Find me machine wash wool socks",
                       "instruction_attributes": ["machine wash"]},
        "B0TESTHATS": {"attributes": ["cotton"]}
    });
    std::fs::write(dir.path().join("items_shuffle_1000.json"), products.to_string()).unwrap();
    std::fs::write(dir.path().join("items_ins_v2_1000.json"), attrs.to_string()).unwrap();
    let config = WebShopConfig { data_dir: Some(dir.path().to_owned()), test_goals: Some(1), ..WebShopConfig::default() };
    let catalog = Catalog::load(&config).unwrap();
    assert_eq!(catalog.label(), "webshop");
    assert_eq!(catalog.products.len(), 2);
    let sock = &catalog.products[0];
    assert_eq!(sock.query, "wool socks");
    assert_eq!(sock.price_tag, "$12.99");
    // Options keep the file's order (the original iterates the JSON object), not alphabetical.
    assert_eq!(sock.options, vec![("size".to_owned(), vec!["large".to_owned()]), ("color".to_owned(), vec!["navy | grey".to_owned(), "black".to_owned()])]);
    assert_eq!(catalog.products[1].price_tag, "$5.0 to $15.0");
    assert_eq!(catalog.products[1].attributes, vec!["cotton"]);
    // One instruction x (2 colours x 1 size) = 2 goals.
    assert_eq!(catalog.goals.len(), 2);
    assert!(catalog.goals[0].instruction_text.starts_with("Find me machine wash wool socks with color: "));
    let mut env = WebShopEnv::new(Arc::new(catalog), Arc::new(config));
    let task = env.tasks()[0].clone();
    env.reset(&task, 0).unwrap();
    env.step("search[wool socks]").unwrap();
    let item = env.step("click[b0testsock]").unwrap().observation;
    assert!(item.contains("[SEP] size [SEP] large [SEP] color [SEP] navy | grey [SEP] black [SEP] Warm Wool Socks for Men [SEP] Price: $12.99"), "{item}");
    // An empty description shows no empty entry.
    env.step("search[sun hat]").unwrap();
    env.step("click[b0testhats]").unwrap();
    let description = env.step("click[description]").unwrap().observation;
    assert!(description.ends_with("[SEP] Back to Search [SEP] < Prev"), "{description}");
}

/// What `scripts/make_webshop_reward_reference.py` recorded from the original `get_reward`.
#[derive(serde::Deserialize)]
struct RewardReference {
    nouns: std::collections::BTreeMap<String, Vec<String>>,
    cases: Vec<RewardCase>,
}

#[derive(serde::Deserialize)]
struct RewardCase {
    bought: OriginalProduct,
    goal: OriginalGoal,
    price: f64,
    options: Vec<(String, String)>,
    reward: f64,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OriginalProduct {
    #[serde(rename = "asin")]
    asin: String,
    title: String,
    #[serde(rename = "query")]
    query: String,
    #[serde(rename = "product_category")]
    product_category: String,
    attributes: Vec<String>,
    bullet_points: Vec<String>,
    description: String,
}

#[derive(serde::Deserialize)]
struct OriginalGoal {
    asin: String,
    query: String,
    product_category: String,
    name: String,
    attributes: Vec<String>,
    /// A JSON object in the original's (sorted) key order.
    goal_options: serde_json::Map<String, serde_json::Value>,
    price_upper: f64,
}

#[test]
fn the_reward_is_the_originals_on_a_thousand_cases() {
    use eef_environments::webshop::data::Product;
    use eef_environments::webshop::goals::Goal;
    use eef_environments::webshop::reward::reward;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/webshop/reward_reference.json");
    let reference: RewardReference = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(reference.cases.len() >= 1000);
    let nouns = |name: &str| reference.nouns.get(name).cloned().unwrap_or_else(|| panic!("no spaCy nouns recorded for {name:?}"));
    let mut wrong = Vec::new();
    let mut partial = 0;
    for (i, c) in reference.cases.iter().enumerate() {
        let b = &c.bought;
        let product = Product {
            asin: b.asin.clone(),
            title: b.title.clone(),
            category: String::new(),
            query: b.query.clone(),
            product_category: b.product_category.clone(),
            description: b.description.clone(),
            bullet_points: b.bullet_points.clone(),
            pricing: vec![c.price],
            price_tag: String::new(),
            options: Vec::new(),
            attributes: b.attributes.clone(),
            instruction_text: None,
            instruction_attributes: Vec::new(),
        };
        let g = &c.goal;
        let goal = Goal {
            asin: g.asin.clone(),
            category: String::new(),
            query: g.query.clone(),
            name: g.name.clone(),
            product_category: g.product_category.clone(),
            instruction_text: String::new(),
            attributes: g.attributes.clone(),
            price_upper: g.price_upper,
            goal_options: g.goal_options.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect(),
            option_form: eef_environments::webshop::goals::OptionForm::Pairs,
        };
        let got = reward(&product, &goal, c.price, &c.options, nouns);
        if (got - c.reward).abs() > 1e-12 {
            wrong.push(format!("case {i}: original {}, port {got}; options {:?} vs goal {:?}", c.reward, c.options, goal.goal_options));
        }
        partial += usize::from(c.reward > 0.0 && c.reward < 1.0);
    }
    assert!(partial > 300, "the cases exercise partial rewards: {partial}");
    assert!(wrong.is_empty(), "{} of {} rewards differ:\n{}", wrong.len(), reference.cases.len(), wrong.iter().take(15).cloned().collect::<Vec<_>>().join("\n"));
}

#[test]
fn the_type_reward_takes_spacys_nouns_on_the_whole_catalog() {
    use eef_environments::webshop::nouns::{approximate_nouns, nouns, table_nouns};
    let catalog = Catalog::load(&WebShopConfig::default()).unwrap();
    let missing: Vec<&str> = catalog.products.iter().map(|p| p.title.as_str()).filter(|t| table_nouns(t).is_none()).collect();
    assert!(missing.is_empty(), "{} titles of the default catalog lack spaCy's nouns, e.g. {:?}", missing.len(), &missing[..missing.len().min(3)]);
    // Where spaCy and the approximation disagree, the table's answer is the one used.
    let differs = catalog.products.iter().find(|p| approximate_nouns(&p.title) != table_nouns(&p.title).unwrap()).unwrap();
    assert_eq!(nouns(&differs.title), table_nouns(&differs.title).unwrap());

    // Outside the table (another catalog seed): how often the approximation disagrees with spaCy.
    #[derive(serde::Deserialize)]
    struct HeldOut {
        nouns: std::collections::BTreeMap<String, Vec<String>>,
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/webshop/nouns_held_out.json");
    let held: HeldOut = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(held.nouns.len() >= 300 && held.nouns.keys().all(|t| table_nouns(t).is_none()), "held-out titles are outside the table");
    let set = |v: &[String]| v.iter().cloned().collect::<std::collections::BTreeSet<_>>();
    let differ = held.nouns.iter().filter(|(t, n)| set(&approximate_nouns(t)) != set(n)).count();
    println!("noun approximation vs spaCy on {} held-out titles: {differ} differ as sets", held.nouns.len());
}

/// What `scripts/make_webshop_episode_reference.py` recorded from the original text environment.
#[derive(serde::Deserialize)]
struct EpisodeReference {
    episodes: Vec<RefEpisode>,
    pages: Vec<String>,
}

#[derive(serde::Deserialize)]
struct RefEpisode {
    goal: usize,
    start: usize,
    steps: Vec<RefStep>,
}

#[derive(serde::Deserialize)]
struct RefStep {
    action: String,
    page: usize,
    reward: f64,
    done: bool,
    clickables: Vec<String>,
}

#[test]
fn episodes_play_as_the_original_text_environment() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/webshop/episode_reference.json");
    let reference: EpisodeReference = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let steps: usize = reference.episodes.iter().map(|e| e.steps.len()).sum();
    assert!(reference.episodes.len() >= 300 && steps >= 3000, "{} episodes, {steps} steps", reference.episodes.len());
    let bought_then_acted = reference.episodes.iter().filter(|e| e.steps.iter().position(|s| s.done).is_some_and(|i| i + 1 < e.steps.len())).count();
    assert!(bought_then_acted > 0, "the reference must act after buying");
    let mut e = env();
    let mut wrong = Vec::new();
    for (n, ep) in reference.episodes.iter().enumerate() {
        let task = Task::new(format!("webshop-synth-{}", ep.goal), String::new(), Split::Train, ep.goal);
        let start = e.reset(&task, 0).unwrap();
        if start != reference.pages[ep.start] {
            wrong.push(format!("episode {n} start:\n  original: {}\n  port:     {start}", reference.pages[ep.start]));
        }
        for (t, st) in ep.steps.iter().enumerate() {
            let got = e.step(&st.action).unwrap();
            let want = &reference.pages[st.page];
            if got.observation != *want || got.reward != st.reward || got.done != st.done || e.clickables_now() != st.clickables {
                wrong.push(format!(
                    "episode {n} step {t} {:?}:\n  original: {want} | reward {} done {} | {:?}\n  port:     {} | reward {} done {} | {:?}",
                    st.action,
                    st.reward,
                    st.done,
                    st.clickables,
                    got.observation,
                    got.reward,
                    got.done,
                    e.clickables_now()
                ));
                break;
            }
        }
    }
    assert!(wrong.is_empty(), "{} of {} episodes differ:\n{}", wrong.len(), reference.episodes.len(), wrong.iter().take(8).cloned().collect::<Vec<_>>().join("\n"));
}

/// What the original `load_products` made of a hand-made records file.
#[derive(serde::Deserialize)]
struct LoaderReference {
    records: Vec<serde_json::Value>,
    attributes: std::collections::HashMap<String, serde_json::Value>,
    products: Vec<LoadedProduct>,
}

#[derive(serde::Deserialize, Debug, PartialEq)]
struct LoadedProduct {
    asin: String,
    title: String,
    category: String,
    query: String,
    product_category: String,
    description: String,
    bullet_points: Vec<String>,
    pricing: Vec<f64>,
    price_tag: String,
    options: Vec<(String, Vec<String>)>,
    attributes: Vec<String>,
    instruction_text: Option<String>,
    instruction_attributes: Option<Vec<String>>,
}

#[test]
fn the_loader_reads_records_as_the_original_load_products() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/webshop/loader_reference.json");
    let reference: LoaderReference = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let products = eef_environments::webshop::data::products_from_raw(&reference.records, &reference.attributes);
    let got: Vec<LoadedProduct> = products
        .into_iter()
        .map(|p| LoadedProduct {
            asin: p.asin,
            title: p.title,
            category: p.category,
            query: p.query,
            product_category: p.product_category,
            description: p.description,
            bullet_points: p.bullet_points,
            pricing: p.pricing,
            price_tag: p.price_tag,
            options: p.options,
            attributes: p.attributes,
            instruction_text: p.instruction_text,
            instruction_attributes: Some(p.instruction_attributes),
        })
        .collect();
    let want: Vec<LoadedProduct> = reference
        .products
        .into_iter()
        .map(|p| LoadedProduct { instruction_attributes: Some(p.instruction_attributes.unwrap_or_default()), ..p })
        .collect();
    assert_eq!(got, want);
}

/// Lucene's own top 10 (pyserini's searcher) for each query, recorded by
/// `scripts/make_webshop_episode_reference.py`.
#[derive(serde::Deserialize)]
struct RankingReference {
    rankings: std::collections::BTreeMap<String, Vec<String>>,
}

#[test]
fn search_ranks_as_pyserinis_lucene() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/webshop/ranking_reference.json");
    let reference: RankingReference = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(reference.rankings.len() >= 1000);
    let catalog = Catalog::load(&WebShopConfig::default()).unwrap();
    let mut differ = Vec::new();
    for (query, want) in &reference.rankings {
        let got: Vec<&str> = catalog.index.search(query, 10).into_iter().map(|i| catalog.products[i].asin.as_str()).collect();
        if got != *want {
            differ.push(format!("{query:?}:\n  lucene: {want:?}\n  port:   {got:?}"));
        }
    }
    eprintln!("{} of {} rankings differ", differ.len(), reference.rankings.len());
    assert!(differ.is_empty(), "{} of {} top-10 rankings differ from Lucene's:\n{}", differ.len(), reference.rankings.len(), differ.iter().take(6).cloned().collect::<Vec<_>>().join("\n"));
}

#[test]
fn human_goals_come_from_items_human_ins_in_the_originals_order_and_split() {
    use eef_environments::webshop::{GoalSet, HUMAN_INSTRUCTIONS_FILE};
    let dir = tempfile::tempdir().unwrap();
    let product = |asin: &str, name: &str| {
        serde_json::json!({"asin": asin, "name": name, "category": "fashion", "query": "socks", "product_category": "Clothing › Socks",
            "full_description": "", "small_description": ["Merino"], "pricing": "$12.99",
            "customization_options": {"Size": [{"value": "Large"}]}, "images": [""]})
    };
    let products = serde_json::json!([product("B0HUMAN001", "Wool Socks"), product("B0HUMAN002", "Cotton Socks")]);
    let attrs = serde_json::json!({"B0HUMAN001": {"attributes": ["merino wool"]}, "B0HUMAN002": {"attributes": ["cotton"]}});
    // Five usable instructions (goal i = "instruction i") and one without attributes (skipped).
    let ins = |i: usize, attrs: &[&str]| serde_json::json!({"instruction": format!("instruction {i}..."), "instruction_attributes": attrs, "instruction_options": ["large"]});
    let human = serde_json::json!({
        "B0HUMAN001": [ins(0, &["merino wool"]), ins(1, &["merino wool"]), ins(9, &[]), ins(2, &["merino wool"])],
        "B0HUMAN002": [ins(3, &["cotton"]), ins(4, &["cotton"])]
    });
    std::fs::write(dir.path().join("items_shuffle_1000.json"), products.to_string()).unwrap();
    std::fs::write(dir.path().join("items_ins_v2_1000.json"), attrs.to_string()).unwrap();
    std::fs::write(dir.path().join(HUMAN_INSTRUCTIONS_FILE), human.to_string()).unwrap();
    let config = WebShopConfig { data_dir: Some(dir.path().to_owned()), test_goals: Some(2), dev_goals: Some(1), ..WebShopConfig::default() };
    assert_eq!(config.goal_set(), GoalSet::Human, "a data folder with human instructions serves them by default");
    let catalog = Catalog::load(&config).unwrap();
    // `random.seed(233); random.shuffle(list(range(5)))` is [2, 0, 3, 4, 1] in CPython.
    let order: Vec<&str> = catalog.goals.iter().map(|g| &g.instruction_text[..13]).collect();
    assert_eq!(order, ["instruction 2", "instruction 0", "instruction 3", "instruction 4", "instruction 1"]);
    let g = &catalog.goals[0];
    assert!(g.instruction_text.starts_with("instruction 2, and price lower than "), "trailing dots stripped, price text added: {}", g.instruction_text);
    assert_eq!(g.goal_options, vec![(String::new(), "large".to_owned())]);
    assert_eq!(g.option_form, eef_environments::webshop::goals::OptionForm::Values);
    let env = WebShopEnv::new(Arc::new(catalog), Arc::new(config.clone()));
    let splits: Vec<Split> = env.tasks().iter().map(|t| t.split).collect();
    assert_eq!(splits, [Split::Test, Split::Test, Split::Dev, Split::Train, Split::Train]);
    // WebShop's own split when not configured: test 0..500, dev 500..1500.
    assert_eq!(WebShopConfig { test_goals: None, dev_goals: None, ..config.clone() }.split(), (500, 1000));
    assert_eq!(WebShopConfig::default().split(), (200, 0));
    // Human goals need the original data.
    let err = Catalog::load(&WebShopConfig { goals: Some(GoalSet::Human), ..WebShopConfig::default() }).unwrap_err();
    assert!(err.contains("needs data_dir"), "{err}");
}

/// `< Prev` follows the original's URL rule (`SimServer.get_page_name`: the first of
/// `search_results`, `item_page`, `item_sub_page` anywhere in the URL, which holds the
/// keywords): after a search whose keywords contain `search_results`, `< Prev` on an item page
/// acts as on a results page (page 0, no products: the original's answer to goal 14's
/// `search[tea search_results]`, `click[b004l4d6fw]`, `click[< prev]`); with `item_page` in them,
/// `< Prev` on a sub page goes to the results, not back to the item.
#[test]
fn prev_follows_the_originals_url_rule() {
    let mut e = env();
    let task = e.tasks()[0].clone();
    e.reset(&task, 0).unwrap();
    let results = e.step("search[tea search_results]").unwrap().observation;
    let total: usize = results.split("Total results: ").nth(1).unwrap().split(')').next().unwrap().parse().unwrap();
    let asin = results.split(" [SEP] ").nth(5).unwrap().to_lowercase();
    e.step(&format!("click[{asin}]")).unwrap();
    let prev = e.step("click[< prev]").unwrap().observation;
    assert!(prev.ends_with(&format!("Page 0 (Total results: {total}) [SEP] Next >")), "{prev}");
    // Plain keywords: back to the results page the item was opened from.
    e.reset(&task, 0).unwrap();
    let results = e.step("search[tea]").unwrap().observation;
    let asin = results.split(" [SEP] ").nth(5).unwrap().to_lowercase();
    e.step(&format!("click[{asin}]")).unwrap();
    assert_eq!(e.step("click[< prev]").unwrap().observation, results);
    // `item_page` in the keywords: `< Prev` on a sub page acts as on an item page.
    e.reset(&task, 0).unwrap();
    let results = e.step("search[tea item_page]").unwrap().observation;
    let asin = results.split(" [SEP] ").nth(5).unwrap().to_lowercase();
    let item = e.step(&format!("click[{asin}]")).unwrap().observation;
    e.step("click[description]").unwrap();
    let prev = e.step("click[< prev]").unwrap().observation;
    assert_ne!(prev, item);
    assert_eq!(prev, results);
}
