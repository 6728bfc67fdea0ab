// SPDX-License-Identifier: GPL-2.0
/*
 * One-line wrappers over kernel inline functions, macros and __force
 * constants that bindgen cannot reach.  See stria_helpers.h.
 */

#include "stria_helpers.h"

struct gendisk *stria_blk_mq_alloc_disk(struct blk_mq_tag_set *set,
					struct queue_limits *lim,
					void *queuedata)
{
	return blk_mq_alloc_disk(set, lim, queuedata);
}

struct bio_vec stria_bio_iter_iovec(struct bio *bio, struct bvec_iter iter)
{
	return bio_iter_iovec(bio, iter);
}

void stria_bio_advance_iter_single(const struct bio *bio,
				   struct bvec_iter *iter, unsigned int bytes)
{
	bio_advance_iter_single(bio, iter, bytes);
}

sector_t stria_bdev_nr_sectors(struct block_device *bdev)
{
	return bdev_nr_sectors(bdev);
}

unsigned int stria_bdev_logical_block_size(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}

dev_t stria_bdev_dev(struct block_device *bdev)
{
	return bdev->bd_dev;
}

void *stria_disk_queuedata(struct gendisk *disk)
{
	return disk->queue->queuedata;
}

blk_mode_t stria_blk_open_read_write_excl(void)
{
	return BLK_OPEN_READ | BLK_OPEN_WRITE | BLK_OPEN_EXCL;
}

blk_features_t stria_blk_feat_write_cache_fua(void)
{
	return BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA;
}

gfp_t stria_gfp_noio(void)
{
	return GFP_NOIO;
}

void *stria_kmap_local_page(struct page *page)
{
	return kmap_local_page(page);
}

void stria_kunmap_local(const void *addr)
{
	kunmap_local(addr);
}

void stria_memzero_bvec(struct bio_vec *bvec)
{
	memzero_bvec(bvec);
}

unsigned int stria_memalloc_noio_save(void)
{
	return memalloc_noio_save();
}

void stria_memalloc_noio_restore(unsigned int flags)
{
	memalloc_noio_restore(flags);
}

void stria_cond_resched(void)
{
	cond_resched();
}

struct workqueue_struct *stria_alloc_workqueue(const char *name,
					       unsigned int flags)
{
	return alloc_workqueue("%s", flags, 0, name);
}
