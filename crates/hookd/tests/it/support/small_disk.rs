//! A small tmpfs mounted for one test, to fill up on purpose. Mounting needs root:
//! elsewhere the test is skipped with a note, and under `CI=true`, where it must run,
//! it fails instead.

use std::path::PathBuf;
use std::process::Command;

use tempfile::TempDir;

pub struct SmallDisk {
    mountpoint: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes` on a new temp dir, returned for the data to live in.
    pub fn mount(bytes: u64) -> Option<(Self, TempDir)> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|output| output.status.success());
        if mounted {
            return Some((Self { mountpoint: dir.path().to_owned() }, dir));
        }
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs as root and must be able to mount a tmpfs for the storage-fault tests"
        );
        eprintln!("note: skipping a storage-fault test: mounting a tmpfs needs root");
        None
    }

    /// Writes a file that takes every free byte; returns its path (remove it to free
    /// the space again).
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.mountpoint.join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler");
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        while file.write_all(&chunk[..512]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: SQLite's files may still be closing.
        let _ = Command::new("umount").arg("-l").arg(&self.mountpoint).output();
        let _ = std::fs::remove_dir(&self.mountpoint);
    }
}
