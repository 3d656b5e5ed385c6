//! The batching task that answers workers' action requests.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::policy::{Act, ActRequest, Policy, PolicyError};

/// A request and where to send its answer.
pub(crate) type Pending = (ActRequest, oneshot::Sender<Result<Act, PolicyError>>);

/// Answers requests until every sender is gone: waits for one, takes every other request already
/// queued (up to `max_batch`), and answers them with one `act_batch` call on the blocking pool.
pub(crate) async fn serve(policy: Arc<dyn Policy>, mut rx: mpsc::Receiver<Pending>, max_batch: usize) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let (requests, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let p = policy.clone();
        let answers = match tokio::task::spawn_blocking(move || {
            let n = requests.len();
            let mut out = p.act_batch(&requests);
            let got = out.len();
            if got != n {
                let message = format!("the policy {:?} answered {got} of {n} requests in one act_batch call (it must return one result per request, in order)", p.name());
                // Which answer belongs to which request is unknown: none is used.
                out = (0..n).map(|_| Err(PolicyError::Other(message.clone()))).collect();
            }
            out
        })
        .await
        {
            Ok(a) => a,
            Err(e) => replies.iter().map(|_| Err(PolicyError::Other(format!("policy panicked: {e}")))).collect(),
        };
        for (reply, answer) in replies.into_iter().zip(answers) {
            let _ = reply.send(answer);
        }
    }
}
