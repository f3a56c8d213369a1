//! Tables in and out: NumPy `.npy`/`.npz` and model weights, GloVe and word2vec word
//! vectors, a [`Vocabulary`](vocabulary::Vocabulary), and the Embedding Projector export.
//!
//! # Reading
//! Readers check every header against the size of the data actually present before they
//! allocate, so a corrupted or hostile file is an [`Error`], never a huge
//! allocation or a panic.
//!
//! # Saving
//! Every writer of this module (and `save_weights`, which uses
//! [`write_npz`](npy::write_npz)) saves the same way, and guarantees the following.
//!
//! - **Atomic replacement.** The new contents go to a temporary file in the target's folder,
//!   named `.{name}.ndkeras-{16 random hex digits}.tmp`. It is created exclusively (an
//!   existing file or a symlink at that name is never opened, so nothing planted there can
//!   redirect the save) with a name drawn from the operating system's random source, so it
//!   cannot be guessed in advance. It is flushed to disk, then renamed over the target. A
//!   reader of the target sees the complete old file or the complete new one, never a mix.
//! - **Durability.** When a save returns `Ok`, both the contents and the rename have been
//!   flushed to disk (`fsync` of the file, then of its folder on Unix), so they survive a
//!   power loss on file systems that honour `fsync`.
//! - **Crashes.** A save that fails, or is killed at any point, leaves the target as it was
//!   (or, if it was killed after the rename, complete with the new contents). The one error
//!   that comes after the rename is a failure to flush the folder, and its message says that
//!   the file was replaced. A failed save removes its temporary file; a killed one cannot, so the next save to the same path
//!   removes it. The rule that makes this safe: a save holds an exclusive advisory lock
//!   (`flock`) on its temporary file until the file is renamed, and the operating system
//!   releases the locks of a process that dies. A leftover is removed only when its lock can
//!   be taken, so the temporary file of a save still running (in this process or another) is
//!   never removed. On file systems without locks, leftovers are kept. On a network file
//!   system that only locks within one machine (NFS mounted with `local_lock`), a save on
//!   another machine can have its temporary file removed: that save then fails with an
//!   error, and the target is still never left incomplete.
//! - **Concurrency.** Saves to one path from several threads or processes each write their
//!   own temporary file; the last rename wins, and the path ends up holding one complete
//!   file written by one of them.
//! - **Symlinks.** When the target path is itself a symlink, the save replaces the link with
//!   a regular file, as `rename` (and Python's `os.replace`) does; the file the link pointed
//!   to is not changed. A save never writes outside the folder it is given. To update the
//!   file behind a link, save to [`std::fs::canonicalize`] of the path.
//! - **Permissions.** The new file gets the permissions of a newly created file
//!   (`0o666 & !umask` on Unix), not those of the file it replaces, and other hard links to
//!   the old file keep the old contents. Saving needs write permission on the folder.
//! - **Errors.** An error names the path given by the user (never the temporary file) and
//!   the cause the operating system gave: the target is a directory, the folder is missing
//!   (`No such file or directory`) or not writable (`Permission denied`), the disk is full.
//!
//! Each save lists the target's folder once to find leftovers, which costs time in a folder
//! holding millions of files.

pub mod glove;
pub mod npy;
pub mod projector;
#[cfg(feature = "safetensors")]
pub mod safetensors;
pub mod vocabulary;
pub mod word2vec;
pub mod word_vectors;

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Between the target's name and the random part of a temporary file's name.
const TEMPORARY_TAG: &str = ".ndkeras-";
/// The end of every temporary file's name.
const TEMPORARY_SUFFIX: &str = ".tmp";
/// How many hex digits of randomness a temporary name carries (64 bits).
const RANDOM_DIGITS: usize = 16;
/// The most bytes of the target's name kept in a temporary name, so that the temporary name
/// stays under the 255-byte limit of common file systems.
const NAME_BYTES_KEPT: usize = 200;
/// How many fresh names to try before giving up. A collision of 64 random bits means someone
/// else is creating names in the folder on purpose; a few retries are plenty.
const CREATE_ATTEMPTS: usize = 16;

/// Writes a file atomically, as the [module docs](self#saving) describe: `write` fills a
/// new temporary file beside `path`, which is flushed to disk, renamed over `path`, and the
/// folder is flushed.
///
/// Errors name `path`. An error returned by `write` is returned unchanged. On any error the
/// temporary file is removed, and `path` is untouched unless the error says that the file
/// was replaced (the folder could not be flushed after the rename).
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    stage(path, write)?.commit()
}

/// The first half of [`write_atomically`]: the new contents written to a temporary file
/// beside `path` and flushed to disk, `path` not touched yet. [`Staged::commit`] renames it
/// over `path`; dropping it removes the temporary file. Saves that replace several files
/// together stage all of them before committing any, so that every failure but a rename
/// leaves all of them as they were.
pub(crate) fn stage(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<Staged<'_>> {
    let target = Target::of(path)?;
    target.remove_leftovers();
    let (file, temporary) = target.create_temporary()?;
    let mut writer = BufWriter::new(file);
    write(&mut writer)?;
    let file = writer
        .into_inner()
        .map_err(|e| Error::io(path, "cannot write", e.error()))?;
    file.sync_all()
        .map_err(|e| Error::io(path, "cannot flush to disk", &e))?;
    Ok(Staged {
        target,
        file,
        temporary,
    })
}

/// Whether two save paths name one entry of one folder (`codes.npy` and `./codes.npy`,
/// `d/x` and `d/sub/../x`, a folder reached through a symlink): saving to both would leave
/// only the second file. The folders are resolved; the names are compared as they are (a
/// save replaces the entry at the name, even a symlink, so two names are two targets).
pub(crate) fn same_target(a: &Path, b: &Path) -> bool {
    fn resolved(path: &Path) -> Option<PathBuf> {
        let name = path.file_name()?;
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        Some(std::fs::canonicalize(folder).ok()?.join(name))
    }
    a == b || matches!((resolved(a), resolved(b)), (Some(x), Some(y)) if x == y)
}

/// A file written and flushed by [`stage`], waiting to replace its target.
pub(crate) struct Staged<'a> {
    target: Target<'a>,
    /// Open (and locked) until the rename, so no clean-up removes it.
    file: File,
    temporary: Temporary,
}

impl Staged<'_> {
    /// Renames the staged file over its target and flushes the folder.
    pub(crate) fn commit(self) -> Result<()> {
        let path = self.target.path;
        std::fs::rename(&self.temporary.path, path)
            .map_err(|e| Error::io(path, "cannot replace the file", &e))?;
        self.temporary.keep();
        sync_folder(&self.target.folder, path)?;
        // Only now may the lock go: until the rename, it tells other saves this file is alive.
        drop(self.file);
        Ok(())
    }
}

/// The folder and name of a save's target.
struct Target<'a> {
    path: &'a Path,
    folder: PathBuf,
    /// What every temporary file of this target starts with: `.{name}.ndkeras-`.
    prefix: String,
}

impl<'a> Target<'a> {
    fn of(path: &'a Path) -> Result<Self> {
        let Some(name) = path.file_name() else {
            return Err(Error::Io {
                path: path.display().to_string(),
                message: "cannot save: the path names no file (it ends in `..`, `.` or a root), expected the path of a file".into(),
            });
        };
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            return Err(Error::Io {
                path: path.display().to_string(),
                message: "cannot save: the path is a directory (Is a directory), expected the path of a file".into(),
            });
        }
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut name = name.to_string_lossy().into_owned();
        if name.len() > NAME_BYTES_KEPT {
            let mut end = NAME_BYTES_KEPT;
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            name.truncate(end);
        }
        Ok(Target {
            path,
            folder,
            prefix: format!(".{name}{TEMPORARY_TAG}"),
        })
    }

    /// Creates a new temporary file with an unpredictable name and locks it.
    fn create_temporary(&self) -> Result<(File, Temporary)> {
        for _ in 0..CREATE_ATTEMPTS {
            let path = self.folder.join(format!(
                "{}{:0width$x}{TEMPORARY_SUFFIX}",
                self.prefix,
                rand::random::<u64>(),
                width = RANDOM_DIGITS
            ));
            // `create_new` is O_CREAT | O_EXCL: it refuses any existing entry, a symlink
            // (even a dangling one) included. The mode is that of `File::create`.
            let file = match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(Error::io(
                        self.path,
                        &format!(
                            "cannot create a file in the folder \"{}\"",
                            self.folder.display()
                        ),
                        &e,
                    ));
                }
            };
            let temporary = Temporary { path, keep: false };
            match file.try_lock() {
                Ok(()) => {}
                // Another save's clean-up opened the file in the instant between its creation
                // and this lock, took the lock, and removes it: take another name.
                Err(TryLockError::WouldBlock) => {
                    temporary.keep();
                    continue;
                }
                // No locks on this file system: clean-ups cannot lock the file either, so
                // they leave it alone.
                Err(TryLockError::Error(_)) => {}
            }
            // A clean-up may have locked, removed and unlocked the file before this lock was
            // taken: then the name no longer leads to this file.
            if !leads_to(&temporary.path, &file) {
                temporary.keep();
                continue;
            }
            return Ok((file, temporary));
        }
        Err(Error::Io {
            path: self.path.display().to_string(),
            message: format!(
                "cannot create a temporary file in the folder \"{}\": {CREATE_ATTEMPTS} random names were all taken",
                self.folder.display()
            ),
        })
    }

    /// Removes the temporary files of this target that no running save holds: those left
    /// by a process that was killed. Best effort: anything unexpected is left alone.
    fn remove_leftovers(&self) {
        let Ok(entries) = std::fs::read_dir(&self.folder) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(random) = name
                .to_str()
                .and_then(|n| n.strip_prefix(&self.prefix))
                .and_then(|n| n.strip_suffix(TEMPORARY_SUFFIX))
            else {
                continue;
            };
            if random.len() != RANDOM_DIGITS || !random.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            // The entry's own type: a symlink is not followed, and is left alone.
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let path = entry.path();
            let Ok(file) = open_to_lock(&path) else {
                continue;
            };
            // Taking the lock proves that no save holds this file any more. The lock is kept
            // until the file is removed, so the file cannot come back to life in between.
            if file.try_lock().is_ok() && leads_to(&path, &file) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// A temporary file that is removed when dropped, unless kept: on an error, and on a
/// panic inside a writer.
struct Temporary {
    path: PathBuf,
    keep: bool,
}

impl Temporary {
    /// Leaves the file where it is: renamed, or left for the clean-up that holds it.
    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Opens a possible leftover for locking only: never follows a symlink, and never blocks
/// on a FIFO put there in place of the regular file that was listed.
fn open_to_lock(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    options.open(path)
}

/// Whether `path` is still a name of the open `file` (on Unix, the same inode; elsewhere,
/// that something is still there).
fn leads_to(path: &Path, file: &File) -> bool {
    let Ok(at_path) = std::fs::symlink_metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        file.metadata()
            .is_ok_and(|open| open.dev() == at_path.dev() && open.ino() == at_path.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        at_path.is_file()
    }
}

/// Flushes the folder's entry list to disk, so that the rename survives a power loss.
/// A folder that cannot be opened (writable but not readable) or whose file system cannot
/// flush folders is skipped; a failed flush is an error.
fn sync_folder(folder: &Path, path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let Ok(folder) = File::open(folder) else {
            return Ok(());
        };
        match folder.sync_all() {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported) => {
                Ok(())
            }
            Err(e) => Err(Error::io(
                path,
                "the file was replaced, but its folder could not be flushed to disk",
                &e,
            )),
        }
    }
    #[cfg(not(unix))]
    {
        // Windows cannot open a folder as a file; its rename is flushed with the file system.
        let _ = (folder, path);
        Ok(())
    }
}

/// The first `chars` characters of `text`, with `...` when it is longer: what an error message
/// quotes of a header or a token.
pub(crate) fn excerpt(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// Writes `bytes`, mapping an error to [`Error::Io`] naming `path`: writers pass the user's
/// path (never the temporary file's), so a full disk reads `{path}: cannot write: No space
/// left on device`.
pub(crate) fn write_all(writer: &mut impl Write, bytes: &[u8], path: &Path) -> Result<()> {
    writer
        .write_all(bytes)
        .map_err(|e| Error::io(path, "cannot write", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder for one test's files.
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ndkeras-io-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_writer_error_is_returned_unchanged_and_leaves_nothing() {
        let dir = scratch("writer-error");
        let target = dir.join("t.bin");
        std::fs::write(&target, b"old").unwrap();
        let refused = Error::invalid_argument("test", "value", "NaN", "a finite value");
        let got = write_atomically(&target, |w| {
            w.write_all(b"half of the new").unwrap();
            Err(refused.clone())
        })
        .unwrap_err();
        assert_eq!(got, refused);
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert_eq!(names_in(&dir), ["t.bin"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn temporary_names_are_fresh_and_recognisable() {
        let dir = scratch("names");
        let path = dir.join("t.bin");
        let target = Target::of(&path).unwrap();
        let (_a, first) = target.create_temporary().unwrap();
        let (_b, second) = target.create_temporary().unwrap();
        assert_ne!(first.path, second.path);
        for temporary in [&first, &second] {
            let name = temporary.path.file_name().unwrap().to_str().unwrap();
            let random = name
                .strip_prefix(".t.bin.ndkeras-")
                .and_then(|n| n.strip_suffix(".tmp"))
                .unwrap();
            assert_eq!(random.len(), 16, "{name}");
        }
        drop((first, second));
        assert!(names_in(&dir).is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn only_unlocked_leftovers_of_the_same_target_are_removed() {
        let dir = scratch("leftovers");
        let path = dir.join("t.bin");
        let target = Target::of(&path).unwrap();
        // A save in progress: created and locked by `create_temporary`.
        let (_live, live) = target.create_temporary().unwrap();
        let live_name = live.path.file_name().unwrap().to_str().unwrap().to_owned();
        live.keep();
        // Left by a killed save: nobody holds it.
        let dead = dir.join(".t.bin.ndkeras-00000000000000ff.tmp");
        std::fs::write(&dead, b"partial").unwrap();
        // Not ours: another target's leftover, a malformed name, a symlink.
        let other = dir.join(".u.bin.ndkeras-00000000000000ff.tmp");
        std::fs::write(&other, b"x").unwrap();
        let malformed = dir.join(".t.bin.ndkeras-zz.tmp");
        std::fs::write(&malformed, b"x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&other, dir.join(".t.bin.ndkeras-0000000000000001.tmp"))
            .unwrap();

        target.remove_leftovers();
        let names = names_in(&dir);
        assert!(names.contains(&live_name), "{names:?}");
        assert!(!dead.exists(), "{names:?}");
        assert!(other.exists() && malformed.exists(), "{names:?}");
        #[cfg(unix)]
        assert!(names.contains(&".t.bin.ndkeras-0000000000000001.tmp".to_owned()));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_saved_file_has_the_mode_of_a_newly_created_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("mode");
        let created = dir.join("created");
        File::create(&created).unwrap();
        let saved = dir.join("saved");
        std::fs::write(&saved, b"old").unwrap();
        std::fs::set_permissions(&saved, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomically(&saved, |w| write_all(w, b"new", &saved)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&saved), mode(&created));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// What `create_temporary` relies on: `create_new` neither opens nor follows anything
    /// at the name, a dangling symlink included.
    #[cfg(unix)]
    #[test]
    fn create_new_refuses_a_dangling_symlink() {
        let dir = scratch("dangling");
        let pointed = dir.join("pointed");
        let link = dir.join("link");
        std::os::unix::fs::symlink(&pointed, &link).unwrap();
        let err = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&link)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert!(!pointed.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        for path in ["", "..", "/"] {
            let err = write_atomically(Path::new(path), |_| Ok(())).unwrap_err();
            assert!(err.to_string().contains("names no file"), "{err}");
        }
    }

    #[test]
    fn long_names_keep_temporary_names_short() {
        let name = "é".repeat(120); // 240 bytes: the temporary name must cut it
        let target_path = PathBuf::from(&name);
        let target = Target::of(&target_path).unwrap();
        assert!(target.prefix.len() <= 1 + NAME_BYTES_KEPT + TEMPORARY_TAG.len());
        assert!(
            target.prefix.len() + RANDOM_DIGITS + TEMPORARY_SUFFIX.len() <= 255,
            "{}",
            target.prefix
        );
    }
}
