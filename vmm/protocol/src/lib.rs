//! What dmalab's parts agree on, stated once: the VMM (`vmm`), the
//! campaign (`dmalab-campaign`), the integration tests and a control-socket
//! client all use these definitions instead of repeating strings and
//! numbers.
//!
//! - [`status`]: the exit statuses of `dmalab run` and `dmalab campaign`;
//! - [`report`]: the run report (`--report`), written by the VMM and read
//!   back by the campaign's oracle and the tests;
//! - [`result`]: the guest's `DMALAB-RESULT {json}` line and the names of
//!   its fields (checked against the guest's C source by a test);
//! - [`linux`]: the Linux guest harness's result line, typed, and the
//!   names of its fields (checked against its C source the same way);
//! - [`control`]: the control socket's requests and replies;
//! - [`symbols`]: a guest ELF's function symbols, to name a RIP as
//!   `function+offset` (the VMM's exception and register-dump lines, the
//!   campaign's failure blocks);
//! - [`scenario_name`]: what a guest scenario name may be;
//! - [`kvm_skip`]: the one rule for tests that need /dev/kvm;
//! - [`one_line`]: how `dmalab` prints an error with its causes.
//!
//! The fault kinds' names are defined once in `device-model`
//! (`FaultEffect::KIND_NAMES`); this crate does not repeat them.

pub mod control;
pub mod kvm_skip;
pub mod linux;
pub mod report;
pub mod result;
pub mod status;
pub mod symbols;

/// A guest scenario name: one command-line word of letters, digits, `-`,
/// `_`, `.` (the guest reads it from `scenario=NAME`).
pub fn scenario_name(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(text.to_string())
    } else {
        Err(format!(
            "'{text}' is not a scenario name (letters, digits, '-', '_', '.')"
        ))
    }
}

/// `error: cause: cause…` on one line. A cause printed on several lines
/// (toml's parse errors show the offending line with a caret under it)
/// keeps its text lines joined with ": " and loses the picture.
pub fn one_line(error: &dyn std::error::Error) -> String {
    let mut line = flatten(&error.to_string());
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&flatten(&cause.to_string()));
        source = cause.source();
    }
    line
}

fn flatten(text: &str) -> String {
    let picture = |l: &str| {
        let t = l.trim_start_matches(|c: char| c.is_ascii_digit()).trim();
        t.is_empty() || t.starts_with('|') || t.starts_with('^')
    };
    text.lines()
        .filter(|l| !picture(l))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_are_one_plain_word() {
        assert_eq!(scenario_name("dma-smoke").as_deref(), Ok("dma-smoke"));
        assert_eq!(scenario_name("a_b.1").as_deref(), Ok("a_b.1"));
        for bad in ["", "a b", "x=y", "é"] {
            assert!(scenario_name(bad).is_err(), "{bad:?}");
        }
    }
}

/// Why `path` cannot be an output file of a run (`--trace`, `--report`,
/// `--junit`, `--out` files), or `None`: checked before anything runs, so
/// a bad path costs no run. A directory is refused, and so is a parent
/// directory that does not exist (nothing creates directories silently)
/// or that cannot be written.
pub fn output_path_problem(path: &std::path::Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    if path.is_dir() {
        return Some("is a directory".into());
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if !parent.is_dir() {
        return Some(format!(
            "directory '{}' does not exist (create it first)",
            parent.display()
        ));
    }
    let writable = |p: &std::path::Path| {
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: `c` is a valid NUL-terminated path; access only reads it.
        unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
    };
    if !writable(parent) {
        return Some(format!("directory '{}' is not writable", parent.display()));
    }
    if path.exists() && !writable(path) {
        return Some("is not writable".into());
    }
    None
}

#[cfg(test)]
mod output_path_tests {
    use super::output_path_problem;
    use std::path::Path;

    #[test]
    fn directories_and_missing_parents_are_refused() {
        let tmp = std::env::temp_dir();
        assert!(output_path_problem(&tmp).is_some());
        assert!(output_path_problem(&tmp.join("no-such-dir-dmalab/x.json")).is_some());
        assert_eq!(output_path_problem(&tmp.join("dmalab-new-file.json")), None);
        assert_eq!(output_path_problem(Path::new("relative.json")), None);
    }
}
