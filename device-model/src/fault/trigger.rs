//! When a rule fires: filters, a count, a probability, a budget.
//!
//! A descriptor *passes the filters* of a rule when it is on the rule's
//! `channel` (if set) and its device cycle is inside the rule's `window` (if
//! set). The rule counts the descriptors that pass its filters, 1, 2, 3, …
//! (its *match number*), and fires on one of them when
//! - `every = k` alone: the match number is a multiple of `k`: k, 2k, 3k, …
//!   (the usual reading of "every k-th"; `every = 1` is every descriptor);
//! - `nth = n` alone: the match number is `n`;
//! - `nth = n` and `every = k`: the match number is n, n + k, n + 2k, …
//!   (`nth` says where the series starts);
//! - `probability` (if set): the keyed SplitMix64 draw for (seed, rule index,
//!   seq) is below `probability`; this draws for each candidate and does not
//!   depend on the match number, so a run replays from its seed;
//! - `max_times` (if set): the rule has fired fewer than `max_times` times.
//!
//! All the conditions that are set must hold. A rule whose trigger sets
//! none of `nth`, `every`, `probability`, `channel`, `window` is rejected by
//! validation: "every descriptor" is written `every = 1`, so a rule with a
//! forgotten or misspelt trigger does not silently fire on everything.
//!
//! Evaluation never panics, even on a trigger that failed validation: a
//! zero `every`, an empty window or a NaN probability simply never fire.

use super::parse::FieldError;

/// A window of device cycles, `from <= cycle < until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CycleWindow {
    /// First cycle inside the window (default 0).
    pub from: u64,
    /// First cycle after the window (default: no end, `u64::MAX`).
    pub until: u64,
}

impl CycleWindow {
    /// Whether `cycle` lies inside the window.
    pub fn contains(&self, cycle: u64) -> bool {
        self.from <= cycle && cycle < self.until
    }
}

impl Default for CycleWindow {
    fn default() -> Self {
        CycleWindow {
            from: 0,
            until: u64::MAX,
        }
    }
}

/// When a rule fires. Every field is optional; see the module notes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Trigger {
    /// The nth descriptor that passes the filters (1-based); with `every`,
    /// the first of the series.
    pub nth: Option<u64>,
    /// Every k-th descriptor that passes the filters.
    pub every: Option<u64>,
    /// Chance in `[0, 1]` for each candidate, from the seeded generator.
    pub probability: Option<f64>,
    /// Only descriptors of this channel.
    pub channel: Option<u8>,
    /// Only descriptors processed in this device-cycle window.
    pub window: Option<CycleWindow>,
    /// At most this many firings.
    pub max_times: Option<u64>,
}

impl Trigger {
    /// Whether a descriptor on `channel` at `cycle` passes the filters.
    pub(super) fn passes_filters(&self, channel: u8, cycle: u64) -> bool {
        self.channel.is_none_or(|c| c == channel) && self.window.is_none_or(|w| w.contains(cycle))
    }

    /// Whether the `matched`-th descriptor passing the filters is selected
    /// by `nth` and `every` (before probability and budget).
    pub(super) fn selects(&self, matched: u64) -> bool {
        match (self.nth, self.every) {
            (None, None) => true,
            (Some(n), None) => matched == n,
            (nth, Some(k)) => {
                let start = nth.unwrap_or(k);
                k != 0 && matched >= start && (matched - start).checked_rem(k) == Some(0)
            }
        }
    }

    /// Whether the rule's budget is spent after `fired` firings.
    pub(super) fn exhausted(&self, fired: u64) -> bool {
        self.max_times.is_some_and(|m| fired >= m)
    }

    /// Whether any condition is set at all.
    fn is_set(&self) -> bool {
        self.nth.is_some()
            || self.every.is_some()
            || self.probability.is_some()
            || self.channel.is_some()
            || self.window.is_some()
    }

    /// Checks every field; the error names the first bad one.
    pub(super) fn validate(&self) -> Result<(), FieldError> {
        if !self.is_set() {
            return Err(FieldError::new(
                "trigger",
                "missing: give at least one of nth, every, probability, channel, window \
                 (every = 1 fires on every descriptor)",
            ));
        }
        at_least_one("nth", self.nth)?;
        at_least_one("every", self.every)?;
        at_least_one("max_times", self.max_times)?;
        if let Some(p) = self.probability {
            if !(0.0..=1.0).contains(&p) {
                return Err(FieldError::new(
                    "probability",
                    format!("must be between 0 and 1, got {p}"),
                ));
            }
        }
        if let Some(w) = self.window {
            if w.from >= w.until {
                return Err(FieldError::new(
                    "window",
                    format!(
                        "from must be below until, got from = {} and until = {}",
                        w.from, w.until
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks the channel filter against a device with `channels` channels.
    pub(super) fn validate_channel(&self, channels: u8) -> Result<(), FieldError> {
        match self.channel {
            Some(c) if c >= channels => Err(FieldError::new(
                "channel",
                format!("the device has {channels} channels (0 to {}), got {c}", {
                    channels.saturating_sub(1)
                }),
            )),
            _ => Ok(()),
        }
    }
}

fn at_least_one(field: &str, value: Option<u64>) -> Result<(), FieldError> {
    match value {
        Some(0) => Err(FieldError::new(field, "must be at least 1, got 0")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_selects_exactly_one_match() {
        let t = Trigger {
            nth: Some(3),
            ..Trigger::default()
        };
        let picked: Vec<u64> = (1..=10).filter(|&m| t.selects(m)).collect();
        assert_eq!(picked, [3]);
    }

    #[test]
    fn every_selects_multiples_and_nth_moves_the_start() {
        let every = Trigger {
            every: Some(4),
            ..Trigger::default()
        };
        let picked: Vec<u64> = (1..=12).filter(|&m| every.selects(m)).collect();
        assert_eq!(picked, [4, 8, 12]);
        let from_third = Trigger {
            nth: Some(3),
            every: Some(4),
            ..Trigger::default()
        };
        let picked: Vec<u64> = (1..=12).filter(|&m| from_third.selects(m)).collect();
        assert_eq!(picked, [3, 7, 11]);
    }

    #[test]
    fn invalid_counts_never_select_and_never_panic() {
        let zero = Trigger {
            every: Some(0),
            ..Trigger::default()
        };
        assert!(!(0..100).any(|m| zero.selects(m)));
        let never = Trigger {
            nth: Some(0),
            ..Trigger::default()
        };
        assert!(!(1..100).any(|m| never.selects(m)));
    }

    #[test]
    fn filters_check_channel_and_half_open_window() {
        let t = Trigger {
            channel: Some(2),
            window: Some(CycleWindow {
                from: 100,
                until: 200,
            }),
            ..Trigger::default()
        };
        assert!(t.passes_filters(2, 100));
        assert!(t.passes_filters(2, 199));
        assert!(!t.passes_filters(2, 200));
        assert!(!t.passes_filters(2, 99));
        assert!(!t.passes_filters(1, 150));
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |t: Trigger| t.validate().unwrap_err().to_string();
        let base = Trigger {
            every: Some(1),
            ..Trigger::default()
        };
        assert_eq!(
            bad(Trigger {
                probability: Some(1.5),
                ..base
            }),
            "field \"probability\": must be between 0 and 1, got 1.5"
        );
        assert_eq!(
            bad(Trigger {
                probability: Some(f64::NAN),
                ..base
            }),
            "field \"probability\": must be between 0 and 1, got NaN"
        );
        assert_eq!(
            bad(Trigger {
                every: Some(0),
                ..base
            }),
            "field \"every\": must be at least 1, got 0"
        );
        assert_eq!(
            bad(Trigger {
                nth: Some(0),
                ..base
            }),
            "field \"nth\": must be at least 1, got 0"
        );
        assert_eq!(
            bad(Trigger {
                max_times: Some(0),
                ..base
            }),
            "field \"max_times\": must be at least 1, got 0"
        );
        assert_eq!(
            bad(Trigger {
                window: Some(CycleWindow { from: 5, until: 5 }),
                ..base
            }),
            "field \"window\": from must be below until, got from = 5 and until = 5"
        );
        assert!(bad(Trigger {
            max_times: Some(3),
            ..Trigger::default()
        })
        .starts_with("field \"trigger\": missing"));
        assert_eq!(
            Trigger {
                channel: Some(4),
                ..base
            }
            .validate_channel(4)
            .unwrap_err()
            .to_string(),
            "field \"channel\": the device has 4 channels (0 to 3), got 4"
        );
        assert!(Trigger {
            channel: Some(3),
            ..base
        }
        .validate_channel(4)
        .is_ok());
    }
}
