// SPDX-License-Identifier: GPL-2.0

//! The control ioctl ABI of `include/uapi/linux/stria.h`, in Rust.
//!
//! Shared by the kernel module and the `stria` helper.  Each structure is a
//! `#[repr(C)]` type with the C structure's fields in the C order, which is
//! the one statement of its layout: the kernel copies it to and from user
//! space whole (`kernel::transmute`, implemented in `blk::abi`), the helper
//! through `zerocopy`, whose derives below (helper build only) refuse a
//! type with padding.  The helper's tests check every size, offset and
//! request number against the C header.

#[cfg(not(CONFIG_RUST))]
use zerocopy::FromBytes;
#[cfg(not(CONFIG_RUST))]
use zerocopy::Immutable;
#[cfg(not(CONFIG_RUST))]
use zerocopy::IntoBytes;
#[cfg(not(CONFIG_RUST))]
use zerocopy::KnownLayout;

/// Name of the control device under `/dev`.
pub(crate) const CONTROL_NAME: &str = "stria-control";
/// Fewest members an array may have.
pub(crate) const MIN_MEMBERS: u32 = 2;
/// Most members an array may have.
pub(crate) const MAX_MEMBERS: u32 = 32;
/// Most arrays that can exist at once.
pub(crate) const MAX_ARRAYS: u32 = 64;
/// Size of one member path slot, NUL included.
pub(crate) const PATH_MAX: usize = 256;
/// Size of an array name, NUL padded.
pub(crate) const NAME_MAX: usize = 64;
/// The static RAID-0 layout.
pub(crate) const LAYOUT_RAID0: u32 = 0;
/// `STRIA_LAYOUT_LOG`: log-structured stripes.
pub(crate) const LAYOUT_LOG: u32 = 1;
/// ioctl type byte.
pub(crate) const IOCTL_MAGIC: u32 = 0xE6;

const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | (IOCTL_MAGIC << 8) | nr
}

/// The `size` field of a `T`, as user space fills it.
const fn size_field<T>() -> u32 {
    size_of::<T>() as u32
}

/// `STRIA_IOC_ASSEMBLE`.
pub(crate) const IOC_ASSEMBLE: u32 = ioc(IOC_READ | IOC_WRITE, 0, size_of::<Assemble>());
/// `STRIA_IOC_STOP`.
pub(crate) const IOC_STOP: u32 = ioc(IOC_WRITE, 1, size_of::<Stop>());
/// `STRIA_IOC_STATUS`.
pub(crate) const IOC_STATUS: u32 = ioc(IOC_READ | IOC_WRITE, 2, size_of::<Status>());
/// `STRIA_IOC_VOLUME`.
pub(crate) const IOC_VOLUME: u32 = ioc(IOC_READ | IOC_WRITE, 3, size_of::<Volume>());
/// `STRIA_IOC_VOLUMES`.
pub(crate) const IOC_VOLUMES: u32 = ioc(IOC_READ | IOC_WRITE, 4, size_of::<Volumes>());
/// `STRIA_VOLUMES_NO_SHARING`.
pub(crate) const VOLUMES_NO_SHARING: u32 = 1;
/// `STRIA_IOC_GC`.
pub(crate) const IOC_GC: u32 = ioc(IOC_READ | IOC_WRITE, 5, size_of::<Gc>());
/// `STRIA_GC_GREEDY`.
pub(crate) const GC_GREEDY: u32 = 1;
/// `STRIA_IOC_DIFF`.
pub(crate) const IOC_DIFF: u32 = ioc(IOC_READ | IOC_WRITE, 6, size_of::<Diff>());
/// `STRIA_DIFF_MAX_BLOCKS`.
pub(crate) const DIFF_MAX_BLOCKS: u64 = 262144;

/// `STRIA_VOLUME_NAME_MAX`.
pub(crate) const VOLUME_NAME_MAX: usize = 32;
/// `STRIA_MAX_VOLUMES`.
pub(crate) const MAX_VOLUMES: usize = 64;
/// `STRIA_VOLUME_CREATE`.
pub(crate) const VOLUME_CREATE: u32 = 1;
/// `STRIA_VOLUME_RESIZE`.
pub(crate) const VOLUME_RESIZE: u32 = 2;
/// `STRIA_VOLUME_DELETE`.
pub(crate) const VOLUME_DELETE: u32 = 3;
/// `STRIA_VOLUME_COPY`.
pub(crate) const VOLUME_COPY: u32 = 4;
/// `STRIA_VINFO_COPY`: the volume is an instant copy.
pub(crate) const VINFO_COPY: u32 = 1;
/// `STRIA_COPY_FORM_AUTO`: the driver picks the copy's metadata form.
pub(crate) const COPY_FORM_AUTO: u32 = 0;
/// `STRIA_COPY_FORM_FULL`: a full pointer table.
pub(crate) const COPY_FORM_FULL: u32 = 1;
/// `STRIA_COPY_FORM_CHANGED`: pointers for changed blocks only.
pub(crate) const COPY_FORM_CHANGED: u32 = 2;
/// `STRIA_TRACK_AUTO`: the driver picks the copy's divergence map form.
pub(crate) const TRACK_AUTO: u32 = 0;
/// `STRIA_TRACK_NONE`: no divergence map.
pub(crate) const TRACK_NONE: u32 = 1;
/// `STRIA_TRACK_BITMAP`: a full bit map, a bit per block.
pub(crate) const TRACK_BITMAP: u32 = 2;
/// `STRIA_TRACK_MULTI`: multi-level bit maps.
pub(crate) const TRACK_MULTI: u32 = 3;
/// `STRIA_TRACK_PARTIAL`: partial-area bit maps with extent definitions.
pub(crate) const TRACK_PARTIAL: u32 = 4;
/// `STRIA_DIFF_MAPS`: compare the maps, not looking at a divergence map.
pub(crate) const DIFF_MAPS: u32 = 1;
/// `STRIA_DIFF_BY_TRACK`: answered where the divergence map marked.
pub(crate) const DIFF_BY_TRACK: u32 = 1;
/// `STRIA_DIFF_BY_MAPS`: answered by comparing the maps whole.
pub(crate) const DIFF_BY_MAPS: u32 = 2;

/// Why a structure from user space was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AbiError {
    /// The `size` field does not match this ABI revision.
    Size,
    /// Flags or reserved fields are not zero.
    Reserved,
}

// The sizes `include/uapi/linux/stria.h` gives, checked in the kernel's build
// too (the helper's tests check every field's offset against the header).
const _: () = assert!(
    size_of::<Assemble>() == 56
        && size_of::<Stop>() == 16
        && size_of::<MemberInfo>() == 32
        && size_of::<Status>() == 288 + 32 * 32
        && size_of::<Volume>() == 80
        && size_of::<VolumeInfo>() == 160
        && size_of::<Volumes>() == 16 + 64 * 160
        && size_of::<Gc>() == 48
        && size_of::<Diff>() == 64
);

/// Checks a structure from user space: its `size` field must be its size
/// in this ABI revision, `flags` may have no bit outside `known`, and
/// `reserved_zero` says whether the reserved fields are all zero.
fn check<T>(size: u32, flags: u32, known: u32, reserved_zero: bool) -> Result<(), AbiError> {
    if size != size_field::<T>() {
        return Err(AbiError::Size);
    }
    if flags & !known != 0 || !reserved_zero {
        return Err(AbiError::Reserved);
    }
    Ok(())
}

/// An all-zero `T`.
#[cfg(CONFIG_RUST)]
fn zeroed<T: pin_init::Zeroable>() -> T {
    pin_init::zeroed()
}

/// An all-zero `T`.
#[cfg(not(CONFIG_RUST))]
fn zeroed<T: zerocopy::FromZeros>() -> T {
    T::new_zeroed()
}

/// `Default` for the structures that start with their size: `size` set,
/// every other field zero; a valid request once its fields are filled.
macro_rules! sized_default {
    ($($t:ty),* $(,)?) => {
        $(
            impl Default for $t {
                fn default() -> Self {
                    Self {
                        size: size_field::<Self>(),
                        ..zeroed()
                    }
                }
            }
        )*
    };
}

sized_default!(Assemble, Stop, Status, Volume, Volumes, Gc, Diff);

/// `struct stria_assemble`: build an array from member block devices.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(CONFIG_RUST), derive(FromBytes, Immutable, IntoBytes, KnownLayout))]
pub(crate) struct Assemble {
    /// `sizeof(struct stria_assemble)`.
    pub(crate) size: u32,
    /// Must be 0.
    pub(crate) flags: u32,
    /// Number of member path slots at `paths`.
    pub(crate) nr_members: u32,
    /// Out: the array's number.
    pub(crate) index: u32,
    /// User address of `nr_members` slots of [`PATH_MAX`] bytes, each a
    /// NUL-terminated path.
    pub(crate) paths: u64,
    /// Must be 0.
    pub(crate) reserved: [u64; 4],
}

impl Assemble {
    /// Checks the structure passed by user space.
    pub(crate) fn check(&self) -> Result<(), AbiError> {
        check::<Self>(self.size, self.flags, 0, self.reserved == [0; 4])
    }
}

/// `struct stria_stop`: stop an array and release its members.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(CONFIG_RUST), derive(FromBytes, Immutable, IntoBytes, KnownLayout))]
pub(crate) struct Stop {
    /// `sizeof(struct stria_stop)`.
    pub(crate) size: u32,
    /// Must be 0.
    pub(crate) flags: u32,
    /// The array's number.
    pub(crate) index: u32,
    /// Must be 0.
    pub(crate) reserved: u32,
}

impl Stop {
    /// Checks the structure passed by user space.
    pub(crate) fn check(&self) -> Result<(), AbiError> {
        check::<Self>(self.size, self.flags, 0, self.reserved == 0)
    }
}

/// `struct stria_member_info`: one member as STATUS reports it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(not(CONFIG_RUST), derive(FromBytes, Immutable, IntoBytes, KnownLayout))]
pub(crate) struct MemberInfo {
    /// Device major number.
    pub(crate) major: u32,
    /// Device minor number.
    pub(crate) minor: u32,
    /// Size in 512-byte sectors.
    pub(crate) sectors: u64,
    /// Space in free chunks, in 512-byte sectors.
    pub(crate) free_sectors: u64,
    /// Zero.
    pub(crate) reserved: u64,
}

/// `struct stria_status`: state of one array.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(CONFIG_RUST), derive(FromBytes, Immutable, IntoBytes, KnownLayout))]
pub(crate) struct Status {
    /// `sizeof(struct stria_status)`.
    pub(crate) size: u32,
    /// Must be 0.
    pub(crate) flags: u32,
    /// In: the array's number.
    pub(crate) index: u32,
    /// Number of valid entries in `members`.
    pub(crate) nr_members: u32,
    /// One of the `LAYOUT_*` values.
    pub(crate) layout: u32,
    /// Chunk size in 512-byte sectors.
    pub(crate) chunk_sectors: u32,
    /// How many times the volume is open.
    pub(crate) open_count: u32,
    /// Zero.
    pub(crate) reserved0: u32,
    /// Volume size in 512-byte sectors.
    pub(crate) capacity_sectors: u64,
    /// Read requests served.
    pub(crate) reads: u64,
    /// Write requests served.
    pub(crate) writes: u64,
    /// Flush requests served.
    pub(crate) flushes: u64,
    /// Requests failed with an I/O error.
    pub(crate) errors: u64,
    /// The array's UUID.
    pub(crate) array_uuid: [u8; 16],
    /// The array's name, NUL padded.
    pub(crate) name: [u8; NAME_MAX],
    /// Blocks the volume's map points somewhere.
    pub(crate) map_blocks: u64,
    /// Memory the volume's map takes, in bytes.
    pub(crate) map_bytes: u64,
    /// Stripes written since assembly.
    pub(crate) stripes: u64,
    /// Of those, stripes a flush wrote part full.
    pub(crate) partial_stripes: u64,
    /// Host blocks written since assembly.
    pub(crate) host_blocks: u64,
    /// Member blocks written for them.
    pub(crate) member_blocks: u64,
    /// Member blocks stripes can use.
    pub(crate) pool_blocks: u64,
    /// Of those, blocks in free chunks.
    pub(crate) free_blocks: u64,
    /// Data blocks some map points at.
    pub(crate) live_blocks: u64,
    /// Blocks collecting every stripe would free.
    pub(crate) reclaimable_blocks: u64,
    /// Blocks of emptied stripes waiting for a flush.
    pub(crate) dying_blocks: u64,
    /// Stripes on the members by RAID type: 0, 1, 5, 6.
    pub(crate) raid_stripes: [u64; 4],
    /// Stripes free-space collection emptied since assembly.
    pub(crate) gc_stripes: u64,
    /// Blocks it moved.
    pub(crate) gc_moved_blocks: u64,
    /// The members, `nr_members` of them valid.
    pub(crate) members: [MemberInfo; MAX_MEMBERS as usize],
}

impl Status {
    /// Checks the request part (`size`, `flags`) passed by user space; the
    /// rest is the answer's.
    pub(crate) fn check(&self) -> Result<(), AbiError> {
        check::<Self>(self.size, self.flags, 0, true)
    }
}

/// `struct stria_volume`: create, resize, delete or copy a volume.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(CONFIG_RUST), derive(FromBytes, Immutable, IntoBytes, KnownLayout))]
pub(crate) struct Volume {
    /// `sizeof(struct stria_volume)`.
    pub(crate) size: u32,
    /// Must be 0.
    pub(crate) flags: u32,
    /// The array's number.
    pub(crate) index: u32,
    /// One of the `VOLUME_*` operations.
    pub(crate) op: u32,
    /// The volume's id (0: by name); out for create and copy.
    pub(crate) id: u32,
    /// Copy: a `COPY_FORM_*`; 0 for the other operations.
    pub(crate) form: u32,
    /// Size in 512-byte sectors.
    pub(crate) size_sectors: u64,
    /// Name, NUL padded.
    pub(crate) name: [u8; VOLUME_NAME_MAX],
    /// Copy: a `TRACK_*`; 0 for the other operations.
    pub(crate) track: u32,
    /// Must be 0.
    pub(crate) reserved0: u32,
    /// Must be 0.
    pub(crate) reserved: u64,
}

impl Volume {
    /// Checks the structure passed by user space.
    pub(crate) fn check(&self) -> Result<(), AbiError> {
        let reserved_zero = self.reserved0 == 0 && self.reserved == 0;
        check::<Self>(self.size, self.flags, 0, reserved_zero)
    }
}

/// `struct stria_volume_info`: one volume as VOLUMES reports it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(not(CONFIG_RUST), derive(FromBytes, Immutable, IntoBytes, KnownLayout))]
pub(crate) struct VolumeInfo {
    /// Volume id.
    pub(crate) id: u32,
    /// How many times its block device is open.
    pub(crate) open_count: u32,
    /// Size in 512-byte sectors.
    pub(crate) size_sectors: u64,
    /// Blocks its map points somewhere.
    pub(crate) map_blocks: u64,
    /// Memory its map takes, in bytes.
    pub(crate) map_bytes: u64,
    /// Name, NUL padded.
    pub(crate) name: [u8; VOLUME_NAME_MAX],
    /// Block device name, NUL padded.
    pub(crate) disk: [u8; 32],
    /// `STRIA_VINFO_*` bits.
    pub(crate) flags: u32,
    /// Id of the volume it is a copy of, 0 if none.
    pub(crate) parent_id: u32,
    /// Log sequence number of the copy point, 0 if no copy.
    pub(crate) copy_seq: u64,
    /// Mapped blocks another volume of its copy tree points at too.
    pub(crate) shared_blocks: u64,
    /// Bytes of directory pages, leaves and deltas shared with other
    /// volumes (part of `map_bytes`).
    pub(crate) shared_map_bytes: u64,
    /// Copy metadata form recorded for a copy (`COPY_FORM_*`), 0 if none.
    pub(crate) copy_form: u32,
    /// Deltas (changed-block pointers over shared leaves) in its map.
    pub(crate) deltas: u32,
    /// Form of its divergence map now, a `TRACK_*` (`TRACK_NONE` if it
    /// has none), 0 if not a copy.
    pub(crate) track: u32,
    /// Zero.
    pub(crate) reserved0: u32,
    /// Bytes of memory its divergence map takes.
    pub(crate) track_bytes: u64,
    /// Blocks its divergence map marks as changed on either side.
    pub(crate) track_blocks: u64,
}

/// `struct stria_volumes`: list the volumes of an array.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(CONFIG_RUST), derive(FromBytes, Immutable, IntoBytes, KnownLayout))]
pub(crate) struct Volumes {
    /// `sizeof(struct stria_volumes)`.
    pub(crate) size: u32,
    /// `STRIA_VOLUMES_*`.
    pub(crate) flags: u32,
    /// The array's number.
    pub(crate) index: u32,
    /// Out: valid entries in `volumes`.
    pub(crate) nr_volumes: u32,
    /// Out: the volumes, by id.
    pub(crate) volumes: [VolumeInfo; MAX_VOLUMES],
}

impl Volumes {
    /// Checks the request part (`size`, `flags`) passed by user space; the
    /// rest is the answer's.
    pub(crate) fn check(&self) -> Result<(), AbiError> {
        check::<Self>(self.size, self.flags, VOLUMES_NO_SHARING, true)
    }
}

/// `struct stria_gc`: run free-space collection on an array.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(CONFIG_RUST), derive(FromBytes, Immutable, IntoBytes, KnownLayout))]
pub(crate) struct Gc {
    /// `sizeof(struct stria_gc)`.
    pub(crate) size: u32,
    /// `STRIA_GC_*`.
    pub(crate) flags: u32,
    /// The array's number.
    pub(crate) index: u32,
    /// Stop once this share of the pool is free.
    pub(crate) until_free_percent: u32,
    /// Out: stripes emptied.
    pub(crate) stripes: u64,
    /// Out: member blocks freed.
    pub(crate) freed_blocks: u64,
    /// Must be 0.
    pub(crate) reserved: [u64; 2],
}

impl Gc {
    /// Checks the structure passed by user space.
    pub(crate) fn check(&self) -> Result<(), AbiError> {
        check::<Self>(self.size, self.flags, GC_GREEDY, self.reserved == [0; 2])
    }
}

/// `struct stria_diff`: where two volumes of an array differ.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(CONFIG_RUST), derive(FromBytes, Immutable, IntoBytes, KnownLayout))]
pub(crate) struct Diff {
    /// `sizeof(struct stria_diff)`.
    pub(crate) size: u32,
    /// `DIFF_*` flags.
    pub(crate) flags: u32,
    /// The array's number.
    pub(crate) index: u32,
    /// A volume.
    pub(crate) id: u32,
    /// The volume to compare it with.
    pub(crate) other: u32,
    /// Out: how it was answered, a `DIFF_BY_*`.
    pub(crate) how: u32,
    /// First block compared.
    pub(crate) start: u64,
    /// Blocks compared.
    pub(crate) nr_blocks: u64,
    /// User address of the bit map.
    pub(crate) bitmap: u64,
    /// Out: blocks that differ.
    pub(crate) changed: u64,
    /// Must be 0.
    pub(crate) reserved: u64,
}

impl Diff {
    /// Checks the structure passed by user space.
    pub(crate) fn check(&self) -> Result<(), AbiError> {
        check::<Self>(self.size, self.flags, DIFF_MAPS, self.reserved == 0)
    }
}
