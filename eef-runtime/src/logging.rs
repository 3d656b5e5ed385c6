//! The process's log output: what eef's command line installs, and what a driver or a training
//! node installs before burn-communication starts a server (which would otherwise install an
//! `info` subscriber for the whole process and log every tensor it sends).

/// Installs a subscriber that prints to stderr what `RUST_LOG` selects (`warn` when it is unset),
/// unless this process has one already.
pub fn init() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
