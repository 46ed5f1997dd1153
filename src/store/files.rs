//! Files the store keeps beside sled's, replaced whole.
use std::fs::File;
use std::io::Write as _;
use std::path::Path;

/// Replaces the file at `path` with `parts`, one after another, durably: written to `temp`, fsynced, renamed over
/// `path`, then the directory fsynced. A crash leaves the old file or the new one whole, never a mix, and once this
/// returns the new one survives a crash.
pub fn replace_file(path: &Path, temp: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let mut f = File::create(temp)?;
    for part in parts {
        f.write_all(part)?;
    }
    f.sync_all()?;
    std::fs::rename(temp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_replaced_file_holds_the_new_parts_and_no_temp_is_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, temp) = (dir.path().join("f"), dir.path().join("f.tmp"));
        std::fs::write(&path, b"old").expect("old");
        super::replace_file(&path, &temp, &[b"ne", b"w"]).expect("replace");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        assert!(!temp.exists());
    }
}
