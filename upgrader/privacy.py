"""Files and folders that only the current user can open: what keeps a backup private.

POSIX: mode bits, 0700 for a folder and 0600 for a file (root can still read them, as it can
read anything).

Windows: a *protected* DACL (nothing inherited from the folders above) with a single ACE
granting full control to the user running wems-upgrade (the user SID of the process token);
folders get it inheritable (OICI) so files created inside inherit it. No ACE for SYSTEM or
Administrators: "owner only" means this user. An administrator can still take ownership and
rewrite the DACL, and software holding the backup privilege (backup, antivirus) can still read
the files; that is the Windows equivalent of root, not something an ACL can refuse.
Where the drive keeps no permissions (FAT32/exFAT USB sticks, some network shares),
SetFileSecurityW fails: `make_private` returns why, and the caller goes on without privacy.

Only stdlib and ctypes (advapi32, kernel32); the Windows code is reached only on Windows.
"""

from __future__ import annotations

import ctypes
import os
import stat
import sys
from functools import lru_cache
from pathlib import Path
from typing import cast

from upgrader.i18n import T, Text, english

PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600

# Windows constants (winnt.h, winerror.h, sddl.h)
_TOKEN_QUERY = 0x0008
_TOKEN_USER_CLASS = 1
_SDDL_REVISION_1 = 1
_DACL_SECURITY_INFORMATION = 0x00000004
_PROTECTED_DACL_SECURITY_INFORMATION = 0x80000000
_ACCESS_ALLOWED_ACE_TYPE, _ACCESS_DENIED_ACE_TYPE = 0, 1
_SYSTEM_SID = bytes([1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0])  # S-1-5-18, LocalSystem
_ERROR_INSUFFICIENT_BUFFER = 122
_NO_PERMISSIONS_ERRORS = {1: "ERROR_INVALID_FUNCTION", 50: "ERROR_NOT_SUPPORTED"}


def make_private(path: Path) -> str | None:
    """make_private_text(), its reason in English (the log)."""
    problem = make_private_text(path)
    return None if problem is None else english(problem)


def make_private_text(path: Path) -> str | Text | None:
    """Make the file or folder `path` readable by the current user only, and check that it is.

    Returns None when it is private, else why it could not be made so (never raises OSError:
    a drive without permissions must not stop a backup), to show in the user's language (str())
    or log in English (english()). A folder must be made private before files are written into
    it, so that they are never readable by others.
    """
    try:
        if sys.platform == "win32":
            _windows_set_owner_only(Path(path))
        else:
            os.chmod(path, PRIVATE_DIR if Path(path).is_dir() else PRIVATE_FILE)
    except OSError as exc:
        return _describe(exc)
    return privacy_problem_text(path)


def privacy_problem(path: Path) -> str | None:
    """privacy_problem_text(), in English (the log)."""
    problem = privacy_problem_text(path)
    return None if problem is None else english(problem)


def privacy_problem_text(path: Path) -> str | Text | None:
    """None if only the current user can open `path`, else what lets others in (or why it is unknown).

    POSIX: the current user owns it and neither group nor others have any permission bit.
    Windows: it has a DACL, and every ACE of it that allows anything is the current user's or
    SYSTEM's (the operating system itself, as root is on POSIX; `make_private` grants it nothing).
    Inherited ACEs are stored in the DACL, so this is who can open it now; whether the DACL is
    protected (keeps out what the folders above may pass on later) is not checked: Wine, which
    maps ACLs to mode bits, cannot store that flag.
    """
    try:
        if sys.platform == "win32":
            return _windows_check_owner_only(Path(path))
        st = os.stat(path)
    except OSError as exc:
        return _describe(exc)
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != os.geteuid():
        return T(
            "it belongs to user id {owner}, not to the user running wems-upgrade ({user})",
            owner=st.st_uid,
            user=os.geteuid(),
        )
    if mode & 0o077:
        return T(
            "its permissions are {mode}: the file system does not keep them (FAT32/exFAT, some "
            "network shares) or they were changed by someone else",
            mode=f"{mode:04o}",
        )
    return None


def is_private(path: Path) -> bool:
    return privacy_problem_text(path) is None


def _describe(exc: OSError) -> str | Text:
    code = getattr(exc, "winerror", None)
    if code in _NO_PERMISSIONS_ERRORS:
        return T(
            "the drive keeps no permissions (FAT32/exFAT, or a network share without them; {code})",
            code=_NO_PERMISSIONS_ERRORS[code],
        )
    return exc.strerror or str(exc)


# --- Windows ------------------------------------------------------------------------------


def owner_only_sddl(user_sid: str, folder: bool) -> str:
    """The SDDL of a protected DACL giving full control to `user_sid` alone (inherited by what a folder holds)."""
    return f"D:P(A;{'OICI' if folder else ''};FA;;;{user_sid})"


@lru_cache(maxsize=1)
def _api():
    """advapi32 and kernel32 with the prototypes used here (Windows only)."""
    if sys.platform != "win32":
        raise NotImplementedError("advapi32 and kernel32 are Windows only")
    from ctypes import wintypes

    advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    BOOL, DWORD, HANDLE, LPVOID = wintypes.BOOL, wintypes.DWORD, wintypes.HANDLE, wintypes.LPVOID
    for lib, name, restype, argtypes in [
        (kernel32, "GetCurrentProcess", HANDLE, []),
        (kernel32, "CloseHandle", BOOL, [HANDLE]),
        (kernel32, "LocalFree", LPVOID, [LPVOID]),
        (advapi32, "OpenProcessToken", BOOL, [HANDLE, DWORD, ctypes.POINTER(HANDLE)]),
        (advapi32, "GetTokenInformation", BOOL, [HANDLE, ctypes.c_int, LPVOID, DWORD, ctypes.POINTER(DWORD)]),
        (advapi32, "ConvertSidToStringSidW", BOOL, [LPVOID, ctypes.POINTER(wintypes.LPWSTR)]),
        (
            advapi32,
            "ConvertStringSecurityDescriptorToSecurityDescriptorW",
            BOOL,
            [wintypes.LPCWSTR, DWORD, ctypes.POINTER(LPVOID), ctypes.POINTER(wintypes.ULONG)],
        ),
        (
            advapi32,
            "ConvertSecurityDescriptorToStringSecurityDescriptorW",
            BOOL,
            [LPVOID, DWORD, DWORD, ctypes.POINTER(wintypes.LPWSTR), ctypes.POINTER(wintypes.ULONG)],
        ),
        (advapi32, "SetFileSecurityW", BOOL, [wintypes.LPCWSTR, DWORD, LPVOID]),
        (advapi32, "GetFileSecurityW", BOOL, [wintypes.LPCWSTR, DWORD, LPVOID, DWORD, ctypes.POINTER(DWORD)]),
        (
            advapi32,
            "GetSecurityDescriptorDacl",
            BOOL,
            [LPVOID, ctypes.POINTER(BOOL), ctypes.POINTER(LPVOID), ctypes.POINTER(BOOL)],
        ),
        (advapi32, "GetAce", BOOL, [LPVOID, DWORD, ctypes.POINTER(LPVOID)]),
        (advapi32, "EqualSid", BOOL, [LPVOID, LPVOID]),
    ]:
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return advapi32, kernel32


def _check(ok: int, what: str) -> None:
    if sys.platform != "win32":
        raise NotImplementedError("a Windows API call is checked on Windows only")
    if not ok:
        code = ctypes.get_last_error()
        raise ctypes.WinError(code, f"{what} failed: {ctypes.FormatError(code).strip()}")


@lru_cache(maxsize=1)
def _windows_user_sid() -> bytes:
    """The binary SID of the user this process runs as (TokenUser of the process token)."""
    from ctypes import wintypes

    advapi32, kernel32 = _api()
    token = wintypes.HANDLE()
    _check(
        advapi32.OpenProcessToken(kernel32.GetCurrentProcess(), _TOKEN_QUERY, ctypes.byref(token)), "OpenProcessToken"
    )
    try:
        needed = wintypes.DWORD()
        advapi32.GetTokenInformation(token, _TOKEN_USER_CLASS, None, 0, ctypes.byref(needed))
        buffer = ctypes.create_string_buffer(needed.value)
        _check(
            advapi32.GetTokenInformation(token, _TOKEN_USER_CLASS, buffer, needed, ctypes.byref(needed)),
            "GetTokenInformation",
        )
    finally:
        kernel32.CloseHandle(token)
    sid = cast(int, ctypes.c_void_p.from_buffer(buffer).value)  # TOKEN_USER starts with SID_AND_ATTRIBUTES.Sid
    length = 8 + 4 * ctypes.c_ubyte.from_address(sid + 1).value  # revision, count, authority, subauthorities
    return ctypes.string_at(sid, length)


def windows_user_sid_string() -> str:
    """The current user's SID as text (S-1-5-21-...)."""
    from ctypes import wintypes

    advapi32, kernel32 = _api()
    sid = ctypes.create_string_buffer(_windows_user_sid())
    text = wintypes.LPWSTR()
    _check(advapi32.ConvertSidToStringSidW(sid, ctypes.byref(text)), "ConvertSidToStringSidW")
    try:
        return str(text.value)
    finally:
        kernel32.LocalFree(text)


def _windows_set_owner_only(path: Path) -> None:
    advapi32, kernel32 = _api()
    descriptor = ctypes.c_void_p()
    sddl = owner_only_sddl(windows_user_sid_string(), path.is_dir())
    _check(
        advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW(
            sddl, _SDDL_REVISION_1, ctypes.byref(descriptor), None
        ),
        "ConvertStringSecurityDescriptorToSecurityDescriptorW",
    )
    try:
        _check(
            advapi32.SetFileSecurityW(
                str(path), _DACL_SECURITY_INFORMATION | _PROTECTED_DACL_SECURITY_INFORMATION, descriptor
            ),
            "SetFileSecurityW",
        )
    finally:
        kernel32.LocalFree(descriptor)


def _windows_dacl(path: Path) -> ctypes.Array:
    """The security descriptor of `path` holding its DACL (self-relative, in a Python buffer)."""
    from ctypes import wintypes

    advapi32, _ = _api()
    needed = wintypes.DWORD()
    advapi32.GetFileSecurityW(str(path), _DACL_SECURITY_INFORMATION, None, 0, ctypes.byref(needed))
    if not needed.value:
        _check(0, "GetFileSecurityW")
    buffer = ctypes.create_string_buffer(needed.value)
    _check(
        advapi32.GetFileSecurityW(str(path), _DACL_SECURITY_INFORMATION, buffer, needed, ctypes.byref(needed)),
        "GetFileSecurityW",
    )
    return buffer


def windows_sddl(path: Path) -> str:
    """The DACL of `path` in SDDL ("D:P(A;OICI;FA;;;S-1-5-21-...)"), for tests and the log."""
    from ctypes import wintypes

    advapi32, kernel32 = _api()
    text = wintypes.LPWSTR()
    _check(
        advapi32.ConvertSecurityDescriptorToStringSecurityDescriptorW(
            _windows_dacl(path), _SDDL_REVISION_1, _DACL_SECURITY_INFORMATION, ctypes.byref(text), None
        ),
        "ConvertSecurityDescriptorToStringSecurityDescriptorW",
    )
    try:
        return str(text.value)
    finally:
        kernel32.LocalFree(text)


def _windows_check_owner_only(path: Path) -> str | Text | None:
    from ctypes import wintypes

    advapi32, _ = _api()
    descriptor = _windows_dacl(path)
    present, defaulted, acl = wintypes.BOOL(), wintypes.BOOL(), ctypes.c_void_p()
    _check(
        advapi32.GetSecurityDescriptorDacl(
            descriptor, ctypes.byref(present), ctypes.byref(acl), ctypes.byref(defaulted)
        ),
        "GetSecurityDescriptorDacl",
    )
    if not present.value or not acl.value:
        return T("it has no access control list: everyone can open it")
    user = ctypes.create_string_buffer(_windows_user_sid())
    system = ctypes.create_string_buffer(_SYSTEM_SID)
    ace_count = ctypes.c_uint16.from_address(acl.value + 4).value  # ACL: revision, sbz1, size, count, sbz2
    for index in range(ace_count):
        ace = ctypes.c_void_p()
        _check(advapi32.GetAce(acl, index, ctypes.byref(ace)), "GetAce")
        address = cast(int, ace.value)  # GetAce succeeded: it points to the ACE
        ace_type = ctypes.c_ubyte.from_address(address).value
        if ace_type == _ACCESS_DENIED_ACE_TYPE:
            continue
        if ace_type != _ACCESS_ALLOWED_ACE_TYPE:
            return T("its access control list holds an entry of type {kind}", kind=ace_type)
        sid = address + 8  # ACE_HEADER (4 bytes), ACCESS_MASK (4 bytes), then the SID
        if not advapi32.EqualSid(sid, user) and not advapi32.EqualSid(sid, system):
            return T("its access control list lets other users or groups in")
    return None
