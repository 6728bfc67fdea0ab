/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One-line wrappers over kernel inline functions, macros and __force
 * constants that bindgen cannot reach.  No logic lives here: the Rust layer
 * in blk/ is the only caller.
 */
#ifndef STRIA_HELPERS_H
#define STRIA_HELPERS_H

#include <linux/bio.h>
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/sched/mm.h>
#include <linux/workqueue.h>

struct gendisk *stria_blk_mq_alloc_disk(struct blk_mq_tag_set *set,
					struct queue_limits *lim,
					void *queuedata);
struct bio_vec stria_bio_iter_iovec(struct bio *bio, struct bvec_iter iter);
void stria_bio_advance_iter_single(const struct bio *bio,
				   struct bvec_iter *iter, unsigned int bytes);
sector_t stria_bdev_nr_sectors(struct block_device *bdev);
unsigned int stria_bdev_logical_block_size(struct block_device *bdev);
dev_t stria_bdev_dev(struct block_device *bdev);
void *stria_disk_queuedata(struct gendisk *disk);

blk_mode_t stria_blk_open_read_write_excl(void);
blk_features_t stria_blk_feat_write_cache_fua(void);
gfp_t stria_gfp_noio(void);
void *stria_kmap_local_page(struct page *page);
void stria_kunmap_local(const void *addr);
void stria_memzero_bvec(struct bio_vec *bvec);
unsigned int stria_memalloc_noio_save(void);
void stria_memalloc_noio_restore(unsigned int flags);
void stria_cond_resched(void);
struct workqueue_struct *stria_alloc_workqueue(const char *name,
					       unsigned int flags);

#endif /* STRIA_HELPERS_H */
