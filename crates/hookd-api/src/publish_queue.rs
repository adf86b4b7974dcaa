//! Group commit of publishes: events from concurrent publish requests are stored in
//! one transaction (one disk sync) instead of one each, which is what lets single-event
//! requests arrive faster than the disk syncs. A request is answered only after the
//! transaction holding its events committed, with its own delivery counts.
//!
//! If a combined transaction fails, each request in it is retried alone, so one
//! request's failure is never another's. A request whose caller stopped waiting (it
//! answered 503 at its database timeout) before its transaction began is dropped, so
//! what the producer was told failed is not stored behind its back.

use std::sync::Arc;

use hookd_store::{Event, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Requests queued for the next transaction at most; beyond it they wait their turn.
const QUEUE: usize = 1024;
/// Events per transaction at most (a transaction takes whole requests).
const MAX_EVENTS: usize = 5_000;

type Reply = oneshot::Sender<Result<Vec<usize>, StoreError>>;

/// The handle handlers publish through; cloned into every request.
#[derive(Clone)]
pub(crate) struct PublishQueue {
    sender: mpsc::Sender<(Vec<Event>, Reply)>,
}

impl PublishQueue {
    /// Starts the committing task; it ends when every handle is dropped.
    pub(crate) fn start(store: Arc<dyn Store>) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, receiver));
        Self { sender }
    }

    /// Stores the events (all or none) and returns each one's delivery count.
    pub(crate) async fn publish(&self, events: Vec<Event>) -> Result<Vec<usize>, StoreError> {
        let (reply, answer) = oneshot::channel();
        // The task stops only with the server: "not now", not a fault in the data.
        let closed = || StoreError::Closed;
        self.sender.send((events, reply)).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

async fn run(store: Arc<dyn Store>, mut receiver: mpsc::Receiver<(Vec<Event>, Reply)>) {
    let mut waiting: Option<(Vec<Event>, Reply)> = None;
    loop {
        let mut requests: Vec<(Vec<Event>, Reply)> = Vec::new();
        let mut total = 0;
        if let Some(first) = waiting.take() {
            total += first.0.len();
            requests.push(first);
        } else {
            match receiver.recv().await {
                Some(first) => {
                    total += first.0.len();
                    requests.push(first);
                }
                None => return,
            }
        }
        // Whatever else has queued meanwhile joins this transaction, up to the cap.
        while total < MAX_EVENTS {
            match receiver.try_recv() {
                Ok(next) if total + next.0.len() <= MAX_EVENTS => {
                    total += next.0.len();
                    requests.push(next);
                }
                Ok(next) => {
                    waiting = Some(next);
                    break;
                }
                Err(_) => break,
            }
        }
        requests.retain(|(_, reply)| !reply.is_closed());
        if !requests.is_empty() {
            commit(store.as_ref(), requests).await;
        }
    }
}

async fn commit(store: &dyn Store, requests: Vec<(Vec<Event>, Reply)>) {
    if requests.len() == 1 {
        for (events, reply) in requests {
            let _ = reply.send(store.publish_events(&events).await);
        }
        return;
    }
    let sizes: Vec<usize> = requests.iter().map(|(events, _)| events.len()).collect();
    let (batches, replies): (Vec<Vec<Event>>, Vec<Reply>) = requests.into_iter().unzip();
    let combined: Vec<Event> = batches.into_iter().flatten().collect();
    match store.publish_events(&combined).await {
        Ok(counts) => {
            let mut counts = counts.into_iter();
            for (size, reply) in sizes.into_iter().zip(replies) {
                let _ = reply.send(Ok(counts.by_ref().take(size).collect()));
            }
        }
        Err(_) => {
            let mut combined = combined.into_iter();
            for (size, reply) in sizes.into_iter().zip(replies) {
                let events: Vec<Event> = combined.by_ref().take(size).collect();
                let _ = reply.send(store.publish_events(&events).await);
            }
        }
    }
}
