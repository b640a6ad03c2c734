//! After warm-up, a decode step allocates nothing (counted by a global
//! allocator wrapper in this test binary, per thread: the test harness's
//! own threads, e.g. its "running for over 60 seconds" notice on a loaded
//! machine, must not count).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use provmark_watermark::rand_core::SeedableRng;
use provmark_watermark::{
    Embedder, Key, KgwParams, Profile, RepeatedWindows, SamplingConfig, Scheme, SynthIdParams,
    TokenizerDigest,
};
use rand_chacha::ChaCha8Rng;

struct Counting;
thread_local! {
    // Const-initialised: reading it never allocates.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    ALLOCATIONS.with(|c| c.set(c.get() + 1));
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn decode_steps_do_not_allocate_after_warm_up() {
    let key = Key::from_bytes([8; 32]);
    let vocab = 49_152;
    let logits: Vec<f32> = (0..vocab).map(|i| ((i * 31) % 977) as f32 / 97.0).collect();
    let configs = [
        SamplingConfig::default(),
        SamplingConfig::new(0.7, 50, 0.9).unwrap(),
        SamplingConfig::new(1.0, 0, 0.95).unwrap(),
    ];
    for scheme in [
        Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap()),
        Scheme::Gumbel,
        Scheme::SynthId(SynthIdParams::new(30).unwrap()),
    ] {
        let profile = Profile::new(scheme, 2, TokenizerDigest::of_bytes(b"t"), &key).unwrap();
        let embedder = Embedder::new(&profile, &key).unwrap();
        // Every step marked (the windows repeat across configurations).
        let mut e = embedder.response_with(RepeatedWindows::Remark);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for cfg in &configs {
            // Warm-up at this vocabulary and setting.
            for step in 0..3u32 {
                e.next_token(&[step, 1, 2], &logits, cfg, &mut rng);
            }
            let before = allocations();
            for step in 0..20u32 {
                e.next_token(&[step, 5, 6], &logits, cfg, &mut rng);
            }
            let after = allocations();
            assert_eq!(after, before, "{} {cfg:?} allocated", scheme.name());
        }
    }
    a_reused_response_handle_does_not_allocate_after_warm_up();
}

/// Part of the test above (one test per binary: the counter is global).
fn a_reused_response_handle_does_not_allocate_after_warm_up() {
    let key = Key::from_bytes([8; 32]);
    let vocab = 49_152;
    let logits: Vec<f32> = (0..vocab).map(|i| ((i * 31) % 977) as f32 / 97.0).collect();
    let cfg = SamplingConfig::new(0.7, 50, 0.9).unwrap();
    for scheme in [
        Scheme::Kgw(KgwParams::new(0.25, 2.0).unwrap()),
        Scheme::Gumbel,
        Scheme::SynthId(SynthIdParams::new(30).unwrap()),
    ] {
        let profile = Profile::new(scheme, 2, TokenizerDigest::of_bytes(b"t"), &key).unwrap();
        let mut e = Embedder::new(&profile, &key).unwrap().response();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        // One response of 20 distinct windows warms the buffers and the set.
        let respond = |e: &mut provmark_watermark::ResponseEmbedder, rng: &mut ChaCha8Rng| {
            for step in 0..20u32 {
                e.next_token(&[5, 6, step], &logits, &cfg, rng);
            }
            assert_eq!(e.marked_windows(), 20);
        };
        respond(&mut e, &mut rng);
        e.reset();
        assert_eq!(e.marked_windows(), 0);
        let before = allocations();
        respond(&mut e, &mut rng);
        let after = allocations();
        assert_eq!(after, before, "{} allocated", scheme.name());
    }
}
