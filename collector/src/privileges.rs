//! Least privilege: the collector needs CAP_BPF and CAP_PERFMON only to load and attach its
//! programs, and gives up every capability right after. When BPF is not permitted it explains
//! exactly why, so the procfs fallback is never a mystery.
//!
//! Grant the two capabilities once, instead of running as root:
//! `sudo setcap cap_bpf,cap_perfmon+ep target/release/khorus-collector`

use std::path::Path;

use caps::{CapSet, Capability};

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

/// What stands in the way of BPF here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnosis {
    /// Capabilities this process lacks (`CAP_BPF`, `CAP_PERFMON`); granting them is the fix.
    pub missing: Vec<&'static str>,
    /// Reasons no capability fixes (no BTF).
    pub other: Vec<String>,
}

/// Finds why BPF is not usable here: missing capabilities, missing BTF. (Kernel settings such
/// as `kernel.unprivileged_bpf_disabled` only matter without the capabilities, so the missing
/// capabilities say it all.)
pub fn diagnose_bpf() -> Diagnosis {
    let mut d = Diagnosis::default();
    let has = |c| caps::has_cap(None, CapSet::Effective, c).unwrap_or(false);
    let admin = has(Capability::CAP_SYS_ADMIN);
    for (cap, name) in [
        (Capability::CAP_BPF, "CAP_BPF"),
        (Capability::CAP_PERFMON, "CAP_PERFMON"),
    ] {
        if !has(cap) && !admin {
            d.missing.push(name);
        }
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        d.other.push(
            "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing; needs \
             CONFIG_DEBUG_INFO_BTF=y)"
                .into(),
        );
    }
    d
}

/// The one paragraph the user reads when BPF cannot be used: what failed, why, and the
/// command that fixes it (when a capability is the reason), for the collector binary at
/// `exe`. `fallback`: procfs is used instead (`auto`), rather than giving up (`bpf`).
pub fn bpf_unavailable(error: &str, d: &Diagnosis, exe: &Path, fallback: bool) -> String {
    let mut why = Vec::new();
    if !d.missing.is_empty() {
        why.push(format!("this process lacks {}", d.missing.join(" and ")));
    }
    why.extend(d.other.iter().cloned());
    let mut text = format!("BPF is not available ({error})");
    if !why.is_empty() {
        text.push_str(&format!(": {}", why.join("; ")));
    }
    text.push_str(if fallback {
        "; using procfs instead (fewer, coarser signals)."
    } else {
        "."
    });
    if !d.missing.is_empty() {
        let path = exe.display().to_string();
        let path = if path.contains(char::is_whitespace) {
            format!("'{path}'")
        } else {
            path
        };
        text.push_str(&format!(
            " To use BPF, grant the capabilities once: sudo setcap cap_bpf,cap_perfmon+ep {path}"
        ));
    }
    text
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bpf_fallback_is_one_paragraph_with_one_fix() {
        let d = Diagnosis {
            missing: vec!["CAP_BPF", "CAP_PERFMON"],
            other: vec![],
        };
        let text = bpf_unavailable(
            "failed to load the BPF object: Operation not permitted (os error 1)",
            &d,
            Path::new("/usr/local/bin/khorus-collector"),
            true,
        );
        assert_eq!(
            text,
            "BPF is not available (failed to load the BPF object: Operation not permitted (os \
             error 1)): this process lacks CAP_BPF and CAP_PERFMON; using procfs instead (fewer, \
             coarser signals). To use BPF, grant the capabilities once: sudo setcap \
             cap_bpf,cap_perfmon+ep /usr/local/bin/khorus-collector"
        );
        assert_eq!(text.matches("setcap").count(), 1);
    }

    #[test]
    fn no_setcap_when_capabilities_are_not_the_reason() {
        let d = Diagnosis {
            missing: vec![],
            other: vec!["the kernel has no BTF".into()],
        };
        let text = bpf_unavailable("boom", &d, Path::new("/a b/khorus-collector"), false);
        assert_eq!(text, "BPF is not available (boom): the kernel has no BTF.");
        let d = Diagnosis {
            missing: vec!["CAP_BPF"],
            other: vec![],
        };
        let text = bpf_unavailable("boom", &d, Path::new("/a b/khorus-collector"), false);
        assert!(text.ends_with("+ep '/a b/khorus-collector'"), "{text}");
    }
}
