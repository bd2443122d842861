//! Storage the child's [`ChildSpec`](crate::child::ChildSpec) borrows that must point into
//! itself: the null-terminated pointer arrays of `argv` and `envp`.
//!
//! Everything else a spec borrows is owned by the concern that prepared it (its
//! `PreparedX`), which hands the child a borrowed `XSpec<'_>`: ownership and lifetime are
//! then the compiler's to check. Only a pointer array into strings it owns needs the one
//! `unsafe impl Send` below.

use std::ffi::CString;
use std::ptr;

use libc::c_char;

use crate::child::sys::CStrList;

/// C strings and the null-terminated array of pointers to them that `execve` takes.
pub(crate) struct CStrArray {
    strings: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

// SAFETY: `ptrs` points only into the heap buffers of `strings`, which this value owns and
// never changes; moving the value to another thread moves neither.
unsafe impl Send for CStrArray {}

impl CStrArray {
    pub(crate) fn new(strings: Vec<CString>) -> CStrArray {
        let ptrs = strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(ptr::null()))
            .collect();
        CStrArray { strings, ptrs }
    }

    pub(crate) fn strings(&self) -> &[CString] {
        &self.strings
    }

    /// The array as the child passes it to `execve`.
    pub(crate) fn list(&self) -> CStrList<'_> {
        // SAFETY: `ptrs` ends with null and every other entry points into a CString of
        // `strings`, both owned by `self` and unchanged while it is borrowed.
        unsafe { CStrList::new(&self.ptrs) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn the_array_is_null_terminated_and_points_at_each_string() {
        let a = CStrArray::new(vec![c"sh".into(), c"-c".into(), c"true".into()]);
        let p = a.list().as_ptr();
        for (i, s) in a.strings().iter().enumerate() {
            // SAFETY: i < len, within the array; each entry is a valid C string.
            assert_eq!(unsafe { CStr::from_ptr(*p.add(i)) }, s.as_c_str());
        }
        // SAFETY: the array has len + 1 entries.
        assert!(unsafe { *p.add(a.strings().len()) }.is_null());
        // SAFETY: an empty array still has its terminating null entry.
        assert!(unsafe { *CStrArray::new(Vec::new()).list().as_ptr() }.is_null());
    }
}
