//! Builds the BPF programs in `bpf/` into skeletons (libbpf-cargo, vendored libbpf headers).
//!
//! One table lists the programs; each becomes `$OUT_DIR/<name>.skel.rs`, included by
//! `src/sources/bpf/<name>.rs`. Compiled with `-Wall -Werror`; no vmlinux.h is needed (see
//! bpf/kernel.h), so the build does not depend on the build machine's kernel.

use std::env;
use std::path::PathBuf;
use std::process::Command;

use libbpf_cargo::SkeletonBuilder;

/// (source under bpf/, skeleton name)
const PROGRAMS: &[(&str, &str)] = &[("counters.bpf.c", "counters"), ("empty.bpf.c", "empty")];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let bpf_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"))
        .join("..")
        .join("bpf");
    // Debian/Ubuntu keep asm/ headers (needed by linux/types.h) under the multiarch dir, which
    // clang does not search for the bpf target.
    let mut args = vec![
        "-Wall".to_string(),
        "-Werror".to_string(),
        "-O2".to_string(),
        "-g".to_string(),
    ];
    args.push(format!("-I{}", bpf_dir.display()));
    if let Some(multiarch) = multiarch_include() {
        args.push(format!("-I{multiarch}"));
    }
    for (source, name) in PROGRAMS {
        let src = bpf_dir.join(source);
        SkeletonBuilder::new()
            .source(&src)
            .clang_args(&args)
            .build_and_generate(out.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| panic!("failed to build BPF program {}: {e:#}", src.display()));
        println!("cargo:rerun-if-changed={}", src.display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        bpf_dir.join("kernel.h").display()
    );
}

fn multiarch_include() -> Option<String> {
    let out = Command::new("gcc").arg("-print-multiarch").output().ok()?;
    let triple = String::from_utf8(out.stdout).ok()?.trim().to_string();
    let dir = format!("/usr/include/{triple}");
    std::path::Path::new(&dir).is_dir().then_some(dir)
}
