//! The WebShop text environment: pages and actions as the original's text mode renders and
//! parses them (`web_agent_text_env.py`, `observation_mode="text"`).

use std::sync::Arc;

use eef_runtime::environment::EnvError;
use eef_runtime::{environment, Split, StepResult, Task};

use super::catalog::Catalog;
use super::config::WebShopConfig;
use super::nouns::nouns;
use super::reward::reward;

/// Results kept per search (`SEARCH_RETURN_N`).
pub const SEARCH_RETURN_N: usize = 50;
/// Results per page (`PRODUCT_WINDOW`).
pub const PRODUCT_WINDOW: usize = 10;

/// Splits an action as the original's `parse_action` (`re.match(r'(.+)\[(.+)\]', action)`):
/// Python's `.` stops at a newline and the pattern is anchored only at the start, so only the
/// first line counts (`search[red shirt]\nclick[buy now]` is a search; `search[red\nshirt]` is
/// nothing). Within it the name is everything before the last `[` that is followed by at least
/// one character and a `]`; the argument runs to the last `]`. Without a match the whole action
/// is the name and there is no argument.
pub fn parse_action(action: &str) -> (String, Option<String>) {
    let line = action.split('\n').next().unwrap_or("");
    if let Some(close) = line.rfind(']') {
        let open = line[..close].char_indices().rev().map(|(i, _)| i).find(|&i| line.as_bytes()[i] == b'[' && i > 0 && close > i + 1);
        if let Some(open) = open {
            return (line[..open].to_owned(), Some(line[open + 1..close].to_owned()));
        }
    }
    (action.to_owned(), None)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Page {
    Start,
    Results,
    Item,
    Description,
    Features,
    Reviews,
    Done,
}

/// The page kind the original reads from its URL (`SimServer.get_page_name`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UrlPage {
    SearchResults,
    ItemPage,
    ItemSubPage,
    Other,
}

/// The first of the original's page names found in the URL it would show for `s`: its own
/// page's name, or one that the keywords or the chosen options (both part of the URL) contain
/// and that the original checks first.
fn url_page_kind(s: &Session) -> UrlPage {
    let own = match s.page {
        Page::Results => UrlPage::SearchResults,
        Page::Item => UrlPage::ItemPage,
        Page::Description | Page::Features | Page::Reviews => UrlPage::ItemSubPage,
        Page::Start | Page::Done => return UrlPage::Other,
    };
    let in_url = |name: &str| s.keywords.contains(name) || s.options.iter().any(|(k, v)| k.contains(name) || v.contains(name));
    [(UrlPage::SearchResults, "search_results"), (UrlPage::ItemPage, "item_page"), (UrlPage::ItemSubPage, "item_sub_page")]
        .into_iter()
        .find(|&(kind, name)| kind == own || in_url(name))
        .map_or(own, |(kind, _)| kind)
}

/// One shopping session.
#[derive(Clone, Debug)]
struct Session {
    goal: usize,
    page: Page,
    keywords: String,
    page_num: usize,
    results: Vec<usize>,
    product: Option<usize>,
    options: Vec<(String, String)>,
    reward: f64,
    /// The episode's seed (for `<r>` searches).
    seed: u64,
    /// Searches made so far.
    searches: u64,
}

/// WebShop over a [`Catalog`] (the real data or `webshop-synth`).
pub struct WebShopEnv {
    catalog: Arc<Catalog>,
    config: Arc<WebShopConfig>,
    session: Option<Session>,
}

impl std::fmt::Debug for WebShopEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebShopEnv").field("catalog", &self.catalog.label()).finish_non_exhaustive()
    }
}

impl WebShopEnv {
    /// An environment over a shared catalog.
    pub fn new(catalog: Arc<Catalog>, config: Arc<WebShopConfig>) -> Self {
        WebShopEnv { catalog, config, session: None }
    }

    /// A factory: loads the catalog once; every worker shares it.
    pub fn factory(config: &WebShopConfig) -> Result<impl Fn(usize) -> Result<WebShopEnv, EnvError> + Send + Sync + 'static, EnvError> {
        let catalog = Arc::new(Catalog::load(config).map_err(EnvError::Other)?);
        let config = Arc::new(config.clone());
        Ok(move |_| Ok(WebShopEnv::new(catalog.clone(), config.clone())))
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// What the current page offers to click, in page order, as the original's
    /// `get_available_actions()["clickables"]` lists them (lower-cased button texts and product
    /// links, then option values; `search` on the start page). Empty before `reset`.
    pub fn clickables_now(&self) -> Vec<String> {
        self.session.as_ref().map(|s| self.clickables(s).into_iter().map(|(k, _)| k).collect()).unwrap_or_default()
    }

    fn instruction(&self, s: &Session) -> &str {
        &self.catalog.goals[s.goal].instruction_text
    }

    /// The text-mode observation of the current page.
    fn render(&self, s: &Session) -> String {
        let c = &self.catalog;
        let ins = self.instruction(s);
        let mut parts: Vec<String> = Vec::new();
        let head = |parts: &mut Vec<String>| {
            parts.push("Instruction:".into());
            parts.push(ins.to_owned());
            parts.push("Back to Search".into());
        };
        match s.page {
            Page::Start => parts.extend(["WebShop".to_owned(), "Instruction:".into(), ins.to_owned(), "Search".into()]),
            Page::Results => {
                head(&mut parts);
                parts.push(format!("Page {} (Total results: {})", s.page_num, s.results.len()));
                if s.page_num > 1 {
                    parts.push("< Prev".into());
                }
                // The original's template shows `Next >` on every results page, the last and an
                // empty one included; past the last page the listing is empty.
                parts.push("Next >".into());
                for &i in self.page_results(s) {
                    let p = &c.products[i];
                    parts.extend([p.asin.clone(), p.title.clone(), p.price_tag.clone()]);
                }
            }
            Page::Item => {
                let p = &c.products[s.product.unwrap_or(0)];
                head(&mut parts);
                parts.push("< Prev".into());
                for (name, values) in &p.options {
                    parts.push(name.clone());
                    parts.extend(values.iter().cloned());
                }
                parts.extend([p.title.clone(), format!("Price: {}", p.price_tag), "Rating: N.A.".into()]);
                parts.extend(["Description", "Features", "Reviews", "Buy Now"].map(String::from));
            }
            Page::Description | Page::Features | Page::Reviews => {
                let p = &c.products[s.product.unwrap_or(0)];
                head(&mut parts);
                parts.push("< Prev".into());
                // The original renders each text into its own element; an empty one makes no text
                // node, and a lone newline is dropped by its text conversion (`t != '\n'`).
                let shown = |t: &&String| !t.is_empty() && t.as_str() != "\n";
                match s.page {
                    Page::Description => parts.extend(std::iter::once(&p.description).filter(shown).cloned()),
                    Page::Features => parts.extend(p.bullet_points.iter().filter(shown).cloned()),
                    _ => {}
                }
            }
            Page::Done => {
                let p = &c.products[s.product.unwrap_or(0)];
                parts.extend(super::done_page::texts(&p.asin, &s.options, &super::data::py_float(s.reward)));
            }
        }
        parts.iter().map(|t| t.trim()).collect::<Vec<_>>().join(" [SEP] ")
    }

    fn page_results<'a>(&self, s: &'a Session) -> &'a [usize] {
        let lo = ((s.page_num.max(1) - 1) * PRODUCT_WINDOW).min(s.results.len());
        let hi = (s.page_num * PRODUCT_WINDOW).min(s.results.len());
        &s.results[lo..hi]
    }

    /// The page's clickables (lower-cased button texts and product links; option values), each
    /// with the option name for option values.
    fn clickables(&self, s: &Session) -> Vec<(String, Option<String>)> {
        let c = &self.catalog;
        let mut out: Vec<(String, Option<String>)> = Vec::new();
        let mut button = |t: &str| out.push((t.to_lowercase(), None));
        match s.page {
            Page::Start => button("Search"),
            Page::Results => {
                button("Back to Search");
                if s.page_num > 1 {
                    button("< Prev");
                }
                button("Next >");
                for &i in self.page_results(s) {
                    out.push((c.products[i].asin.to_lowercase(), None));
                }
            }
            Page::Item => {
                for b in ["Back to Search", "< Prev", "Description", "Features", "Reviews", "Buy Now"] {
                    button(b);
                }
                for (name, values) in &c.products[s.product.unwrap_or(0)].options {
                    for v in values {
                        // A Python dict: assigning an existing key keeps its place.
                        match out.iter_mut().find(|(k, _)| k == v) {
                            Some(slot) => slot.1 = Some(name.clone()),
                            None => out.push((v.clone(), Some(name.clone()))),
                        }
                    }
                }
            }
            Page::Description | Page::Features | Page::Reviews => {
                button("Back to Search");
                button("< Prev");
            }
            Page::Done => {}
        }
        out
    }

    fn search(&self, s: &mut Session, keywords: &str) {
        s.keywords = keywords.to_owned();
        s.results = self.ranked(s, keywords);
        s.searches += 1;
        s.page_num = 1;
        s.page = Page::Results;
        s.product = None;
        s.options.clear();
    }

    /// The products a search lists, as `get_top_n_product_from_keywords`: the special prefixes
    /// `<r>` (50 random products), `<c> CATEGORY` (the first word after it), `<q> QUERY` and
    /// `<a> ATTRIBUTE` filter the catalog; anything else is a BM25 search.
    ///
    /// Differences, documented: `<r>` draws from this session's seeded generator, not Python's
    /// global one; `<c>` without a category lists nothing (the original raises `IndexError`);
    /// `<a>` filters as the web app does (the text mode raises `TypeError`, having no
    /// attribute index).
    fn ranked(&self, s: &Session, keywords: &str) -> Vec<usize> {
        let c = &self.catalog;
        let words: Vec<&str> = keywords.split(' ').collect();
        let rest = || words[1..].join(" ").trim().to_owned();
        let filter = |keep: &dyn Fn(&super::data::Product) -> bool| (0..c.products.len()).filter(|&i| keep(&c.products[i])).collect();
        match words[0] {
            "<r>" => {
                let mut rng = eef_runtime::seed::rng(eef_runtime::seed::derive(s.seed, &format!("search-{}", s.searches)));
                rand::seq::index::sample(&mut rng, c.products.len(), SEARCH_RETURN_N.min(c.products.len())).into_vec()
            }
            "<c>" => match words.get(1).map(|w| w.trim()) {
                Some(category) => filter(&|p| p.category == category),
                None => Vec::new(),
            },
            "<q>" => {
                let query = rest();
                filter(&|p| p.query == query)
            }
            "<a>" => {
                let attribute = rest();
                filter(&|p| p.attributes.contains(&attribute))
            }
            _ => c.index.search(keywords, SEARCH_RETURN_N),
        }
    }

    fn click(&self, s: &mut Session, target: &str, option_name: Option<String>) -> f64 {
        match target {
            "buy now" => {
                let p = s.product.unwrap_or(0);
                let goal = &self.catalog.goals[s.goal];
                s.reward = reward(&self.catalog.products[p], goal, self.catalog.prices[p], &s.options, nouns);
                s.page = Page::Done;
                return s.reward;
            }
            "back to search" => {
                s.page = Page::Start;
                s.keywords.clear();
                s.results.clear();
                s.product = None;
                s.options.clear();
            }
            "next >" if s.page == Page::Results => s.page_num += 1,
            // The original decides what `< prev` does by the page kind its URL names, taking the
            // first of `search_results`, `item_page`, `item_sub_page` found anywhere in the URL,
            // which also holds the search keywords and the chosen options
            // (`SimServer.get_page_name`): keywords such as `tea search_results` make an item
            // page act as a results page. The port follows the same rule.
            "< prev" => match url_page_kind(s) {
                UrlPage::SearchResults => {
                    s.page = Page::Results;
                    s.page_num = s.page_num.saturating_sub(1);
                    s.product = None;
                    s.options.clear();
                }
                UrlPage::ItemPage => {
                    s.page = Page::Results;
                    s.product = None;
                    s.options.clear();
                }
                UrlPage::ItemSubPage => s.page = Page::Item,
                UrlPage::Other => {}
            },
            "description" => s.page = Page::Description,
            "features" => s.page = Page::Features,
            "reviews" => s.page = Page::Reviews,
            _ => {
                match option_name {
                    Some(name) => match s.options.iter_mut().find(|(k, _)| *k == name) {
                        Some(slot) => slot.1 = target.to_owned(),
                        None => s.options.push((name, target.to_owned())),
                    },
                    None => s.product = self.catalog.product(target).map(|(i, _)| i),
                }
                s.page = Page::Item;
            }
        }
        0.0
    }
}

#[environment(name = "webshop")]
impl WebShopEnv {
    fn tasks(&self) -> Vec<Task> {
        let n = self.catalog.goals.len();
        let (test, dev) = self.config.split();
        let n_test = test.min(n);
        let n_dev = (n_test + dev).min(n);
        let max_train = self.config.max_train_goals.unwrap_or(usize::MAX);
        self.catalog
            .goals
            .iter()
            .enumerate()
            .filter(|(i, _)| *i < n_dev || *i - n_dev < max_train)
            .map(|(i, g)| {
                let split = if i < n_test {
                    Split::Test
                } else if i < n_dev {
                    Split::Dev
                } else {
                    Split::Train
                };
                Task::new(format!("{}-{i}", self.catalog.label()), g.instruction_text.clone(), split, i)
            })
            .collect()
    }

    fn reset(&mut self, task: &Task, seed: u64) -> Result<String, EnvError> {
        if task.index >= self.catalog.goals.len() {
            return Err(EnvError::UnknownTask(task.id.to_string()));
        }
        let s = Session {
            goal: task.index,
            page: Page::Start,
            keywords: String::new(),
            page_num: 1,
            results: Vec::new(),
            product: None,
            options: Vec::new(),
            reward: 0.0,
            seed,
            searches: 0,
        };
        let obs = self.render(&s);
        self.session = Some(s);
        Ok(obs)
    }

    fn step(&mut self, action: &str) -> Result<StepResult, EnvError> {
        let mut s = self.session.take().ok_or_else(|| EnvError::InvalidState("step before reset".into()))?;
        // The original accepts actions after the purchase: the done page has nothing to click,
        // but a search leads on (and a second purchase is rewarded again).
        let (name, arg) = parse_action(action);
        let arg = arg.map(|a| a.to_lowercase());
        let mut reward = 0.0;
        let mut bought = false;
        match (name.as_str(), arg) {
            ("search", Some(a)) if !a.is_empty() => {
                let keywords = a.split(' ').collect::<Vec<_>>().join(" ");
                self.search(&mut s, &keywords);
            }
            ("click", Some(a)) if a != "search" => {
                if let Some((_, option)) = self.clickables(&s).into_iter().find(|(k, _)| *k == a) {
                    reward = self.click(&mut s, &a, option);
                    bought = a == "buy now";
                }
            }
            _ => {}
        }
        // Only the purchase itself reports `done` (the original's status is `done=False` for every
        // other action, those after a purchase included).
        let done = bought;
        let obs = self.render(&s);
        self.session = Some(s);
        Ok(StepResult { observation: obs, reward, done })
    }

    fn valid_actions(&self) -> Option<Vec<String>> {
        if !self.config.offer_valid_actions {
            return None;
        }
        let s = self.session.as_ref()?;
        let mut v: Vec<String> = self.clickables(s).into_iter().filter(|(k, _)| k != "search").map(|(k, _)| format!("click[{k}]")).collect();
        if s.page == Page::Start {
            v.push(format!("search[{}]", self.instruction(s).to_lowercase()));
        }
        Some(v)
    }

    fn max_steps(&self, _task: &Task) -> usize {
        self.config.max_steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_as_the_original_regex() {
        assert_eq!(parse_action("search[red shirt]"), ("search".into(), Some("red shirt".into())));
        assert_eq!(parse_action("click[< Prev]"), ("click".into(), Some("< Prev".into())));
        assert_eq!(parse_action("click[]"), ("click[]".into(), None));
        assert_eq!(parse_action("search[a] tail"), ("search".into(), Some("a".into())));
        assert_eq!(parse_action("click[a[b]]"), ("click[a".into(), Some("b]".into())));
        assert_eq!(parse_action("buy"), ("buy".into(), None));
        // Python's `.` stops at a newline: only the first line can match.
        assert_eq!(parse_action("search[red shirt]\nclick[buy now]"), ("search".into(), Some("red shirt".into())));
        assert_eq!(parse_action("search[red\nshirt]"), ("search[red\nshirt]".into(), None));
        assert_eq!(parse_action("\nsearch[red shirt]"), ("\nsearch[red shirt]".into(), None));
        assert_eq!(parse_action("search[a\rb]"), ("search".into(), Some("a\rb".into())));
    }
}
