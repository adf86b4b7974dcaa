//! How one endpoint wants its deliveries sent: in publish order or not
//! ([`DeliveryOrdering`]), and at most how fast ([`RateLimit`]).
//!
//! The rate limit is a GCRA (generic cell rate algorithm), the token bucket written
//! as one number: the endpoint's *theoretical arrival time* (TAT), the instant by
//! which everything admitted so far would have started had it been sent exactly one
//! interval apart. Keeping one number per endpoint in the database is what lets
//! several instances share a limit: each claim reads it under a row lock, admits what
//! fits, and writes it back.

/// The order deliveries to an endpoint start in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryOrdering {
    /// As they come due, several at once (hookd's default, and HeyGen's behaviour).
    #[default]
    None,
    /// In the order their events were published, one at a time: the next starts only
    /// after the previous one is delivered, failed for good, or skipped.
    Fifo,
}

impl DeliveryOrdering {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Fifo => "fifo",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "none" => Some(Self::None),
            "fifo" => Some(Self::Fifo),
            _ => None,
        }
    }
}

/// The largest rate limit an endpoint may have, in attempts per second.
pub const MAX_RATE_PER_SECOND: u32 = 10_000;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// At most this many attempts start per second to one endpoint, over all instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    per_second: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'rate_limit_per_second' must be null or an integer from 1 to {MAX_RATE_PER_SECOND}")]
pub struct RateLimitOutOfRange;

impl RateLimit {
    pub fn new(per_second: i64) -> Result<Self, RateLimitOutOfRange> {
        match u32::try_from(per_second) {
            Ok(per_second) if (1..=MAX_RATE_PER_SECOND).contains(&per_second) => Ok(Self { per_second }),
            _ => Err(RateLimitOutOfRange),
        }
    }

    pub fn per_second(self) -> u32 {
        self.per_second
    }

    /// How many attempts may start back to back after a quiet spell: one twentieth of
    /// a second's worth, at least one. Any one-second window at the receiver sees at
    /// most `per_second + burst()` starts. A dispatcher that finds the limit reached
    /// looks again within 25 ms, so a 50 ms allowance lets it keep the full rate.
    pub fn burst(self) -> u32 {
        self.per_second.div_ceil(20).max(1)
    }

    /// The spacing between two starts at the full rate, in microseconds.
    fn interval_us(self) -> i64 {
        MICROS_PER_SECOND / i64::from(self.per_second)
    }

    /// Admits up to `wanted` attempts starting at `now_us`, given the endpoint's
    /// theoretical arrival time `tat_us` (0 for an endpoint never sent to). Returns how
    /// many may start; the claim then stores [`Self::advance`] of the count it took.
    pub fn admit(self, tat_us: i64, now_us: i64, wanted: u32) -> u32 {
        let interval = self.interval_us();
        let tolerance = interval * (i64::from(self.burst()) - 1);
        let start = tat_us.max(now_us);
        // The i-th admission (from 0) is allowed while start + i·interval ≤ now + tolerance.
        let slack = now_us + tolerance - start;
        if slack < 0 {
            return 0;
        }
        let fits = slack / interval + 1;
        u32::try_from(fits).unwrap_or(u32::MAX).min(wanted)
    }

    /// The TAT after `taken` attempts start at `now_us`.
    pub fn advance(self, tat_us: i64, now_us: i64, taken: u32) -> i64 {
        if taken == 0 {
            return tat_us;
        }
        tat_us.max(now_us) + self.interval_us() * i64::from(taken)
    }
}

/// An endpoint's delivery settings (`/v3/webhooks/endpoints/{id}/settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliverySettings {
    pub ordering: DeliveryOrdering,
    pub rate_limit: Option<RateLimit>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000;

    fn limit(per_second: i64) -> RateLimit {
        RateLimit::new(per_second).expect("in range")
    }

    /// Starts admitted when a claim asks for everything every `step_us`, over `span_us`.
    fn starts(limit: RateLimit, step_us: i64, span_us: i64) -> Vec<i64> {
        let (mut tat, mut now, mut starts) = (0, 0, Vec::new());
        while now < span_us {
            let taken = limit.admit(tat, now, u32::MAX);
            tat = limit.advance(tat, now, taken);
            starts.extend(std::iter::repeat_n(now, taken as usize));
            now += step_us;
        }
        starts
    }

    fn busiest_second(starts: &[i64]) -> usize {
        starts
            .iter()
            .map(|&from| starts.iter().filter(|&&t| t >= from && t <= from + SECOND).count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn rate_limits_outside_one_to_ten_thousand_are_refused() {
        for bad in [0, -1, 10_001, i64::MAX] {
            assert_eq!(RateLimit::new(bad), Err(RateLimitOutOfRange), "{bad}");
        }
        assert_eq!(limit(1).per_second(), 1);
        assert_eq!(limit(10_000).per_second(), 10_000);
    }

    #[test]
    fn a_quiet_endpoint_takes_its_burst_at_once_and_then_one_per_interval() {
        let limit = limit(100);
        assert_eq!(limit.burst(), 5);
        assert_eq!(limit.admit(0, 50 * SECOND, u32::MAX), 5);
        let tat = limit.advance(0, 50 * SECOND, 5);
        assert_eq!(limit.admit(tat, 50 * SECOND, u32::MAX), 0, "nothing more right away");
        assert_eq!(limit.admit(tat, 50 * SECOND + 10_000, u32::MAX), 1, "one per 10 ms after");
        assert_eq!(limit.admit(tat, 50 * SECOND, 3), 0);
    }

    #[test]
    fn no_second_sees_more_than_the_limit_plus_the_burst() {
        for (per_second, step_us) in [(1, 25_000), (7, 3_000), (100, 25_000), (100, 1_000), (2_000, 25_000)] {
            let limit = limit(per_second);
            let starts = starts(limit, step_us, 5 * SECOND);
            let busiest = busiest_second(&starts);
            assert!(busiest <= (limit.per_second() + limit.burst()) as usize, "{per_second}/s: {busiest}");
            // Polling every 25 ms still reaches the full rate over five seconds.
            assert!(starts.len() >= 5 * per_second as usize, "{per_second}/s: {} in 5 s", starts.len());
        }
    }

    #[test]
    fn orderings_round_trip_through_their_names() {
        for ordering in [DeliveryOrdering::None, DeliveryOrdering::Fifo] {
            assert_eq!(DeliveryOrdering::parse(ordering.as_str()), Some(ordering));
        }
        assert_eq!(DeliveryOrdering::parse("FIFO"), None);
    }
}
