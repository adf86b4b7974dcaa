//! The dispatcher's in-memory run queue: claimed deliveries waiting for an attempt,
//! per destination, with the per-destination concurrency cap.
//!
//! Claiming ahead of what is in flight is what lets one busy endpoint be served at
//! full speed: when an attempt finishes, the next delivery to the same endpoint starts
//! from here at once instead of after a database round trip. Destinations take turns
//! (round robin), so a deep backlog for one does not starve the others.

use std::collections::{HashMap, HashSet, VecDeque};

/// Claimed items (`T`) grouped by destination, released at most `cap` at a time per
/// destination.
#[derive(Debug)]
pub(crate) struct RunQueue<T> {
    cap: u32,
    /// Destinations held to a lower cap than `cap` (a half-open breaker's one probe).
    capped: HashMap<String, u32>,
    waiting: HashMap<String, VecDeque<T>>,
    in_flight: HashMap<String, u32>,
    /// Destinations with something waiting and room under the cap, in turn order.
    /// Invariant: a destination is here (once) exactly when both hold.
    ready: VecDeque<String>,
    in_ready: HashSet<String>,
    waiting_total: usize,
    in_flight_total: usize,
}

impl<T> RunQueue<T> {
    pub(crate) fn new(cap: u32) -> Self {
        Self {
            cap: cap.max(1),
            capped: HashMap::new(),
            waiting: HashMap::new(),
            in_flight: HashMap::new(),
            ready: VecDeque::new(),
            in_ready: HashSet::new(),
            waiting_total: 0,
            in_flight_total: 0,
        }
    }

    /// Items claimed but not started.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting_total
    }

    /// Items started and not finished.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight_total
    }

    pub(crate) fn push(&mut self, target: String, item: T) {
        self.waiting.entry(target.clone()).or_default().push_back(item);
        self.waiting_total += 1;
        self.mark_ready_if_runnable(&target);
    }

    /// The next item to start, taking destinations in turn; counts it as in flight.
    pub(crate) fn start_next(&mut self) -> Option<(String, T)> {
        let target = self.ready.pop_front()?;
        self.in_ready.remove(&target);
        let queue = self.waiting.get_mut(&target)?;
        let item = queue.pop_front()?;
        if queue.is_empty() {
            self.waiting.remove(&target);
        }
        self.waiting_total -= 1;
        *self.in_flight.entry(target.clone()).or_default() += 1;
        self.in_flight_total += 1;
        self.mark_ready_if_runnable(&target);
        Some((target, item))
    }

    /// An item of `target` started earlier has finished.
    pub(crate) fn finish(&mut self, target: &str) {
        if let Some(count) = self.in_flight.get_mut(target) {
            *count -= 1;
            self.in_flight_total -= 1;
            if *count == 0 {
                self.in_flight.remove(target);
            }
        }
        self.mark_ready_if_runnable(target);
    }

    /// Removes and returns the waiting items of one destination (it is failing:
    /// holding them would only keep queue room from others); in-flight counts stay.
    pub(crate) fn purge(&mut self, target: &str) -> Vec<T> {
        let removed: Vec<T> = self.waiting.remove(target).map(Vec::from).unwrap_or_default();
        self.waiting_total -= removed.len();
        if self.in_ready.remove(target) {
            self.ready.retain(|t| t != target);
        }
        removed
    }

    /// Holds one destination to `cap` in flight (below the queue's own cap), or with
    /// `None` gives it the queue's cap again.
    pub(crate) fn set_cap(&mut self, target: &str, cap: Option<u32>) {
        match cap {
            Some(cap) if cap < self.cap => {
                self.capped.insert(target.to_owned(), cap);
            }
            _ => {
                self.capped.remove(target);
            }
        }
        self.mark_ready_if_runnable(target);
    }

    /// Removes every waiting item (at shutdown); in-flight counts stay.
    pub(crate) fn drain_waiting(&mut self) -> Vec<T> {
        self.ready.clear();
        self.in_ready.clear();
        self.waiting_total = 0;
        self.waiting.drain().flat_map(|(_, items)| items).collect()
    }

    fn mark_ready_if_runnable(&mut self, target: &str) {
        let has_waiting = self.waiting.get(target).is_some_and(|q| !q.is_empty());
        let cap = self.capped.get(target).copied().unwrap_or(self.cap);
        let has_room = self.in_flight.get(target).copied().unwrap_or(0) < cap;
        if has_waiting && has_room && !self.in_ready.contains(target) {
            self.in_ready.insert(target.to_owned());
            self.ready.push_back(target.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RunQueue;

    fn started(queue: &mut RunQueue<u32>) -> Vec<(String, u32)> {
        std::iter::from_fn(|| queue.start_next()).collect()
    }

    #[test]
    fn never_more_than_the_cap_in_flight_per_destination() {
        let mut queue = RunQueue::new(2);
        for n in 0..5 {
            queue.push("a".into(), n);
        }
        assert_eq!(started(&mut queue), vec![("a".into(), 0), ("a".into(), 1)]);
        assert_eq!((queue.waiting(), queue.in_flight()), (3, 2));
        queue.finish("a");
        assert_eq!(started(&mut queue), vec![("a".into(), 2)], "one finished, one more starts, in order");
    }

    #[test]
    fn destinations_take_turns() {
        let mut queue = RunQueue::new(10);
        for n in 0..3 {
            queue.push("busy".into(), n);
        }
        queue.push("quiet".into(), 100);
        let order: Vec<String> = started(&mut queue).into_iter().map(|(target, _)| target).collect();
        assert_eq!(order, vec!["busy", "quiet", "busy", "busy"]);
    }

    #[test]
    fn a_full_destination_does_not_block_others() {
        let mut queue = RunQueue::new(1);
        queue.push("slow".into(), 1);
        queue.push("slow".into(), 2);
        queue.push("fast".into(), 3);
        assert_eq!(started(&mut queue), vec![("slow".into(), 1), ("fast".into(), 3)], "one of each");
        queue.push("fast".into(), 4);
        assert!(started(&mut queue).is_empty(), "both at their cap");
        queue.finish("fast");
        assert_eq!(started(&mut queue), vec![("fast".into(), 4)], "slow's backlog does not hold fast up");
        queue.finish("fast");
        queue.finish("slow");
        assert_eq!(started(&mut queue), vec![("slow".into(), 2)]);
        assert_eq!((queue.waiting(), queue.in_flight()), (0, 1));
    }

    #[test]
    fn purging_a_destination_drops_only_its_waiting_items() {
        let mut queue = RunQueue::new(1);
        queue.push("failing".into(), 1);
        queue.push("failing".into(), 2);
        queue.push("failing".into(), 3);
        queue.push("healthy".into(), 4);
        assert_eq!(queue.start_next(), Some(("failing".into(), 1)));
        assert_eq!(queue.purge("failing"), vec![2, 3]);
        assert_eq!(started(&mut queue), vec![("healthy".into(), 4)]);
        queue.finish("failing");
        assert!(queue.start_next().is_none());
        assert_eq!((queue.waiting(), queue.in_flight()), (0, 1));
    }

    #[test]
    fn a_destination_held_to_one_starts_one_at_a_time_until_released() {
        let mut queue = RunQueue::new(8);
        queue.set_cap("probed", Some(1));
        for n in 0..3 {
            queue.push("probed".into(), n);
        }
        assert_eq!(started(&mut queue), vec![("probed".into(), 0)]);
        queue.finish("probed");
        assert_eq!(started(&mut queue), vec![("probed".into(), 1)]);
        queue.set_cap("probed", None);
        assert_eq!(started(&mut queue), vec![("probed".into(), 2)], "the full cap again");
    }

    #[test]
    fn draining_leaves_nothing_to_start() {
        let mut queue = RunQueue::new(1);
        queue.push("a".into(), 1);
        queue.push("a".into(), 2);
        queue.start_next();
        assert_eq!(queue.drain_waiting(), vec![2]);
        queue.finish("a");
        assert!(queue.start_next().is_none());
        assert_eq!((queue.waiting(), queue.in_flight()), (0, 0));
    }
}
