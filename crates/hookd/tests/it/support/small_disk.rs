//! A small tmpfs mounted for one test, to fill up or make read-only on purpose.
//! Mounting needs root:
//! elsewhere the test is skipped with a note, and under `CI=true`, where it must run,
//! it fails instead.

use std::path::PathBuf;
use std::process::Command;

use tempfile::TempDir;

pub struct SmallDisk {
    mountpoint: PathBuf,
    /// For an ext4 disk: the image file behind its loop device.
    image: Option<(TempDir, PathBuf)>,
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes` on a new temp dir, returned for the data to live in.
    pub fn mount(bytes: u64) -> Option<(Self, TempDir)> {
        let dir = tempfile::tempdir().expect("temp dir");
        let size = format!("size={bytes}");
        if !run("mount", &["-t", "tmpfs", "-o", &size, "tmpfs", &dir.path().to_string_lossy()]) {
            return skip("a tmpfs");
        }
        Some((Self { mountpoint: dir.path().to_owned(), image: None }, dir))
    }

    /// Mounts an ext4 file system of `bytes` (an image file on a loop device) that
    /// the kernel turns read-only on its first error, as a production mount would.
    pub fn mount_ext4(bytes: u64) -> Option<(Self, TempDir)> {
        let images = tempfile::tempdir().expect("temp dir");
        let image = images.path().join("disk.img");
        std::fs::File::create(&image).and_then(|file| file.set_len(bytes)).expect("image file");
        let dir = tempfile::tempdir().expect("temp dir");
        let image_path = image.to_string_lossy().into_owned();
        if !run("mkfs.ext4", &["-q", "-F", &image_path]) {
            return skip("an ext4 image (mkfs.ext4)");
        }
        let disk = Self { mountpoint: dir.path().to_owned(), image: Some((images, image)) };
        if !disk.mount_image() {
            return skip("an ext4 image on a loop device");
        }
        Some((disk, dir))
    }

    fn mount_image(&self) -> bool {
        let Some((_, image)) = &self.image else { return false };
        let target = self.mountpoint.to_string_lossy();
        run("mount", &["-o", "loop,errors=remount-ro", &image.to_string_lossy(), &target])
    }

    /// Makes the file system fail as a dying disk does: the kernel records an error
    /// and turns the whole mount read-only, under every open file (`emergency_ro`).
    pub fn fail_read_only(&self) {
        let output = Command::new("findmnt")
            .args(["-n", "-o", "SOURCE", "--target"])
            .arg(&self.mountpoint)
            .output()
            .expect("findmnt");
        let source = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let device = source.rsplit('/').next().expect("a device name");
        std::fs::write(format!("/sys/fs/ext4/{device}/trigger_fs_error"), "1")
            .expect("trigger an ext4 error");
        let options = Command::new("findmnt").args(["-n", "-o", "OPTIONS"]).arg(&self.mountpoint).output();
        let options = options.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        assert!(options.contains("emergency_ro") || options.starts_with("ro"), "still writable: {options}");
    }

    /// What an operator does once the disk is fixed (with hookd stopped): unmount,
    /// check the file system, mount it again.
    pub fn repair(&self) {
        let target = self.mountpoint.to_string_lossy();
        assert!(run("umount", &[&target]), "umount");
        let Some((_, image)) = &self.image else { panic!("only an ext4 disk can be repaired") };
        // e2fsck exits 1 when it fixed something, which is the point.
        let _ = Command::new("e2fsck").args(["-f", "-y"]).arg(image).output().expect("e2fsck");
        assert!(self.mount_image(), "mount again");
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

impl SmallDisk {
    /// Remounts the disk read-only (`true`) or read-write again (`false`), as an
    /// operator's mistake or a failing device would.
    pub fn set_read_only(&self, read_only: bool) {
        let mode = if read_only { "remount,ro" } else { "remount,rw" };
        let output = Command::new("mount").args(["-o", mode]).arg(&self.mountpoint).output().expect("mount");
        assert!(output.status.success(), "mount -o {mode}: {}", String::from_utf8_lossy(&output.stderr));
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: SQLite's files may still be closing. A loop mount frees its device.
        let _ = Command::new("umount").arg("-l").arg(&self.mountpoint).output();
        let _ = std::fs::remove_dir(&self.mountpoint);
    }
}

fn run(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|output| output.status.success())
}

fn skip<T>(what: &str) -> Option<T> {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI runs as root and must be able to mount {what} for the storage-fault tests"
    );
    eprintln!("note: skipping a storage-fault test: mounting {what} needs root");
    None
}
