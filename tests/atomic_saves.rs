//! Saves are atomic under races, crashes and planted symlinks (issue 7, class 5), through the
//! public writers: whatever happens, the target holds one complete file, nothing outside it
//! is written, and errors name the user's path and the real cause.
//!
//! The kill and multi-process tests re-run this test binary as a child (`--exact` on one of
//! the `child_*` tests below, which do nothing unless the child variables are set).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ndarray::{ArrayD, IxDyn};
use ndkeras::Error;
use ndkeras::io::npy::{read_npy, read_npz, write_npy, write_npz};

/// Where a child test saves; unset in a normal run, so the child tests do nothing.
const CHILD_PATH: &str = "NDKERAS_ATOMIC_SAVES_PATH";
/// The value a `child_saves_repeatedly` child fills its tables with.
const CHILD_VALUE: &str = "NDKERAS_ATOMIC_SAVES_VALUE";

/// A fresh folder for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ndkeras-atomic-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small table filled with `value`, so that a loaded table tells which save wrote it.
fn table(value: f32) -> ArrayD<f32> {
    ArrayD::from_elem(IxDyn(&[64, 16]), value)
}

/// The temporary files of saves to `name` present in `dir`.
fn temporaries(dir: &Path, name: &str) -> Vec<PathBuf> {
    let prefix = format!(".{name}.ndkeras-");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&prefix) && n.ends_with(".tmp")
        })
        .map(|e| e.path())
        .collect()
}

/// Every entry of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Asserts that `array` is one of the tables filled with `values`.
fn assert_one_of(array: &ArrayD<f32>, values: &[f32]) {
    assert!(
        values.iter().any(|&v| *array == table(v)),
        "the file holds none of the saved tables (first value {:?})",
        array.iter().next()
    );
}

/// Runs the test `name` of this binary as a child process saving to `path`.
fn spawn_child(name: &str, path: &Path, value: Option<f32>) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_PATH, path)
        .stdout(Stdio::null());
    if let Some(value) = value {
        command.env(CHILD_VALUE, value.to_string());
    }
    command.spawn().unwrap()
}

/// The Io error's path and message.
fn io_error(err: Error) -> (String, String) {
    match err {
        Error::Io { path, message } => (path, message),
        other => panic!("expected Error::Io, got {other:?}"),
    }
}

#[test]
fn saves_from_eight_threads_to_one_path_leave_one_complete_file() {
    let dir = scratch("threads");
    let path = dir.join("table.npy");
    write_npy(&path, &table(-1.0).view()).unwrap();
    let values: Vec<f32> = (0..8 * 5).map(|v| v as f32).chain([-1.0]).collect();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // A reader meanwhile only ever sees complete files.
        let reader = scope.spawn(|| {
            let mut loads = 0;
            while !done.load(Ordering::Relaxed) {
                assert_one_of(&read_npy(&path).unwrap(), &values);
                loads += 1;
            }
            loads
        });
        let writers: Vec<_> = (0..8)
            .map(|thread| {
                let path = &path;
                scope.spawn(move || {
                    for save in 0..5 {
                        let value = (thread * 5 + save) as f32;
                        write_npy(path, &table(value).view()).unwrap();
                    }
                })
            })
            .collect();
        // Stop the reader before looking at the writers' results, so that a failed writer
        // fails the test instead of leaving the reader running.
        let results: Vec<_> = writers.into_iter().map(|w| w.join()).collect();
        done.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        for result in results {
            result.unwrap();
        }
    });
    assert_one_of(&read_npy(&path).unwrap(), &values);
    assert_eq!(entries(&dir), ["table.npy"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn archives_from_eight_threads_to_one_path_leave_one_complete_archive() {
    let dir = scratch("threads-npz");
    let path = dir.join("weights.npz");
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let path = &path;
            scope.spawn(move || {
                for save in 0..4 {
                    let value = (thread * 4 + save) as f32;
                    let (a, b) = (table(value), table(-value));
                    write_npz(
                        path,
                        &[("a".to_string(), a.view()), ("b".to_string(), b.view())],
                    )
                    .unwrap();
                }
            });
        }
    });
    let arrays = read_npz(&path).unwrap();
    assert_eq!(arrays.len(), 2);
    let value = arrays[0].1.iter().next().copied().unwrap();
    assert_eq!(arrays[0], ("a".to_string(), table(value)));
    // Both members come from the same save.
    assert_eq!(arrays[1], ("b".to_string(), table(-value)));
    assert_eq!(entries(&dir), ["weights.npz"]);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Child of `saves_from_several_processes_to_one_path_leave_one_complete_file`.
#[test]
fn child_saves_repeatedly() {
    let (Some(path), Ok(value)) = (std::env::var_os(CHILD_PATH), std::env::var(CHILD_VALUE)) else {
        return;
    };
    let value: f32 = value.parse().unwrap();
    for _ in 0..20 {
        write_npy(&path, &table(value).view()).unwrap();
    }
}

#[test]
fn saves_from_several_processes_to_one_path_leave_one_complete_file() {
    let dir = scratch("processes");
    let path = dir.join("table.npy");
    write_npy(&path, &table(-1.0).view()).unwrap();
    let values = [-1.0, 1.0, 2.0, 3.0, 4.0];
    let mut children: Vec<Child> = values[1..4]
        .iter()
        .map(|&v| spawn_child("child_saves_repeatedly", &path, Some(v)))
        .collect();
    for _ in 0..20 {
        write_npy(&path, &table(4.0).view()).unwrap();
        assert_one_of(&read_npy(&path).unwrap(), &values);
    }
    for child in &mut children {
        assert!(child.wait().unwrap().success());
    }
    assert_one_of(&read_npy(&path).unwrap(), &values);
    assert_eq!(entries(&dir), ["table.npy"]);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Child of `a_killed_save_leaves_the_old_file_and_the_next_save_cleans_up`: one save long
/// enough (32 MiB) to be killed in the middle.
#[test]
fn child_saves_a_large_table() {
    let Some(path) = std::env::var_os(CHILD_PATH) else {
        return;
    };
    let large = ArrayD::from_elem(IxDyn(&[2048, 4096]), 7.0f32);
    write_npy(&path, &large.view()).unwrap();
}

#[test]
fn a_killed_save_leaves_the_old_file_and_the_next_save_cleans_up() {
    let dir = scratch("killed");
    let path = dir.join("table.npy");
    write_npy(&path, &table(1.0).view()).unwrap();
    let old = std::fs::read(&path).unwrap();

    let mut child = spawn_child("child_saves_a_large_table", &path, None);
    // Bounded wait for the child's temporary file (it appears at once; the bound only
    // stops a broken build from hanging).
    let deadline = Instant::now() + Duration::from_secs(60);
    let leftover = loop {
        if let Some(found) = temporaries(&dir, "table.npy").pop() {
            break found;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child ended ({status}) before its save began");
        }
        assert!(
            Instant::now() < deadline,
            "the child never started its save"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    child.kill().unwrap();
    child.wait().unwrap();

    // The old file is intact; the killed save's temporary file is still there.
    assert_eq!(std::fs::read(&path).unwrap(), old);
    assert_eq!(read_npy(&path).unwrap(), table(1.0));
    assert!(leftover.exists(), "{:?}", entries(&dir));

    // The next save to the same path removes it.
    write_npy(&path, &table(2.0).view()).unwrap();
    assert_eq!(read_npy(&path).unwrap(), table(2.0));
    assert_eq!(entries(&dir), ["table.npy"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(unix)]
#[test]
fn planted_symlinks_never_redirect_a_save() {
    use std::os::unix::fs::symlink;

    let dir = scratch("symlinks");
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let path = dir.join("table.npy");
    write_npy(&path, &table(1.0).view()).unwrap();

    // Every name an older ndkeras (`.{name}.{pid}.tmp`) or a guess at this one could use.
    let pid = std::process::id();
    let mut planted: Vec<String> = (pid.saturating_sub(64)..pid + 64)
        .map(|p| format!(".table.npy.{p}.tmp"))
        .collect();
    planted.extend(
        [
            ".table.npy.tmp",
            "table.npy.tmp",
            "table.npy~",
            ".table.npy.ndkeras-0000000000000000.tmp",
            ".table.npy.ndkeras-ffffffffffffffff.tmp",
        ]
        .map(String::from),
    );
    for name in &planted {
        symlink(&victim, dir.join(name)).unwrap();
    }
    // A dangling link at a name of the new pattern: following it would create the file.
    let nowhere = dir.join("created-through-a-link");
    symlink(
        &nowhere,
        dir.join(".table.npy.ndkeras-0123456789abcdef.tmp"),
    )
    .unwrap();

    for save in 0..20 {
        write_npy(&path, &table(save as f32).view()).unwrap();
    }
    write_npz(&path, &[("t".to_string(), table(-1.0).view())]).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(!nowhere.exists());
    // The links are left alone (not followed, not removed).
    for name in &planted {
        assert!(
            std::fs::symlink_metadata(dir.join(name))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
    assert_eq!(read_npz(&path).unwrap()[0].1, table(-1.0));

    // A target that is itself a symlink: the save replaces the link, never the file behind.
    let linked = dir.join("linked.npy");
    symlink(&victim, &linked).unwrap();
    write_npy(&linked, &table(3.0).view()).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(std::fs::symlink_metadata(&linked).unwrap().is_file());
    assert_eq!(read_npy(&linked).unwrap(), table(3.0));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn errors_name_the_users_path_and_the_real_cause() {
    let dir = scratch("errors");
    let array = table(1.0);
    let shown = |p: &Path| p.display().to_string();

    // The target is a directory.
    let folder = dir.join("folder.npy");
    std::fs::create_dir(&folder).unwrap();
    let (path, message) = io_error(write_npy(&folder, &array.view()).unwrap_err());
    assert_eq!(path, shown(&folder));
    assert!(message.contains("is a directory"), "{message}");
    let (path, message) =
        io_error(write_npz(&folder, &[("t".to_string(), array.view())]).unwrap_err());
    assert_eq!(path, shown(&folder));
    assert!(message.contains("is a directory"), "{message}");

    // The folder does not exist.
    let orphan = dir.join("missing").join("table.npy");
    let (path, message) = io_error(write_npy(&orphan, &array.view()).unwrap_err());
    assert_eq!(path, shown(&orphan));
    assert!(
        message.contains("No such file or directory") && message.contains("missing"),
        "{message}"
    );

    // The "folder" is a file.
    let file = dir.join("plain.txt");
    std::fs::write(&file, b"x").unwrap();
    let inside = file.join("table.npy");
    let (path, message) = io_error(write_npy(&inside, &array.view()).unwrap_err());
    assert_eq!(path, shown(&inside));
    assert!(message.contains("Not a directory"), "{message}");

    // A writer's own error (returned unchanged, temporary file removed, target untouched) is
    // tested in `src/io/mod.rs`: every public writer validates its input before it starts.

    for (_, message) in
        [&folder, &orphan, &inside].map(|p| io_error(write_npy(p, &array.view()).unwrap_err()))
    {
        assert!(
            !message.contains(".tmp") && !message.contains("too short"),
            "{message}"
        );
    }
    assert_eq!(
        entries(&dir),
        ["folder.npy", "plain.txt"],
        "a failed save left a file behind"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(unix)]
#[test]
fn a_save_into_a_read_only_folder_says_permission_denied() {
    use std::os::unix::fs::PermissionsExt;

    let dir = scratch("read-only");
    let folder = dir.join("locked");
    std::fs::create_dir(&folder).unwrap();
    let target = folder.join("table.npy");
    write_npy(&target, &table(1.0).view()).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root (as in many CI containers) writes anyway: there is no error to check then.
    let privileged = std::fs::write(folder.join("probe"), b"").is_ok();
    let result = write_npy(&target, &table(2.0).view());
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    if privileged {
        eprintln!("running with privileges that ignore permissions: only checking the save");
        result.unwrap();
        assert_eq!(read_npy(&target).unwrap(), table(2.0));
    } else {
        let (path, message) = io_error(result.unwrap_err());
        assert_eq!(path, target.display().to_string());
        assert!(message.contains("Permission denied"), "{message}");
        assert_eq!(read_npy(&target).unwrap(), table(1.0));
        assert_eq!(entries(&folder), ["table.npy"]);
    }
    std::fs::remove_dir_all(dir).unwrap();
}
