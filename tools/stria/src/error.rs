// SPDX-License-Identifier: GPL-2.0

//! One-line failures with the errno's name and meaning.

use nix::errno::Errno;
use std::fmt;

/// Why a command failed, printed as one line.
#[derive(Debug)]
pub struct Failure {
    context: String,
    errno: Option<Errno>,
}

impl Failure {
    /// A failure of `context` with `errno`.
    pub fn errno(context: impl Into<String>, errno: Errno) -> Self {
        Self {
            context: context.into(),
            errno: Some(errno),
        }
    }

    /// A failure explained by `context` alone.
    pub fn msg(context: impl Into<String>) -> Self {
        Self {
            context: context.into(),
            errno: None,
        }
    }

    /// Any other error.
    pub fn other(e: impl fmt::Display) -> Self {
        Self::msg(e.to_string())
    }

    /// The errno behind the failure, if any.
    #[allow(dead_code)]
    pub fn raw_errno(&self) -> Option<Errno> {
        self.errno
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errno {
            Some(e) => write!(f, "{}: {} ({:?})", self.context, e.desc(), e),
            None => write!(f, "{}", self.context),
        }
    }
}
