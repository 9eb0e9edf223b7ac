//! The fault engine: decides, descriptor by descriptor, which rules fire.
//!
//! The device core calls [`FaultEngine::on_descriptor`] once for each
//! descriptor it accepts, in `seq` order, and applies the returned effects
//! where they act in its pipeline. The engine's only state is, per rule, how
//! many descriptors passed the rule's filters and how many times it fired;
//! randomness is keyed SplitMix64 on (seed, rule index, seq), never a stream
//! (see `rng.rs`). So the same plan, seed and calls give the same decisions,
//! and a rule's probabilistic decisions do not move when other rules are
//! added or when channels interleave differently.
//!
//! Rules are evaluated in plan order and every rule that fires contributes
//! one [`AppliedFault`]; several effects on one descriptor are the core's to
//! combine. A disabled engine (no rules) returns after one length check.

use super::effect::FaultEffect;
use super::plan::{FaultPlan, FaultPlanError, FaultRule};
use super::rng::{keyed, unit, DOMAIN_EFFECT, DOMAIN_TRIGGER};

/// What the device tells the engine about a descriptor it is about to
/// process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorContext {
    /// Device-wide descriptor sequence number (1-based, in acceptance order).
    pub seq: u64,
    /// The descriptor's channel.
    pub channel: u8,
    /// The device cycle at which it is accepted.
    pub cycle: u64,
}

/// One decision: rule `rule` fired with `effect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedFault {
    /// Index of the rule in the engine's rules (0-based; error messages and
    /// the docs number rules from 1).
    pub rule: usize,
    /// The effect to apply.
    pub effect: FaultEffect,
}

/// Per-rule counters.
#[derive(Debug, Clone, Copy, Default)]
struct RuleState {
    /// Descriptors that passed the rule's filters so far.
    matched: u64,
    /// Times the rule fired so far.
    fired: u64,
}

/// Decides which faults apply to each descriptor.
#[derive(Debug, Clone)]
pub struct FaultEngine {
    seed: u64,
    rules: Vec<FaultRule>,
    state: Vec<RuleState>,
}

impl FaultEngine {
    /// An engine running `plan` with `seed`. The plan is used as given:
    /// [`FaultPlan::from_toml`] has validated it, and a rule that would not
    /// pass validation is still evaluated without panicking (see
    /// `trigger.rs`).
    pub fn new(plan: FaultPlan, seed: u64) -> Self {
        let state = vec![RuleState::default(); plan.rules.len()];
        FaultEngine {
            seed,
            rules: plan.rules,
            state,
        }
    }

    /// An engine with no rules: nothing ever fires.
    pub fn disabled() -> Self {
        FaultEngine::new(FaultPlan::default(), 0)
    }

    /// Whether the engine has no rules.
    pub fn is_disabled(&self) -> bool {
        self.rules.is_empty()
    }

    /// The seed that keys every random decision.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The rules, in evaluation order; [`AppliedFault::rule`] indexes this.
    pub fn rules(&self) -> &[FaultRule] {
        &self.rules
    }

    /// How many times rule `rule` has fired, or `None` if there is no such
    /// rule.
    pub fn fired(&self, rule: usize) -> Option<u64> {
        self.state.get(rule).map(|s| s.fired)
    }

    /// Decides the faults for one descriptor. `out` is cleared, then holds
    /// one [`AppliedFault`] per rule that fired, in rule order. Allocates
    /// nothing when no rule fires (nor when `out` has room).
    #[inline]
    pub fn on_descriptor(&mut self, ctx: &DescriptorContext, out: &mut Vec<AppliedFault>) {
        out.clear();
        if self.rules.is_empty() {
            return;
        }
        for (index, (rule, state)) in self.rules.iter().zip(&mut self.state).enumerate() {
            let trigger = &rule.trigger;
            if trigger.exhausted(state.fired) || !trigger.passes_filters(ctx.channel, ctx.cycle) {
                continue;
            }
            state.matched = state.matched.saturating_add(1);
            if !trigger.selects(state.matched) {
                continue;
            }
            if let Some(p) = trigger.probability {
                let draw = unit(keyed(self.seed, &[DOMAIN_TRIGGER, index as u64, ctx.seq]));
                // A NaN probability compares false: the rule never fires.
                let fires = draw < p;
                if !fires {
                    continue;
                }
            }
            state.fired = state.fired.saturating_add(1);
            out.push(AppliedFault {
                rule: index,
                effect: rule.effect,
            });
        }
    }

    /// Adds a rule at run time (by hand, from the control socket) after
    /// validating it; returns its index. Its counters start at zero, so
    /// `nth = 1` is the next matching descriptor.
    pub fn add_rule(&mut self, rule: FaultRule) -> Result<usize, FaultPlanError> {
        let index = self.rules.len();
        rule.validate()
            .map_err(|e| e.in_rule(index, rule.name.as_deref(), None))?;
        self.rules.push(rule);
        self.state.push(RuleState::default());
        Ok(index)
    }

    /// A seeded 64-bit value for an effect that needs randomness (bit-flip
    /// positions), keyed by (seed, seq, salt): draw `i` of a descriptor uses
    /// `salt = i`.
    pub fn effect_random(&self, seq: u64, salt: u64) -> u64 {
        keyed(self.seed, &[DOMAIN_EFFECT, seq, salt])
    }
}
