//! The Buildroot external tree (`buildroot-pkg/`) stays consistent with the workspace: its version, its
//! package files, the names its files use, its defconfigs, the architectures its `Config.in` offers,
//! and the target file it renders from Buildroot's facts. Pure file checks: no Buildroot, no network
//! (`scripts/check-buildroot.sh` runs Buildroot's own checks against a Buildroot tree).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use ebpf_pack::arch::{Arch, Libc};
use ebpf_pack::target::{TargetOrigin, is_valid_name, parse_target};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ has a parent")
        .to_path_buf()
}

fn tree() -> PathBuf {
    repo().join("buildroot-pkg")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Simple `NAME = value` assignments of a makefile (first line of each, continuation lines joined).
fn make_assignments(text: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.starts_with(['\t', '#', ' ']) || line.starts_with("define ") {
            continue;
        }
        let Some((name, value)) = line.split_once(" = ").or_else(|| line.split_once(" += ")) else {
            continue;
        };
        let mut value = value.to_string();
        while value.ends_with('\\') {
            value.pop();
            value.push(' ');
            value.push_str(lines.next().unwrap_or_default().trim());
        }
        vars.entry(name.trim().to_string())
            .and_modify(|v: &mut String| {
                v.push(' ');
                v.push_str(value.trim());
            })
            .or_insert_with(|| value.trim().to_string());
    }
    vars
}

/// The tree's own name, from external.desc.
fn external_name() -> String {
    read(&tree().join("external.desc"))
        .lines()
        .find_map(|l| l.strip_prefix("name: "))
        .expect("external.desc has a name: line")
        .trim()
        .to_string()
}

/// Package folders under buildroot-pkg/package/.
fn packages() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(tree().join("package"))
        .expect("buildroot-pkg/package")
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn upper(pkg: &str) -> String {
    pkg.to_uppercase().replace(['-', '.'], "_")
}

/// Every Kconfig symbol the tree's Config files define.
fn defined_symbols() -> BTreeSet<String> {
    let mut files = vec![tree().join("Config.in")];
    for pkg in packages() {
        for f in ["Config.in", "Config.in.host"] {
            let p = tree().join("package").join(&pkg).join(f);
            if p.is_file() {
                files.push(p);
            }
        }
    }
    files
        .iter()
        .flat_map(|f| {
            read(f)
                .lines()
                .filter_map(|l| l.strip_prefix("config ").map(|s| s.trim().to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The `default y if SYMBOL` lines of one config entry in a Config.in text.
fn default_if(config_in: &str, entry: &str) -> Vec<String> {
    let mut inside = false;
    let mut out = Vec::new();
    let mut lines = config_in.lines();
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix("config ") {
            inside = name.trim() == entry;
            continue;
        }
        if inside && let Some(cond) = line.trim().strip_prefix("default y if ") {
            let mut cond = cond.to_string();
            while cond.ends_with('\\') {
                cond.pop();
                cond.push_str(lines.next().unwrap_or_default().trim());
            }
            out.push(cond);
        }
    }
    out
}

#[test]
fn tree_version_is_the_workspace_version() {
    let cargo = read(&repo().join("Cargo.toml"));
    let workspace_version = cargo
        .split("[workspace.package]")
        .nth(1)
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("version = ")))
        .expect("[workspace.package] version")
        .trim_matches('"')
        .to_string();
    let vars = make_assignments(&read(&tree().join("external.mk")));
    assert_eq!(
        vars.get("EBPF_PACK_TREE_VERSION"),
        Some(&workspace_version),
        "buildroot-pkg/external.mk EBPF_PACK_TREE_VERSION must equal the workspace version"
    );
    for pkg in packages() {
        let mk = make_assignments(&read(&tree().join(format!("package/{pkg}/{pkg}.mk"))));
        assert_eq!(
            mk.get(&format!("{}_VERSION", upper(&pkg)))
                .map(String::as_str),
            Some("$(EBPF_PACK_TREE_VERSION)"),
            "package {pkg} must take the tree's version"
        );
    }
}

#[test]
fn every_package_has_its_files_and_a_hash_where_it_downloads() {
    let external = make_assignments(&read(&tree().join("external.mk")));
    let pkgs = packages();
    assert_eq!(pkgs, ["ebpf-pack", "ebpf-pack-probes", "ebpf-run"]);
    for pkg in &pkgs {
        let dir = tree().join("package").join(pkg);
        let mk_path = dir.join(format!("{pkg}.mk"));
        assert!(mk_path.is_file(), "{} missing", mk_path.display());
        assert!(
            dir.join("Config.in").is_file() || dir.join("Config.in.host").is_file(),
            "package {pkg} has no Config.in or Config.in.host"
        );
        let mk = read(&mk_path);
        let vars = make_assignments(&mk);
        let up = upper(pkg);
        // Buildroot's convention (check-package enforces it upstream): variables start with the name.
        for name in vars.keys() {
            assert!(
                name.starts_with(&format!("{up}_")) || name.starts_with(&format!("HOST_{up}_")),
                "{pkg}.mk assigns {name}, which is not one of its own variables"
            );
        }
        let method = vars
            .get(&format!("{up}_SITE_METHOD"))
            .map(|m| {
                if m == "$(EBPF_PACK_TREE_SITE_METHOD)" {
                    external["EBPF_PACK_TREE_SITE_METHOD"].clone()
                } else {
                    m.clone()
                }
            })
            .unwrap_or_else(|| "wget".into());
        let hash = dir.join(format!("{pkg}.hash"));
        if method != "local" {
            let text = if hash.is_file() {
                read(&hash)
            } else {
                String::new()
            };
            assert!(
                text.lines().any(|l| l.starts_with("sha256 ")),
                "package {pkg} downloads ({method}) and needs {} with sha256 lines",
                hash.display()
            );
        }
        assert!(
            mk.contains("$(eval $(generic-package))")
                || mk.contains("$(eval $(cargo-package))")
                || mk.contains("$(eval $(host-cargo-package))"),
            "{pkg}.mk uses none of the expected infrastructures"
        );
    }
    // The loader and the CLI use Buildroot's cargo infrastructures, from the right crates.
    let run = read(&tree().join("package/ebpf-run/ebpf-run.mk"));
    assert!(run.contains("$(eval $(cargo-package))") && run.contains("EBPF_RUN_SUBDIR = loader"));
    assert!(repo().join("loader/Cargo.toml").is_file());
    let cli = read(&tree().join("package/ebpf-pack/ebpf-pack.mk"));
    assert!(
        cli.contains("$(eval $(host-cargo-package))") && cli.contains("EBPF_PACK_SUBDIR = cli")
    );
    assert!(read(&repo().join("cli/Cargo.toml")).contains("name = \"ebpf-pack\""));
}

#[test]
fn config_in_sources_every_package_through_the_tree_name() {
    let name = external_name();
    assert!(
        name.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
        "external.desc name `{name}` must be upper case (it names BR2_EXTERNAL_{name}_PATH)"
    );
    let path_var = format!("BR2_EXTERNAL_{name}_PATH");
    let config = read(&tree().join("Config.in"));
    let sourced: BTreeSet<String> = config
        .lines()
        .filter_map(|l| l.trim().strip_prefix("source "))
        .map(|s| s.trim_matches('"').to_string())
        .collect();
    for pkg in packages() {
        for f in ["Config.in", "Config.in.host"] {
            if tree().join("package").join(&pkg).join(f).is_file() {
                let want = format!("${path_var}/package/{pkg}/{f}");
                assert!(sourced.contains(&want), "Config.in does not source {want}");
            }
        }
    }
    for s in &sourced {
        let rel = s
            .strip_prefix(&format!("${path_var}/"))
            .unwrap_or_else(|| panic!("Config.in sources {s} outside ${path_var}"));
        assert!(tree().join(rel).is_file(), "Config.in sources missing {s}");
    }
    // Every BR2_EXTERNAL_*_PATH the tree's files use is this tree's.
    let mut files = vec![tree().join("external.mk"), tree().join("Config.in")];
    for pkg in packages() {
        for entry in fs::read_dir(tree().join("package").join(&pkg)).expect("package dir") {
            files.push(entry.expect("entry").path());
        }
    }
    for f in files {
        let text = read(&f);
        for (i, _) in text.match_indices("BR2_EXTERNAL_") {
            let rest = &text[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let used = &rest[..end];
            if used.ends_with("_PATH") {
                assert_eq!(used, path_var, "{} uses {used}", f.display());
            }
        }
    }
}

#[test]
fn defconfigs_use_only_existing_packages_and_check_hashes() {
    let defined = defined_symbols();
    let dir = tree().join("configs");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("buildroot-pkg/configs")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "beaglebone_ebpf_defconfig",
            "qemu_aarch64_virt_ebpf_defconfig"
        ]
    );
    for name in names {
        let text = read(&dir.join(&name));
        let settings: BTreeMap<&str, &str> =
            text.lines().filter_map(|l| l.split_once('=')).collect();
        for symbol in settings.keys() {
            if symbol.starts_with("BR2_PACKAGE_EBPF") || symbol.starts_with("BR2_PACKAGE_HOST_EBPF")
            {
                assert!(
                    defined.contains(*symbol),
                    "{name} sets {symbol}, which no Config file of the tree defines"
                );
            }
        }
        for required in [
            "BR2_DOWNLOAD_FORCE_CHECK_HASHES",
            "BR2_LINUX_KERNEL",
            "BR2_LINUX_KERNEL_NEEDS_HOST_PAHOLE",
            "BR2_PACKAGE_EBPF_PACK_PROBES",
            "BR2_PACKAGE_EBPF_RUN_KERNEL_CONFIG",
        ] {
            assert_eq!(
                settings.get(required),
                Some(&"y"),
                "{name} must set {required}=y"
            );
        }
        let target = settings
            .get("BR2_PACKAGE_EBPF_PACK_PROBES_TARGET_NAME")
            .map(|v| v.trim_matches('"'))
            .unwrap_or("buildroot");
        assert!(is_valid_name(target), "{name}: target name `{target}`");
    }
}

/// How Buildroot names each architecture of ebpf-pack's table, if its Rust supports it:
/// (Kconfig symbol, `BR2_ARCH` value). One `match`, so a new `Arch` must be placed here.
fn buildroot_arch(arch: Arch) -> Option<(&'static str, &'static str)> {
    match arch {
        Arch::X86_64 => Some(("BR2_x86_64", "x86_64")),
        Arch::Arm64 => Some(("BR2_aarch64", "aarch64")),
        Arch::Arm => Some(("BR2_arm", "arm")),
        Arch::Riscv64 => Some(("BR2_RISCV_64", "riscv64")),
        Arch::S390x => Some(("BR2_s390x", "s390x")),
        // Buildroot's BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS has no mips: no Rust std there.
        Arch::Mips | Arch::Mipsel => None,
    }
}

/// Whether Buildroot can build host-llvm for the arch (BR2_PACKAGE_LLVM_ARCH_SUPPORTS).
fn buildroot_has_llvm(arch: Arch) -> bool {
    !matches!(arch, Arch::S390x | Arch::Mips | Arch::Mipsel)
}

#[test]
fn config_in_offers_every_arch_rust_and_buildroot_support() {
    let run = read(&tree().join("package/ebpf-run/Config.in"));
    let run_arches = default_if(&run, "BR2_PACKAGE_EBPF_RUN_ARCH_SUPPORTS");
    let probes = read(&tree().join("package/ebpf-pack-probes/Config.in"));
    let probe_arches = default_if(&probes, "BR2_PACKAGE_EBPF_PACK_PROBES_ARCH_SUPPORTS");
    let mut expected_run = BTreeSet::new();
    for arch in Arch::ALL {
        let Some((symbol, _)) = buildroot_arch(arch) else {
            continue;
        };
        expected_run.insert(symbol.to_string());
        assert!(
            run_arches.iter().any(|c| c == symbol),
            "ebpf-run's Config.in lacks `default y if {symbol}` for {arch}"
        );
        if buildroot_has_llvm(arch) {
            assert!(
                probe_arches
                    .iter()
                    .any(|c| c == symbol || c.starts_with(&format!("{symbol} "))),
                "ebpf-pack-probes' Config.in lacks {symbol} for {arch}"
            );
        }
    }
    let offered: BTreeSet<String> = run_arches.into_iter().collect();
    assert_eq!(
        offered, expected_run,
        "ebpf-run offers exactly the arches of cli/src/arch.rs that Buildroot's Rust supports"
    );
    assert!(run.contains("depends on BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS"));
    assert!(run.contains("select BR2_PACKAGE_HOST_RUSTC"));
    assert!(
        !run.lines()
            .any(|l| l.trim().starts_with("depends on") && l.contains("BR2_STATIC_LIBS")),
        "ebpf-run is static and must not refuse static-only configurations"
    );
    // 32-bit ARM bundles need the hard-float ABI that ebpf-pack's arm target verifies.
    assert!(probes.contains("BR2_arm && BR2_ARM_EABIHF"));
    assert!(probes.contains("depends on BR2_LINUX_KERNEL"));
}

#[test]
fn rendered_target_file_parses_for_every_bundle_arch() {
    let template = read(&tree().join("support/target.yaml.in"));
    let external = read(&tree().join("external.mk"));
    // The placeholders of the template are exactly those external.mk substitutes.
    let placeholders = |text: &str| -> BTreeSet<String> {
        text.split('@')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    let in_template = placeholders(&template);
    let substituted: BTreeSet<String> = external
        .match_indices("s%@")
        .map(|(i, _)| {
            let rest = &external[i + 3..];
            rest[..rest.find('@').expect("closing @")].to_string()
        })
        .collect();
    assert_eq!(in_template, substituted);
    assert!(
        external.contains(
            "EBPF_PACK_TREE_ARCH = $(if $(BR2_aarch64),arm64,$(call qstrip,$(BR2_ARCH)))"
        ),
        "external.mk maps BR2_ARCH to ebpf-pack's arch names"
    );
    for arch in Arch::ALL {
        let Some((_, br2_arch)) = buildroot_arch(arch) else {
            continue;
        };
        if !buildroot_has_llvm(arch) {
            continue;
        }
        // What external.mk computes from BR2_ARCH, BR2_ENDIAN, the libc and RUSTC_TARGET_NAME.
        let name = if br2_arch == "aarch64" {
            "arm64"
        } else {
            br2_arch
        };
        assert_eq!(Arch::from_name(name), Some(arch), "BR2_ARCH {br2_arch}");
        for libc in [Libc::Glibc, Libc::Musl] {
            let rust_arch = match arch {
                Arch::Arm => "armv7",
                Arch::Riscv64 => "riscv64gc",
                _ => br2_arch,
            };
            let rust_libc = match (libc, arch) {
                (Libc::Glibc, Arch::Arm) => "gnueabihf",
                (Libc::Musl, Arch::Arm) => "musleabihf",
                (Libc::Glibc, _) => "gnu",
                (Libc::Musl, _) => "musl",
            };
            let endian = match arch.facts().endian {
                ebpf_pack_manifest::Endian::Little => "little",
                ebpf_pack_manifest::Endian::Big => "big",
            };
            let text = template
                .replace("@NAME@", "qemu-aarch64-virt")
                .replace("@ARCH@", name)
                .replace("@ENDIAN@", endian)
                .replace("@LIBC@", &libc.to_string())
                .replace(
                    "@TRIPLE@",
                    &format!("{rust_arch}-unknown-linux-{rust_libc}"),
                )
                .replace(
                    "@LINKER@",
                    "/br/output/host/bin/aarch64-buildroot-linux-gnu-gcc",
                )
                .replace("@KERNEL_VERSION@", "6.18")
                .replace("@VMLINUX@", "/br/output/build/linux-6.18.7/vmlinux")
                .replace("@KERNEL_CONFIG@", "/br/output/build/linux-6.18.7/.config")
                + "probes: [opensnoop, execsnoop]\n";
            let t = parse_target(
                &text,
                "targets/qemu-aarch64-virt.yaml",
                Path::new("/br/output/build/ebpf-pack-probes-0.1.0/targets"),
                TargetOrigin::File("targets/qemu-aarch64-virt.yaml".into()),
            )
            .unwrap_or_else(|e| {
                panic!("{arch} {libc}: rendered target does not parse:\n{e}\n{text}")
            });
            assert_eq!(t.arch, arch);
            assert_eq!(t.libc, libc);
            assert_eq!(
                t.probes,
                Some(vec!["opensnoop".to_string(), "execsnoop".to_string()])
            );
        }
    }
}

#[test]
fn manifest_names_the_byte_order_as_external_mk_greps_it() {
    // external.mk checks a bundle's byte order with `grep '"endian": "<BR2_ENDIAN lower-cased>"'` on
    // its manifest.json, which bundle.rs writes with serde_json's pretty printer.
    let external = read(&tree().join("external.mk"));
    assert!(external.contains(r#"grep -q '"endian": "$(EBPF_PACK_TREE_ENDIAN)"'"#));
    for (endian, word) in [
        (ebpf_pack_manifest::Endian::Little, "little"),
        (ebpf_pack_manifest::Endian::Big, "big"),
    ] {
        let text =
            serde_json::to_string_pretty(&serde_json::json!({ "target": { "endian": endian } }))
                .expect("serialize");
        assert!(text.contains(&format!("\"endian\": \"{word}\"")), "{text}");
    }
}
