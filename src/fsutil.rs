//! Private local files: the one atomic writer every local file goes through (the keystore and
//! its marker, the node key, `node.json`, chain exports) and private directories.
//!
//! A file is written to a fresh random name in its own directory, created with `O_EXCL` and
//! mode 0600 (so nothing planted at a temporary name is followed or reused), fsynced, moved
//! over the target with a rename (or, for [`write_new`], a link that never replaces anything),
//! and the directory is fsynced. A reader sees the old file or the new one, never a part.
//! Modes are set explicitly, so the umask cannot widen them.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// Mode of every private file.
pub const FILE_MODE: u32 = 0o600;
/// Mode of a data dir this program creates.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` (and missing parents) if it does not exist; a directory created here gets
/// mode 0700 whatever the umask. An existing directory is left as it is.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

/// Sets an existing file's mode to exactly 0600.
pub fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(FILE_MODE))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The permission bits of `path` when other users may read or write it (any group or other
/// bit set); `None` when it is private.
pub fn exposed_mode(path: &Path) -> io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)?.permissions().mode() & 0o777;
        Ok((mode & 0o077 != 0).then_some(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}

/// Replaces (or creates) `path` with `contents`, atomically and durably, mode 0600.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(contents)?;
    f.commit()
}

/// Creates `path` with `contents`, atomically and durably, mode 0600, never replacing an
/// existing file: returns `false` (and changes nothing) when `path` already exists.
pub fn write_new(path: &Path, contents: &[u8]) -> io::Result<bool> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(contents)?;
    f.commit_new()
}

/// A file being written: a private temporary file next to its target, moved into place by
/// [`AtomicFile::commit`]. Dropped without a commit, it is removed and the target is untouched.
pub struct AtomicFile {
    target: PathBuf,
    dir: PathBuf,
    out: BufWriter<NamedTempFile>,
}

impl AtomicFile {
    /// Starts writing `path`.
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        let name = path.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} does not name a file", path.display()),
            )
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(name);
        prefix.push(".");
        // Random name, O_EXCL, mode 0600 (tempfile's defaults, stated here to keep them).
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .rand_bytes(12)
            .tempfile_in(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The umask can only clear bits; make the mode exactly 0600.
            tmp.as_file()
                .set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
        }
        Ok(AtomicFile {
            target: path.to_path_buf(),
            dir,
            out: BufWriter::new(tmp),
        })
    }

    /// Flushes and fsyncs the temporary file.
    fn finish(self) -> io::Result<(NamedTempFile, PathBuf, PathBuf)> {
        let AtomicFile { target, dir, out } = self;
        let tmp = out.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        Ok((tmp, target, dir))
    }

    /// Moves the file over its target (replacing it) and makes that durable.
    pub fn commit(self) -> io::Result<()> {
        let (tmp, target, dir) = self.finish()?;
        tmp.persist(&target).map_err(|e| e.error)?;
        sync_dir(&dir)
    }

    /// Moves the file to its target only if nothing is there; `false` when something was.
    pub fn commit_new(self) -> io::Result<bool> {
        let (tmp, target, dir) = self.finish()?;
        match tmp.persist_noclobber(&target) {
            Ok(_) => {}
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e.error),
        }
        sync_dir(&dir)?;
        Ok(true)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn replace_and_new() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert!(!write_new(&p, b"three").unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let q = d.path().join("g");
        assert!(write_new(&q, b"x").unwrap());
        assert_eq!(fs::read(&q).unwrap(), b"x");
        assert_eq!(entries(d.path()), vec!["f.json", "g"]);
        #[cfg(unix)]
        {
            assert_eq!(mode(&p), 0o600);
            assert_eq!(mode(&q), 0o600);
        }
    }

    #[test]
    fn dropped_without_commit_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        fs::write(&p, b"old").unwrap();
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"new").unwrap();
        drop(f);
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(entries(d.path()), vec!["f"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_0644_target_becomes_0600_and_dirs_are_0700() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        fs::write(&p, b"old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(exposed_mode(&p).unwrap(), Some(0o644));
        write_atomic(&p, b"new").unwrap();
        assert_eq!(mode(&p), 0o600);
        assert_eq!(exposed_mode(&p).unwrap(), None);
        let sub = d.path().join("a/b");
        create_private_dir(&sub).unwrap();
        assert_eq!(mode(&sub), 0o700);
    }
}
