// SPDX-License-Identifier: GPL-2.0

//! Where a copy and its source may differ since the copy point: the
//! copy's divergence map.
//!
//! Every write or trim of either side marks the blocks it changes, so that
//! comparing the two (`stria copy diff`, an incremental backup) looks only
//! where something was marked instead of walking both maps. A map that
//! cannot say (memory was short when an area was first marked) says
//! "anything here may differ" for that area or for the whole volume, and
//! the comparison falls back to the maps there: a mark is a hint of where
//! to look, never the answer, so a lost mark costs time, not a wrong diff.
//!
//! A divergence map is two records ([`Marks`]): what the copy changed,
//! which the copy's map marks, and what the source changed, which the
//! source's map marks. Copies taken while the source's newest record is
//! still clean read that one record, so a source with many copies marks
//! one record per write, not one per copy; each record has one writer.

use kernel::prelude::*;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Relaxed;
use kernel::sync::Arc;

pub(crate) use super::marks::AreaState;
pub(crate) use super::marks::Form;
pub(crate) use super::marks::Marks;
pub(crate) use super::marks::Stats;
pub(crate) use super::marks::AREA_BLOCKS;
pub(crate) use super::marks::BITMAP_MAX_BLOCKS;
pub(crate) use super::marks::MULTI_MAX_BLOCKS;

use super::marks::words_of;

/// The divergence map of a copy and its source.
pub(crate) struct Divergence {
    /// The copy's volume id.
    pub(crate) copy: u32,
    /// Its source's.
    pub(crate) source: u32,
    /// Non-zero once the copy is gone.
    dead: Atomic<u32>,
    /// What the copy changed; the copy's map marks it.
    mine: Arc<Marks>,
    /// What the source changed; the source's map marks it, maybe for
    /// other copies too.
    theirs: Arc<Marks>,
}

impl Divergence {
    /// An empty divergence map of `form` for copy `copy` of `source`, of
    /// `blocks` blocks, reading `shared` as the source's side where it
    /// [fits](Marks::fits). `EINVAL` where the form does not take a
    /// volume that large.
    pub(crate) fn new(
        copy: u32,
        source: u32,
        blocks: u64,
        form: Form,
        shared: Option<Arc<Marks>>,
    ) -> Result<Arc<Self>> {
        let mine = Marks::new(copy, blocks, form)?;
        let theirs = match shared {
            Some(s) if s.fits(source, blocks, form) => s,
            _ => Marks::new(source, blocks, form)?,
        };
        let d = Arc::new(
            Divergence {
                copy,
                source,
                dead: Atomic::new(0),
                mine,
                theirs,
            },
            GFP_KERNEL,
        )?;
        d.theirs.add_user();
        Ok(d)
    }

    /// Marks blocks `lba .. lba + n` as changed by the copy, whose map's
    /// lock the caller holds (or that nothing else reaches yet). Does not
    /// sleep.
    pub(crate) fn mark(&self, lba: u64, n: u64) {
        self.mine.mark(lba, n);
    }

    /// The record the source's map marks.
    pub(crate) fn source_side(&self) -> &Arc<Marks> {
        &self.theirs
    }

    /// Says that the copy is gone: it no longer reads the source's side.
    /// (Dropping it does too.)
    pub(crate) fn kill(&self) {
        if self.dead.xchg(1, Relaxed) == 0 {
            self.theirs.drop_user();
        }
    }

    /// Whether both sides are still there.
    pub(crate) fn live(&self) -> bool {
        self.dead.load(Relaxed) == 0 && self.theirs.marking()
    }

    /// What it knows of area `a` (blocks `a * AREA_BLOCKS ..`).
    pub(crate) fn area(&self, a: u64) -> AreaState {
        match (self.mine.area(a), self.theirs.area(a)) {
            (AreaState::All, _) | (_, AreaState::All) => AreaState::All,
            (AreaState::Clean, s) | (s, AreaState::Clean) => s,
            (AreaState::Bits(mut x), AreaState::Bits(y)) => {
                for (w, v) in x.iter_mut().zip(y.iter()) {
                    *w |= v;
                }
                AreaState::Bits(x)
            }
        }
    }

    /// The first area at or after `a` and below `end` that is not clean.
    pub(crate) fn next_area(&self, a: u64, end: u64) -> Option<u64> {
        match (self.mine.next_area(a, end), self.theirs.next_area(a, end)) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        }
    }

    /// The end of the run of areas from `a`, one that may differ
    /// anywhere, that may all differ anywhere: compared as one run, they
    /// pass over what both maps share as whole pages.
    pub(crate) fn all_until(&self, a: u64) -> u64 {
        // A run either side says may all differ may all differ.
        self.mine.all_until(a).max(self.theirs.all_until(a))
    }

    /// Its form, size and marks. The source's side counts in full in
    /// every copy that reads it.
    pub(crate) fn stats(&self) -> Stats {
        let (m, t) = (self.mine.stats(), self.theirs.stats());
        let form = match (m.form, t.form) {
            (Some(Form::Multi), Some(_)) | (Some(_), Some(Form::Multi)) => Some(Form::Multi),
            (Some(f), Some(_)) => Some(f),
            _ => None,
        };
        let marked = if m.marked == 0 || t.marked == 0 || form.is_none() {
            m.marked.max(t.marked)
        } else {
            self.union_marked()
        };
        Stats {
            form,
            bytes: m.bytes.saturating_add(t.bytes),
            marked,
        }
    }

    /// Blocks either side marked, counted area by area. (A partial last
    /// area counts whole.)
    fn union_marked(&self) -> u64 {
        let blocks = self.mine.blocks;
        let areas = blocks.div_ceil(AREA_BLOCKS);
        let mut n = 0u64;
        let mut a = 0;
        while let Some(x) = self.next_area(a, areas) {
            a = x + 1;
            match self.area(x) {
                AreaState::Clean => {}
                AreaState::Bits(w) => n += words_of(&w),
                AreaState::All => {
                    let stop = self.all_until(x).clamp(x + 1, areas);
                    let hi = stop.saturating_mul(AREA_BLOCKS).min(blocks);
                    n += hi.saturating_sub(x * AREA_BLOCKS);
                    a = stop;
                }
            }
        }
        n
    }
}

impl Drop for Divergence {
    fn drop(&mut self) {
        self.kill();
    }
}

// A failed assertion is the test failing; the tables under test are built
// here, not read from a member.
#[allow(clippy::indexing_slicing, clippy::panic)]
#[kernel::prelude::kunit_tests(stria_diverge)]
mod tests {
    use super::*;
    use crate::map::marks::multi_top_bytes;
    use crate::map::marks::AREA_BYTES;
    use crate::map::marks::AREA_WORDS;
    use crate::map::marks::BITMAP_AUTO_BLOCKS;
    use crate::map::marks::GROUP_AREAS;
    use crate::map::marks::GROUP_BLOCKS;
    use crate::map::marks::GROUP_BYTES;
    use crate::map::marks::PARTIAL_AREAS;

    /// A reference bit per block, and a cheap generator of marks.
    struct Model {
        bits: KVec<u64>,
        seed: u64,
    }

    impl Model {
        fn new(blocks: u64) -> Result<Self> {
            Ok(Model {
                bits: KVec::from_elem(0u64, blocks.div_ceil(64) as usize, GFP_KERNEL)?,
                seed: 0x9e37_79b9_7f4a_7c15,
            })
        }

        fn next(&mut self) -> u64 {
            self.seed ^= self.seed << 13;
            self.seed ^= self.seed >> 7;
            self.seed ^= self.seed << 17;
            self.seed
        }

        fn mark(&mut self, lba: u64, n: u64) {
            for b in lba..lba + n {
                if let Some(w) = self.bits.get_mut((b / 64) as usize) {
                    *w |= 1 << (b % 64);
                }
            }
        }

        fn is_set(&self, b: u64) -> bool {
            self.bits
                .get((b / 64) as usize)
                .is_some_and(|w| w & (1 << (b % 64)) != 0)
        }
    }

    /// Every block the model marked is marked or in an area that may
    /// differ anywhere; where the map keeps bits they are exact; and
    /// `next_area` finds exactly the areas that are not clean.
    fn agrees(d: &Divergence, m: &Model, blocks: u64) -> bool {
        let areas = blocks.div_ceil(AREA_BLOCKS);
        let mut expect_next = None;
        for a in (0..areas).rev() {
            let st = d.area(a);
            for i in 0..AREA_BLOCKS {
                let b = a * AREA_BLOCKS + i;
                if b >= blocks {
                    break;
                }
                let want = m.is_set(b);
                let ok = match st {
                    AreaState::Clean => !want,
                    AreaState::All => true,
                    AreaState::Bits(w) => {
                        let got = w
                            .get((i / 64) as usize)
                            .is_some_and(|x| x & (1 << (i % 64)) != 0);
                        got == want
                    }
                };
                if !ok {
                    pr_err!("area {} block {}: {:?} against {}\n", a, b, st, want);
                    return false;
                }
            }
            if st != AreaState::Clean {
                expect_next = Some(a);
            }
            if d.next_area(a, areas) != expect_next {
                pr_err!("next_area({}) is {:?}\n", a, d.next_area(a, areas));
                return false;
            }
        }
        true
    }

    fn random_marks(form: Form, blocks: u64, rounds: u32, span: u64) -> Result<(bool, Stats)> {
        let d = Divergence::new(2, 1, blocks, form, None)?;
        let mut m = Model::new(blocks)?;
        for _ in 0..rounds {
            let lba = m.next() % blocks;
            let n = (m.next() % span + 1).min(blocks - lba);
            // Either side: the map is both records together.
            if m.next() % 2 == 0 {
                d.mark(lba, n);
            } else {
                d.source_side().mark(lba, n);
            }
            m.mark(lba, n);
        }
        Ok((agrees(&d, &m, blocks), d.stats()))
    }

    #[test]
    fn every_form_keeps_every_mark() -> Result {
        // 1 GiB and a little: a partial last area.
        let blocks = GROUP_BLOCKS + 100;
        for form in [Form::Bitmap, Form::Multi, Form::Partial] {
            let (ok, st) = random_marks(form, blocks, 300, 40)?;
            assert!(ok);
            assert!(st.marked > 0);
        }
        Ok(())
    }

    #[test]
    fn bits_are_exact_where_kept() -> Result {
        let blocks = 4 * GROUP_BLOCKS;
        let d = Divergence::new(2, 1, blocks, Form::Multi, None)?;
        d.mark(5, 3);
        d.mark(GROUP_BLOCKS * 3 + 511, 1);
        let mut want = [0u64; AREA_WORDS];
        want[0] = 0b1110_0000;
        assert_eq!(d.area(0), AreaState::Bits(want));
        assert_eq!(d.area(1), AreaState::Clean);
        let mut last = [0u64; AREA_WORDS];
        last[7] = 1 << 63;
        assert_eq!(d.area(3 * GROUP_AREAS as u64), AreaState::Bits(last));
        assert_eq!(
            d.next_area(1, 4 * GROUP_AREAS as u64),
            Some(3 * GROUP_AREAS as u64)
        );
        let st = d.stats();
        assert_eq!(st.marked, 4);
        // Two groups of 4 KiB and two area bit maps over the top level,
        // and the source's side, clean: its top level.
        assert_eq!(
            st.bytes,
            2 * multi_top_bytes(blocks) + 2 * GROUP_BYTES + 2 * AREA_BYTES
        );
        Ok(())
    }

    #[test]
    fn a_whole_gib_needs_no_bit_maps() -> Result {
        let blocks = 4 * GROUP_BLOCKS;
        let d = Divergence::new(2, 1, blocks, Form::Multi, None)?;
        d.mark(GROUP_BLOCKS + 7, 1);
        d.mark(GROUP_BLOCKS, GROUP_BLOCKS);
        let st = d.stats();
        assert_eq!(st.marked, GROUP_BLOCKS);
        assert_eq!(st.bytes, 2 * multi_top_bytes(blocks));
        assert_eq!(d.area(GROUP_AREAS as u64 + 9), AreaState::All);
        assert_eq!(
            d.next_area(0, 4 * GROUP_AREAS as u64),
            Some(GROUP_AREAS as u64)
        );
        assert_eq!(
            d.next_area(2 * GROUP_AREAS as u64, 4 * GROUP_AREAS as u64),
            None
        );
        // The GiB is one run to compare whole; past the end, everything.
        let gib = GROUP_AREAS as u64;
        assert_eq!(d.all_until(gib + 9), 2 * gib);
        assert_eq!(d.all_until(0), 1);
        assert_eq!(d.all_until(4 * gib), u64::MAX);
        Ok(())
    }

    #[test]
    fn a_full_table_becomes_multi_level() -> Result {
        let blocks = 8 * GROUP_BLOCKS;
        let d = Divergence::new(2, 1, blocks, Form::Partial, None)?;
        let mut m = Model::new(blocks)?;
        for k in 0..PARTIAL_AREAS as u64 {
            // Areas spread over the volume, one block each.
            let b = (k * 37 % 4096) * AREA_BLOCKS + k;
            d.mark(b, 1);
            m.mark(b, 1);
        }
        assert_eq!(d.stats().form, Some(Form::Partial));
        assert!(agrees(&d, &m, blocks));
        let b = 4095 * AREA_BLOCKS + 3;
        d.mark(b, 1);
        m.mark(b, 1);
        let st = d.stats();
        assert_eq!(st.form, Some(Form::Multi));
        assert_eq!(st.marked, PARTIAL_AREAS as u64 + 1);
        assert!(agrees(&d, &m, blocks));
        Ok(())
    }

    #[test]
    fn both_sides_count_once() -> Result {
        let blocks = 4 * GROUP_BLOCKS;
        for form in [Form::Bitmap, Form::Multi, Form::Partial] {
            let d = Divergence::new(2, 1, blocks, form, None)?;
            d.mark(0, 100);
            d.source_side().mark(50, 100);
            d.source_side().mark(GROUP_BLOCKS, 1);
            let st = d.stats();
            assert_eq!(st.form, Some(form));
            assert_eq!(st.marked, 151);
            let mut want = [0u64; AREA_WORDS];
            want[0] = u64::MAX;
            want[1] = u64::MAX;
            want[2] = (1 << 22) - 1;
            assert_eq!(d.area(0), AreaState::Bits(want));
            assert_eq!(
                d.next_area(1, blocks / AREA_BLOCKS),
                Some(GROUP_AREAS as u64)
            );
        }
        Ok(())
    }

    #[test]
    fn marks_stop_at_the_copy_size() -> Result {
        // Not a whole page of the full bit map, nor a whole area.
        let blocks = 1000;
        for form in [Form::Bitmap, Form::Multi, Form::Partial] {
            let d = Divergence::new(2, 1, blocks, form, None)?;
            // As a resize marks what it adds or takes away.
            d.mark(900, 40_000);
            d.source_side().mark(blocks, 5000);
            d.source_side().mark(u64::MAX - 1, 2);
            assert_eq!(d.stats().marked, 100);
            // Nothing marked the source's side: a copy taken now reads it.
            assert!(d.source_side().fits(1, blocks, form));
        }
        Ok(())
    }

    #[test]
    fn copies_taken_together_share_the_source_side() -> Result {
        let blocks = GROUP_BLOCKS;
        let a = Divergence::new(2, 1, blocks, Form::Bitmap, None)?;
        let b = Divergence::new(3, 1, blocks, Form::Bitmap, Some(a.source_side().clone()))?;
        assert!(Arc::ptr_eq(a.source_side(), b.source_side()));
        // Not another source's, nor another form's.
        let c = Divergence::new(4, 9, blocks, Form::Bitmap, Some(a.source_side().clone()))?;
        assert!(!Arc::ptr_eq(a.source_side(), c.source_side()));
        let c = Divergence::new(4, 1, blocks, Form::Multi, Some(a.source_side().clone()))?;
        assert!(!Arc::ptr_eq(a.source_side(), c.source_side()));
        // The source's writes are seen by both, a copy's by itself only.
        a.source_side().mark(10, 1);
        a.mark(20, 1);
        assert_eq!(a.stats().marked, 2);
        assert_eq!(b.stats().marked, 1);
        // Once the source marked it, a later copy keeps its own.
        let c = Divergence::new(4, 1, blocks, Form::Bitmap, Some(a.source_side().clone()))?;
        assert!(!Arc::ptr_eq(a.source_side(), c.source_side()));
        assert_eq!(c.stats().marked, 0);
        // Read while a copy reads it; dead for all once the source is gone.
        a.kill();
        assert!(a.source_side().read());
        b.kill();
        b.kill();
        assert!(!a.source_side().read());
        assert!(c.live());
        c.source_side().forget();
        assert!(!c.live());
        Ok(())
    }

    #[test]
    fn auto_picks_by_size_and_sparsity() {
        assert_eq!(Form::auto(BITMAP_AUTO_BLOCKS, 10_000), Form::Bitmap);
        assert_eq!(Form::auto(BITMAP_AUTO_BLOCKS + 1, 10), Form::Partial);
        assert_eq!(Form::auto(BITMAP_AUTO_BLOCKS + 1, 10_000), Form::Multi);
        assert_eq!(Form::auto(MULTI_MAX_BLOCKS + 1, 10_000), Form::Partial);
    }

    #[test]
    fn too_large_for_the_form() {
        assert!(Divergence::new(2, 1, BITMAP_MAX_BLOCKS + 1, Form::Bitmap, None).is_err());
        assert!(Divergence::new(2, 1, MULTI_MAX_BLOCKS + 1, Form::Multi, None).is_err());
    }
}
