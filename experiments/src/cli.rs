//! The command line shared by the experiment examples.

use std::path::PathBuf;

use clap::Parser;
use eef_runtime::{Error, Experiment, ExperimentConfig, Report};

/// Options every experiment example accepts.
#[derive(Debug, Clone, Parser)]
#[command(about = "Run an eef experiment: expert data -> SFT -> [explore -> select -> train] x N -> evaluate")]
pub struct Args {
    /// The experiment configuration (TOML).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Start afresh instead of resuming an existing run of the same name.
    #[arg(long)]
    pub fresh: bool,
    /// Override `[experiment] run_dir`.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Override `[experiment] iterations`.
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Override `[experiment] seed`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Run this many seeds (the configured seed and the next ones), each in its own run
    /// directory (`<name>-seed<k>`), and print their summary: every method's mean and 95%
    /// interval over the seeds (also written to `<run_dir>/<name>-seeds.md`).
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// Resume a run even though it was produced by a different build of the code (its finished
    /// phases are kept as they are).
    #[arg(long)]
    pub resume_anyway: bool,
}

impl Args {
    /// Reads the configuration (`--config`, else `default`) and applies the overrides.
    pub fn load_config(&self, default: &str) -> Result<ExperimentConfig, Error> {
        let path = self.config.clone().unwrap_or_else(|| PathBuf::from(default));
        let mut config = ExperimentConfig::from_file(&path)?;
        if let Some(d) = &self.run_dir {
            config.experiment.run_dir = d.clone();
        }
        if let Some(n) = self.iterations {
            config.experiment.iterations = n;
        }
        if let Some(s) = self.seed {
            config.experiment.seed = s;
        }
        if self.quiet {
            config.rollout.progress = false;
        }
        Ok(config)
    }
}

/// Parses the command line, builds the experiment with `build`, runs it on a multi-threaded tokio
/// runtime with Ctrl-C wired to cancellation, and prints the report. Returns the process exit code.
pub fn main(default_config: &str, build: impl Fn(ExperimentConfig) -> Result<Experiment, Error>) -> std::process::ExitCode {
    let args = Args::parse();
    eef_runtime::logging::init();
    let outcome = if args.seeds > 1 { run_seeds(&args, default_config, &build) } else { run(&args, default_config, &build).map(|r| r.to_markdown()) };
    match &outcome {
        Ok(markdown) => println!("{markdown}"),
        Err(Error::Cancelled) => eprintln!("Interrupted. Everything finished so far is saved; run the same command again to resume."),
        Err(e) => eprintln!("error: {e}"),
    }
    std::process::ExitCode::from(match &outcome {
        Ok(_) => 0,
        Err(e) => exit_status(e),
    })
}

/// The exit status of a run that ended with `error`: 130 when it was interrupted (Ctrl-C, as
/// shells report SIGINT), 2 when the run would have been meaningless (no tasks, an expert
/// without successes, mostly broken episodes: [`Error::Meaningless`]), 1 for every other error.
pub fn exit_status(error: &Error) -> u8 {
    match error {
        Error::Cancelled => 130,
        Error::Meaningless { .. } => 2,
        _ => 1,
    }
}

/// Runs `args.seeds` seeds one after the other (each resumable on its own) and returns their
/// summary ([`eef_runtime::experiment::seeds::seeds_markdown`]), also written beside the runs.
pub fn run_seeds(args: &Args, default_config: &str, build: &dyn Fn(ExperimentConfig) -> Result<Experiment, Error>) -> Result<String, Error> {
    let base = args.load_config(default_config)?;
    let (mut seeds, mut reports) = (Vec::new(), Vec::new());
    for k in 0..args.seeds {
        let mut config = base.clone();
        config.experiment.seed = base.experiment.seed + k as u64;
        config.experiment.name = format!("{}-seed{}", base.experiment.name, config.experiment.seed);
        eprintln!("seed {} ({} of {}): {}", config.experiment.seed, k + 1, args.seeds, config.run_path().display());
        seeds.push(config.experiment.seed);
        reports.push(run_config(config, args, build)?);
    }
    let md = eef_runtime::experiment::seeds::seeds_markdown(&seeds, &reports);
    let path = base.experiment.run_dir.join(format!("{}-seeds.md", base.experiment.name));
    std::fs::write(&path, &md).map_err(|e| Error::io(&path, e))?;
    Ok(md)
}

fn run(args: &Args, default_config: &str, build: &dyn Fn(ExperimentConfig) -> Result<Experiment, Error>) -> Result<Report, Error> {
    run_config(args.load_config(default_config)?, args, build)
}

fn run_config(config: ExperimentConfig, args: &Args, build: &dyn Fn(ExperimentConfig) -> Result<Experiment, Error>) -> Result<Report, Error> {
    let experiment = build(config)?
        .fresh(args.fresh)
        .resume_anyway(args.resume_anyway)
        .code(eef_runtime::experiment::code::CodeIdentity::of_current_exe());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Setup(format!("cannot start the tokio runtime: {e}")))?;
    rt.block_on(async move {
        let cancel = experiment.cancellation_token();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\nCtrl-C: stopping after the current steps...");
                cancel.cancel();
            }
        });
        experiment.run().await
    })
}

/// Prints a measurement report, or the error, and returns the exit code (for the benchmark
/// examples).
pub fn print_report(report: Result<String, Error>) -> std::process::ExitCode {
    match report {
        Ok(r) => {
            println!("{r}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
