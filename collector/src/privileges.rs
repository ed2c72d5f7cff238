//! Least privilege: the collector needs CAP_BPF and CAP_PERFMON only to load and attach its
//! programs, and gives up every capability right after. When BPF is not permitted it explains
//! exactly why, so the procfs fallback is never a mystery.
//!
//! Grant the two capabilities once, instead of running as root:
//! `sudo setcap cap_bpf,cap_perfmon+ep target/release/khorus-collector`

use std::path::Path;

use caps::{CapSet, Capability};

/// The setcap line that lets an unprivileged user load khorus's BPF programs.
pub const SETCAP_HINT: &str = "sudo setcap cap_bpf,cap_perfmon+ep $(command -v khorus-collector)";

/// Why capabilities could not be dropped.
#[derive(Debug, thiserror::Error)]
#[error("failed to drop capabilities ({set}): {detail}")]
pub struct DropError {
    /// Which set.
    pub set: &'static str,
    /// The error.
    pub detail: String,
}

/// Drops every capability from every set: bounding (where permitted), ambient, inheritable,
/// effective, permitted; and sets no_new_privs so no exec can regain any.
pub fn drop_all() -> Result<(), DropError> {
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) only sets a flag on this process.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(DropError {
            set: "no_new_privs",
            detail: std::io::Error::last_os_error().to_string(),
        });
    }
    // Removing from the bounding set needs CAP_SETPCAP; without it the bounding set stays,
    // which is harmless once permitted is empty and no_new_privs is set.
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false) {
        for cap in caps::all() {
            caps::drop(None, CapSet::Bounding, cap).ok();
        }
    }
    for (set, name) in [
        (CapSet::Ambient, "ambient"),
        (CapSet::Inheritable, "inheritable"),
        (CapSet::Effective, "effective"),
        (CapSet::Permitted, "permitted"),
    ] {
        caps::clear(None, set).map_err(|e| DropError {
            set: name,
            detail: e.to_string(),
        })?;
    }
    Ok(())
}

/// Explains why BPF is not usable here: missing capabilities, missing BTF, kernel settings.
pub fn diagnose_bpf() -> Vec<String> {
    let mut reasons = Vec::new();
    let has = |c| caps::has_cap(None, CapSet::Effective, c).unwrap_or(false);
    let admin = has(Capability::CAP_SYS_ADMIN);
    for (cap, name) in [
        (Capability::CAP_BPF, "CAP_BPF"),
        (Capability::CAP_PERFMON, "CAP_PERFMON"),
    ] {
        if !has(cap) && !admin {
            reasons.push(format!(
                "missing capability {name} (grant it with: {SETCAP_HINT})"
            ));
        }
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        reasons.push(
            "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing; needs CONFIG_DEBUG_INFO_BTF=y)"
                .into(),
        );
    }
    if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled")
        && v.trim() != "0"
        && !has(Capability::CAP_BPF)
        && !admin
    {
        reasons.push(format!(
            "kernel.unprivileged_bpf_disabled = {} (BPF needs CAP_BPF)",
            v.trim()
        ));
    }
    if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        && v.trim().parse::<i32>().is_ok_and(|p| p > 2)
        && !has(Capability::CAP_PERFMON)
        && !admin
    {
        reasons.push(format!(
            "kernel.perf_event_paranoid = {} (above 2 needs CAP_PERFMON)",
            v.trim()
        ));
    }
    reasons
}

/// The capability sets of process `pid` as read from /proc (CapInh, CapPrm, CapEff, CapBnd,
/// CapAmb), for status and tests.
pub fn proc_caps(pid: u32) -> std::io::Result<Vec<(String, u64)>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(status
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.starts_with("Cap")
                .then(|| {
                    u64::from_str_radix(v.trim(), 16)
                        .ok()
                        .map(|v| (k.to_string(), v))
                })
                .flatten()
        })
        .collect())
}
