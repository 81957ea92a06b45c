//! Trees laid out on disk as the tools that feed `--watch` lay them out: kubelet's
//! ConfigMap volumes, git-sync's and deploy tools' swapped links.

use std::path::{Path, PathBuf};

/// A directory laid out as kubelet lays out a ConfigMap volume: each file a link
/// through `..data`, itself a link to a timestamped directory.
pub struct Volume {
    dir: PathBuf,
    generation: u32,
}

impl Volume {
    pub fn new(dir: &Path, files: &[(&str, &str)]) -> Volume {
        let mut volume = Volume {
            dir: dir.to_path_buf(),
            generation: 0,
        };
        volume.update(files);
        volume
    }

    /// What kubelet's atomic writer does: a new timestamped directory, `..data_tmp`
    /// linked to it and renamed over `..data`, the visible links of new files created
    /// and those of removed files deleted, the old directory removed.
    pub fn update(&mut self, files: &[(&str, &str)]) {
        self.generation += 1;
        let old = std::fs::read_link(self.dir.join("..data")).ok();
        let timestamped = format!(
            "..2026_12_07_10_00_0{}.{}",
            self.generation,
            1000 + self.generation
        );
        std::fs::create_dir(self.dir.join(&timestamped)).unwrap();
        for (name, text) in files {
            std::fs::write(self.dir.join(&timestamped).join(name), text).unwrap();
        }
        std::os::unix::fs::symlink(&timestamped, self.dir.join("..data_tmp")).unwrap();
        std::fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).unwrap();
        for (name, _) in files {
            let visible = self.dir.join(name);
            if visible.symlink_metadata().is_err() {
                std::os::unix::fs::symlink(format!("..data/{name}"), visible).unwrap();
            }
        }
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && !files.iter().any(|(file, _)| *file == name) {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.join(old)).unwrap();
        }
    }
}

/// Replaces the link `link` with one to `target` as git-sync and deploy tools do: a new
/// link beside it, renamed over it (atomic: the path never goes missing).
pub fn swap_link(link: &Path, target: &Path) {
    let fresh = link.with_extension("new-link");
    std::os::unix::fs::symlink(target, &fresh).unwrap();
    std::fs::rename(&fresh, link).unwrap();
}

/// Writes `files` (relative paths) below `dir`, creating directories on the way.
pub fn release(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}
