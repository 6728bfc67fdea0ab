// SPDX-License-Identifier: GPL-2.0

//! 128-bit identifiers of arrays and members.

use core::fmt;

/// A UUID as 16 raw bytes, stored on disk in this byte order.
///
/// The core never generates UUIDs (that needs a random source); the kernel
/// or the helper fills them in and the core only compares and prints them.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero UUID, which marks an unused slot and is never valid for
    /// an array or a member.
    pub const NIL: Uuid = Uuid([0; 16]);

    /// True for the all-zero UUID.
    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for Uuid {
    /// Canonical 8-4-4-4-12 lower-case hex form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::Uuid;
    use std::format;

    #[test]
    fn nil_and_display() {
        assert!(Uuid::NIL.is_nil());
        let u = Uuid([
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
            0xcd, 0xef,
        ]);
        assert!(!u.is_nil());
        assert_eq!(format!("{u}"), "12345678-9abc-def0-0123-456789abcdef");
        assert_eq!(format!("{u:?}"), "12345678-9abc-def0-0123-456789abcdef");
    }
}
