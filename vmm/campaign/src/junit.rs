//! `--junit FILE`: the campaign's results as JUnit XML, the format CI
//! systems (GitLab, Jenkins, GitHub test-report actions) read.
//!
//! One `<testsuite name="dmalab-campaign">`, one `<testcase>` per
//! scenario with its seconds; a failed scenario has a `<failure>` whose
//! message is its first violation and whose text is every violation and
//! the replay command, and a `<system-out>` with the end of its console.
//! A scenario that passed on a retry has a `<flakyFailure>` (Maven
//! Surefire's element for a test that passed on a rerun).

use std::fmt::Write as _;

/// One scenario's line in the report.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub seconds: f64,
    /// Violations; empty if it passed.
    pub failures: Vec<String>,
    /// `dmalab campaign … --replay NAME`: reruns and judges it.
    pub replay: String,
    /// `dmalab run …`: the exact child run.
    pub run: String,
    /// The end of the guest console, for failures.
    pub console_tail: String,
    /// What points at the bug: guest lines, fault-log entries, where a
    /// timed-out guest was (`failure.rs`); for failures.
    pub evidence: Vec<String>,
    /// A flaky pass: the failed attempt's findings.
    pub flaky: Vec<String>,
}

/// XML text with `& < > " '` escaped and control characters dropped
/// (XML 1.0 has no way to write most of them).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

/// The document's opening: the XML declaration, `<testsuites>` and the
/// one `<testsuite>` (`render` here and the merged document of `merge.rs`).
pub(crate) fn header(tests: usize, failures: usize, seconds: f64) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"dmalab\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{seconds:.3}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"dmalab-campaign\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{seconds:.3}\">"
    );
    out
}

/// The JUnit document.
pub fn render(cases: &[Case], seconds: f64) -> String {
    let failures = cases.iter().filter(|c| !c.failures.is_empty()).count();
    let mut out = header(cases.len(), failures, seconds);
    for case in cases {
        let _ = write!(
            out,
            "    <testcase classname=\"dmalab-campaign\" name=\"{}\" time=\"{:.3}\"",
            escape(&case.name),
            case.seconds
        );
        if case.failures.is_empty() && case.flaky.is_empty() {
            out.push_str("/>\n");
            continue;
        }
        if case.failures.is_empty() {
            // Surefire's element for a test that passed on a rerun.
            let _ = writeln!(
                out,
                ">\n      <flakyFailure message=\"{}\" type=\"oracle\">{}\nreplay: {}</flakyFailure>\n    </testcase>",
                escape(&case.flaky[0]),
                escape(&case.flaky.join("\n")),
                escape(&case.replay)
            );
            continue;
        }
        out.push_str(">\n");
        let _ = writeln!(
            out,
            "      <failure message=\"{}\" type=\"oracle\">{}\n{}replay: {}</failure>",
            escape(&case.failures[0]),
            escape(&case.failures.join("\n")),
            escape(
                &case
                    .evidence
                    .iter()
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
            ),
            escape(&case.replay)
        );
        let _ = writeln!(
            out,
            "      <system-out>{}</system-out>",
            escape(&case.console_tail)
        );
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_and_failures_render_with_escapes() {
        let cases = [
            Case {
                name: "lost-interrupt".into(),
                seconds: 0.25,
                failures: vec![],
                replay: String::new(),
                console_tail: String::new(),
                evidence: Vec::new(),
                run: String::new(),
                flaky: vec![],
            },
            Case {
                name: "random-1-2".into(),
                seconds: 1.5,
                failures: vec!["lost = 1 <0>".into(), "exit 1 & more".into()],
                replay: "dmalab run --cmdline 'irps=8'".into(),
                console_tail: "EXCEPTION\u{1} x".into(),
                evidence: vec!["guest:".into(), "  VERIFIER: x".into()],
                run: String::new(),
                flaky: vec![],
            },
            Case {
                name: "random-1-3".into(),
                seconds: 0.5,
                failures: vec![],
                replay: "dmalab run".into(),
                console_tail: String::new(),
                evidence: Vec::new(),
                run: String::new(),
                flaky: vec!["violations = 1".into()],
            },
        ];
        let xml = render(&cases, 1.75);
        assert!(xml.contains("tests=\"3\" failures=\"1\""), "{xml}");
        assert!(xml.contains("<flakyFailure message=\"violations = 1\" type=\"oracle\">violations = 1\nreplay: dmalab run</flakyFailure>"), "{xml}");
        assert!(
            xml.contains(
                "<testcase classname=\"dmalab-campaign\" name=\"lost-interrupt\" time=\"0.250\"/>"
            ),
            "{xml}"
        );
        assert!(xml.contains("message=\"lost = 1 &lt;0&gt;\""), "{xml}");
        assert!(
            xml.contains(
                "exit 1 &amp; more\nguest:\n  VERIFIER: x\nreplay: dmalab run --cmdline &apos;irps=8&apos;</failure>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<system-out>EXCEPTION x</system-out>"),
            "{xml}"
        );
        assert_eq!(xml.matches("<testcase").count(), 3);
        assert_eq!(xml.matches("</testcase>").count(), 2);
    }
}
