//! Keeping freed memory in the process for the CPU backends.
//!
//! burn's CPU backends allocate a fresh buffer for every tensor operation's output. With glibc's
//! default settings, buffers above its (adaptive, at most 32 MiB) mmap threshold come straight
//! from the kernel and go back to it when freed, and freed memory at the top of the heap is
//! trimmed away, so each training step pays page faults to zero the same pages again. On the
//! `lm_bench` model that is about 15% of a training step on 2 cores. Raising both thresholds
//! lets freed buffers be reused; the process's resident memory then stays near its peak instead
//! of shrinking between steps. Set `EEF_MALLOC_DEFAULTS` (to anything) to keep glibc's defaults,
//! e.g. when the process shares a machine whose memory matters more than the speed.

use std::sync::Once;

/// Never hand buffers below this to mmap.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 256 << 20;
/// Keep up to this much free memory at the top of the heap.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 1 << 30;

/// Tells glibc's allocator to keep freed memory for reuse (once per process; a no-op on other
/// platforms, and when `EEF_MALLOC_DEFAULTS` is set). Called when a CPU backend is selected
/// through [`super::backend::visit`]; call it yourself when you use [`super::Cpu`] directly.
pub fn keep_freed_memory() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("EEF_MALLOC_DEFAULTS").is_some() {
            return;
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    });
}
