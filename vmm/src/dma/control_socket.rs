//! The stepped mode's control socket: a Unix stream socket with a line
//! protocol, one reply line per request (`docs/wiring.md`):
//!
//! | request | effect | reply |
//! |---|---|---|
//! | `now` | none | `ok now=C next=N` |
//! | `step K` | advance the device by K cycles | `ok now=C next=N` |
//! | `next` | advance to the next event (if any) | `ok now=C next=N` |
//! | `run` | process events until idle | `ok now=C next=N` |
//! | `stats` | none | `ok {json}` (the device counters) |
//!
//! `C` is the device cycle, `N` the next event's cycle or `idle`. Anything
//! else gets `error …`. The socket works in every timing mode (in instant
//! mode the device is always idle, in realtime mode a step may run events
//! early); it is created by default only in stepped mode, where it is the
//! only way time moves. This is the minimal request set; the full control
//! API (pause, fault injection, live trace) is a later issue.

use super::Dma;

/// Longest request line accepted.
pub const MAX_LINE: usize = 256;

/// Answers one request line.
pub fn handle(dma: &Dma, line: &str) -> String {
    let mut words = line.split_whitespace();
    let command = words.next().unwrap_or("");
    let arg = words.next();
    if words.next().is_some() {
        return format!("error too many words in {line:?}");
    }
    let mut st = dma.lock();
    match (command, arg) {
        ("now", None) => {}
        ("step", Some(k)) => match k.parse::<u64>() {
            Ok(k) => {
                let to = st.model.now().saturating_add(k);
                st.model.advance_to(to);
            }
            Err(_) => return format!("error step takes a number of cycles, not {k:?}"),
        },
        ("next", None) => {
            if let Some(t) = st.model.next_event() {
                st.model.advance_to(t);
            }
        }
        ("run", None) => {
            st.model.run_until_idle();
        }
        ("stats", None) => {
            st.drain();
            let stats = serde_json::json!({
                "now": st.model.now(),
                "next": st.model.next_event(),
                "tally": st.tally,
                "trace_lost": st.trace_lost(),
            });
            return format!("ok {stats}");
        }
        ("", _) => return "error empty request".to_string(),
        _ => return format!("error unknown request {line:?} (now, step CYCLES, next, run, stats)"),
    }
    dma.settle(&mut st);
    dma.stepped();
    let next = match st.model.next_event() {
        Some(t) => t.to_string(),
        None => "idle".to_string(),
    };
    format!("ok now={} next={next}", st.model.now())
}
