//! `[policy.train.cluster]`: data-parallel training across machines, with burn-collective's global
//! level. The driver (the process running the experiment) is node 0 and runs burn-collective's
//! global orchestrator; every other machine runs `eef train-node`, which the driver hands the
//! model and optimizer state at the start of each training phase and a share of every
//! micro-batch after. The nodes' gradients are summed across machines by burn-collective (its
//! global all-reduce, a ring over the nodes' tensor-data services), so every copy of the model
//! takes the same step.

use std::collections::HashSet;
use std::sync::Mutex;

use burn::collective::CollectiveConfig;
use serde::{Deserialize, Serialize};

/// `[policy.train.cluster]`: the machines that train together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// burn-collective's global orchestrator, `ws://HOST:PORT` as the other machines reach this
    /// one: the driver runs it, listening on PORT.
    pub orchestrator: String,
    /// This machine's tensor-data service, `ws://HOST:PORT` as the other machines reach it
    /// (listened on at PORT): the nodes download this machine's gradient shares from it.
    pub address: String,
    /// The other machines: `HOST:PORT` of the `eef train-node --listen` on each.
    pub nodes: Vec<String>,
}

/// burn-collective's global parameters for one node of a group.
#[derive(Clone, Debug, PartialEq)]
pub struct Global {
    /// Nodes in the group.
    pub nodes: u32,
    /// The orchestrator's address.
    pub orchestrator: String,
    /// This node's tensor-data service address.
    pub address: String,
}

/// The port of a `scheme://host:port` (or `host:port`) address.
pub fn port_of(address: &str) -> Result<u16, String> {
    let rest = address.split_once("://").map_or(address, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .ok_or_else(|| format!("`{address}` names no port: write ws://HOST:PORT"))
}

impl ClusterSettings {
    /// Checks the addresses: each with a port, the orchestrator's and the data service's apart,
    /// at least one node, none listed twice.
    pub fn validate(&self) -> Result<(), String> {
        let key = |k: &str, e: String| format!("[policy.train.cluster] {k}: {e}");
        let orchestrator = port_of(&self.orchestrator).map_err(|e| key("orchestrator", e))?;
        let data = port_of(&self.address).map_err(|e| key("address", e))?;
        if !self.orchestrator.starts_with("ws://") || !self.address.starts_with("ws://") {
            return Err("[policy.train.cluster] orchestrator and address are WebSocket addresses: write ws://HOST:PORT".into());
        }
        if orchestrator == data && host(&self.orchestrator) == host(&self.address) {
            return Err(format!("[policy.train.cluster] orchestrator and address both use port {data}: give the tensor-data service its own port"));
        }
        if self.nodes.is_empty() {
            return Err("[policy.train.cluster] nodes is empty: list the `eef train-node` of every other machine (HOST:PORT), or drop [policy.train.cluster] to train on this machine alone".into());
        }
        for (i, n) in self.nodes.iter().enumerate() {
            port_of(n).map_err(|e| key("nodes", e))?;
            if self.nodes[..i].contains(n) {
                return Err(format!("[policy.train.cluster] nodes lists {n} twice: each machine takes part once"));
            }
        }
        Ok(())
    }

    /// The driver's global parameters.
    pub fn global(&self) -> Global {
        Global { nodes: self.nodes.len() as u32 + 1, orchestrator: self.orchestrator.clone(), address: self.address.clone() }
    }
}

fn host(address: &str) -> &str {
    let rest = address.split_once("://").map_or(address, |(_, r)| r);
    rest.rsplit_once(':').map_or(rest, |(h, _)| h)
}

/// burn-collective's configuration for `local` devices of a node, with `global` when the group
/// spans machines.
pub fn collective_config(local: usize, global: Option<&Global>) -> Result<CollectiveConfig, String> {
    let config = CollectiveConfig::default().with_num_devices(local);
    let Some(g) = global else { return Ok(config) };
    let bad = |what: &str, a: &str| format!("{what} `{a}` is not an address burn-collective reads");
    Ok(config
        .with_num_nodes(g.nodes)
        .with_global_address(g.orchestrator.parse().map_err(|_| bad("orchestrator", &g.orchestrator))?)
        .with_node_address(g.address.parse().map_err(|_| bad("address", &g.address))?)
        .with_data_service_port(port_of(&g.address)?))
}

/// Ports on which this process already runs an orchestrator.
static ORCHESTRATORS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// Starts burn-collective's global orchestrator on `port` in this process (on a thread of its
/// own; it lives as long as the process), unless it runs already. A port another program holds
/// is an error. SIGTERM still ends the process (exit status 143).
pub fn ensure_orchestrator(port: u16) -> Result<(), String> {
    let mut running = ORCHESTRATORS.lock().unwrap_or_else(|p| p.into_inner());
    let running = running.get_or_insert_with(HashSet::new);
    if running.contains(&port) {
        return Ok(());
    }
    // burn's server would otherwise install its own (`info`, every message) for the process.
    crate::logging::init();
    // burn-collective only logs a failed bind; try it here to report it.
    drop(std::net::TcpListener::bind(("0.0.0.0", port)).map_err(|e| format!("the training orchestrator cannot listen on port {port}: {e}"))?);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().map_err(|e| e.to_string())?;
    // burn's orchestrator listens for SIGTERM to shut itself down, which replaces the signal's
    // default action for the whole process: a driver sent SIGTERM (`kill`, a scheduler ending
    // the job) would lose its orchestrator and keep running. The signal ends the process, as
    // before the orchestrator started; the run resumes from its last checkpoint.
    #[cfg(unix)]
    {
        let mut term = {
            let _in_runtime = runtime.enter();
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| format!("cannot listen for SIGTERM: {e}"))?
        };
        runtime.spawn(async move {
            term.recv().await;
            std::process::exit(128 + 15);
        });
    }
    std::thread::Builder::new()
        .name(format!("eef-orchestrator-{port}"))
        .spawn(move || runtime.block_on(burn_collective::start_global_orchestrator(port)))
        .map_err(|e| e.to_string())?;
    running.insert(port);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(nodes: &[&str]) -> ClusterSettings {
        ClusterSettings { orchestrator: "ws://10.0.0.1:3000".into(), address: "ws://10.0.0.1:3001".into(), nodes: nodes.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn ports_are_read_from_addresses() {
        assert_eq!(port_of("ws://10.0.0.1:3000").unwrap(), 3000);
        assert_eq!(port_of("10.0.0.2:8700").unwrap(), 8700);
        assert!(port_of("ws://host").unwrap_err().contains("names no port"));
    }

    #[test]
    fn settings_are_checked() {
        settings(&["10.0.0.2:8700"]).validate().unwrap();
        assert!(settings(&[]).validate().unwrap_err().contains("nodes is empty"));
        assert!(settings(&["a:1", "a:1"]).validate().unwrap_err().contains("twice"));
        let same = ClusterSettings { address: "ws://10.0.0.1:3000".into(), ..settings(&["a:1"]) };
        assert!(same.validate().unwrap_err().contains("its own port"));
        let http = ClusterSettings { orchestrator: "http://10.0.0.1:3000".into(), ..settings(&["a:1"]) };
        assert!(http.validate().unwrap_err().contains("WebSocket"));
        assert_eq!(settings(&["a:1", "b:1"]).global().nodes, 3);
    }

    #[test]
    fn a_cluster_config_carries_the_global_parameters() {
        let g = settings(&["a:1"]).global();
        let c = collective_config(2, Some(&g)).unwrap();
        assert!(c.is_valid());
        assert_eq!(c, CollectiveConfig::default().with_num_devices(2).with_num_nodes(2).with_global_address("ws://10.0.0.1:3000".parse().unwrap()).with_node_address("ws://10.0.0.1:3001".parse().unwrap()).with_data_service_port(3001));
    }
}
