// SPDX-License-Identifier: GPL-2.0

//! The control ioctl ABI of `include/uapi/linux/stria.h`, in Rust.
//!
//! Shared by the kernel module and the `stria` helper: both encode and decode
//! the structures field by field in native byte order, so neither needs to
//! reinterpret raw memory.  The helper's tests check every size, offset and
//! request number against the C header.

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

/// `STRIA_IOC_ASSEMBLE`.
pub(crate) const IOC_ASSEMBLE: u32 = ioc(IOC_READ | IOC_WRITE, 0, Assemble::SIZE);
/// `STRIA_IOC_STOP`.
pub(crate) const IOC_STOP: u32 = ioc(IOC_WRITE, 1, Stop::SIZE);
/// `STRIA_IOC_STATUS`.
pub(crate) const IOC_STATUS: u32 = ioc(IOC_READ | IOC_WRITE, 2, Status::SIZE);
/// `STRIA_IOC_VOLUME`.
pub(crate) const IOC_VOLUME: u32 = ioc(IOC_READ | IOC_WRITE, 3, Volume::SIZE);
/// `STRIA_IOC_VOLUMES`.
pub(crate) const IOC_VOLUMES: u32 = ioc(IOC_READ | IOC_WRITE, 4, Volumes::SIZE);
/// `STRIA_VOLUMES_NO_SHARING`.
pub(crate) const VOLUMES_NO_SHARING: u32 = 1;
/// `STRIA_IOC_GC`.
pub(crate) const IOC_GC: u32 = ioc(IOC_READ | IOC_WRITE, 5, Gc::SIZE);
/// `STRIA_GC_GREEDY`.
pub(crate) const GC_GREEDY: u32 = 1;
/// `STRIA_IOC_DIFF`.
pub(crate) const IOC_DIFF: u32 = ioc(IOC_READ | IOC_WRITE, 6, Diff::SIZE);
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

fn get_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        a.copy_from_slice(s);
    }
    u32::from_ne_bytes(a)
}

fn get_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_ne_bytes(a)
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = b.get_mut(off..off + 4) {
        s.copy_from_slice(&v.to_ne_bytes());
    }
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    if let Some(s) = b.get_mut(off..off + 8) {
        s.copy_from_slice(&v.to_ne_bytes());
    }
}

fn put_bytes(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(s) = b.get_mut(off..off + v.len()) {
        s.copy_from_slice(v);
    }
}

fn get_bytes(b: &[u8], off: usize, out: &mut [u8]) {
    if let Some(s) = b.get(off..off + out.len()) {
        out.copy_from_slice(s);
    }
}

/// The request part of a query (`size`, `flags`, then an array `index`).
fn decode_query(b: &[u8], size: usize) -> Result<u32, AbiError> {
    if get_u32(b, 0) as usize != size {
        return Err(AbiError::Size);
    }
    if get_u32(b, 4) != 0 {
        return Err(AbiError::Reserved);
    }
    Ok(get_u32(b, 8))
}

fn all_zero(b: &[u8], range: core::ops::Range<usize>) -> bool {
    b.get(range).is_some_and(|s| s.iter().all(|&x| x == 0))
}

/// `struct stria_assemble`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Assemble {
    /// Number of member path slots at `paths`.
    pub(crate) nr_members: u32,
    /// Out: the array's number.
    pub(crate) index: u32,
    /// User address of the path slots.
    pub(crate) paths: u64,
}

impl Assemble {
    /// `sizeof(struct stria_assemble)`.
    pub(crate) const SIZE: usize = 56;
    /// Offset of `index`, the only field written back.
    pub(crate) const INDEX_OFFSET: usize = 12;

    /// Decodes and checks the structure passed by user space.
    pub(crate) fn decode(b: &[u8; Self::SIZE]) -> Result<Self, AbiError> {
        if get_u32(b, 0) as usize != Self::SIZE {
            return Err(AbiError::Size);
        }
        if get_u32(b, 4) != 0 || !all_zero(b, 24..56) {
            return Err(AbiError::Reserved);
        }
        Ok(Self {
            nr_members: get_u32(b, 8),
            index: get_u32(b, 12),
            paths: get_u64(b, 16),
        })
    }

    /// Encodes the structure as user space passes it.
    pub(crate) fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u32(&mut b, 0, Self::SIZE as u32);
        put_u32(&mut b, 8, self.nr_members);
        put_u32(&mut b, 12, self.index);
        put_u64(&mut b, 16, self.paths);
        b
    }
}

/// `struct stria_stop`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stop {
    /// The array's number.
    pub(crate) index: u32,
}

impl Stop {
    /// `sizeof(struct stria_stop)`.
    pub(crate) const SIZE: usize = 16;

    /// Decodes and checks the structure passed by user space.
    pub(crate) fn decode(b: &[u8; Self::SIZE]) -> Result<Self, AbiError> {
        if get_u32(b, 0) as usize != Self::SIZE {
            return Err(AbiError::Size);
        }
        if get_u32(b, 4) != 0 || get_u32(b, 12) != 0 {
            return Err(AbiError::Reserved);
        }
        Ok(Self {
            index: get_u32(b, 8),
        })
    }

    /// Encodes the structure as user space passes it.
    pub(crate) fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u32(&mut b, 0, Self::SIZE as u32);
        put_u32(&mut b, 8, self.index);
        b
    }
}

/// `struct stria_member_info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MemberInfo {
    /// Device major number.
    pub(crate) major: u32,
    /// Device minor number.
    pub(crate) minor: u32,
    /// Size in 512-byte sectors.
    pub(crate) sectors: u64,
    /// Space not yet handed to stripes, in 512-byte sectors.
    pub(crate) free_sectors: u64,
}

impl MemberInfo {
    /// `sizeof(struct stria_member_info)`.
    pub(crate) const SIZE: usize = 32;
    /// Offset of `free_sectors`.
    pub(crate) const FREE_OFFSET: usize = 16;
}

/// `struct stria_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Status {
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

impl Default for Status {
    fn default() -> Self {
        Self {
            index: 0,
            nr_members: 0,
            layout: 0,
            chunk_sectors: 0,
            open_count: 0,
            capacity_sectors: 0,
            reads: 0,
            writes: 0,
            flushes: 0,
            errors: 0,
            array_uuid: [0; 16],
            name: [0; NAME_MAX],
            map_blocks: 0,
            map_bytes: 0,
            stripes: 0,
            partial_stripes: 0,
            host_blocks: 0,
            member_blocks: 0,
            pool_blocks: 0,
            free_blocks: 0,
            live_blocks: 0,
            reclaimable_blocks: 0,
            dying_blocks: 0,
            raid_stripes: [0; 4],
            gc_stripes: 0,
            gc_moved_blocks: 0,
            members: [MemberInfo::default(); MAX_MEMBERS as usize],
        }
    }
}

impl Status {
    /// `sizeof(struct stria_status)`.
    pub(crate) const SIZE: usize = 288 + MAX_MEMBERS as usize * MemberInfo::SIZE;
    const UUID_OFFSET: usize = 72;
    const NAME_OFFSET: usize = 88;
    /// Offset of `map_blocks`; `map_bytes`, `stripes`, `partial_stripes`,
    /// `host_blocks` and `member_blocks` follow, 8 bytes each.
    pub(crate) const MAP_BLOCKS_OFFSET: usize = 152;
    /// Offset of `pool_blocks`; the space and collection fields follow, 8
    /// bytes each, `raid_stripes` taking four.
    pub(crate) const POOL_OFFSET: usize = 200;
    const MEMBERS_OFFSET: usize = 288;

    /// The fields from `pool_blocks` on, in order.
    fn space_fields(&self) -> [u64; 11] {
        let r = &self.raid_stripes;
        [
            self.pool_blocks,
            self.free_blocks,
            self.live_blocks,
            self.reclaimable_blocks,
            self.dying_blocks,
            r[0],
            r[1],
            r[2],
            r[3],
            self.gc_stripes,
            self.gc_moved_blocks,
        ]
    }

    /// Decodes the request part (`size`, `flags`, `index`) from user space.
    pub(crate) fn decode_request(b: &[u8; Self::SIZE]) -> Result<u32, AbiError> {
        decode_query(b, Self::SIZE)
    }

    /// Encodes the whole structure.
    pub(crate) fn encode(&self, b: &mut [u8; Self::SIZE]) {
        b.fill(0);
        put_u32(b, 0, Self::SIZE as u32);
        put_u32(b, 8, self.index);
        put_u32(b, 12, self.nr_members);
        put_u32(b, 16, self.layout);
        put_u32(b, 20, self.chunk_sectors);
        put_u32(b, 24, self.open_count);
        put_u64(b, 32, self.capacity_sectors);
        put_u64(b, 40, self.reads);
        put_u64(b, 48, self.writes);
        put_u64(b, 56, self.flushes);
        put_u64(b, 64, self.errors);
        put_bytes(b, Self::UUID_OFFSET, &self.array_uuid);
        put_bytes(b, Self::NAME_OFFSET, &self.name);
        put_u64(b, Self::MAP_BLOCKS_OFFSET, self.map_blocks);
        put_u64(b, Self::MAP_BLOCKS_OFFSET + 8, self.map_bytes);
        put_u64(b, Self::MAP_BLOCKS_OFFSET + 16, self.stripes);
        put_u64(b, Self::MAP_BLOCKS_OFFSET + 24, self.partial_stripes);
        put_u64(b, Self::MAP_BLOCKS_OFFSET + 32, self.host_blocks);
        put_u64(b, Self::MAP_BLOCKS_OFFSET + 40, self.member_blocks);
        for (i, v) in self.space_fields().iter().enumerate() {
            put_u64(b, Self::POOL_OFFSET + 8 * i, *v);
        }
        let mut off = Self::MEMBERS_OFFSET;
        for m in &self.members {
            put_u32(b, off, m.major);
            put_u32(b, off + 4, m.minor);
            put_u64(b, off + 8, m.sectors);
            put_u64(b, off + MemberInfo::FREE_OFFSET, m.free_sectors);
            off += MemberInfo::SIZE;
        }
    }

    /// Decodes the whole structure, as the helper reads the kernel's answer.
    pub(crate) fn decode(b: &[u8; Self::SIZE]) -> Result<Self, AbiError> {
        if get_u32(b, 0) as usize != Self::SIZE {
            return Err(AbiError::Size);
        }
        let mut s = Self {
            index: get_u32(b, 8),
            nr_members: get_u32(b, 12),
            layout: get_u32(b, 16),
            chunk_sectors: get_u32(b, 20),
            open_count: get_u32(b, 24),
            capacity_sectors: get_u64(b, 32),
            reads: get_u64(b, 40),
            writes: get_u64(b, 48),
            flushes: get_u64(b, 56),
            errors: get_u64(b, 64),
            map_blocks: get_u64(b, Self::MAP_BLOCKS_OFFSET),
            map_bytes: get_u64(b, Self::MAP_BLOCKS_OFFSET + 8),
            stripes: get_u64(b, Self::MAP_BLOCKS_OFFSET + 16),
            partial_stripes: get_u64(b, Self::MAP_BLOCKS_OFFSET + 24),
            host_blocks: get_u64(b, Self::MAP_BLOCKS_OFFSET + 32),
            member_blocks: get_u64(b, Self::MAP_BLOCKS_OFFSET + 40),
            ..Self::default()
        };
        let f = |i: usize| get_u64(b, Self::POOL_OFFSET + 8 * i);
        s.pool_blocks = f(0);
        s.free_blocks = f(1);
        s.live_blocks = f(2);
        s.reclaimable_blocks = f(3);
        s.dying_blocks = f(4);
        s.raid_stripes = [f(5), f(6), f(7), f(8)];
        s.gc_stripes = f(9);
        s.gc_moved_blocks = f(10);
        get_bytes(b, Self::UUID_OFFSET, &mut s.array_uuid);
        get_bytes(b, Self::NAME_OFFSET, &mut s.name);
        let mut off = Self::MEMBERS_OFFSET;
        for m in s.members.iter_mut() {
            *m = MemberInfo {
                major: get_u32(b, off),
                minor: get_u32(b, off + 4),
                sectors: get_u64(b, off + 8),
                free_sectors: get_u64(b, off + MemberInfo::FREE_OFFSET),
            };
            off += MemberInfo::SIZE;
        }
        Ok(s)
    }
}

/// `struct stria_volume`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Volume {
    /// The array's number.
    pub(crate) index: u32,
    /// One of the `VOLUME_*` operations.
    pub(crate) op: u32,
    /// The volume's id (0: by name); out for create.
    pub(crate) id: u32,
    /// Copy: a `COPY_FORM_*`; 0 for the other operations.
    pub(crate) form: u32,
    /// Copy: a `TRACK_*`; 0 for the other operations.
    pub(crate) track: u32,
    /// Size in 512-byte sectors.
    pub(crate) size_sectors: u64,
    /// Name, NUL padded.
    pub(crate) name: [u8; VOLUME_NAME_MAX],
}

impl Volume {
    /// `sizeof(struct stria_volume)`.
    pub(crate) const SIZE: usize = 80;
    /// Offset of `id`, the only field written back.
    pub(crate) const ID_OFFSET: usize = 16;
    const NAME_OFFSET: usize = 32;

    /// Decodes and checks the structure passed by user space.
    pub(crate) fn decode(b: &[u8; Self::SIZE]) -> Result<Self, AbiError> {
        if get_u32(b, 0) as usize != Self::SIZE {
            return Err(AbiError::Size);
        }
        if get_u32(b, 4) != 0 || !all_zero(b, 68..80) {
            return Err(AbiError::Reserved);
        }
        let mut v = Self {
            index: get_u32(b, 8),
            op: get_u32(b, 12),
            id: get_u32(b, 16),
            form: get_u32(b, 20),
            track: get_u32(b, 64),
            size_sectors: get_u64(b, 24),
            ..Self::default()
        };
        get_bytes(b, Self::NAME_OFFSET, &mut v.name);
        Ok(v)
    }

    /// Encodes the structure as user space passes it.
    pub(crate) fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u32(&mut b, 0, Self::SIZE as u32);
        put_u32(&mut b, 8, self.index);
        put_u32(&mut b, 12, self.op);
        put_u32(&mut b, 16, self.id);
        put_u32(&mut b, 20, self.form);
        put_u64(&mut b, 24, self.size_sectors);
        put_bytes(&mut b, Self::NAME_OFFSET, &self.name);
        put_u32(&mut b, 64, self.track);
        b
    }
}

/// `struct stria_gc`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Gc {
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
}

impl Gc {
    /// `sizeof(struct stria_gc)`.
    pub(crate) const SIZE: usize = 48;

    /// Decodes and checks the structure passed by user space.
    pub(crate) fn decode(b: &[u8; Self::SIZE]) -> Result<Self, AbiError> {
        if get_u32(b, 0) as usize != Self::SIZE {
            return Err(AbiError::Size);
        }
        if get_u32(b, 4) & !GC_GREEDY != 0 || !all_zero(b, 32..48) {
            return Err(AbiError::Reserved);
        }
        Ok(Self {
            flags: get_u32(b, 4),
            index: get_u32(b, 8),
            until_free_percent: get_u32(b, 12),
            stripes: get_u64(b, 16),
            freed_blocks: get_u64(b, 24),
        })
    }

    /// Encodes the structure.
    pub(crate) fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u32(&mut b, 0, Self::SIZE as u32);
        put_u32(&mut b, 4, self.flags);
        put_u32(&mut b, 8, self.index);
        put_u32(&mut b, 12, self.until_free_percent);
        put_u64(&mut b, 16, self.stripes);
        put_u64(&mut b, 24, self.freed_blocks);
        b
    }
}

/// `struct stria_diff`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Diff {
    /// `DIFF_*` flags.
    pub(crate) flags: u32,
    /// The array's number.
    pub(crate) index: u32,
    /// A volume.
    pub(crate) id: u32,
    /// The volume to compare it with.
    pub(crate) other: u32,
    /// First block compared.
    pub(crate) start: u64,
    /// Blocks compared.
    pub(crate) nr_blocks: u64,
    /// User address of the bit map.
    pub(crate) bitmap: u64,
    /// Out: blocks that differ.
    pub(crate) changed: u64,
    /// Out: how it was answered, a `DIFF_BY_*`.
    pub(crate) how: u32,
}

impl Diff {
    /// `sizeof(struct stria_diff)`.
    pub(crate) const SIZE: usize = 64;

    /// Decodes and checks the structure passed by user space.
    pub(crate) fn decode(b: &[u8; Self::SIZE]) -> Result<Self, AbiError> {
        if get_u32(b, 0) as usize != Self::SIZE {
            return Err(AbiError::Size);
        }
        let flags = get_u32(b, 4);
        if flags & !DIFF_MAPS != 0 || !all_zero(b, 56..64) {
            return Err(AbiError::Reserved);
        }
        Ok(Self {
            flags,
            how: get_u32(b, 20),
            index: get_u32(b, 8),
            id: get_u32(b, 12),
            other: get_u32(b, 16),
            start: get_u64(b, 24),
            nr_blocks: get_u64(b, 32),
            bitmap: get_u64(b, 40),
            changed: get_u64(b, 48),
        })
    }

    /// Encodes the structure.
    pub(crate) fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u32(&mut b, 0, Self::SIZE as u32);
        put_u32(&mut b, 8, self.index);
        put_u32(&mut b, 12, self.id);
        put_u32(&mut b, 4, self.flags);
        put_u32(&mut b, 16, self.other);
        put_u32(&mut b, 20, self.how);
        put_u64(&mut b, 24, self.start);
        put_u64(&mut b, 32, self.nr_blocks);
        put_u64(&mut b, 40, self.bitmap);
        put_u64(&mut b, 48, self.changed);
        b
    }
}

/// `struct stria_volume_info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
    /// Bytes of memory its divergence map takes.
    pub(crate) track_bytes: u64,
    /// Blocks its divergence map marks as changed on either side.
    pub(crate) track_blocks: u64,
}

impl VolumeInfo {
    /// `sizeof(struct stria_volume_info)`.
    pub(crate) const SIZE: usize = 160;
}

/// `struct stria_volumes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Volumes {
    /// The array's number.
    pub(crate) index: u32,
    /// Valid entries in `volumes`.
    pub(crate) nr_volumes: u32,
    /// The volumes.
    pub(crate) volumes: [VolumeInfo; MAX_VOLUMES],
}

impl Default for Volumes {
    fn default() -> Self {
        Self {
            index: 0,
            nr_volumes: 0,
            volumes: [VolumeInfo::default(); MAX_VOLUMES],
        }
    }
}

impl Volumes {
    /// `sizeof(struct stria_volumes)`.
    pub(crate) const SIZE: usize = 16 + MAX_VOLUMES * VolumeInfo::SIZE;
    const VOLUMES_OFFSET: usize = 16;

    /// Decodes the request part (`size`, `flags`, `index`) from user space.
    pub(crate) fn decode_request(b: &[u8; Self::SIZE]) -> Result<(u32, u32), AbiError> {
        if get_u32(b, 0) as usize != Self::SIZE {
            return Err(AbiError::Size);
        }
        let flags = get_u32(b, 4);
        if flags & !VOLUMES_NO_SHARING != 0 {
            return Err(AbiError::Reserved);
        }
        Ok((get_u32(b, 8), flags))
    }

    /// Encodes the whole structure.
    pub(crate) fn encode(&self, b: &mut [u8; Self::SIZE]) {
        b.fill(0);
        Self::encode_head(b, self.index, self.nr_volumes);
        for (i, v) in self.volumes.iter().enumerate() {
            Self::encode_info(b, i, v);
        }
    }

    /// Encodes a request for array `index` with `flags`
    /// (`STRIA_VOLUMES_*`).
    pub(crate) fn encode_request(b: &mut [u8; Self::SIZE], index: u32, flags: u32) {
        b.fill(0);
        Self::encode_head(b, index, 0);
        put_u32(b, 4, flags);
    }

    /// Encodes everything but the entries, with flags zero.
    pub(crate) fn encode_head(b: &mut [u8; Self::SIZE], index: u32, nr_volumes: u32) {
        put_u32(b, 0, Self::SIZE as u32);
        put_u32(b, 4, 0);
        put_u32(b, 8, index);
        put_u32(b, 12, nr_volumes);
    }

    /// Encodes entry `i` (ignored beyond the last).
    pub(crate) fn encode_info(b: &mut [u8; Self::SIZE], i: usize, v: &VolumeInfo) {
        if i >= MAX_VOLUMES {
            return;
        }
        let off = Self::VOLUMES_OFFSET + i * VolumeInfo::SIZE;
        put_u32(b, off, v.id);
        put_u32(b, off + 4, v.open_count);
        put_u64(b, off + 8, v.size_sectors);
        put_u64(b, off + 16, v.map_blocks);
        put_u64(b, off + 24, v.map_bytes);
        put_bytes(b, off + 32, &v.name);
        put_bytes(b, off + 64, &v.disk);
        put_u32(b, off + 96, v.flags);
        put_u32(b, off + 100, v.parent_id);
        put_u64(b, off + 104, v.copy_seq);
        put_u64(b, off + 112, v.shared_blocks);
        put_u64(b, off + 120, v.shared_map_bytes);
        put_u32(b, off + 128, v.copy_form);
        put_u32(b, off + 132, v.deltas);
        put_u32(b, off + 136, v.track);
        put_u64(b, off + 144, v.track_bytes);
        put_u64(b, off + 152, v.track_blocks);
    }

    /// Decodes the whole structure, as the helper reads the kernel's answer.
    pub(crate) fn decode(b: &[u8; Self::SIZE]) -> Result<Self, AbiError> {
        if get_u32(b, 0) as usize != Self::SIZE {
            return Err(AbiError::Size);
        }
        let mut s = Self {
            index: get_u32(b, 8),
            nr_volumes: get_u32(b, 12),
            ..Self::default()
        };
        let mut off = Self::VOLUMES_OFFSET;
        for v in s.volumes.iter_mut() {
            v.id = get_u32(b, off);
            v.open_count = get_u32(b, off + 4);
            v.size_sectors = get_u64(b, off + 8);
            v.map_blocks = get_u64(b, off + 16);
            v.map_bytes = get_u64(b, off + 24);
            get_bytes(b, off + 32, &mut v.name);
            get_bytes(b, off + 64, &mut v.disk);
            v.flags = get_u32(b, off + 96);
            v.parent_id = get_u32(b, off + 100);
            v.copy_seq = get_u64(b, off + 104);
            v.shared_blocks = get_u64(b, off + 112);
            v.shared_map_bytes = get_u64(b, off + 120);
            v.copy_form = get_u32(b, off + 128);
            v.deltas = get_u32(b, off + 132);
            v.track = get_u32(b, off + 136);
            v.track_bytes = get_u64(b, off + 144);
            v.track_blocks = get_u64(b, off + 152);
            off += VolumeInfo::SIZE;
        }
        Ok(s)
    }
}
