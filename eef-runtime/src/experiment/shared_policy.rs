//! A policy shared between the rollout workers (reading) and the trainer (writing).

use std::sync::RwLock;

use crate::policy::{Act, ActRequest, Policy, PolicyError, TrainConfig, TrainReport};
use crate::trajectory::Trajectory;

/// A boxed policy behind a read-write lock.
pub(crate) struct SharedPolicy(RwLock<Box<dyn Policy>>);

impl SharedPolicy {
    pub fn new(p: Box<dyn Policy>) -> Self {
        SharedPolicy(RwLock::new(p))
    }

    pub fn with<T>(&self, f: impl FnOnce(&dyn Policy) -> Result<T, PolicyError>) -> Result<T, PolicyError> {
        let g = self.0.read().map_err(|_| PolicyError::Other("policy lock poisoned".into()))?;
        f(g.as_ref())
    }

    pub fn with_mut<T>(&self, f: impl FnOnce(&mut dyn Policy) -> Result<T, PolicyError>) -> Result<T, PolicyError> {
        let mut g = self.0.write().map_err(|_| PolicyError::Other("policy lock poisoned".into()))?;
        f(g.as_mut())
    }
}

impl Policy for SharedPolicy {
    fn name(&self) -> String {
        self.with(|p| Ok(p.name())).unwrap_or_default()
    }

    fn act_batch(&self, requests: &[ActRequest]) -> Vec<Result<Act, PolicyError>> {
        match self.0.read() {
            Ok(p) => p.act_batch(requests),
            Err(_) => requests.iter().map(|_| Err(PolicyError::Other("policy lock poisoned".into()))).collect(),
        }
    }

    fn train(&mut self, data: &[Trajectory], config: &TrainConfig) -> Result<TrainReport, PolicyError> {
        self.with_mut(|p| p.train(data, config))
    }
}
