//! Where a campaign writes (`--junit FILE`, `--out DIR`): the run
//! directory, and the check that both can be written before any scenario
//! runs.

use std::path::{Path, PathBuf};

use crate::{CampaignArgs, Error};

/// Where the run's files go, and whether this run created the directory.
pub(crate) fn run_dir(args: &CampaignArgs) -> PathBuf {
    if let Some(dir) = &args.out {
        return dir.clone();
    }
    if let Some(junit) = &args.junit {
        let mut name = junit.file_name().unwrap_or_default().to_os_string();
        name.push(".files");
        return junit.with_file_name(name);
    }
    std::env::temp_dir().join(format!("dmalab-campaign-{}", std::process::id()))
}

/// `--junit FILE` and `--out DIR` can be written, checked before any
/// scenario runs: nothing is lost to a bad path at the end, and no parent
/// directory is created silently (only `--out` itself, or the `.files`
/// directory beside the JUnit file, is made).
pub(crate) fn check(args: &CampaignArgs) -> Result<(), Error> {
    let bad = |path: &Path, why: String| Error::BadOutput {
        path: path.to_path_buf(),
        why,
    };
    if let Some(junit) = &args.junit {
        if let Some(why) = dmalab_protocol::output_path_problem(junit) {
            return Err(bad(junit, why));
        }
    }
    if let Some(dir) = &args.out {
        if dir.exists() && !dir.is_dir() {
            return Err(bad(dir, "is not a directory".into()));
        }
        if !dir.exists() {
            // The directory itself may be made; its parent must be there.
            if let Some(why) = dmalab_protocol::output_path_problem(dir) {
                return Err(bad(dir, why));
            }
        }
    }
    Ok(())
}
