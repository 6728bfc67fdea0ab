// SPDX-License-Identifier: GPL-2.0

//! What the tests that run the built binary on image files share.

use std::path::PathBuf;
use std::process::Command;
use std::process::Output;

/// Runs the built `stria` with `args`.
pub fn stria(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stria"))
        .args(args)
        .output()
        .expect("stria runs")
}

/// Sparse image files in a directory of their own, removed on drop.
pub struct Images {
    dir: PathBuf,
    /// The images, `m0.img`, `m1.img`, ...
    pub paths: Vec<String>,
}

impl Images {
    /// `n` images of `bytes` each; `tag` keeps concurrent tests apart.
    pub fn new(tag: &str, n: usize, bytes: u64) -> Self {
        let dir = std::env::temp_dir().join(format!("stria-fmt-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths = (0..n)
            .map(|i| {
                let p = dir.join(format!("m{i}.img"));
                let f = std::fs::File::create(&p).unwrap();
                f.set_len(bytes).unwrap();
                p.to_string_lossy().into_owned()
            })
            .collect();
        Self { dir, paths }
    }

    /// The paths, as arguments.
    pub fn args(&self) -> Vec<&str> {
        self.paths.iter().map(String::as_str).collect()
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}
