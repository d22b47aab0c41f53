//! A bump allocator for guests.
//!
//! The host runs every decision in a fresh instance and throws the instance away afterwards, so
//! freeing memory inside a decision buys nothing: all of it goes at once. Bumping a pointer makes
//! each allocation a few instructions, where dlmalloc's bookkeeping dominated decisions that
//! receive large inputs (a scheduler lowering 1,000 nodes makes thousands of allocations). The
//! last allocation can still be freed or grown in place, which covers `Vec` and `String` growth.
//! The host's memory limit still applies: when `memory.grow` fails, allocation returns null and
//! the guest aborts as with any allocator.

#![allow(
    unsafe_code,
    reason = "a global allocator is unsafe by nature; invariants are stated inline"
)]

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::Cell;

const PAGE: usize = 65_536;
/// Pages to grow at least. Small on purpose: memory grown past the module's initial size must
/// be reset by the host after every instance, which costs more than extra `memory.grow` calls.
const MIN_GROW_PAGES: usize = 1;

/// Bump allocator over memory obtained with `memory.grow`.
pub struct Arena {
    next: Cell<usize>,
    end: Cell<usize>,
    last: Cell<usize>,
}

// SAFETY: wasm32-wasip2 guests run on a single thread; nothing else observes the cells.
unsafe impl Sync for Arena {}

impl Arena {
    /// An arena that takes memory on first use.
    pub const fn new() -> Self {
        Self {
            next: Cell::new(0),
            end: Cell::new(0),
            last: Cell::new(0),
        }
    }

    /// Makes `size` bytes aligned to `align` available at the returned address, or 0.
    fn bump(&self, size: usize, align: usize) -> usize {
        if self.end.get() == 0 {
            // First use: take the free tail of the module's initial memory, between the linker's
            // `__heap_base` and the current size, as wasi-libc's malloc does. Growing past the
            // initial size costs the host a reset of those pages after every instance.
            unsafe extern "C" {
                static __heap_base: u8;
            }
            // Taking the address of the linker-defined `__heap_base` reads nothing.
            let base = core::ptr::addr_of!(__heap_base) as usize;
            self.next.set(base);
            self.end.set(wasm32::memory_size(0) * PAGE);
        }
        let mut start = (self.next.get() + align - 1) & !(align - 1);
        if start.checked_add(size).is_none_or(|e| e > self.end.get()) {
            let pages = (size + align).div_ceil(PAGE).max(MIN_GROW_PAGES);
            let prev = wasm32::memory_grow(0, pages);
            if prev == usize::MAX {
                return 0;
            }
            let grown = prev * PAGE;
            if grown != self.end.get() {
                // Not contiguous with the current chunk: start afresh.
                self.next.set(grown);
            }
            self.end.set((prev + pages) * PAGE);
            start = (self.next.get() + align - 1) & !(align - 1);
        }
        self.next.set(start + size);
        self.last.set(start);
        start
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every pointer returned lies in memory obtained from `memory.grow` that no other
// allocation overlaps: `next` only moves forward except when the most recent allocation is
// freed or resized, and then only over that allocation's own bytes.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.bump(layout.size(), layout.align()) as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ptr as usize == self.last.get() && ptr as usize + layout.size() == self.next.get() {
            self.next.set(ptr as usize);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let at = ptr as usize;
        if new_size <= layout.size() && at != self.last.get() {
            // Shrinking in place is always sound; only the last allocation gives bytes back.
            return ptr;
        }
        if at == self.last.get()
            && at + layout.size() == self.next.get()
            && at + new_size <= self.end.get()
        {
            self.next.set(at + new_size);
            return ptr;
        }
        let new = self.bump(new_size, layout.align()) as *mut u8;
        if !new.is_null() {
            // SAFETY: both regions are valid for the copied length and do not overlap (the new
            // one was bumped past the old one).
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}
