/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * stria: log-structured RAID volumes -- control ioctl ABI.
 *
 * All requests go to the misc device /dev/stria-control and need
 * CAP_SYS_ADMIN.  Every structure starts with its own size so that a caller
 * built against another revision is told EINVAL instead of being
 * misunderstood; reserved fields must be zero on input.
 */
#ifndef _UAPI_LINUX_STRIA_H
#define _UAPI_LINUX_STRIA_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define STRIA_CONTROL_NAME	"stria-control"
#define STRIA_MIN_MEMBERS	2
#define STRIA_MAX_MEMBERS	32
#define STRIA_MAX_ARRAYS	64
#define STRIA_PATH_MAX		256
#define STRIA_NAME_MAX		64
#define STRIA_VOLUME_NAME_MAX	32
#define STRIA_MAX_VOLUMES	64

/* Layouts reported by STRIA_IOC_STATUS. */
#define STRIA_LAYOUT_RAID0	0
#define STRIA_LAYOUT_LOG	1

/**
 * struct stria_assemble - build an array from member block devices
 * @size:	sizeof(struct stria_assemble)
 * @flags:	must be 0
 * @nr_members:	number of members, STRIA_MIN_MEMBERS..STRIA_MAX_MEMBERS
 * @index:	out: the array's number N, its volume is /dev/striaN
 * @paths:	user pointer to @nr_members slots of STRIA_PATH_MAX bytes,
 *		each a NUL-terminated path of a block device
 * @reserved:	must be 0
 */
struct stria_assemble {
	__u32 size;
	__u32 flags;
	__u32 nr_members;
	__u32 index;
	__u64 paths;
	__u64 reserved[4];
};

/**
 * struct stria_stop - stop an array and release its members
 * @size:	sizeof(struct stria_stop)
 * @flags:	must be 0
 * @index:	the array's number
 * @reserved:	must be 0
 */
struct stria_stop {
	__u32 size;
	__u32 flags;
	__u32 index;
	__u32 reserved;
};

/**
 * struct stria_member_info - one member as reported by STRIA_IOC_STATUS
 * @major:	device major number
 * @minor:	device minor number
 * @sectors:	size of the member in 512-byte sectors
 * @free_sectors: space in free chunks, in 512-byte sectors
 * @reserved:	zero
 */
struct stria_member_info {
	__u32 major;
	__u32 minor;
	__u64 sectors;
	__u64 free_sectors;
	__u64 reserved;
};

/**
 * struct stria_status - state of one array
 * @size:		sizeof(struct stria_status)
 * @flags:		must be 0
 * @index:		in: the array's number; ENOENT if there is none
 * @nr_members:		out: number of members
 * @layout:		out: STRIA_LAYOUT_*
 * @chunk_sectors:	out: strip size of the volume's group in 512-byte sectors
 * @open_count:		out: how many times the volume is open
 * @reserved0:		zero
 * @capacity_sectors:	out: size of the volume in 512-byte sectors
 * @reads:		out: read requests served
 * @writes:		out: write requests served
 * @flushes:		out: flush requests served
 * @errors:		out: requests failed with an I/O error
 * @array_uuid:		out: the array's UUID, from its superblocks
 * @name:		out: the array's name, NUL padded
 * @map_blocks:		out: blocks the volume's map points somewhere
 * @map_bytes:		out: memory the volume's map takes, in bytes
 * @stripes:		out: stripes written since assembly
 * @partial_stripes:	out: of those, stripes a flush wrote part full
 * @host_blocks:	out: 4 KiB blocks the volumes were written since assembly
 * @member_blocks:	out: 4 KiB blocks written to the members for them,
 *			headers, parity and mirror copies included; over
 *			@host_blocks, the write amplification
 * @pool_blocks:	out: member blocks stripes can use (whole chunks)
 * @free_blocks:	out: of those, blocks in free chunks
 * @live_blocks:	out: data blocks some volume's map points at
 * @reclaimable_blocks:	out: blocks collecting every stripe would free
 * @dying_blocks:	out: blocks of emptied stripes, free after the next flush
 * @raid_stripes:	out: stripes on the members by RAID type: 0, 1, 5, 6
 * @gc_stripes:		out: stripes free-space collection emptied since assembly
 * @gc_moved_blocks:	out: blocks it moved doing so
 * @members:		out: the first @nr_members entries describe the members
 */
struct stria_status {
	__u32 size;
	__u32 flags;
	__u32 index;
	__u32 nr_members;
	__u32 layout;
	__u32 chunk_sectors;
	__u32 open_count;
	__u32 reserved0;
	__u64 capacity_sectors;
	__u64 reads;
	__u64 writes;
	__u64 flushes;
	__u64 errors;
	__u8 array_uuid[16];
	char name[STRIA_NAME_MAX];
	__u64 map_blocks;
	__u64 map_bytes;
	__u64 stripes;
	__u64 partial_stripes;
	__u64 host_blocks;
	__u64 member_blocks;
	__u64 pool_blocks;
	__u64 free_blocks;
	__u64 live_blocks;
	__u64 reclaimable_blocks;
	__u64 dying_blocks;
	__u64 raid_stripes[4];
	__u64 gc_stripes;
	__u64 gc_moved_blocks;
	struct stria_member_info members[STRIA_MAX_MEMBERS];
};

#define STRIA_IOCTL_MAGIC	0xE6

#define STRIA_IOC_ASSEMBLE	_IOWR(STRIA_IOCTL_MAGIC, 0x00, struct stria_assemble)
#define STRIA_IOC_STOP		_IOW(STRIA_IOCTL_MAGIC, 0x01, struct stria_stop)
#define STRIA_IOC_STATUS	_IOWR(STRIA_IOCTL_MAGIC, 0x02, struct stria_status)

/* Operations of STRIA_IOC_VOLUME. */
#define STRIA_VOLUME_CREATE	1
#define STRIA_VOLUME_RESIZE	2
#define STRIA_VOLUME_DELETE	3
#define STRIA_VOLUME_COPY	4

/**
 * struct stria_volume - create, resize or delete a volume of an array
 * @size:		sizeof(struct stria_volume)
 * @flags:		must be 0
 * @index:		the array's number
 * @op:			STRIA_VOLUME_*
 * @id:			resize, delete: the volume's id, or 0 to name it by
 *			@name; create: out, the new volume's id; copy: in, the
 *			source's id (not 0), out, the copy's id
 * @form:		copy: the metadata form, a STRIA_COPY_FORM_*; 0 for
 *			the other operations
 * @size_sectors:	create, resize: the size in 512-byte sectors, a
 *			multiple of 8 and not 0 (volumes are thin: any size up
 *			to 2^40 4 KiB blocks, whatever the pool holds)
 * @name:		create, copy: the new volume's name, 1 to 31 characters
 *			out of [A-Za-z0-9._-], NUL padded, unique in the array;
 *			resize, delete: the name when @id is 0
 * @track:		copy: the form of the copy's divergence map, a
 *			STRIA_TRACK_*; 0 for the other operations
 * @reserved0:		must be 0
 * @reserved:		must be 0
 *
 * The volume table is on stable storage (every member's superblock) when
 * the call returns.  STRIA_VOLUME_COPY makes an instant copy of volume @id
 * (@size_sectors must be 0): writes to the source in flight are either all
 * in it or none, the source is flushed, and the copy - a volume of its own,
 * of the source's size - survives a power cut once the call returns.  Its
 * time does not depend on what the source holds.  Deleting a source keeps
 * its copies.  A volume that is open cannot be deleted (EBUSY).  Its
 * block device is /dev/striaN for volume id 1 and /dev/striaNvID for the
 * others, N being the array's number.
 */
struct stria_volume {
	__u32 size;
	__u32 flags;
	__u32 index;
	__u32 op;
	__u32 id;
	__u32 form;
	__u64 size_sectors;
	char name[STRIA_VOLUME_NAME_MAX];
	__u32 track;
	__u32 reserved0;
	__u64 reserved;
};
#define STRIA_IOC_VOLUME	_IOWR(STRIA_IOCTL_MAGIC, 0x03, struct stria_volume)

/**
 * struct stria_volume_info - one volume as reported by STRIA_IOC_VOLUMES
 * @id:			volume id, never reused in the array
 * @open_count:		how many times its block device is open
 * @size_sectors:	size in 512-byte sectors
 * @map_blocks:		blocks its map points somewhere
 * @map_bytes:		memory its map takes, in bytes
 * @name:		name, NUL padded
 * @disk:		block device name (without /dev/), NUL padded
 * @flags:		STRIA_VINFO_COPY for an instant copy
 * @parent_id:		the volume it is a copy of, 0 if none
 * @copy_seq:		log sequence number of the copy point, 0 if none
 * @shared_blocks:	mapped blocks another volume of its copy tree points
 *			at too (the rest are its own: deleting it frees them)
 * @shared_map_bytes:	bytes of its map shared with other volumes: directory
 *			pages, leaves and deltas (in @map_bytes)
 * @copy_form:		the metadata form recorded for a copy, a
 *			STRIA_COPY_FORM_* other than AUTO; 0 if not a copy
 * @deltas:		changed-block deltas over shared map pages in its map
 * @track:		a copy: the form its divergence map has now, a
 *			STRIA_TRACK_* (STRIA_TRACK_NONE if it has none); 0 if
 *			not a copy
 * @reserved0:		0
 * @track_bytes:	memory its divergence map takes, in bytes
 * @track_blocks:	blocks its divergence map marks as changed on either
 *			side since the copy point
 */
struct stria_volume_info {
	__u32 id;
	__u32 open_count;
	__u64 size_sectors;
	__u64 map_blocks;
	__u64 map_bytes;
	char name[STRIA_VOLUME_NAME_MAX];
	char disk[32];
	__u32 flags;
	__u32 parent_id;
	__u64 copy_seq;
	__u64 shared_blocks;
	__u64 shared_map_bytes;
	__u32 copy_form;
	__u32 deltas;
	__u32 track;
	__u32 reserved0;
	__u64 track_bytes;
	__u64 track_blocks;
};

/* Flags of struct stria_volume_info. */
#define STRIA_VINFO_COPY	1

/*
 * Copy metadata forms (struct stria_volume @form, struct
 * stria_volume_info @copy_form).  AUTO lets the driver pick by the size of
 * the source's map; FULL gives each side its own copy of a map page on its
 * first write there; CHANGED keeps pointers for the changed blocks only,
 * over the shared page, until they fill a small delta.
 */
#define STRIA_COPY_FORM_AUTO	0
#define STRIA_COPY_FORM_FULL	1
#define STRIA_COPY_FORM_CHANGED	2

/*
 * Divergence map forms (struct stria_volume @track, struct
 * stria_volume_info @track): where a copy and its source may differ since
 * the copy point, marked by the writes and trims of both, so that
 * STRIA_IOC_DIFF of the two looks only there.  AUTO lets the driver pick
 * by the volume's size and how much of the source is written; BITMAP is a
 * bit per block (volumes up to 64 GiB); MULTI a pointer per GiB, a page of
 * pointers per GiB marked and a 64-byte bit map per 2 MiB marked (up to
 * 64 TiB); PARTIAL extent definitions for up to 62 areas of 2 MiB, each
 * pointing at its bit map, which become MULTI when more are marked.
 */
#define STRIA_TRACK_AUTO	0
#define STRIA_TRACK_NONE	1
#define STRIA_TRACK_BITMAP	2
#define STRIA_TRACK_MULTI	3
#define STRIA_TRACK_PARTIAL	4

/**
 * struct stria_volumes - list the volumes of an array
 * @size:		sizeof(struct stria_volumes)
 * @flags:		0, or STRIA_VOLUMES_NO_SHARING to leave @shared_blocks
 *			of every entry 0 instead of counting them (a pass over
 *			the maps of each copy tree)
 * @index:		the array's number; ENOENT if there is none
 * @nr_volumes:		out: number of valid entries in @volumes
 * @volumes:		out: the volumes, by id
 */
struct stria_volumes {
	__u32 size;
	__u32 flags;
	__u32 index;
	__u32 nr_volumes;
	struct stria_volume_info volumes[STRIA_MAX_VOLUMES];
};
#define STRIA_IOC_VOLUMES	_IOWR(STRIA_IOCTL_MAGIC, 0x04, struct stria_volumes)

/* Flags of struct stria_volumes. */
#define STRIA_VOLUMES_NO_SHARING	1

/* Flags of struct stria_gc. */
#define STRIA_GC_GREEDY		1

/**
 * struct stria_gc - run free-space collection on an array
 * @size:		sizeof(struct stria_gc)
 * @flags:		STRIA_GC_GREEDY ranks stripes by space gained alone
 *			rather than by cost-benefit
 * @index:		the array's number
 * @until_free_percent:	stop once this share of the pool is free, 1 to 100
 * @stripes:		out: stripes emptied
 * @freed_blocks:	out: 4 KiB member blocks freed
 * @reserved:		must be 0
 *
 * Returns when the target is met or no stripe is worth collecting (the
 * answer then says how far it got); what it freed is on stable storage.
 */
struct stria_gc {
	__u32 size;
	__u32 flags;
	__u32 index;
	__u32 until_free_percent;
	__u64 stripes;
	__u64 freed_blocks;
	__u64 reserved[2];
};
#define STRIA_IOC_GC		_IOWR(STRIA_IOCTL_MAGIC, 0x05, struct stria_gc)

/* Most blocks one STRIA_IOC_DIFF compares: 1 GiB, a 32 KiB bit map. */
#define STRIA_DIFF_MAX_BLOCKS	262144

/**
 * struct stria_diff - where two volumes of an array differ
 * @size:		sizeof(struct stria_diff)
 * @flags:		0, or STRIA_DIFF_MAPS to compare the maps whole even
 *			where a divergence map could say where to look
 * @index:		the array's number
 * @id:			a volume
 * @other:		another volume of the same array
 * @how:		out: STRIA_DIFF_BY_TRACK if a divergence map of the
 *			two (one is a copy of the other) said where to
 *			compare, STRIA_DIFF_BY_MAPS if the maps were compared
 * @start:		first 4 KiB block to compare
 * @nr_blocks:		blocks to compare from @start, 1 to
 *			STRIA_DIFF_MAX_BLOCKS, within both volumes
 * @bitmap:		user address of (@nr_blocks + 7) / 8 bytes: bit i
 *			(bit i % 8 of byte i / 8) is set where block
 *			@start + i of the two volumes is not the same block
 * @changed:		out: bits set
 * @reserved:		must be 0
 *
 * For a copy and its source, or two copies of one volume, the set bits
 * are the blocks written or trimmed on either side since they parted: an
 * incremental backup reads only those.  Volumes of different copy trees
 * differ wherever either has written.  The answer is the same either
 * way: a divergence map only says where the maps need comparing.
 */
struct stria_diff {
	__u32 size;
	__u32 flags;
	__u32 index;
	__u32 id;
	__u32 other;
	__u32 how;
	__u64 start;
	__u64 nr_blocks;
	__u64 bitmap;
	__u64 changed;
	__u64 reserved;
};
#define STRIA_IOC_DIFF		_IOWR(STRIA_IOCTL_MAGIC, 0x06, struct stria_diff)

/* Flags and answers of struct stria_diff. */
#define STRIA_DIFF_MAPS		1
#define STRIA_DIFF_BY_TRACK	1
#define STRIA_DIFF_BY_MAPS	2

#endif /* _UAPI_LINUX_STRIA_H */
