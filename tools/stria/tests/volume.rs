// SPDX-License-Identifier: GPL-2.0

//! `stria volume` refuses malformed arguments itself, with the usual
//! one-line error, before it asks the kernel anything.

use std::process::Command;

fn stria_err(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_stria"))
        .args(args)
        .output()
        .expect("stria runs");
    assert_eq!(out.status.code(), Some(1), "{args:?}");
    assert!(out.stdout.is_empty(), "{args:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    err.trim_end().to_string()
}

#[test]
fn sizes_must_be_whole_blocks() {
    assert_eq!(
        stria_err(&["volume", "create", "0", "web", "--size", "6K"]),
        "stria: --size 6K: not a multiple of 4 KiB: Invalid argument (EINVAL)"
    );
    let e = stria_err(&["volume", "resize", "/dev/stria0v2", "--size", "1000"]);
    assert!(e.ends_with("(EINVAL)"), "{e}");
    let e = stria_err(&["volume", "create", "0", "web", "--size", "1.5G"]);
    assert!(e.starts_with("stria: --size 1.5G: ") && e.ends_with("(EINVAL)"));
}

#[test]
fn names_must_fit_the_abi() {
    let long = "n".repeat(32);
    for name in ["a/b", "", "sp ace", long.as_str()] {
        let e = stria_err(&["volume", "create", "0", name, "--size", "1G"]);
        assert!(
            e.starts_with(&format!("stria: volume name '{name}': ")),
            "{e}"
        );
        assert!(e.ends_with("(EINVAL)"), "{e}");
    }
    let e = stria_err(&["volume", "delete", "0/a:b"]);
    assert!(e.ends_with("(EINVAL)"), "{e}");
}

#[test]
fn arrays_and_volumes_must_be_named_as_stria_devices() {
    assert_eq!(
        stria_err(&["volume", "create", "/dev/sda", "web", "--size", "1G"]),
        "stria: /dev/sda: not a stria array (expected N, /dev/striaN or /dev/striaNvM)"
    );
    assert_eq!(
        stria_err(&["volume", "delete", "web"]),
        "stria: web: not a stria volume (expected /dev/striaNvM, /dev/striaN or ARRAY/NAME)"
    );
    let e = stria_err(&["volume", "list", "stria64"]);
    assert!(e.contains("not a stria array"), "{e}");
}
