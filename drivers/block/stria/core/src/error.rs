// SPDX-License-Identifier: GPL-2.0

//! The one error type of the format core.
//!
//! Every way in which bytes read from a member can be wrong has its own
//! variant, so that a caller can tell "not ours" from "ours but damaged" and
//! print a precise one-line message. The type is `Copy` and carries no data,
//! which keeps it free to return from hot paths.

use core::fmt;

/// Linux errno values used by [`FormatError::to_errno`].
///
/// Spelled out here because the core is built without the kernel's bindings.
pub mod errno {
    /// Invalid argument: the caller passed something inconsistent.
    pub const EINVAL: i32 = 22;
    /// No space left: the item does not fit its container.
    pub const ENOSPC: i32 = 28;
    /// Result out of range: an address lies outside its area.
    pub const ERANGE: i32 = 34;
    /// Bad message: checksum mismatch (what XFS calls `EFSBADCRC`).
    pub const EBADMSG: i32 = 74;
    /// Operation not supported: a format version or feature we lack.
    pub const EOPNOTSUPP: i32 = 95;
    /// Structure needs cleaning: metadata is corrupt (XFS's `EFSCORRUPTED`).
    pub const EUCLEAN: i32 = 117;
    /// Wrong medium type: the block is valid but belongs elsewhere.
    pub const EMEDIUMTYPE: i32 = 124;
}

/// Everything that can go wrong while encoding, decoding or computing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// A buffer is shorter than the structure it must hold.
    BufferTooSmall,
    /// An arithmetic result would not fit its type.
    Overflow,
    /// The magic number is not ours: this block is not stria metadata.
    BadMagic,
    /// The format version is one this code does not understand.
    BadVersion,
    /// The recorded structure size does not match the version's size.
    BadSize,
    /// The CRC32C does not match the contents.
    BadChecksum,
    /// Incompatible feature bits this code does not know are set.
    UnknownIncompat,
    /// Reserved flag bits that must be zero are set.
    ReservedBits,
    /// Member count outside 2..=32.
    BadMemberCount,
    /// Member index not below the member count.
    BadMemberIndex,
    /// The array UUID is nil, or a member table entry is invalid (nil or
    /// duplicate UUID, zero size, unknown state, or a used-looking entry
    /// past the member count).
    BadMemberEntry,
    /// The data area does not lie between the two superblock copies.
    BadDataArea,
    /// Stripe group count outside 1..=8.
    BadGroupCount,
    /// A stripe group definition is invalid.
    BadGroup,
    /// A volume table entry is invalid (layout, flags, group or sizes).
    BadVolume,
    /// Two volumes share an id.
    DuplicateVolume,
    /// A name is not NUL-padded printable ASCII (or a volume name is empty).
    BadName,
    /// The log head hint is inconsistent.
    BadLogHead,
    /// Both superblock copies decode but describe different arrays or members.
    CopiesDisagree,
    /// The member is too small to hold the superblocks and a data area.
    MemberTooSmall,
    /// Unknown RAID type code.
    BadRaidType,
    /// Strip count does not suit the RAID type or exceeds the maximum.
    BadStripCount,
    /// Strip size is zero or larger than the maximum.
    BadStripSize,
    /// Parity or Q index missing, out of range, or equal to each other.
    BadParityIndex,
    /// A member index in a stripe is 32 or more.
    BadStripMember,
    /// Two strips of one stripe lie on the same member.
    DuplicateMember,
    /// More pieces than a header block can describe.
    TooManyPieces,
    /// Per-strip piece counts do not add up to the piece count, or a parity
    /// or mirror strip claims pieces.
    PieceCountMismatch,
    /// A piece reaches beyond the end of its strip.
    PieceOutOfStrip,
    /// Two pieces of one strip overlap, or are not in ascending order.
    PieceOverlap,
    /// A piece's host length and length in strip disagree, or it is empty.
    BadPieceLength,
    /// A piece names volume id 0.
    BadVolumeId,
    /// A strip's active count exceeds the blocks its pieces hold.
    BadActiveCount,
    /// The previous-stripe pointer is malformed.
    BadPrevious,
    /// A stripe header's durable sequence number is not below its own
    /// sequence number (and not 0).
    BadDurableSeq,
    /// The header was found at a place its strip table does not list.
    WrongLocation,
    /// The header belongs to another array.
    WrongArray,
    /// The builder has no room left: close this stripe and open another.
    DoesNotFit,
    /// A block address lies outside the area it must be in.
    OutOfRange,
    /// A length or size argument is zero where it must not be.
    ZeroLength,
    /// Parity buffers do not all have the same length.
    LengthMismatch,
    /// A parity call got too few or too many strips.
    BadStripSet,
    /// The set of missing strips is invalid (duplicates, out of range,
    /// or more than the RAID level can rebuild).
    BadMissing,
}

impl FormatError {
    /// Negative Linux errno for this error, as kernel functions return it.
    ///
    /// Corruption maps to `-EUCLEAN` and checksum failures to `-EBADMSG`,
    /// following XFS, so that tools can tell "damaged" from "not supported".
    pub fn to_errno(self) -> i32 {
        use FormatError::*;
        let e = match self {
            BufferTooSmall | ZeroLength | LengthMismatch | BadStripSet | BadMissing => {
                errno::EINVAL
            }
            DoesNotFit | MemberTooSmall => errno::ENOSPC,
            OutOfRange | Overflow => errno::ERANGE,
            BadChecksum => errno::EBADMSG,
            BadVersion | UnknownIncompat => errno::EOPNOTSUPP,
            BadMagic | WrongArray | WrongLocation => errno::EMEDIUMTYPE,
            BadSize | ReservedBits | BadMemberCount | BadMemberIndex | BadMemberEntry
            | BadDataArea | BadGroupCount | BadGroup | BadVolume | DuplicateVolume | BadName
            | BadLogHead | CopiesDisagree | BadRaidType | BadStripCount | BadStripSize
            | BadParityIndex | BadStripMember | DuplicateMember | TooManyPieces
            | PieceCountMismatch | PieceOutOfStrip | PieceOverlap | BadPieceLength
            | BadVolumeId | BadActiveCount | BadPrevious | BadDurableSeq => errno::EUCLEAN,
        };
        -e
    }

    /// True when the error says the bytes are damaged metadata of ours,
    /// as opposed to foreign data, a caller mistake or a missing feature.
    pub fn is_corruption(self) -> bool {
        matches!(self.to_errno(), e if e == -errno::EUCLEAN || e == -errno::EBADMSG)
    }

    /// Short lower-case description for one-line kernel messages.
    pub fn as_str(self) -> &'static str {
        use FormatError::*;
        match self {
            BufferTooSmall => "buffer too small",
            Overflow => "arithmetic overflow",
            BadMagic => "bad magic",
            BadVersion => "unsupported format version",
            BadSize => "bad structure size",
            BadChecksum => "checksum mismatch",
            UnknownIncompat => "unknown incompatible features",
            ReservedBits => "reserved bits set",
            BadMemberCount => "bad member count",
            BadMemberIndex => "bad member index",
            BadMemberEntry => "bad member table entry",
            BadDataArea => "bad data area",
            BadGroupCount => "bad stripe group count",
            BadGroup => "bad stripe group",
            BadVolume => "bad volume entry",
            DuplicateVolume => "duplicate volume id",
            BadName => "bad name",
            BadLogHead => "bad log head",
            CopiesDisagree => "superblock copies disagree",
            MemberTooSmall => "member too small",
            BadRaidType => "bad raid type",
            BadStripCount => "bad strip count",
            BadStripSize => "bad strip size",
            BadParityIndex => "bad parity index",
            BadStripMember => "bad strip member",
            DuplicateMember => "member used twice in stripe",
            TooManyPieces => "too many pieces",
            PieceCountMismatch => "piece counts do not add up",
            PieceOutOfStrip => "piece outside its strip",
            PieceOverlap => "pieces overlap",
            BadPieceLength => "bad piece length",
            BadVolumeId => "bad volume id",
            BadActiveCount => "bad active count",
            BadPrevious => "bad previous-stripe pointer",
            BadDurableSeq => "durable sequence not below own",
            WrongLocation => "header not at a listed strip",
            WrongArray => "header of another array",
            DoesNotFit => "does not fit",
            OutOfRange => "address out of range",
            ZeroLength => "zero length",
            LengthMismatch => "buffer lengths differ",
            BadStripSet => "bad number of strips",
            BadMissing => "bad set of missing strips",
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Result type of the format core.
pub type Result<T = ()> = core::result::Result<T, FormatError>;

#[cfg(test)]
mod tests {
    use super::errno;
    use super::FormatError;
    use super::FormatError::*;

    /// Every variant, so that tests can walk them all.
    pub(crate) const ALL: [FormatError; 43] = [
        BufferTooSmall,
        Overflow,
        BadMagic,
        BadVersion,
        BadSize,
        BadChecksum,
        UnknownIncompat,
        ReservedBits,
        BadMemberCount,
        BadMemberIndex,
        BadMemberEntry,
        BadDataArea,
        BadGroupCount,
        BadGroup,
        BadVolume,
        DuplicateVolume,
        BadName,
        BadLogHead,
        CopiesDisagree,
        MemberTooSmall,
        BadRaidType,
        BadStripCount,
        BadStripSize,
        BadParityIndex,
        BadStripMember,
        DuplicateMember,
        TooManyPieces,
        PieceCountMismatch,
        PieceOutOfStrip,
        PieceOverlap,
        BadPieceLength,
        BadVolumeId,
        BadActiveCount,
        BadPrevious,
        BadDurableSeq,
        WrongLocation,
        WrongArray,
        DoesNotFit,
        OutOfRange,
        ZeroLength,
        LengthMismatch,
        BadStripSet,
        BadMissing,
    ];

    #[test]
    fn every_variant_has_errno_and_text() {
        for (i, e) in ALL.iter().enumerate() {
            assert!(e.to_errno() < 0);
            assert!(!e.as_str().is_empty());
            assert!(e.as_str().len() < 40);
            for other in ALL.iter().skip(i + 1) {
                assert_ne!(e, other);
                assert_ne!(e.as_str(), other.as_str());
            }
        }
    }

    #[test]
    fn errno_classes() {
        assert_eq!(BadChecksum.to_errno(), -errno::EBADMSG);
        assert_eq!(PieceOverlap.to_errno(), -errno::EUCLEAN);
        assert_eq!(BadDurableSeq.to_errno(), -errno::EUCLEAN);
        assert_eq!(UnknownIncompat.to_errno(), -errno::EOPNOTSUPP);
        assert_eq!(BadMagic.to_errno(), -errno::EMEDIUMTYPE);
        assert_eq!(DoesNotFit.to_errno(), -errno::ENOSPC);
        assert_eq!(LengthMismatch.to_errno(), -errno::EINVAL);
        assert_eq!(OutOfRange.to_errno(), -errno::ERANGE);
        assert!(BadChecksum.is_corruption());
        assert!(BadGroup.is_corruption());
        assert!(!BadMagic.is_corruption());
        assert!(!UnknownIncompat.is_corruption());
    }

    #[test]
    fn display_matches_as_str() {
        use std::string::ToString;
        assert_eq!(BadMagic.to_string(), "bad magic");
    }
}
