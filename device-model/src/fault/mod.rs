//! Fault plans and the fault engine (see `docs/fault-plans.md`).
