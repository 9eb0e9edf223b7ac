//! `dmalab campaign merge OUT SHARD…`: the JUnit files of a sharded
//! campaign's shards (`--partition M/N --junit shard-M.xml`, one per CI
//! job) merged into one report, as if one campaign had run them all.
//!
//! Every `<testcase>` element of every shard is copied verbatim (its
//! failure text, replay command and console tail with it) into one
//! `<testsuite name="dmalab-campaign">`; the counts are recounted and the
//! time is the sum of the shards' (CPU time spent, not wall time: shards
//! run side by side). A scenario that appears in two shards means the
//! shards were not one partition (different `--random`/`--seed`, or two
//! jobs given the same index): that is an error, not a merge. The merged
//! report's summary line is the campaign's, `campaign: N passed, M
//! failed`, and the exit status too: 0 iff every scenario passed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use dmalab_protocol::status;

/// `dmalab campaign merge OUT SHARD…` (docs/ci-sharding.md).
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// The merged JUnit file to write.
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
    /// The shards' JUnit files (`dmalab campaign --junit`).
    #[arg(value_name = "SHARD", required = true)]
    pub shards: Vec<PathBuf>,
}

/// Why shards could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("cannot read '{}'", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("'{}' is not a dmalab campaign JUnit file: {what}", path.display())]
    Format { path: PathBuf, what: String },
    #[error("scenario '{name}' is in two shards, '{}' and '{}' (were the shards run with the same scenarios, --random and --seed, and distinct --partition M?)", first.display(), second.display())]
    Overlap {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("cannot write '{}'", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl MergeError {
    /// 64 for bad input, 70 when the merged file cannot be written.
    pub fn status(&self) -> u8 {
        match self {
            MergeError::Write { .. } => status::INTERNAL,
            _ => status::USAGE,
        }
    }
}

/// One `<testcase>` as found in a shard.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// The `name` attribute, as written (escaped).
    pub name: String,
    pub seconds: f64,
    pub failed: bool,
    pub flaky: bool,
    /// The whole element, verbatim.
    pub xml: String,
}

/// The value of attribute `key` in a start tag's text.
fn attribute<'a>(tag: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!(" {key}=\"");
    let start = tag.find(&needle)? + needle.len();
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

/// Every `<testcase>` element of a JUnit document, in order.
pub fn test_cases(xml: &str) -> Result<Vec<TestCase>, String> {
    if !xml.contains("<testsuite") {
        return Err("no <testsuite> element".into());
    }
    let mut cases = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find("<testcase") {
        rest = &rest[at..];
        let tag_end = rest
            .find('>')
            .ok_or("a <testcase> start tag is not closed")?;
        let tag = &rest[..tag_end];
        let end = if tag.ends_with('/') {
            tag_end + 1
        } else {
            rest.find("</testcase>")
                .ok_or("a <testcase> element has no </testcase>")?
                + "</testcase>".len()
        };
        let element = &rest[..end];
        let name = attribute(tag, "name").ok_or("a <testcase> has no name")?;
        let seconds = match attribute(tag, "time") {
            Some(t) => t
                .parse::<f64>()
                .map_err(|_| format!("<testcase name=\"{name}\"> has time=\"{t}\""))?,
            None => 0.0,
        };
        let body = &element[tag_end..];
        cases.push(TestCase {
            name: name.to_string(),
            seconds,
            failed: body.contains("<failure") || body.contains("<error"),
            flaky: body.contains("<flakyFailure"),
            xml: element.to_string(),
        });
        rest = &rest[end..];
    }
    Ok(cases)
}

/// The merged document of `cases` (in the order given).
pub fn render(cases: &[TestCase]) -> String {
    let failures = cases.iter().filter(|c| c.failed).count();
    let seconds: f64 = cases.iter().map(|c| c.seconds).sum();
    let mut out = crate::junit::header(cases.len(), failures, seconds);
    for case in cases {
        let _ = writeln!(out, "    {}", case.xml);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The shards' test cases, checked for overlap, sorted by name.
pub fn merge_files(shards: &[PathBuf]) -> Result<Vec<TestCase>, MergeError> {
    let mut by_name: BTreeMap<String, (TestCase, &Path)> = BTreeMap::new();
    for path in shards {
        let text = std::fs::read_to_string(path).map_err(|source| MergeError::Read {
            path: path.clone(),
            source,
        })?;
        let cases = test_cases(&text).map_err(|what| MergeError::Format {
            path: path.clone(),
            what,
        })?;
        for case in cases {
            if let Some((_, first)) = by_name.get(&case.name) {
                return Err(MergeError::Overlap {
                    name: case.name,
                    first: first.to_path_buf(),
                    second: path.clone(),
                });
            }
            by_name.insert(case.name.clone(), (case, path));
        }
    }
    Ok(by_name.into_values().map(|(case, _)| case).collect())
}

/// `dmalab campaign merge`: the exit status.
pub fn run(args: &MergeArgs) -> u8 {
    let cases = match merge_files(&args.shards) {
        Ok(cases) => cases,
        Err(e) => {
            eprintln!("dmalab: {}", dmalab_protocol::one_line(&e));
            return e.status();
        }
    };
    if let Err(source) = std::fs::write(&args.out, render(&cases)) {
        let e = MergeError::Write {
            path: args.out.clone(),
            source,
        };
        eprintln!("dmalab: {}", dmalab_protocol::one_line(&e));
        return e.status();
    }
    let failed: Vec<&TestCase> = cases.iter().filter(|c| c.failed).collect();
    let flaky = cases.iter().filter(|c| c.flaky).count();
    for case in &failed {
        println!("FAILED {}", case.name);
    }
    println!(
        "campaign: merged {} shards into '{}' ({flaky} flaky)",
        args.shards.len(),
        args.out.display()
    );
    println!(
        "campaign: {} passed, {} failed",
        cases.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        0
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::{self, Case};

    fn case(name: &str, failures: &[&str], flaky: &[&str]) -> Case {
        Case {
            name: name.into(),
            seconds: 0.5,
            failures: failures.iter().map(|s| s.to_string()).collect(),
            replay: format!("dmalab campaign --replay {name}"),
            run: String::new(),
            console_tail: "VERIFIER: <x> & y".into(),
            evidence: vec!["guest:".into()],
            flaky: flaky.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn shards_merge_into_one_suite_with_elements_verbatim() {
        let a = junit::render(&[case("b", &[], &[]), case("d", &["lost = 1"], &[])], 1.0);
        let b = junit::render(&[case("a", &[], &["x"]), case("c", &[], &[])], 1.0);
        let mut cases = test_cases(&a).unwrap();
        cases.extend(test_cases(&b).unwrap());
        assert_eq!(cases.len(), 4);
        assert!(cases[1].failed && !cases[1].flaky);
        assert!(cases[2].flaky && !cases[2].failed);
        assert_eq!(cases[0].seconds, 0.5);
        let merged = render(&cases);
        assert!(
            merged.contains("tests=\"4\" failures=\"1\" errors=\"0\" time=\"2.000\""),
            "{merged}"
        );
        // Every element of both shards is in the merged file as it was.
        for c in test_cases(&a)
            .unwrap()
            .iter()
            .chain(&test_cases(&b).unwrap())
        {
            assert!(merged.contains(&c.xml), "{}", c.xml);
        }
        assert!(merged.contains("VERIFIER: &lt;x&gt; &amp; y"));
        // The merged file merges again to itself.
        assert_eq!(test_cases(&merged).unwrap(), cases);
    }

    #[test]
    fn overlapping_or_foreign_shards_are_refused() {
        let dir = std::env::temp_dir().join(format!("dmalab-merge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let one = dir.join("1.xml");
        let two = dir.join("2.xml");
        let bad = dir.join("bad.xml");
        std::fs::write(&one, junit::render(&[case("a", &[], &[])], 1.0)).unwrap();
        std::fs::write(&two, junit::render(&[case("a", &[], &[])], 1.0)).unwrap();
        std::fs::write(&bad, "<html/>").unwrap();
        let e = merge_files(&[one.clone(), two]).unwrap_err();
        assert!(matches!(e, MergeError::Overlap { .. }), "{e}");
        assert_eq!(e.status(), status::USAGE);
        let e = merge_files(&[one.clone(), bad]).unwrap_err();
        assert!(matches!(e, MergeError::Format { .. }), "{e}");
        let e = merge_files(&[one, dir.join("missing.xml")]).unwrap_err();
        assert!(matches!(e, MergeError::Read { .. }), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
