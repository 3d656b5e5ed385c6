//! WebShop measurements: environment steps per second (searches included), search latency, the
//! expert on the test split, how often search ranks the target product, and how much the noun
//! approximation (used for titles outside spaCy's table) would change rewards.

use std::sync::Arc;
use std::time::Instant;

use eef_environments::webshop::nouns::{approximate_nouns, nouns};
use eef_environments::webshop::reward::reward;
use eef_environments::webshop::{understand, Catalog, Shopper, ShopperConfig, WebShopConfig, WebShopEnv};
use eef_runtime::policy::{ActRequest, Policy};
use eef_runtime::{Environment, Error, Split};

/// Runs the measurements over the first `goals` test goals; returns the report.
pub fn run(config: &WebShopConfig, goals: usize) -> Result<String, Error> {
    let t = Instant::now();
    let catalog = Arc::new(Catalog::load(config).map_err(Error::Setup)?);
    let load = t.elapsed().as_secs_f64();
    let mut env = WebShopEnv::new(catalog.clone(), Arc::new(config.clone()));
    let shopper = Shopper::new(ShopperConfig::default());
    let tasks: Vec<_> = env.tasks().into_iter().filter(|t| t.split == Split::Test).take(goals).collect();

    let (mut steps, mut step_secs, mut wins, mut total) = (0usize, 0.0f64, 0usize, 0.0f64);
    for task in &tasks {
        let mut obs = env.reset(task, 0)?;
        let mut history = Vec::new();
        for turn in 0..config.max_steps {
            let req = ActRequest {
                seed: turn as u64,
                task: task.id.clone(),
                instruction: task.instruction.clone(),
                history: history.clone(),
                observation: obs.clone(),
                valid_actions: None,
                temperature: 0.0,
            };
            let action = shopper.act_batch(&[req]).remove(0)?.action;
            let t = Instant::now();
            let s = env.step(&action)?;
            step_secs += t.elapsed().as_secs_f64();
            steps += 1;
            history.push(eef_runtime::policy::Step::new(obs, action.clone()));
            obs = s.observation;
            if s.done {
                total += s.reward;
                wins += usize::from(s.reward >= 1.0 - 1e-9);
                break;
            }
        }
    }

    // Search latency and recall of the target for the expert's query.
    let (mut search_secs, mut top1, mut top10, mut top50) = (0.0f64, 0, 0, 0);
    for task in &tasks {
        let goal = &catalog.goals[task.index];
        let q = understand(&goal.instruction_text).product;
        let t = Instant::now();
        let hits = catalog.index.search(&q, 50);
        search_secs += t.elapsed().as_secs_f64();
        let target = catalog.by_asin[&goal.asin];
        match hits.iter().position(|&h| h == target) {
            Some(0) => {
                top1 += 1;
                top10 += 1;
                top50 += 1;
            }
            Some(r) if r < 10 => {
                top10 += 1;
                top50 += 1;
            }
            Some(_) => top50 += 1,
            None => {}
        }
    }

    // Noun approximation sensitivity: rewards of every (goal, product) pair a shopper could buy
    // from the first results page, with spaCy's nouns (the table) vs the approximation.
    let (mut pairs, mut changed) = (0usize, 0usize);
    for task in &tasks {
        let goal = &catalog.goals[task.index];
        for &i in catalog.index.search(&understand(&goal.instruction_text).product, 10).iter() {
            let p = &catalog.products[i];
            let a = reward(p, goal, catalog.prices[i], &goal.goal_options, nouns);
            let b = reward(p, goal, catalog.prices[i], &goal.goal_options, approximate_nouns);
            pairs += 1;
            changed += usize::from((a - b).abs() > 1e-12);
        }
    }
    let n = tasks.len().max(1) as f64;
    Ok(format!(
        "WebShop measurements ({label}: {products} products, {goals_total} goals; first {n} test goals)\n\n\
         | measure | value |\n|---|---:|\n\
         | catalog load + index build | {load:.2} s |\n\
         | env steps per second (expert episodes, searches included) | {sps:.0} ({steps} steps) |\n\
         | search latency (BM25 over the catalog, top 50) | {lat:.3} ms |\n\
         | expert (heuristic shopper) win rate | {win:.1}% |\n\
         | expert average reward | {avg:.3} |\n\
         | target product ranked 1st / top 10 / top 50 for the expert's query | {t1:.1}% / {t10:.1}% / {t50:.1}% |\n\
         | rewards the noun approximation (used outside spaCy's table) would change | {ch:.1}% of {pairs} (goal, product) pairs |\n",
        label = catalog.label(),
        products = catalog.products.len(),
        goals_total = catalog.goals.len(),
        n = tasks.len(),
        sps = steps as f64 / step_secs.max(1e-9),
        lat = 1000.0 * search_secs / n,
        win = 100.0 * wins as f64 / n,
        avg = total / n,
        t1 = 100.0 * top1 as f64 / n,
        t10 = 100.0 * top10 as f64 / n,
        t50 = 100.0 * top50 as f64 / n,
        ch = 100.0 * changed as f64 / pairs.max(1) as f64,
    ))
}
