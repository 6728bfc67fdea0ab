// SPDX-License-Identifier: GPL-2.0

//! The control character device (a misc device answering ioctls).
//!
//! `kernel::miscdevice` leaves `owner` unset, so an open file would not pin
//! the module; this registration sets it, making `rmmod` refuse while the
//! control device is open.
//!
//! C header: [`include/linux/miscdevice.h`](srctree/include/linux/miscdevice.h)

use core::marker::PhantomData;
use core::pin::Pin;
use kernel::bindings;
use kernel::error::to_result;
use kernel::ffi::c_long;
use kernel::ffi::c_uint;
use kernel::ffi::c_ulong;
use kernel::prelude::*;
use kernel::types::Opaque;

// `struct module` holds lockdep types that are empty without lockdep; only
// its address is used.
#[allow(improper_ctypes)]
extern "C" {
    /// The module this code is linked into, for `owner` fields.
    static __this_module: bindings::module;
}

/// What the control device does with an ioctl.
pub(crate) trait Control: Send + Sync + Sized + 'static {
    /// Handles `cmd` with argument `arg` (a user address for most commands).
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize>;
}

struct Vtable<T: Control>(PhantomData<T>);

impl<T: Control> Vtable<T> {
    const FOPS: bindings::file_operations = bindings::file_operations {
        owner: (&raw const __this_module).cast_mut(),
        unlocked_ioctl: Some(Self::ioctl),
        llseek: Some(bindings::noop_llseek),
        ..pin_init::zeroed()
    };

    /// # Safety
    ///
    /// Called by the VFS for a file opened through a [`MiscDevice<T>`].
    unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: `misc_open` points `private_data` at our `miscdevice`,
        // which is the `inner` field of a live, pinned `MiscDevice<T>`: the
        // open file pins the module and so the registration.
        let dev = unsafe {
            let misc = (*file).private_data.cast::<bindings::miscdevice>();
            &*kernel::container_of!(Opaque::cast_from(misc).cast_mut(), MiscDevice<T>, inner)
        };
        match dev.data.ioctl(cmd, arg) {
            Ok(v) => v as c_long,
            Err(e) => e.to_errno() as c_long,
        }
    }
}

/// A registered misc device `/dev/<name>` whose ioctls go to `data`.
///
/// # Invariants
///
/// `inner` is registered with `misc_register` until drop.
#[pin_data(PinnedDrop)]
pub(crate) struct MiscDevice<T: Control> {
    data: T,
    #[pin]
    inner: Opaque<bindings::miscdevice>,
}

// SAFETY: The registration may be dropped from any thread.
unsafe impl<T: Control> Send for MiscDevice<T> {}
// SAFETY: `&MiscDevice` only hands out `&T`, and `T` is `Sync`.
unsafe impl<T: Control> Sync for MiscDevice<T> {}

impl<T: Control> MiscDevice<T> {
    /// Registers `/dev/<name>`, readable and writable by root only.
    pub(crate) fn register(name: &'static CStr, data: T) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            data,
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                // SAFETY: `slot` is valid for writes and filled before
                // `misc_register` reads it; `data` is already in place.
                unsafe {
                    slot.write_bytes(0, 1);
                    (*slot).minor = bindings::MISC_DYNAMIC_MINOR as i32;
                    (*slot).name = name.as_char_ptr();
                    (*slot).fops = &Vtable::<T>::FOPS;
                    (*slot).mode = 0o600;
                    to_result(bindings::misc_register(slot))
                }
            }),
        })
    }
}

#[pinned_drop]
impl<T: Control> PinnedDrop for MiscDevice<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant the device is registered.
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}

/// Whether the calling task may administer block devices.
pub(crate) fn capable_sys_admin() -> bool {
    // SAFETY: `capable` only inspects the current task's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}
