//! A Michael-Scott lock-free MPMC queue whose nodes are reclaimed through hazard pointers
//! (`haphazard`). `haphazard` ships no queue; this is the textbook algorithm on its raw API,
//! written only to measure the hazard-pointer option against `crossbeam-queue`.
// Lock-free structures need raw pointers; this file is a measurement, not shardbus code.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicPtr as StdAtomicPtr, Ordering};

use haphazard::{AtomicPtr, HazardPointer};

struct Node<T> {
    value: UnsafeCell<MaybeUninit<T>>,
    next: StdAtomicPtr<Node<T>>,
}

// A node's value is read by exactly one thread: the one whose CAS unlinked its predecessor.
unsafe impl<T: Send> Sync for Node<T> {}

/// An unbounded MPMC queue.
pub struct MsQueue<T> {
    head: AtomicPtr<Node<T>>,
    tail: AtomicPtr<Node<T>>,
}

// Values move between threads; nodes are shared through atomics only.
unsafe impl<T: Send> Send for MsQueue<T> {}
unsafe impl<T: Send> Sync for MsQueue<T> {}

impl<T: Send> MsQueue<T> {
    pub fn new() -> MsQueue<T> {
        let dummy = Box::into_raw(Box::new(Node {
            value: UnsafeCell::new(MaybeUninit::uninit()),
            next: StdAtomicPtr::new(ptr::null_mut()),
        }));
        // SAFETY: `dummy` is a fresh Box pointer, owned by the queue from here on.
        unsafe {
            MsQueue {
                head: AtomicPtr::new(dummy),
                tail: AtomicPtr::new(dummy),
            }
        }
    }

    pub fn push(&self, value: T, hp: &mut HazardPointer<'static>) {
        let node = Box::into_raw(Box::new(Node {
            value: UnsafeCell::new(MaybeUninit::new(value)),
            next: StdAtomicPtr::new(ptr::null_mut()),
        }));
        loop {
            let Some(tail) = self.tail.safe_load(hp) else {
                continue;
            };
            let tail_ptr = tail as *const Node<T> as *mut Node<T>;
            let next = tail.next.load(Ordering::Acquire);
            if tail_ptr != self.tail.load_ptr() {
                continue;
            }
            if next.is_null() {
                if tail
                    .next
                    .compare_exchange(ptr::null_mut(), node, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    // SAFETY: both pointers are nodes of this queue; a failed swing is fine
                    // (another thread helped).
                    let _ = unsafe { self.tail.compare_exchange_ptr(tail_ptr, node) };
                    hp.reset_protection();
                    return;
                }
            } else {
                // SAFETY: as above: help a lagging tail forward.
                let _ = unsafe { self.tail.compare_exchange_ptr(tail_ptr, next) };
            }
        }
    }

    pub fn pop(
        &self,
        hp_head: &mut HazardPointer<'static>,
        hp_next: &mut HazardPointer<'static>,
    ) -> Option<T> {
        loop {
            let head = self.head.safe_load(hp_head)?;
            let head_ptr = head as *const Node<T> as *mut Node<T>;
            let next = head.next.load(Ordering::Acquire);
            if next.is_null() {
                hp_head.reset_protection();
                return None;
            }
            hp_next.protect_raw(next);
            if head_ptr != self.head.load_ptr() {
                continue;
            }
            let tail_ptr = self.tail.load_ptr();
            if head_ptr == tail_ptr {
                // SAFETY: help the tail past the node we are about to dequeue.
                let _ = unsafe { self.tail.compare_exchange_ptr(tail_ptr, next) };
                continue;
            }
            // SAFETY: `next` is protected and still reachable (head did not move); winning
            // the CAS makes this thread the only reader of its value.
            if let Ok(Some(old)) = unsafe { self.head.compare_exchange_ptr(head_ptr, next) } {
                let value = unsafe { (*(*next).value.get()).assume_init_read() };
                hp_head.reset_protection();
                hp_next.reset_protection();
                // SAFETY: `old` is unlinked; hazard pointers keep it alive for late readers.
                unsafe { old.retire() };
                return Some(value);
            }
        }
    }
}

impl<T> Drop for MsQueue<T> {
    fn drop(&mut self) {
        // Exclusive access: free the remaining chain (values after the dummy are initialised).
        let mut node = self.head.load_ptr();
        let mut first = true;
        while !node.is_null() {
            // SAFETY: every node in the chain came from Box::into_raw and is freed once.
            let boxed = unsafe { Box::from_raw(node) };
            if !first {
                unsafe { (*boxed.value.get()).assume_init_drop() };
            }
            first = false;
            node = boxed.next.load(Ordering::Relaxed);
        }
    }
}
