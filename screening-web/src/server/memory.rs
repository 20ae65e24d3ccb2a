//! How the server process holds its memory.
//!
//! mimalloc asks the kernel for transparent huge pages on its arenas. A huge page is resident as a
//! whole (2 MiB) once any byte of it is touched, so every half-used buffer counts in full: hyper
//! reserves an 8 KiB read and an 8 KiB write buffer for each connection and a waiting long poll
//! touches only the first 4 KiB of each. With ten thousand gateways waiting that was 5 KiB more
//! resident memory a gateway (`benches/many_gateways.rs`). Databases that hold many connections
//! (Redis, MongoDB) recommend the same.

/// Asks the kernel not to back this process's memory with transparent huge pages, unless the
/// operator set mimalloc's own `MIMALLOC_ALLOW_THP` (then it is theirs to choose). Call it first
/// in `main`: memory already backed by huge pages stays so. Returns whether huge pages are off.
pub fn keep_heap_in_small_pages() -> bool {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return false;
    }
    disable_transparent_huge_pages()
}

/// Whether the kernel keeps this process out of transparent huge pages, by its own account
/// (`THP_enabled` in `/proc/self/status`, Linux 5.0 and later).
pub fn huge_pages_off() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .is_ok_and(|status| status.lines().any(|line| line == "THP_enabled:\t0"))
}

#[cfg(target_os = "linux")]
fn disable_transparent_huge_pages() -> bool {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes a flag of this process.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn disable_transparent_huge_pages() -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn huge_pages_are_off_for_the_process_once_asked() {
        assert!(super::disable_transparent_huge_pages());
        assert!(
            super::huge_pages_off(),
            "{}",
            std::fs::read_to_string("/proc/self/status").expect("procfs")
        );
    }
}
