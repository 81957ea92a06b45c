//! A git repository driven as a user drives it: `git` with a fixed identity and no user
//! or system configuration, files written into the work tree, large assets.

use std::path::PathBuf;

/// A repository (or a work tree of one) at `dir`.
pub struct Repo {
    pub dir: PathBuf,
}

impl Repo {
    pub fn git(&self, args: &[&str]) {
        let output = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=kvop test",
                "-c",
                "user.email=test@kvop.dev",
            ])
            .args([
                "-c",
                "advice.detachedHead=false",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&self.dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("run git");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub fn write(&self, path: &str, contents: &[u8]) {
        let path = self.dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    /// A 50 MB file that compresses badly, different for every `seed`: git takes a
    /// while to write it, between removing the old paths and writing the new ones (a
    /// path that sorts before the watched directory's, outside it, sends no event while
    /// it is written).
    pub fn asset(&self, path: &str, seed: u64) {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut bytes = Vec::with_capacity(50 << 20);
        while bytes.len() < 50 << 20 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.extend_from_slice(&state.to_le_bytes());
        }
        self.write(path, &bytes);
    }
}
