//! Fault plans and the fault engine (user guide: `docs/fault-plans.md`).
//!
//! A [`FaultPlan`] is a list of [`FaultRule`]s, each a [`Trigger`] (when)
//! and a [`FaultEffect`] (what). It is written in TOML, parsed and validated
//! by [`FaultPlan::from_toml`], whose errors name the rule and the field.
//! The device core owns a [`FaultEngine`], asks it once per accepted
//! descriptor what applies ([`FaultEngine::on_descriptor`]), applies the
//! effects in its pipeline and emits one trace event per [`AppliedFault`],
//! carrying the descriptor's sequence number.
//!
//! Decisions are a pure function of the plan, the seed and the calls: the
//! generator is keyed SplitMix64 on (seed, rule index, seq) (`rng.rs`), the
//! engine keeps no clock and no global state, so a failing run replays
//! exactly with `--seed`.
//!
//! Files: `plan.rs` (the plan, `from_toml`/`to_toml`, validation, the
//! module's error enum), `parse.rs` (reading a rule table with precise
//! errors), `serde_form.rs` (serde for TOML and JSON), `trigger.rs` (trigger
//! semantics), `effect.rs` (effects, their parameters and defaults),
//! `engine.rs` (the engine), `rng.rs` (the generator), `tests.rs` (the
//! guide's examples, property tests).

mod effect;
mod engine;
mod parse;
mod plan;
mod rng;
mod serde_form;
mod trigger;

pub use effect::{
    FaultEffect, DEFAULT_DELAY_CYCLES, DEFAULT_FLIPS, DEFAULT_SHORT_BYTES, DEFAULT_SPIKE_CYCLES,
    DEFAULT_STORM_COUNT, MAX_CYCLES, MAX_FLIPS, MAX_STORM_COUNT,
};
pub use engine::{AppliedFault, DescriptorContext, FaultEngine};
pub use plan::{FaultPlan, FaultPlanError, FaultRule};
pub use trigger::{CycleWindow, Trigger};

#[cfg(test)]
mod tests;
